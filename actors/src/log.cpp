// The "cairn" spdlog logger.
#include "log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace cairn {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto existing = spdlog::get("cairn");
    return existing ? existing : spdlog::stderr_color_mt("cairn");
  }();
  return *logger;
}

bool set_log_level(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  // from_str maps unknown names to off; only accept "off" when asked for.
  if (lvl == spdlog::level::off && level != "off") return false;
  log().set_level(lvl);
  return true;
}

} // namespace cairn
