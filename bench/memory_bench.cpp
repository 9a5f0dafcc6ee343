// Benchmarks memory: bytes per idle aggregate with N (default 1,000,000) live
// aggregates. Each measurement runs in a child process of its own and is the change in
// its resident set (RSS) divided by N:
//  - aggregates: N accounts opened by commands on a node with the memory store and
//    passivation off (the gross figure: actors, router entries, states and the stored
//    events), after a warm-up;
//  - store: the memory store alone holding the same N events, so net = gross - store;
//  - caf_actor: N idle CAF actors (stateful, one argument) alone, the runtime's floor.
// Also the children's peak RSS. Medians of --runs runs, as one "RESULT {json}" line.
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <cairn/memory_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "bank/workload.hpp"
#include "bank_workload.hpp"
#include "bench_support.hpp"

using namespace cairn;
using namespace cairn::bench;

namespace {

constexpr const char* usage = "memory_bench [--aggregates N] [--runs R]";
constexpr uint64_t warm_up = 1000;  ///< opened before the baseline
constexpr uint64_t in_flight = 256; ///< concurrent open commands

/// Where a child process writes its figure (in_child).
int result_fd = -1;

/// Hands the child's figure (negative: failed) to the parent and exits at once:
/// tearing down a node with a million live aggregates takes minutes, and is not
/// what is measured.
[[noreturn]] void child_done(double value) {
  ssize_t w = ::write(result_fd, &value, sizeof value);
  ::_exit(w == sizeof value ? 0 : 1);
}

/// Idles after the commands have been answered (their timeout entries are swept
/// every 50 ms), so the measurement sees only what stays.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds{300}); }

/// Opens accounts acc-<first>.. acc-<first+count-1> with `in_flight` commands at a
/// time (closed loop, so queues stay short). Returns false if any failed.
bool open_closed_loop(node& n, uint64_t first, uint64_t count) {
  struct opener {
    node* n;
    uint64_t next, end, stride;
    std::atomic<bool>* failed;
    latch* done;
    void go() {
      if (next >= end) return done->count_down();
      auto i = next;
      next += stride;
      n->send<bank::account>(bank::account_id(i), bank::open{"owner-" + std::to_string(i)},
                             [this](expected<command_reply> r) {
                               if (!r || r->events != 1) *failed = true;
                               go();
                             });
    }
  };
  auto k = std::min(in_flight, count);
  std::atomic<bool> failed{false};
  latch done{k};
  std::vector<opener> openers;
  openers.reserve(k);
  for (uint64_t i = 0; i < k; ++i)
    openers.push_back(opener{&n, first + i, first + count, k, &failed, &done});
  for (auto& o : openers) o.go();
  done.wait();
  return !failed;
}

/// Gross bytes per aggregate: N accounts opened on a node (memory store, no passivation).
[[noreturn]] void aggregates_part(uint64_t count) {
  node_config cfg;
  cfg.options.log_level = "warn";
  cfg.options.aggregates.passivate_after = std::chrono::nanoseconds{0};
  cfg.options.command_timeout = std::chrono::seconds{120};
  node n{cfg, make_memory_journal()};
  if (!n.register_aggregate<bank::account>() || !open_closed_loop(n, 0, warm_up)) child_done(-1);
  settle();
  auto rss0 = current_rss_bytes();
  if (!open_closed_loop(n, warm_up, count)) child_done(-1);
  settle();
  auto rss1 = current_rss_bytes();
  if (n.store()->head_position() != warm_up + count) child_done(-1);
  child_done((double(rss1) - double(rss0)) / double(count));
}

/// Bytes per event of the memory store alone, holding what the aggregates stored.
[[noreturn]] void store_part(uint64_t count) {
  auto store = make_memory_journal();
  auto append = [&](uint64_t first, uint64_t n) {
    std::vector<append_request> batch;
    for (uint64_t i = first; i < first + n; ++i) {
      batch.push_back({stream_id{"account", bank::account_id(i)}, expected_version::no_stream,
                       {variant_codec<bank::account::event_type>::encode(
                         bank::opened{"owner-" + std::to_string(i)})}});
      if (batch.size() == 256 || i + 1 == first + n) {
        for (auto& r : store->append(std::move(batch)))
          if (!r) return false;
        batch.clear();
      }
    }
    return true;
  };
  if (!append(0, warm_up)) child_done(-1);
  auto rss0 = current_rss_bytes();
  if (!append(warm_up, count)) child_done(-1);
  auto rss1 = current_rss_bytes();
  child_done((double(rss1) - double(rss0)) / double(count));
}

struct idle_state {
  uint64_t id = 0;
};

caf::behavior idle_actor(caf::stateful_actor<idle_state>* self, uint64_t id) {
  self->state.id = id;
  return {[](caf::get_atom) {}};
}

/// Bytes per idle CAF actor alone.
[[noreturn]] void caf_actor_part(uint64_t count) {
  cairn::node_config cfg;
  caf::actor_system sys{cfg};
  std::vector<caf::actor> actors;
  actors.reserve(warm_up + count); // the handles are not the actors' cost
  for (uint64_t i = 0; i < warm_up; ++i) actors.push_back(sys.spawn(idle_actor, i));
  settle();
  auto rss0 = current_rss_bytes();
  for (uint64_t i = 0; i < count; ++i) actors.push_back(sys.spawn(idle_actor, i));
  settle();
  auto rss1 = current_rss_bytes();
  child_done((double(rss1) - double(rss0)) / double(count));
}

struct child_result {
  double value = -1;
  uint64_t peak_rss_bytes = 0;
};

/// Runs `part`, which ends with child_done(figure), in a child process (a clean heap
/// for each measurement), and returns the figure and the child's peak RSS.
child_result in_child(const std::function<void()>& part) {
  child_result out;
  auto v = in_child_process<double>(
    [&](int fd) {
      result_fd = fd;
      part();
      child_done(-1); // not reached: every part ends with child_done
    },
    out.peak_rss_bytes);
  if (v) out.value = *v;
  return out;
}

} // namespace

