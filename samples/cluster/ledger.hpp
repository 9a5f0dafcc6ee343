// ledger: the cluster sample's read model: every account's balance, and the last
// store position applied (so that a test can tell it has caught up).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include <cairn/envelope.hpp>

#include "bank/account.hpp"

namespace cluster_sample {

struct ledger {
  static constexpr std::string_view name = "ledger";
  static constexpr std::string_view category = "account";
  using event_type = bank::account::event_type;

  std::unordered_map<std::string, int64_t> by_account;
  int64_t total = 0;
  uint64_t events = 0;
  uint64_t position = 0;

  void apply(const cairn::envelope& e, const bank::opened&) {
    by_account.emplace(e.stream.id, 0);
    seen(e);
  }
  void apply(const cairn::envelope& e, const bank::deposited& d) {
    by_account[e.stream.id] += d.amount;
    total += d.amount;
    seen(e);
  }
  void apply(const cairn::envelope& e, const bank::withdrawn& w) {
    by_account[e.stream.id] -= w.amount;
    total -= w.amount;
    seen(e);
  }

private:
  void seen(const cairn::envelope& e) {
    ++events;
    position = e.position;
  }
};

} // namespace cluster_sample
