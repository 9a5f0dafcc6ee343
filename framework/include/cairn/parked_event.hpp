// parked_event: an event that an event subscription's handler (node::subscribe_events)
// kept failing on, set aside with the reason so delivery goes on; an operator lists
// it, retries it once the handler is fixed, or discards it.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/schema.hpp"

namespace cairn {

struct parked_event {
  uint64_t position = 0; ///< the event's global position (read it back from the store)
  std::string stream;    ///< its stream's name
  std::string type;      ///< its type name
  std::string reason;    ///< what the handler threw, the last time
  uint32_t attempts = 0; ///< calls that failed, retries included
};

inline auto describe(type<parked_event>) {
  return schema<parked_event>("cairn.parked_event", 1, field("position", &parked_event::position),
                              field("stream", &parked_event::stream),
                              field("type", &parked_event::type),
                              field("reason", &parked_event::reason),
                              field("attempts", &parked_event::attempts));
}

} // namespace cairn
