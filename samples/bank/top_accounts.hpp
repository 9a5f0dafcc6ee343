// The bank sample's second read model: the accounts ranked by balance, kept by a
// projection over account events, for "who holds the most money" queries.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cairn/envelope.hpp>

#include "account.hpp"

namespace bank {

struct top_accounts {
  static constexpr std::string_view name = "top_accounts";
  static constexpr std::string_view category = "account";
  using event_type = account::event_type;

  /// The `n` accounts with the highest balances, highest first (ties by id).
  std::vector<std::pair<std::string, int64_t>> top(size_t n) const {
    std::vector<std::pair<std::string, int64_t>> out;
    for (auto it = ranked_.begin(); it != ranked_.end() && out.size() < n; ++it)
      out.emplace_back(it->second, -it->first);
    return out;
  }

  void apply(const cairn::envelope& e, const opened&) { change(e.stream.id, 0); }
  void apply(const cairn::envelope& e, const deposited& d) { change(e.stream.id, d.amount); }
  void apply(const cairn::envelope& e, const withdrawn& w) { change(e.stream.id, -w.amount); }

private:
  void change(const std::string& id, int64_t delta) {
    auto [it, added] = balance_.try_emplace(id, 0);
    if (!added) ranked_.erase({-it->second, id});
    it->second += delta;
    ranked_.emplace(-it->second, id); // negated: the set's first is the richest
  }

  std::unordered_map<std::string, int64_t> balance_;
  std::set<std::pair<int64_t, std::string>> ranked_;
};

} // namespace bank
