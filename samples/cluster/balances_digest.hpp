// balances_digest: a short fingerprint of every account's balance, so that a node's
// read model and a fold of the store can be compared in one line.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cluster_sample {

/// 16 lowercase hex digits of FNV-1a 64 over "<account-id>=<balance>\n", sorted by id.
inline std::string balances_digest(const std::unordered_map<std::string, int64_t>& by_account) {
  std::vector<std::pair<std::string, int64_t>> sorted(by_account.begin(), by_account.end());
  std::sort(sorted.begin(), sorted.end());
  uint64_t h = 14695981039346656037ull;
  for (auto& [id, balance] : sorted)
    for (char c : id + "=" + std::to_string(balance) + "\n") {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

} // namespace cluster_sample
