// How envelopes and snapshots map to rows of Cairn's PostgreSQL tables.
#pragma once

#include <string>
#include <vector>

#include "cairn/envelope.hpp"
#include "cairn/expected.hpp"
#include "cairn/snapshot_store.hpp"
#include "pg_link.hpp"

namespace cairn::pg {

/// The columns of an events row, in the order every read selects them.
inline constexpr const char* event_columns =
  "position, stream, version, type, schema_version, timestamp_ns, meta, payload";

/// Metadata as one bytea: length-prefixed correlation id, causation id and entries
/// (empty metadata is zero bytes).
std::string encode_meta(const metadata& m);
expected<metadata> decode_meta(const std::string& b);

/// Every row of `r` (selected with event_columns) as envelopes, appended to `out`.
expected<void> decode_events(const PGresult* r, std::vector<envelope>& out);

/// The columns of a snapshots row after its stream, in the order every read selects them.
inline constexpr const char* snapshot_columns = "version, type, schema_version, timestamp_ns, state";

/// Row `row` of `r` (snapshot_columns from column `first` on) as the snapshot of `stream`.
snapshot decode_snapshot(const PGresult* r, int row, int first, stream_id stream);

/// invalid_argument unless `s` is valid UTF-8 without NUL (what a text column takes).
bool is_text(const std::string& s);

} // namespace cairn::pg
