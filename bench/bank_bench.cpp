// Benchmarks Cairn end to end with the standard bank workload (shared/bench/workload.md),
// exactly: phase 1 opens A accounts (not timed); phase 2 (timed) sends C seeded commands
// from K closed-loop clients through node::send, until the last reply and the balances
// projection has applied every event; then verifies the projection against the store.
// Next to it: the disk's own write+fdatasync limit at the batch size the journal wrote.
// Each run uses a fresh store. Without --commands, a short timed pilot picks C so a
// run takes about --seconds. Prints medians of --runs runs as one "RESULT {json}" line.
#include <cstdio>
#include <filesystem>
#include <thread>

#include <cairn/file_journal.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>
#ifdef CAIRN_WITH_POSTGRES
#include <cairn/postgres_journal.hpp>
#endif

#include "bank/account.hpp"
#include "bank/balances.hpp"
#include "bank/workload.hpp"
#include "bank_workload.hpp"
#include "bench_support.hpp"

namespace fs = std::filesystem;
using namespace cairn;
using namespace cairn::bench;

namespace {

constexpr const char* usage =
  "bank_bench [--dir DIR] [--clients K] [--accounts A] [--commands C | --seconds S]\n"
  "  [--pilot-seconds P] [--runs R] [--store file|memory|postgres] [--sync always|interval|never]\n"
  "  [--disk-probe-seconds D] [--metrics on|off]\n"
  "  [--postgres-url URL (schema bench_bank, emptied per run)]";

struct settings {
  fs::path dir = "bench-data/bank";
  uint64_t clients = 256;
  uint64_t accounts = 10'000;
  uint64_t commands = 0;      ///< 0: calibrate from a pilot
  double seconds = 3;         ///< the wanted length of one run when calibrating
  double pilot_seconds = 1;
  uint64_t runs = 3;
  std::string store = "file";
  sync_policy sync = sync_policy::always;
  double disk_probe_seconds = 1;
  std::string postgres_url;
  bool metrics = true; ///< node_options::metrics (bench/metrics_ab compares on and off)
};

/// The store of one run: fresh (emptied) each time.
std::shared_ptr<journal> open_run_store(const settings& s) {
  if (s.store != "postgres") return open_bench_store(s.store, s.dir / "events", s.sync);
#ifdef CAIRN_WITH_POSTGRES
  postgres_options o;
  o.schema = "bench_bank";
  auto dropped = drop_postgres_schema(s.postgres_url, o);
  auto opened = dropped ? open_postgres_journal(s.postgres_url, o)
                        : expected<std::shared_ptr<journal>>(dropped.error());
  if (opened) return *opened;
  std::fprintf(stderr, "cannot open the PostgreSQL store: %s\n", opened.error().describe().c_str());
#else
  std::fprintf(stderr, "built without PostgreSQL support\n");
#endif
  std::exit(1);
}

/// One node on a fresh store, as every run starts.
struct bench_node {
  std::shared_ptr<counting_journal> store;
  node_config cfg;
  std::unique_ptr<node> n;

  explicit bench_node(const settings& s) {
    std::error_code ec;
    fs::remove_all(s.dir, ec);
    auto inner = open_run_store(s);
    store = std::make_shared<counting_journal>(inner);
    cfg.options.log_level = "warn";
    cfg.options.query_timeout = std::chrono::seconds{120};
    cfg.options.command_timeout = std::chrono::seconds{120};
    cfg.options.metrics = s.metrics;
    n = std::make_unique<node>(cfg, store);
    if (!n->register_aggregate<bank::account>() || !n->register_projection<bank::balances>()) {
      std::fprintf(stderr, "cannot register the bank types\n");
      std::exit(1);
    }
  }

