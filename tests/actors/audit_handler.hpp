// audit: an event subscription's handler with a bug (a deposit of 13 throws until
// `fixed`), for the subscription dead-letter tests, and what it handled.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <vector>

#include <cairn/node.hpp>

#include "bank/account.hpp"

namespace cairn::test {

struct audit {
  std::mutex m;
  std::vector<uint64_t> handled;
  std::atomic<bool> fixed{false};
  event_handler handler() {
    return [this](const envelope& e) {
      auto d = variant_codec<bank::account::event_type>::decode(e);
      if (!d) throw std::runtime_error("undecodable");
      auto* dep = std::get_if<bank::deposited>(&*d);
      if (dep && dep->amount == 13 && !fixed) throw std::runtime_error("unlucky amount");
      std::lock_guard<std::mutex> g{m};
      handled.push_back(e.position);
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> g{m};
    return handled.size();
  }
  bool saw(uint64_t position) {
    std::lock_guard<std::mutex> g{m};
    return std::find(handled.begin(), handled.end(), position) != handled.end();
  }
};

} // namespace cairn::test
