// The bank sample's HTTP API: the account aggregate's commands and the balances and
// top-accounts read models as named queries (docs/http.md has the routes).
#pragma once

#include <algorithm>
#include <string>

#include <cairn/http_server.hpp>

#include "bank/account.hpp"
#include "bank/balances.hpp"
#include "bank/top_accounts.hpp"

namespace bank {

inline void expose_over_http(cairn::http_server& http) {
  http.expose_aggregate<account>();
  // GET /queries/balance?account=ID: one account's balance (404 if unknown).
  http.add_query<balances>(
    "balance", [](const balances& b, const cairn::query_params& q) -> cairn::expected<nlohmann::json> {
      auto id = q.find("account");
      if (id == q.end()) return cairn::error{cairn::errc::invalid_argument, "missing account=ID"};
      auto it = b.by_account.find(id->second);
      if (it == b.by_account.end())
        return cairn::error{cairn::errc::not_found, "no account \"" + id->second + "\""};
      return nlohmann::json{{"account", it->first}, {"balance", it->second}};
    });
  // GET /queries/balances: the read model's totals.
  http.add_query<balances>("balances", [](const balances& b, const cairn::query_params&) {
    return nlohmann::json{
      {"total", b.total}, {"accounts", b.by_account.size()}, {"events", b.events}};
  });
  // GET /queries/top?n=5: the richest accounts, richest first (n at most 100).
  http.add_query<top_accounts>(
    "top", [](const top_accounts& t, const cairn::query_params& q) -> cairn::expected<nlohmann::json> {
      size_t n = 5;
      if (auto it = q.find("n"); it != q.end()) {
        try {
          n = std::stoul(it->second);
        } catch (const std::exception&) {
          return cairn::error{cairn::errc::invalid_argument, "n must be a number"};
        }
      }
      auto list = nlohmann::json::array();
      for (auto& [id, balance] : t.top(std::min<size_t>(n, 100)))
        list.push_back({{"account", id}, {"balance", balance}});
      return list;
    });
}

} // namespace bank
