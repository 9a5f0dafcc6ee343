// Benchmarks stopping a node with N (default 1,000,000) live aggregates: N accounts are
// opened by commands (passivation off, so every one stays live), then node::shutdown()
// is timed, through the node's destruction (its actor system included). Then the store is checked: every acknowledged open must be stored (the
// file store is reopened from disk for that). Each run is a child process of its own;
// prints the median shutdown time of --runs runs as one "RESULT {json}" line.
#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include <cairn/file_journal.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>

#include "bank/account.hpp"
#include "bank/open_accounts.hpp"
#include "bench_support.hpp"

namespace fs = std::filesystem;
using namespace cairn;
using namespace cairn::bench;

namespace {

constexpr const char* usage =
  "shutdown_bench [--aggregates N] [--runs R] [--store file|memory] [--sync always|interval|never]"
  " [--dir DIR]";

struct figures {
  double shutdown_s = -1; ///< negative: the run failed
  double stop_s = 0; ///< node::shutdown() alone, without destroying the actor system
  double open_s = 0;
  double cpu_s = 0; ///< CPU time (user + system, all threads) of the shutdown
  uint64_t acknowledged = 0, stored = 0;
};

/// One run, in this (child) process: open, stop, check.
figures run(uint64_t count, const std::string& kind, sync_policy sync, const fs::path& dir) {
  figures f;
  std::error_code ec;
  fs::remove_all(dir, ec);
  auto store = open_bench_store(kind, dir / "events", sync);
  node_config cfg;
  cfg.options.log_level = "warn";
  cfg.options.aggregates.passivate_after = std::chrono::nanoseconds{0};
  cfg.options.command_timeout = std::chrono::seconds{120};
  auto n = std::make_unique<node>(cfg, store);
  if (!n->register_aggregate<bank::account>()) return f;
  auto t0 = clock_type::now();
  auto opened = bank::open_accounts(*n, count);
  f.open_s = seconds_since(t0);
  f.acknowledged = opened.opened;
  if (opened.first) {
    std::fprintf(stderr, "%llu opens failed, the first: %s\n",
                 static_cast<unsigned long long>(opened.failed), opened.first->describe().c_str());
    return f;
  }
  auto t1 = clock_type::now();
  auto cpu1 = cpu_seconds();
  n->shutdown();
  f.stop_s = seconds_since(t1);
  n.reset(); // and its actor system
  auto stopped = seconds_since(t1);
  f.cpu_s = cpu_seconds() - cpu1;
  if (kind == "file") {
    store.reset();
    store = open_bench_store(kind, dir / "events", sync); // what survived, from disk
  }
  f.stored = store->head_position();
  if (f.stored < f.acknowledged)
    std::fprintf(stderr, "lost acknowledged work: %llu acknowledged, %llu stored\n",
                 static_cast<unsigned long long>(f.acknowledged),
                 static_cast<unsigned long long>(f.stored));
  else
    f.shutdown_s = stopped;
  fs::remove_all(dir, ec);
  return f;
}

} // namespace

int main(int argc, char** argv) {
  arguments args{argc, argv};
  auto count = args.get("aggregates", uint64_t{1'000'000});
  auto runs = args.get("runs", uint64_t{3});
  auto kind = args.get("store", std::string{"file"});
  auto sync = parse_sync_policy(args.get("sync", std::string{"always"}));
  fs::path dir = args.get("dir", std::string{"bench-data/shutdown"});
  if (!args.all_used(usage)) return 2;
  if (count == 0 || runs == 0 || !sync || (kind != "file" && kind != "memory")) {
    std::fprintf(stderr, "bad option value\nusage: %s\n", usage);
    return 2;
  }
  std::vector<double> times;
  uint64_t peak = 0;
  bool ok = true;
  for (uint64_t r = 0; r < runs; ++r) {
    auto child = in_child_process<figures>(
      [&](int fd) {
        auto f = run(count, kind, *sync, dir);
        ::_exit(::write(fd, &f, sizeof f) == sizeof f ? 0 : 1);
      },
      peak);
    auto f = child.value_or(figures{});
    ok = ok && f.shutdown_s >= 0;
    times.push_back(f.shutdown_s);
    std::printf("  run %llu: opened %llu accounts in %.1f s; shutdown took %.3f s (%.3f s in "
                "node::shutdown), %.3f s of CPU; %llu acknowledged, %llu stored%s\n",
                static_cast<unsigned long long>(r + 1),
                static_cast<unsigned long long>(f.acknowledged), f.open_s, f.shutdown_s, f.stop_s, f.cpu_s,
                static_cast<unsigned long long>(f.acknowledged),
                static_cast<unsigned long long>(f.stored), f.shutdown_s < 0 ? " FAILED" : "");
    std::fflush(stdout);
  }
  std::printf("shutdown_bench: %llu live aggregates, %s store: median shutdown %.3f s; peak "
              "RSS %.0f MiB\n",
              static_cast<unsigned long long>(count), kind.c_str(), median(times),
              double(peak) / (1 << 20));
  print_result({
    {"bench", "shutdown"},
    {"aggregates", count},
    {"store", kind},
    {"sync", to_string(*sync)},
    {"runs", runs},
    {"shutdown_seconds", median(times)},
    {"shutdown_seconds_runs", times},
    {"peak_rss_bytes", peak},
    {"ok", ok},
  });
  return ok ? 0 : 1;
}
