// rate_limited_log: writes a warning that repeats word for word at most once per
// interval, and says how many copies it held back when it writes it again. For
// loops that may hit the same failure many times a second (a retried store write, a
// handler that keeps throwing). Not thread-safe: one per actor.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include <spdlog/common.h>
#include <spdlog/logger.h>

namespace cairn {

class rate_limited_log {
public:
  using clock = std::chrono::steady_clock;

  /// Each distinct message goes out at most once per `interval`; at most
  /// `max_messages` distinct messages are remembered (the oldest are forgotten).
  explicit rate_limited_log(std::chrono::nanoseconds interval = std::chrono::seconds{10},
                            size_t max_messages = 1024);

  /// Logs `message` at `level` to `to` unless the same text went out less than an
  /// interval ago (then it only counts it). Returns true if it was written.
  bool log(spdlog::logger& to, spdlog::level::level_enum level, const std::string& message,
           clock::time_point now = clock::now());

  /// How many messages were held back since this object was made.
  uint64_t suppressed() const noexcept { return suppressed_total_; }

private:
  struct seen {
    clock::time_point last;
    uint64_t held_back = 0;
  };
  void forget_oldest();

  std::chrono::nanoseconds interval_;
  size_t max_messages_;
  std::unordered_map<std::string, seen> seen_;
  uint64_t suppressed_total_ = 0;
};

} // namespace cairn
