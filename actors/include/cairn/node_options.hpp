// node_options: a node's settings, with their defaults. config/node.ini lists the
// same keys (section [cairn]).
#pragma once

#include <chrono>
#include <string>

namespace cairn {

struct node_options {
  /// spdlog level: trace, debug, info, warn, error, critical or off.
  std::string log_level = "info";
  /// How long a command may take before its sender gets errc::timeout.
  std::chrono::nanoseconds command_timeout = std::chrono::seconds{10};
  /// How long a query may wait for its projection to reach the asked position.
  std::chrono::nanoseconds query_timeout = std::chrono::seconds{5};
};

} // namespace cairn
