// event_filter: which committed events a reader wants, decided from the envelope's
// stream category and type name alone, before any payload is decoded.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/envelope.hpp"

namespace cairn {

/// Selects events by category and type name. An empty field matches everything:
/// `event_filter{}` matches every event, `{"account", {}}` every event of streams
/// "account-*", `{"", {"deposited"}}` every event named "deposited". Matching
/// compares a few strings and never looks at the payload, so readers skip the
/// events they do not want without decoding them.
struct event_filter {
  std::string category;           ///< stream category, e.g. "account"; empty: any
  std::vector<std::string> types; ///< event type names, e.g. "deposited"; empty: any

  bool matches(const envelope& e) const {
    if (!category.empty() && e.stream.category != category) return false;
    if (types.empty()) return true;
    for (auto& t : types)
      if (t == e.type) return true;
    return false;
  }
};

} // namespace cairn
