// The bank sample's read model: each account's balance and the grand total,
// kept by a projection over account events.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include <cairn/envelope.hpp>

#include "account.hpp"

namespace bank {

struct balances {
  static constexpr std::string_view name = "balances";
  static constexpr std::string_view category = "account";
  using event_type = account::event_type;

  std::unordered_map<std::string, int64_t> by_account;
  int64_t total = 0;
  uint64_t events = 0;

  void apply(const cairn::envelope& e, const opened&) {
    by_account.emplace(e.stream.id, 0);
    ++events;
  }
  void apply(const cairn::envelope& e, const deposited& d) {
    by_account[e.stream.id] += d.amount;
    total += d.amount;
    ++events;
  }
  void apply(const cairn::envelope& e, const withdrawn& w) {
    by_account[e.stream.id] -= w.amount;
    total -= w.amount;
    ++events;
  }
};

} // namespace bank