int main(int argc, char** argv) {
  arguments args{argc, argv};
  auto count = args.get("aggregates", uint64_t{1'000'000});
  auto runs = args.get("runs", uint64_t{3});
  if (!args.all_used(usage)) return 2;
  if (count == 0 || runs == 0) {
    std::fprintf(stderr, "bad option value\nusage: %s\n", usage);
    return 2;
  }
  std::vector<double> gross, store, net, actor;
  uint64_t peak = 0;
  bool ok = true;
  for (uint64_t r = 0; r < runs; ++r) {
    auto g = in_child([&] { aggregates_part(count); });
    auto s = in_child([&] { store_part(count); });
    auto a = in_child([&] { caf_actor_part(count); });
    ok = ok && g.value >= 0 && s.value >= 0 && a.value >= 0;
    peak = std::max({peak, g.peak_rss_bytes, s.peak_rss_bytes, a.peak_rss_bytes});
    gross.push_back(g.value);
    store.push_back(s.value);
    net.push_back(g.value - s.value);
    actor.push_back(a.value);
    std::printf("  run %llu: %.0f bytes per aggregate with the memory store, the store alone "
                "%.0f, so %.0f net; an idle CAF actor alone %.0f\n",
                static_cast<unsigned long long>(r + 1), g.value, s.value, g.value - s.value,
                a.value);
    std::fflush(stdout);
  }
  if (!ok) std::fprintf(stderr, "memory_bench: a measurement failed\n");
  std::printf("memory_bench: %llu live aggregates: median %.0f bytes each (%.0f net of the "
              "stored events); an idle CAF actor %.0f bytes; peak RSS %.0f MiB\n",
              static_cast<unsigned long long>(count), median(gross), median(net), median(actor),
              double(peak) / (1 << 20));
  print_result({
    {"bench", "memory"},
    {"aggregates", count},
    {"runs", runs},
    {"bytes_per_aggregate", median(gross)},
    {"bytes_per_aggregate_runs", gross},
    {"store_bytes_per_aggregate", median(store)},
    {"net_bytes_per_aggregate", median(net)},
    {"bytes_per_caf_actor", median(actor)},
    {"peak_rss_bytes", peak},
    {"ok", ok},
  });
  return ok ? 0 : 1;
}
