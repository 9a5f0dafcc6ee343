// How a batch of appends travels to PostgreSQL and back: the checks that make a bad
// append fail alone, the append_batch() calls of one transaction, reading their answers,
// and the error each request gets when its transaction fails.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/journal.hpp"
#include "pg_link.hpp"
#include "pg_schema.hpp"

namespace cairn::pg {

/// The most an append may carry: the largest value PostgreSQL takes is 1 GiB, and the
/// append's events travel in one array per column.
inline constexpr size_t max_append_bytes_limit = size_t{512} << 20;

/// The bytes an append takes in the batch's arrays.
size_t request_bytes(const append_request& request);

/// Why `request` cannot be stored, if it cannot: checked before the batch is sent, so a
/// bad append fails alone and never the batch it came in.
expected<void> check_request(const append_request& request, size_t max_bytes);

/// The message for a missing head row, naming how to restore it.
std::string head_row_missing(const std::string& table);

/// The head row's position, or corrupt if the row is missing (never taken as 0: positions
/// would restart and every append would collide with stored events).
expected<uint64_t> head_of(const PGresult* r, const std::string& table);

/// `valid` (indexes into `batch`) cut into segments: runs of consecutive requests in which
/// a stream appears at most once, so a later request on a stream sees the earlier one's
/// outcome and positions follow the requests' order.
std::vector<std::vector<size_t>> segments_of(const std::vector<append_request>& batch,
                                             const std::vector<size_t>& valid);

/// The append_batch() call that stores one segment (a prepared statement).
query append_batch_call(const tables& t, const std::vector<append_request>& batch,
                        const std::vector<size_t>& segment, int64_t now);

/// Reads one committed segment's answer: sets each request's result and moves the
/// stored events, as envelopes, onto `committed`. Returns the position before the
/// segment's first event, or nothing if the answer is malformed (its requests get
/// `corrupt`).
std::optional<uint64_t> read_segment_answer(const PGresult* answer,
                                            std::vector<append_request>& batch,
                                            const std::vector<size_t>& segment,
                                            std::vector<expected<append_result>>& results,
                                            std::vector<envelope>& committed);

/// Fails every request in `valid` of a transaction that failed, each with the most
/// precise error known (`committing`: the batch was sent, so it may be stored).
void fail_transaction(const pipeline_outcome& out, const tables& t,
                      const std::vector<append_request>& batch,
                      std::vector<expected<append_result>>& results,
                      const std::vector<size_t>& valid, bool committing);

} // namespace cairn::pg
