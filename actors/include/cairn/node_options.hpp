// node_options: a node's settings, with their defaults. config/node.ini lists the
// same keys (section [cairn]).
#pragma once

#include <chrono>
#include <string>

namespace cairn {

/// How the node hosts one aggregate type.
struct aggregate_options {
  /// Save a snapshot after every this many events of an instance (0: never).
  /// Needs a snapshot store on the node and `describe(cairn::type<A>)` for the state.
  uint64_t snapshot_every = 0;
  /// Stop an instance's actor after it has been idle this long, freeing its memory
  /// (0: never). Its next command recovers it transparently.
  std::chrono::nanoseconds passivate_after = std::chrono::minutes{2};
};

struct node_options {
  /// spdlog level: trace, debug, info, warn, error, critical or off.
  std::string log_level = "info";
  /// How long a command may take before its sender gets errc::timeout.
  std::chrono::nanoseconds command_timeout = std::chrono::seconds{10};
  /// How long a query may wait for its projection to reach the asked position.
  std::chrono::nanoseconds query_timeout = std::chrono::seconds{5};
  /// Defaults for register_aggregate() without options.
  aggregate_options aggregates;
};

} // namespace cairn
