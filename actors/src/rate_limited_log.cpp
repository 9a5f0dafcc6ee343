// rate_limited_log (rate_limited_log.hpp).
#include "rate_limited_log.hpp"

#include <algorithm>

namespace cairn {

rate_limited_log::rate_limited_log(std::chrono::nanoseconds interval, size_t max_messages)
  : interval_(interval), max_messages_(std::max<size_t>(1, max_messages)) {}

bool rate_limited_log::log(spdlog::logger& to, spdlog::level::level_enum level,
                           const std::string& message, clock::time_point now) {
  if (!to.should_log(level)) return false;
  auto it = seen_.find(message);
  if (it != seen_.end() && now - it->second.last < interval_) {
    ++it->second.held_back;
    ++suppressed_total_;
    return false;
  }
  uint64_t held_back = 0;
  if (it == seen_.end()) {
    if (seen_.size() >= max_messages_) forget_oldest();
    it = seen_.emplace(message, seen{now, 0}).first;
  } else {
    held_back = it->second.held_back;
    it->second = seen{now, 0};
  }
  if (held_back == 0) {
    to.log(level, "{}", message);
  } else {
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(interval_).count();
    to.log(level, "{} (repeated {} more times in the last {} s)", message, held_back,
           std::max<int64_t>(seconds, 1));
  }
  return true;
}

void rate_limited_log::forget_oldest() {
  auto oldest = std::min_element(seen_.begin(), seen_.end(), [](const auto& a, const auto& b) {
    return a.second.last < b.second.last;
  });
  if (oldest != seen_.end()) seen_.erase(oldest);
}

} // namespace cairn
