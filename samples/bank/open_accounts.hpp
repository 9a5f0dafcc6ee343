// open_accounts: phase 1 of the bank workload, opening accounts with bounded
// concurrency: at most `in_flight` open commands are outstanding at once, each reply
// sending the next. A node bounds the commands it accepts (node_options::
// max_commands_in_flight) and answers beyond that at once with "overloaded", so a
// client with a million commands to send paces itself like this instead of sending
// them all at once. An open that times out or finds the node busy is sent again (a few
// times): opening an account twice is a no-op, so a repeat is harmless, and on a
// starved machine a reply can miss the command timeout while the append went through.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <cairn/node.hpp>

#include "bank/account.hpp"
#include "bank/latch.hpp"
#include "bank/workload.hpp"

namespace bank {

/// What opening the accounts did.
struct open_report {
  uint64_t opened = 0;                ///< events appended (0 for an account open already)
  uint64_t failed = 0;                ///< accounts whose open failed (after any retries)
  uint64_t retried = 0;               ///< sends repeated after a timeout or `unavailable`
  std::optional<cairn::error> first;  ///< the first error any send got
};

/// Opens accounts acc-<first> .. acc-<first+count-1> (owner `owner-<i>`), at most
/// `in_flight` at a time, and waits for every reply. A send that times out or is
/// answered `unavailable` is repeated, up to `attempts` sends in all.
inline open_report open_accounts(cairn::node& n, uint64_t count, uint64_t first = 0,
                                 uint64_t in_flight = 1024, uint32_t attempts = 5) {
  struct shared_state {
    cairn::node* n;
    uint64_t end;
    uint32_t attempts;
    std::atomic<uint64_t> next;
    std::atomic<uint64_t> opened{0}, errors{0}, retried{0}, failed{0};
    std::mutex m;
    std::optional<cairn::error> first;
    latch done;
    shared_state(cairn::node* node, uint64_t from, uint64_t to, uint64_t lanes, uint32_t tries)
      : n(node), end(to), attempts(std::max<uint32_t>(tries, 1)), next(from), done(lanes) {}

    // One lane of the closed loop: sends the next account's open, whose reply
    // sends the one after (or the same again), until none is left.
    void send_next() {
      auto i = next.fetch_add(1);
      if (i >= end) return done.count_down();
      send(i, 1);
    }

    void send(uint64_t i, uint32_t attempt) {
      n->send<account>(account_id(i), open{"owner-" + std::to_string(i)},
                       [this, i, attempt](cairn::expected<cairn::command_reply> r) {
                         if (r) {
                           opened += r->events;
                         } else {
                           if (errors++ == 0) {
                             std::lock_guard<std::mutex> g{m};
                             first = r.error();
                           }
                           bool transient = cairn::is_timeout(r.error()) ||
                                            cairn::is_unavailable(r.error());
                           if (transient && attempt < attempts) {
                             ++retried;
                             return send(i, attempt + 1);
                           }
                           ++failed;
                         }
                         send_next();
                       });
    }
  };
  auto lanes = std::max<uint64_t>(1, std::min(in_flight, count));
  shared_state s{&n, first, first + count, lanes, attempts};
  for (uint64_t k = 0; k < lanes; ++k) s.send_next();
  s.done.wait();
  std::lock_guard<std::mutex> g{s.m};
  return open_report{s.opened.load(), s.failed.load(), s.retried.load(), s.first};
}

} // namespace bank
