// open_accounts: phase 1 of the bank workload, opening accounts with bounded
// concurrency: at most `in_flight` open commands are outstanding at once, each reply
// sending the next. A node bounds the commands it accepts (node_options::
// max_commands_in_flight) and answers beyond that at once with "overloaded", so a
// client with a million commands to send paces itself like this instead of sending
// them all at once.
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
  uint64_t failed = 0;                ///< commands answered with an error
  std::optional<cairn::error> first;  ///< the first of those errors
};

/// Opens accounts acc-<first> .. acc-<first+count-1> (owner `owner-<i>`), at most
/// `in_flight` at a time, and waits for every reply.
inline open_report open_accounts(cairn::node& n, uint64_t count, uint64_t first = 0,
                                 uint64_t in_flight = 1024) {
  struct shared_state {
    cairn::node* n;
    uint64_t end;
    std::atomic<uint64_t> next;
    std::atomic<uint64_t> opened{0}, failed{0};
    std::mutex m;
    std::optional<cairn::error> first;
    latch done;
    shared_state(cairn::node* node, uint64_t from, uint64_t to, uint64_t lanes)
      : n(node), end(to), next(from), done(lanes) {}

    // One lane of the closed loop: sends the next account's open, whose reply
    // sends the one after, until none is left.
    void send_next() {
      auto i = next.fetch_add(1);
      if (i >= end) return done.count_down();
      n->send<account>(account_id(i), open{"owner-" + std::to_string(i)},
                       [this](cairn::expected<cairn::command_reply> r) {
                         if (r) {
                           opened += r->events;
                         } else if (failed++ == 0) {
                           std::lock_guard<std::mutex> g{m};
                           first = r.error();
                         }
                         send_next();
                       });
    }
  };
  auto lanes = std::max<uint64_t>(1, std::min(in_flight, count));
  shared_state s{&n, first, first + count, lanes};
  for (uint64_t k = 0; k < lanes; ++k) s.send_next();
  s.done.wait();
  std::lock_guard<std::mutex> g{s.m};
  return open_report{s.opened.load(), s.failed.load(), s.first};
}

} // namespace bank
