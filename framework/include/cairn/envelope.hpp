// The envelope: one stored event with everything the store knows about it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cairn/stream_id.hpp"

namespace cairn {

/// Raw bytes: an encoded payload.
using bytes = std::vector<uint8_t>;

/// Who caused an event and why. Correlation ids follow a whole conversation
/// (a request and everything it triggers); the causation id names the message
/// that directly caused this one. Free key/values carry anything else
/// (user id, tenant, trace id), in insertion order.
struct metadata {
  std::string correlation_id;
  std::string causation_id;
  std::vector<std::pair<std::string, std::string>> entries;

  /// The value for `key`, or nullptr.
  const std::string* find(const std::string& key) const {
    for (auto& kv : entries)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }

  friend bool operator==(const metadata& a, const metadata& b) {
    return a.correlation_id == b.correlation_id && a.causation_id == b.causation_id &&
           a.entries == b.entries;
  }
};

/// An event on its way into the store: the store assigns its version, position and time.
struct event_data {
  std::string type;            ///< stable event type name, e.g. "deposited"
  uint32_t schema_version = 1; ///< version of the payload layout for this type
  metadata meta;
  bytes payload;               ///< encoded by the type's codec

  friend bool operator==(const event_data& a, const event_data& b) {
    return a.type == b.type && a.schema_version == b.schema_version && a.meta == b.meta &&
           a.payload == b.payload;
  }
};

/// A committed event as read back from the store.
struct envelope {
  stream_id stream;
  uint64_t version = 0;        ///< 1 for the first event of a stream, no holes
  uint64_t position = 0;       ///< 1 for the first event of the store, global order, no holes
  std::string type;
  uint32_t schema_version = 1;
  int64_t timestamp_ns = 0;    ///< commit time, nanoseconds since the Unix epoch (UTC)
  metadata meta;
  bytes payload;

  std::chrono::system_clock::time_point time() const {
    return std::chrono::system_clock::time_point{
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::nanoseconds{timestamp_ns})};
  }

  friend bool operator==(const envelope& a, const envelope& b) {
    return a.stream == b.stream && a.version == b.version && a.position == b.position &&
           a.type == b.type && a.schema_version == b.schema_version &&
           a.timestamp_ns == b.timestamp_ns && a.meta == b.meta && a.payload == b.payload;
  }
};

/// Current wall-clock time in the envelope's unit.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace cairn
