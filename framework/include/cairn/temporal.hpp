// Temporal queries: an aggregate's state as it was after a given stream version, or
// at a given time, rebuilt by replaying its stored events (upcast like any replay).
//
//   auto then = cairn::state_at<bank::account>(*store, "42", 3);      // after event 3
//   auto noon = cairn::state_as_of<bank::account>(*store, "42", t);   // as of time t
//
// Reads only: call it from any thread, beside a running node (journal.hpp allows
// concurrent reads). Snapshots are not used; the cost is a replay of the prefix.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "cairn/aggregate_model.hpp"
#include "cairn/journal.hpp"

namespace cairn {

/// An aggregate's state at one point of its stream, and which point that is.
template <class A>
struct past_state {
  A state{};
  uint64_t version = 0;     ///< the last event folded in; 0: none (the initial state)
  int64_t timestamp_ns = 0; ///< that event's commit time; 0 for version 0
};

/// Replays aggregate A's stream `id` (category A::category) from its first event,
/// stopping before the first event whose version exceeds `max_version` or whose
/// commit time exceeds `max_timestamp_ns`; history is a prefix, so a later event
/// with an earlier clock reading is not folded in. Errors: invalid_argument (a
/// malformed id), not_found (the stream has no events, or `max_version` is finite
/// and beyond the stream's version), corrupt (an event that does not decode or
/// upcast, or an exception in evolve), and the store's own read errors.
template <class A>
expected<past_state<A>> replay_until(const journal& store, const std::string& id,
                                     uint64_t max_version = std::numeric_limits<uint64_t>::max(),
                                     int64_t max_timestamp_ns = std::numeric_limits<int64_t>::max()) {
  stream_id stream{std::string{aggregate_traits<A>::category()}, id};
  if (auto ok = stream.validate(); !ok) return std::move(ok).error();
  auto head = store.stream_version(stream);
  if (!head) return std::move(head).error();
  if (*head == 0) return error{errc::not_found, "stream " + stream.str() + " has no events"};
  if (max_version != std::numeric_limits<uint64_t>::max() && max_version > *head)
    return error{errc::not_found, "stream " + stream.str() + " is at version " +
                                    std::to_string(*head) + ", there is no version " +
                                    std::to_string(max_version)};
  detail::typed_aggregate_instance<A> instance;
  int64_t timestamp = 0;
  constexpr size_t chunk = 512;
  for (uint64_t next = 1; next <= max_version;) {
    auto events = store.read_stream(stream, next, chunk);
    if (!events) return std::move(events).error();
    for (auto& e : *events) {
      if (e.version > max_version || e.timestamp_ns > max_timestamp_ns)
        return past_state<A>{instance.state(), instance.version(), timestamp};
      if (auto ok = instance.replay(e); !ok)
        return error{ok.error().code(), "replaying " + stream.str() + ": " + ok.error().message()};
      timestamp = e.timestamp_ns;
    }
    if (events->size() < chunk) break;
    next = events->back().version + 1;
  }
  return past_state<A>{instance.state(), instance.version(), timestamp};
}

/// The state of aggregate A's instance `id` right after its event `version` (0: the
/// initial state). Errors as replay_until(): not_found for an unknown stream or a
/// version beyond the stream's current one.
template <class A>
expected<A> state_at(const journal& store, const std::string& id, uint64_t version) {
  if (version == std::numeric_limits<uint64_t>::max())
    return error{errc::invalid_argument, "version " + std::to_string(version) + " is too large"};
  auto r = replay_until<A>(store, id, version);
  if (!r) return std::move(r).error();
  return std::move(r->state);
}

/// The state of aggregate A's instance `id` as of `time`: after every event committed
/// at or before it (the initial state if the instance's first event is later; the
/// current state for a time after its last event). Errors as replay_until():
/// not_found for an unknown stream.
template <class A>
expected<A> state_as_of(const journal& store, const std::string& id,
                        std::chrono::system_clock::time_point time) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
  auto r = replay_until<A>(store, id, std::numeric_limits<uint64_t>::max(),
                           static_cast<int64_t>(ns));
  if (!r) return std::move(r).error();
  return std::move(r->state);
}

} // namespace cairn
