// command_message and command_reply: a command on its way to an aggregate, and the
// answer it gets back. Both are plain values that can cross actors and nodes.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/envelope.hpp"
#include "cairn/journal.hpp"

namespace cairn {

/// An encoded command addressed to one aggregate instance.
struct command_message {
  stream_id target;             ///< the aggregate's stream, e.g. account-42
  std::string type;             ///< the command's stable type name
  uint32_t schema_version = 1;
  metadata meta;                ///< copied onto every event the command causes
  bytes payload;
  /// Optional optimistic check: the aggregate must be at this version, else the
  /// command fails with conflict. expected_version::any (the default) skips it.
  uint64_t expected_version = expected_version::any;
};

/// A command's successful outcome.
struct command_reply {
  uint64_t version = 0;  ///< the aggregate's version after the command
  uint64_t position = 0; ///< global position of its last event; 0 if it stored none
  uint32_t events = 0;   ///< how many events it stored (0 for an idempotent no-op)
};

} // namespace cairn