  void open_accounts(uint64_t accounts) {
    auto opened = bench::open_accounts(*n, accounts);
    if (!opened || *opened != accounts) {
      std::fprintf(stderr, "phase 1 failed: %s\n",
                   opened ? "an account was open already" : opened.error().describe().c_str());
      std::exit(1);
    }
  }
};

/// Commands per second of a short timed window on a fresh store, to size C.
double pilot_rate(const settings& s) {
  bench_node b{s};
  b.open_accounts(s.accounts);
  auto plan = bank::plan_commands(s.accounts, std::max<uint64_t>(200'000, s.clients));
  auto r = run_clients(*b.n, plan, s.clients, s.pilot_seconds);
  if (r.failed) {
    std::fprintf(stderr, "pilot: %llu commands failed: %s\n",
                 static_cast<unsigned long long>(r.failed), r.first_failure.c_str());
    std::exit(1);
  }
  return r.seconds > 0 ? double(r.sent) / r.seconds : 0;
}

struct run_figures {
  double seconds = 0, commands_per_s = 0, events_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  uint64_t accepted = 0, rejected = 0, failed = 0;
  double cpu_us_per_command = 0;
  double events_per_write = 0, bytes_per_write = 0;
  double disk_syncs_per_s = 0, disk_limit_events_per_s = 0, ratio_to_disk = 0;
  bool verified = false;
};

run_figures run_once(const settings& s, const std::vector<bank::planned_command>& plan) {
  run_figures f;
  bench_node b{s};
  b.open_accounts(s.accounts);
  auto events_dir = (s.dir / "events").string();
  auto stats0 = file_journal_statistics(events_dir); // not_found on the memory store
  auto writes0 = b.store->durable_writes();
  auto events0 = b.store->events.load();
  auto cpu0 = cpu_seconds();
  auto start = clock_type::now();
  auto r = run_clients(*b.n, plan, s.clients);
  // The run ends when the projection has applied every event as well.
  auto projected = b.n->query<bank::balances>(
    [](const bank::balances& m) { return std::make_pair(m.total, m.events); }, r.last_position);
  f.seconds = seconds_since(start);
  auto cpu = cpu_seconds() - cpu0;
  auto writes = b.store->durable_writes() - writes0;
  auto events = b.store->events.load() - events0;
  f.commands_per_s = double(plan.size()) / f.seconds;
  f.events_per_s = double(r.accepted) / f.seconds;
  f.accepted = r.accepted;
  f.rejected = r.rejected;
  f.failed = r.failed;
  f.cpu_us_per_command = 1e6 * cpu / double(plan.size());
  f.p50_us = double(percentile(r.latencies_ns, 0.50)) / 1e3;
  f.p99_us = double(percentile(r.latencies_ns, 0.99)) / 1e3;
  f.p999_us = double(percentile(r.latencies_ns, 0.999)) / 1e3;
  // With metrics on, the node's own count of handled commands must match phase 1's
  // opens plus phase 2's accepted commands (it counts every one, or it is broken).
  bool counted = true;
  if (s.metrics) {
    auto handled = metric_value(b.n->metrics_text(),
                                "cairn_commands_total{category=\"account\",outcome=\"handled\"}");
    counted = handled == double(s.accounts + r.accepted);
    if (!counted)
      std::fprintf(stderr, "metrics: %.0f commands counted as handled, expected %llu\n", handled,
                   static_cast<unsigned long long>(s.accounts + r.accepted));
  }
  if (r.failed) std::fprintf(stderr, "%llu commands failed, the first: %s\n",
                             static_cast<unsigned long long>(r.failed), r.first_failure.c_str());

  // Verification, as the workload specifies it.
  auto fold = fold_store(*b.store);
  if (!fold.problem.empty()) std::fprintf(stderr, "verification: %s\n", fold.problem.c_str());
  if (!projected) std::fprintf(stderr, "projection query failed: %s\n",
                               projected.error().describe().c_str());
  f.verified = counted && fold.problem.empty() && projected && r.failed == 0 &&
               r.sent == plan.size() && projected->first == fold.total &&
               projected->second == fold.events && fold.events == s.accounts + r.accepted;
  if (!f.verified && projected)
    std::fprintf(stderr, "verification FAILED: projection total %lld (%llu events), store total "
                 "%lld, stored events %llu, expected %llu\n",
                 static_cast<long long>(projected->first),
                 static_cast<unsigned long long>(projected->second),
                 static_cast<long long>(fold.total), static_cast<unsigned long long>(fold.events),
                 static_cast<unsigned long long>(s.accounts + r.accepted));

  // The disk's own limit at the batch size the journal wrote in phase 2.
  f.events_per_write = writes ? double(events) / double(writes) : 0;
  if (s.store == "file") {
    auto stats1 = file_journal_statistics(events_dir);
    double bytes_per_event = stats0 && stats1 && stats1->events > stats0->events
                               ? double(stats1->bytes - stats0->bytes) /
                                   double(stats1->events - stats0->events)
                               : 0;
    f.bytes_per_write = f.events_per_write * bytes_per_event;
    b.n.reset(); // the node's threads stop before the probe
    f.disk_syncs_per_s =
      disk_syncs_per_s(s.dir, static_cast<size_t>(f.bytes_per_write), s.disk_probe_seconds);
    f.disk_limit_events_per_s = f.disk_syncs_per_s * f.events_per_write;
    f.ratio_to_disk = f.disk_limit_events_per_s > 0 ? f.events_per_s / f.disk_limit_events_per_s : 0;
  }
  return f;
}

} // namespace

int main(int argc, char** argv) {
  settings s;
  arguments args{argc, argv};
  s.dir = args.get("dir", s.dir.string());
  s.clients = args.get("clients", s.clients);
  s.accounts = args.get("accounts", s.accounts);
  s.commands = args.get("commands", s.commands);
  s.seconds = args.get("seconds", s.seconds);
  s.pilot_seconds = args.get("pilot-seconds", s.pilot_seconds);
  s.runs = args.get("runs", s.runs);
  s.store = args.get("store", s.store);
  auto sync = parse_sync_policy(args.get("sync", std::string{"always"}));
  s.disk_probe_seconds = args.get("disk-probe-seconds", s.disk_probe_seconds);
  s.postgres_url = args.get("postgres-url", s.postgres_url);
  auto metrics = args.get("metrics", std::string{"on"});
  if (!args.all_used(usage)) return 2;
  bool postgres = s.store == "postgres" && !s.postgres_url.empty();
  if (!sync || (s.store != "file" && s.store != "memory" && !postgres) || s.clients == 0 || s.accounts == 0 ||
      s.runs == 0 || (metrics != "on" && metrics != "off")) {
    std::fprintf(stderr, "bad option value\nusage: %s\n", usage);
    return 2;
  }
  s.sync = *sync;
  s.metrics = metrics == "on";

  double pilot = 0;
  const bool calibrated = s.commands == 0;
  if (calibrated) {
    pilot = pilot_rate(s);
    s.commands = std::max<uint64_t>(s.clients, static_cast<uint64_t>(pilot * s.seconds));
  }
  std::printf("bank_bench: %u cores, %s store, sync %s, A=%llu C=%llu K=%llu, %llu runs%s\n",
              std::thread::hardware_concurrency(), s.store.c_str(), to_string(s.sync),
              static_cast<unsigned long long>(s.accounts),
              static_cast<unsigned long long>(s.commands),
              static_cast<unsigned long long>(s.clients), static_cast<unsigned long long>(s.runs),
              calibrated ? " (C from a pilot)" : "");
  auto plan = bank::plan_commands(s.accounts, s.commands);

  std::vector<run_figures> runs;
  bool verified = true;
  for (uint64_t i = 0; i < s.runs; ++i) {
    auto f = run_once(s, plan);
    std::printf("  run %llu: %.0f commands/s (%.3f s), %llu accepted, %llu rejected, p50 %.0f us, "
                "p99 %.0f us, p999 %.0f us, %.1f events per write, disk limit %.0f events/s, %s\n",
                static_cast<unsigned long long>(i + 1), f.commands_per_s, f.seconds,
                static_cast<unsigned long long>(f.accepted),
                static_cast<unsigned long long>(f.rejected), f.p50_us, f.p99_us, f.p999_us,
                f.events_per_write, f.disk_limit_events_per_s,
                f.verified ? "verified" : "VERIFICATION FAILED");
    std::fflush(stdout);
    verified = verified && f.verified;
    runs.push_back(f);
  }
  // Each figure is the median over the runs; the counts come from the run with the
  // median throughput. Cairn/disk is the quotient of the two medians.
  auto med = [&](double run_figures::*field) {
    std::vector<double> v;
    for (auto& f : runs) v.push_back(f.*field);
    return median(v);
  };
  std::vector<double> rate;
  for (auto& f : runs) rate.push_back(f.commands_per_s);
  auto& m = runs[median_index(rate)];
  double events_per_s = med(&run_figures::events_per_s);
  double limit = med(&run_figures::disk_limit_events_per_s);
  double ratio = limit > 0 ? events_per_s / limit : 0;
  nlohmann::json out{
    {"bench", "bank"},
    {"store", s.store},
    {"sync", to_string(s.sync)},
    {"accounts", s.accounts},
    {"commands", s.commands},
    {"clients", s.clients},
    {"runs", s.runs},
    {"metrics", s.metrics},
    {"calibrated", calibrated},
    {"pilot_commands_per_s", pilot},
    {"commands_per_s", median(rate)},
    {"commands_per_s_runs", rate},
    {"p99_us_runs", [&] {
       std::vector<double> v;
       for (auto& f : runs) v.push_back(f.p99_us);
       return v;
     }()},
    {"seconds", med(&run_figures::seconds)},
    {"accepted", m.accepted},
    {"rejected", m.rejected},
    {"events_per_s", events_per_s},
    {"p50_us", med(&run_figures::p50_us)},
    {"p99_us", med(&run_figures::p99_us)},
    {"p999_us", med(&run_figures::p999_us)},
    {"cpu_us_per_command", med(&run_figures::cpu_us_per_command)},
    {"events_per_write", med(&run_figures::events_per_write)},
    {"bytes_per_write", med(&run_figures::bytes_per_write)},
    {"disk_syncs_per_s", med(&run_figures::disk_syncs_per_s)},
    {"disk_limit_events_per_s", limit},
    {"ratio_to_disk", ratio},
    {"verified", verified},
    {"peak_rss_bytes", peak_rss_bytes()},
  };
  std::printf("median: %.0f commands/s, p50 %.0f us, p99 %.0f us, p999 %.0f us; "
              "Cairn/disk limit %.0f%%; peak RSS %.0f MiB; verification %s\n",
              median(rate), med(&run_figures::p50_us), med(&run_figures::p99_us),
              med(&run_figures::p999_us), 100 * ratio, double(peak_rss_bytes()) / (1 << 20),
              verified ? "PASSED" : "FAILED");
  print_result(out);
  std::error_code ec;
  fs::remove_all(s.dir, ec);
  return verified ? 0 : 1;
}
