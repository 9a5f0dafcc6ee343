// The logger every Cairn actor writes to ("cairn", stderr), created on first use.
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace cairn {

spdlog::logger& log();

/// Sets the level from a name (trace, debug, info, warn, error, critical, off).
/// Returns false for an unknown name.
bool set_log_level(const std::string& level);

} // namespace cairn
