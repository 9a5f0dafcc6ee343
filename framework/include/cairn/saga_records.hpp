// The saga runtime's own records, stored in a saga instance's stream beside the
// saga's events (and its manager's checkpoints in "cairn_sagas-<name>"). Their type
// names start with "cairn.", which saga events may not use. Tools read them without
// knowing the saga's types (saga_admin.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/envelope.hpp"
#include "cairn/schema.hpp"
#include "cairn/stream_id.hpp"

namespace cairn {

/// A command was decided and is about to be sent (stored before it is sent).
struct saga_sent {
  uint64_t step_id = 0;
  std::string step;
  std::string target; ///< the aggregate's stream name
  std::string type;
  uint32_t schema_version = 1;
  bytes payload;
  uint64_t expected_version = 0; ///< the target's version when it was decided
  std::string causation_id;
};
/// The step's command was applied: its first event is at `position` (0: it was an
/// accepted no-op, which stores nothing).
struct saga_done {
  uint64_t step_id = 0;
  uint64_t position = 0;
};
/// The step failed for good (rejected, invalid, or timed out and the saga gave up on it).
struct saga_failed {
  uint64_t step_id = 0;
  uint8_t code = 0; ///< a cairn::errc
  std::string reason;
};
/// The saga chose to send the step's command again after a timeout.
struct saga_retried {
  uint64_t step_id = 0;
};

/// The instance is parked: a decision of it could not be carried out (a handler or
/// apply threw, it decided an invalid command while compensating, an event could not
/// be stored). It does nothing until an operator retries or closes it. `position` is
/// the input it could not process (0: none; then a pending step's failure is what
/// failed, and retrying re-sends that step).
struct saga_parked {
  uint8_t code = 0; ///< a cairn::errc
  std::string reason;
  uint64_t position = 0;
};
/// An input that reached the instance while it was parked: kept for the retry.
struct saga_held {
  uint64_t position = 0;
};
/// An operator asked for the parked instance to be tried again (written by a tool
/// while the node was down; the manager retries it when it loads it).
struct saga_retry_requested {
  std::string by;
};
/// The instance was retried: the held inputs were processed again, in order, and
/// what they decided follows in the same write.
struct saga_resumed {};
/// An operator closed the instance: it is finished, whatever it was doing.
struct saga_closed {
  std::string reason;
};

/// An input event the saga manager could not hand to any instance: its correlate()
/// threw, it could not be decoded or upcast for the saga, or the instance it routes
/// to cannot be loaded. Stored in the saga's dead-letter stream
/// ("cairn_saga_unrouted-<name>", see saga_unrouted_stream) so the manager goes on with
/// other events; an operator retries it (after a fix and restart) or closes it. A
/// later saga_unrouted for the same position replaces the earlier (a failed retry).
struct saga_unrouted {
  uint64_t position = 0; ///< the event's global position
  std::string stream;    ///< its stream's name
  std::string type;      ///< its type name
  uint8_t code = 0;      ///< a cairn::errc
  std::string reason;
};
/// An operator asked for the parked event at `position` to be retried (written by a
/// tool while the node was down; the manager retries it when it starts).
struct saga_unrouted_retry_requested {
  uint64_t position = 0;
  std::string by;
};
/// The parked event at `position` was retried and handed to instance `key` ("" if
/// the saga now routes it to none): it is no longer parked.
struct saga_unrouted_delivered {
  uint64_t position = 0;
  std::string key;
};
/// An operator closed (discarded) the parked event at `position`.
struct saga_unrouted_closed {
  uint64_t position = 0;
  std::string reason;
};

/// The saga manager's durable position, version 2: every event up to `position` is
/// processed; every unfinished instance that is not parked has stored an event at or
/// after `low_water` (0: there is none), so a restart finds them by re-reading the
/// log from there; `reload` lists the instances to load at start besides: the parked
/// ones (expected to be few) and any whose last stored event is not known. Its size
/// does not grow with the number of instances in flight.
struct saga_checkpoint {
  uint64_t position = 0;
  uint64_t low_water = 0;
  std::vector<std::string> reload;
};
/// Version 1, which listed every open instance; still read.
struct saga_checkpoint_v1 {
  uint64_t position = 0;
  std::vector<std::string> open;
};

inline auto describe(type<saga_sent>) {
  return schema<saga_sent>(
    "cairn.saga_sent", 1, field("step_id", &saga_sent::step_id), field("step", &saga_sent::step),
    field("target", &saga_sent::target), field("type", &saga_sent::type),
    field("schema_version", &saga_sent::schema_version), field("payload", &saga_sent::payload),
    field("expected_version", &saga_sent::expected_version),
    field("causation_id", &saga_sent::causation_id));
}
inline auto describe(type<saga_done>) {
  return schema<saga_done>("cairn.saga_done", 1, field("step_id", &saga_done::step_id),
                           field("position", &saga_done::position));
}
inline auto describe(type<saga_failed>) {
  return schema<saga_failed>("cairn.saga_failed", 1, field("step_id", &saga_failed::step_id),
                             field("code", &saga_failed::code),
                             field("reason", &saga_failed::reason));
}
inline auto describe(type<saga_retried>) {
  return schema<saga_retried>("cairn.saga_retried", 1, field("step_id", &saga_retried::step_id));
}
inline auto describe(type<saga_parked>) {
  return schema<saga_parked>("cairn.saga_parked", 1, field("code", &saga_parked::code),
                             field("reason", &saga_parked::reason),
                             field("position", &saga_parked::position));
}
inline auto describe(type<saga_held>) {
  return schema<saga_held>("cairn.saga_held", 1, field("position", &saga_held::position));
}
inline auto describe(type<saga_retry_requested>) {
  return schema<saga_retry_requested>("cairn.saga_retry_requested", 1,
                                      field("by", &saga_retry_requested::by));
}
inline auto describe(type<saga_resumed>) {
  return schema<saga_resumed>("cairn.saga_resumed", 1);
}
inline auto describe(type<saga_closed>) {
  return schema<saga_closed>("cairn.saga_closed", 1, field("reason", &saga_closed::reason));
}
inline auto describe(type<saga_checkpoint>) {
  return schema<saga_checkpoint>("cairn.saga_checkpoint", 2,
                                 field("position", &saga_checkpoint::position),
                                 field("low_water", &saga_checkpoint::low_water),
                                 field("reload", &saga_checkpoint::reload));
}
inline auto describe(type<saga_checkpoint_v1>) {
  return schema<saga_checkpoint_v1>("cairn.saga_checkpoint", 1,
                                    field("position", &saga_checkpoint_v1::position),
                                    field("open", &saga_checkpoint_v1::open));
}

inline auto describe(type<saga_unrouted>) {
  return schema<saga_unrouted>("cairn.saga_unrouted", 1,
                               field("position", &saga_unrouted::position),
                               field("stream", &saga_unrouted::stream),
                               field("type", &saga_unrouted::type),
                               field("code", &saga_unrouted::code),
                               field("reason", &saga_unrouted::reason));
}
inline auto describe(type<saga_unrouted_retry_requested>) {
  return schema<saga_unrouted_retry_requested>(
    "cairn.saga_unrouted_retry_requested", 1,
    field("position", &saga_unrouted_retry_requested::position),
    field("by", &saga_unrouted_retry_requested::by));
}
inline auto describe(type<saga_unrouted_delivered>) {
  return schema<saga_unrouted_delivered>("cairn.saga_unrouted_delivered", 1,
                                         field("position", &saga_unrouted_delivered::position),
                                         field("key", &saga_unrouted_delivered::key));
}
inline auto describe(type<saga_unrouted_closed>) {
  return schema<saga_unrouted_closed>("cairn.saga_unrouted_closed", 1,
                                      field("position", &saga_unrouted_closed::position),
                                      field("reason", &saga_unrouted_closed::reason));
}

/// The category of the sagas' dead-letter streams (saga_unrouted_stream).
inline constexpr std::string_view saga_unrouted_category = "cairn_saga_unrouted";

/// The stream of saga `name`'s parked input events: "cairn_saga_unrouted-<name>".
inline stream_id saga_unrouted_stream(std::string_view name) {
  return stream_id{std::string{saga_unrouted_category}, std::string{name}};
}

/// The stream of saga `name`'s checkpoints: "cairn_sagas-<name>".
inline stream_id saga_checkpoint_stream(std::string_view name) {
  return stream_id{"cairn_sagas", std::string{name}};
}

/// Metadata key on a saga's stored events: the position of the input that caused them.
inline constexpr std::string_view trigger_position_key = "cairn.position";

} // namespace cairn
