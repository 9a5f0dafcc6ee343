// Saga dead letters, read and handled straight from a store, without the saga's
// types: which instances are parked and why, and the operator's two answers (retry
// once the cause is fixed, or close). The `cairn sagas` tool uses these while the
// node is down; a running node offers the same through node::parked_sagas,
// node::retry_saga and node::close_saga.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/error.hpp"
#include "cairn/journal.hpp"

namespace cairn {

/// One parked saga instance (saga_records.hpp's saga_parked).
struct parked_saga {
  std::string saga;  ///< the saga's name
  std::string key;   ///< the instance's correlation key (stream "saga_<saga>-<key>")
  errc code = errc::invalid_argument;
  std::string reason;
  std::vector<uint64_t> held; ///< positions of the inputs waiting for the retry, in order
  size_t pending_steps = 0;   ///< commands sent and not known applied or failed
  bool retry_requested = false; ///< a retry is asked for and the node has not done it yet
  int64_t parked_at_ns = 0;     ///< commit time of its last saga_parked record
};

/// One input event that saga `saga` could not hand to an instance (saga_records.hpp's
/// saga_unrouted): parked in the saga's dead-letter stream.
struct parked_saga_event {
  std::string saga;      ///< the saga's name
  uint64_t position = 0; ///< the event's global position (read it back from the store)
  std::string stream;    ///< its stream's name
  std::string type;      ///< its type name
  errc code = errc::invalid_argument;
  std::string reason;
  bool retry_requested = false; ///< a retry is asked for and the node has not done it yet
  int64_t parked_at_ns = 0;     ///< commit time of its last saga_unrouted record
};

/// Saga `saga`'s parked input events, by position, from its dead-letter stream
/// (saga_unrouted_stream); `resolved` (if given) gets the positions of those retried
/// or closed since. Errors: corrupt (an undecodable record), those of the store.
expected<std::map<uint64_t, parked_saga_event>>
read_parked_saga_events(const journal& store, std::string_view saga,
                        std::vector<uint64_t>* resolved = nullptr);

/// Every parked input event in `store` (of saga `saga` only, if given), sorted by saga
/// and position.
expected<std::vector<parked_saga_event>> find_parked_saga_events(const journal& store,
                                                                 std::string_view saga = {});

/// Asks for the parked event at `position` of saga `saga` to be retried when a node
/// next starts the saga (appends saga_unrouted_retry_requested). Errors: not_found (no
/// such parked event), those of the store.
expected<void> request_saga_event_retry(journal& store, std::string_view saga, uint64_t position,
                                        std::string by);

/// Closes (discards) the parked event at `position` of saga `saga` for good (appends
/// saga_unrouted_closed). Errors as request_saga_event_retry.
expected<void> close_parked_saga_event(journal& store, std::string_view saga, uint64_t position,
                                       std::string reason);

/// What the runtime records of one saga stream say about parking: set `parked` if
/// the instance is parked. Errors: corrupt (an undecodable runtime record).
expected<void> read_park_state(const std::vector<envelope>& stream, parked_saga& out,
                               bool& parked);

/// Every parked instance in `store` (of saga `saga` only, if given), sorted by saga
/// and key. Reads every saga stream: for tools, not for hot paths.
expected<std::vector<parked_saga>> find_parked_sagas(const journal& store,
                                                     std::string_view saga = {});

/// Asks for parked instance `key` of saga `saga` to be retried when a node next
/// loads it (appends saga_retry_requested). Errors: not_found (no such parked
/// instance), conflict (it changed meanwhile), those of the store.
expected<void> request_saga_retry(journal& store, std::string_view saga, const std::string& key,
                                  std::string by);

/// Closes parked instance `key` of saga `saga` for good (appends saga_closed).
/// Errors as request_saga_retry.
expected<void> close_parked_saga(journal& store, std::string_view saga, const std::string& key,
                                 std::string reason);

} // namespace cairn
