// Identifies one event stream: an aggregate category plus the entity id inside it.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

#include "cairn/expected.hpp"

namespace cairn {

/// A stream is named "<category>-<id>", e.g. "account-42". The category names the
/// aggregate type (letters, digits and '_' only, never '-'); the id is any non-empty
/// string without control characters and may itself contain '-'. The whole name is
/// at most 1024 bytes.
struct stream_id {
  std::string category;
  std::string id;

  /// "account-42"
  std::string str() const { return category + "-" + id; }

  /// Splits "account-42" at the first '-'. Returns invalid_argument on malformed names.
  static expected<stream_id> parse(std::string_view name);

  /// Checks the rules above; returns an invalid_argument error explaining the breach.
  expected<void> validate() const;

  friend bool operator==(const stream_id& a, const stream_id& b) {
    return a.category == b.category && a.id == b.id;
  }
  friend bool operator!=(const stream_id& a, const stream_id& b) { return !(a == b); }
  friend bool operator<(const stream_id& a, const stream_id& b) {
    return a.category < b.category || (a.category == b.category && a.id < b.id);
  }
};

inline std::ostream& operator<<(std::ostream& os, const stream_id& s) {
  return os << s.category << '-' << s.id;
}

} // namespace cairn

template <>
struct std::hash<cairn::stream_id> {
  size_t operator()(const cairn::stream_id& s) const noexcept {
    size_t h = std::hash<std::string>{}(s.category);
    return h ^ (std::hash<std::string>{}(s.id) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  }
};
