// bank_workload: the standard workload's parts (shared/bench/workload.md) for the
// benchmark programs: phase 1 opens the accounts, phase 2 drives a command plan from K
// closed-loop clients through node::send (the async API), and the verification fold
// reads the store back.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <cairn/node.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "bank/latch.hpp"
#include "bank/open_accounts.hpp"
#include "bank/workload.hpp"
#include "bench_support.hpp"

namespace cairn::bench {

using bank::latch;

/// Phase 1: opens accounts acc-<first> .. acc-<first+count-1> (owner `owner-<i>`), 1,024
/// at a time (bank/open_accounts.hpp), and waits for every reply. Returns the events
/// appended, or the first error.
inline expected<uint64_t> open_accounts(node& n, uint64_t count, uint64_t first = 0) {
  auto r = bank::open_accounts(n, count, first);
  if (r.first) return *r.first;
  return r.opened;
}

/// What phase 2 did.
struct closed_loop_report {
  double seconds = 0; ///< first command sent until the last reply
  uint64_t sent = 0, accepted = 0, rejected = 0, failed = 0;
  uint64_t last_position = 0;        ///< the highest position an accepted command reached
  std::vector<int64_t> latencies_ns; ///< per command, send to reply
  std::string first_failure;         ///< the first error other than a rejection
};

namespace detail {

/// One closed-loop client: sends its next command only after the previous reply.
/// Its fields are touched by one reply handler at a time (each follows the last).
struct client {
  node* n = nullptr;
  const std::vector<bank::planned_command>* plan = nullptr;
  size_t next = 0, stride = 1;
  uint64_t left = 0;                    ///< commands still to send (plan-bound runs)
  clock_type::time_point deadline = {}; ///< no command is sent after it (timed runs)
  bool timed = false;
  std::vector<int64_t> latencies_ns;
  uint64_t accepted = 0, rejected = 0, failed = 0, max_position = 0;
  std::string first_failure;
  latch* done = nullptr;

  void send_next() {
    if (timed ? clock_type::now() >= deadline : left == 0) return done->count_down();
    if (!timed) --left;
    auto& pc = (*plan)[next % plan->size()]; // timed runs wrap around the plan
    next += stride;
    auto sent = clock_type::now();
    n->send_command(make_command<bank::account>(bank::account_id(pc.account), pc.command),
                    [this, sent](expected<command_reply> r) {
                      latencies_ns.push_back((clock_type::now() - sent).count());
                      if (r) {
                        ++accepted;
                        max_position = std::max(max_position, r->position);
                      } else if (is_rejected(r.error())) {
                        ++rejected;
                      } else if (++failed == 1) {
                        first_failure = r.error().describe();
                      }
                      send_next();
                    });
  }
};

} // namespace detail

/// Phase 2: the plan's commands split round-robin over `clients` closed-loop clients
/// (client k takes j = k, k+K, k+2K, ...). With `seconds` > 0 the clients instead
/// send until that much time has passed, wrapping around the plan (a timed window,
/// not the standard workload). Returns once every client has its last reply.
inline closed_loop_report run_clients(node& n, const std::vector<bank::planned_command>& plan,
                                      size_t clients, double seconds = 0) {
  closed_loop_report out;
  if (plan.empty() || clients == 0) return out;
  const bool timed = seconds > 0;
  auto k = timed ? clients : std::min(clients, plan.size());
  std::vector<detail::client> cs(k);
  latch done{k};
  auto start = clock_type::now();
  auto deadline =
    start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  for (size_t i = 0; i < k; ++i) {
    auto& c = cs[i];
    c.n = &n;
    c.plan = &plan;
    c.next = i;
    c.stride = k;
    c.timed = timed;
    c.deadline = deadline;
    c.left = timed ? 0 : (plan.size() - i + k - 1) / k;
    c.done = &done;
    c.latencies_ns.reserve(timed ? 1024 : c.left);
  }
  for (auto& c : cs) c.send_next();
  done.wait();
  out.seconds = seconds_since(start);
  for (auto& c : cs) {
    out.accepted += c.accepted;
    out.rejected += c.rejected;
    out.failed += c.failed;
    out.last_position = std::max(out.last_position, c.max_position);
    if (out.first_failure.empty()) out.first_failure = c.first_failure;
    out.latencies_ns.insert(out.latencies_ns.end(), c.latencies_ns.begin(), c.latencies_ns.end());
  }
  out.sent = out.latencies_ns.size();
  return out;
}

/// The verification fold: Deposited minus Withdrawn over every stored account event,
/// and the count of stored events, read back from the store.
struct store_fold {
  int64_t total = 0;
  uint64_t events = 0;
  std::string problem; ///< empty unless the store could not be read or decoded
};

inline store_fold fold_store(const journal& store) {
  store_fold f;
  for (uint64_t pos = 1;;) {
    auto chunk = store.read_all(pos, 65536);
    if (!chunk) {
      f.problem = "read_all failed: " + chunk.error().describe();
      return f;
    }
    if (chunk->empty()) return f;
    for (auto& e : *chunk) {
      ++f.events;
      if (e.stream.category != bank::account::category) continue;
      auto ev = variant_codec<bank::account::event_type>::decode(e);
      if (!ev) {
        f.problem = "undecodable event: " + ev.error().describe();
        return f;
      }
      if (auto d = std::get_if<bank::deposited>(&*ev)) f.total += d->amount;
      if (auto w = std::get_if<bank::withdrawn>(&*ev)) f.total -= w->amount;
    }
    pos = chunk->back().position + 1;
  }
}

} // namespace cairn::bench
