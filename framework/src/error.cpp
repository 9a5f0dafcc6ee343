// Names for error codes and the human-readable rendering of cairn::error.
#include "cairn/error.hpp"

namespace cairn {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::ok: return "ok";
    case errc::rejected: return "rejected";
    case errc::conflict: return "conflict";
    case errc::not_found: return "not_found";
    case errc::timeout: return "timeout";
    case errc::unavailable: return "unavailable";
    case errc::corrupt: return "corrupt";
    case errc::invalid_argument: return "invalid_argument";
    case errc::fenced: return "fenced";
  }
  return "unknown";
}

std::string error::describe() const {
  std::string out(to_string(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const error& e) { return os << e.describe(); }

} // namespace cairn
