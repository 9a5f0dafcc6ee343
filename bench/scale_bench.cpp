// Benchmarks whether append cost stays flat as the file store grows: two stores are
// pre-filled fast (straight through the journal API, large batches, sync never), one to
// --small events (default 1 million) and one to --large (default 20 million). A node on
// each then takes durable appends (sync always): K closed-loop clients send deposits to
// A accounts (every command appends one event) for --runs windows of --seconds per store,
// after a warm-up. The windows alternate between the stores (small, large, large, small,
// ...), so that a change in the machine's speed during the run falls on both. Prints
// durable appends/s and latency (medians of the windows) at both sizes and their ratios,
// as one "RESULT {json}" line.
#include <cstdio>
#include <filesystem>
#include <thread>

#include <cairn/file_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "bank/workload.hpp"
#include "bank_workload.hpp"
#include "bench_support.hpp"

namespace fs = std::filesystem;
using namespace cairn;
using namespace cairn::bench;

namespace {

constexpr const char* usage =
  "scale_bench [--dir DIR] [--small N] [--large N] [--clients K] [--accounts A]\n"
  "  [--seconds S] [--runs R] [--fill-streams N]";

struct settings {
  fs::path dir = "bench-data/scale";
  uint64_t small = 1'000'000;
  uint64_t large = 20'000'000;
  uint64_t clients = 256;
  uint64_t accounts = 10'000;
  double seconds = 2;
  uint64_t runs = 3;
  uint64_t fill_streams = 100'000; ///< the pre-fill spreads its events over this many streams
};

/// Opens a store; sealed segments are trusted by their indexes (verify_on_open off),
/// so opening a large store does not read it all.
std::shared_ptr<journal> open_store(const fs::path& dir, sync_policy sync) {
  file_journal_options opts;
  opts.sync = sync;
  opts.verify_on_open = false;
  auto opened = open_file_journal(dir.string(), opts);
  if (!opened) {
    std::fprintf(stderr, "cannot open the store: %s\n", opened.error().describe().c_str());
    std::exit(1);
  }
  return *opened;
}

/// Appends deposits to streams fill-<i> until the store in `dir` holds `target` events,
/// in batches of 100 requests of 100 events. Returns events appended per second.
double fill_to(const settings& s, const fs::path& dir, uint64_t target) {
  auto store = open_store(dir, sync_policy::never);
  auto event = variant_codec<bank::account::event_type>::encode(bank::deposited{500});
  constexpr uint64_t per_request = 100, requests = 100;
  auto head = store->head_position();
  auto t0 = clock_type::now();
  uint64_t appended = 0, stream = 0;
  while (head + appended < target) {
    std::vector<append_request> batch;
    for (uint64_t i = 0; i < requests && head + appended < target; ++i) {
      auto n = std::min(per_request, target - head - appended);
      batch.push_back({stream_id{"fill", std::to_string(stream++ % s.fill_streams)},
                       expected_version::any, std::vector<event_data>(n, event)});
      appended += n;
    }
    for (auto& r : store->append(std::move(batch)))
      if (!r) {
        std::fprintf(stderr, "pre-fill failed: %s\n", r.error().describe().c_str());
        std::exit(1);
      }
  }
  auto elapsed = seconds_since(t0);
  return elapsed > 0 ? double(appended) / elapsed : 0;
}

struct point {
  uint64_t stored_events = 0;
  uint64_t store_bytes = 0;
  double open_seconds = 0;
  double events_per_s = 0, p50_us = 0, p99_us = 0, p999_us = 0;
  std::vector<double> events_per_s_runs, p99_us_runs, p50_runs, p999_runs;
  bool ok = true;
};

/// A node serving one pre-filled store, and the figures of its windows.
class measured_store {
public:
  measured_store(const settings& s, const fs::path& dir, const std::vector<bank::planned_command>& plan)
    : s_(s), plan_(plan) {
    auto t0 = clock_type::now();
    auto store = open_store(dir, sync_policy::always);
    p_.open_seconds = seconds_since(t0);
    p_.stored_events = store->head_position();
    if (auto st = file_journal_statistics(dir.string())) p_.store_bytes = st->bytes;
    cfg_.options.log_level = "warn";
    cfg_.options.command_timeout = std::chrono::seconds{120};
    node_ = std::make_unique<node>(cfg_, store);
    if (!node_->register_aggregate<bank::account>()) std::exit(1);
    if (auto opened = open_accounts(*node_, s.accounts); !opened) {
      std::fprintf(stderr, "opening the accounts failed: %s\n", opened.error().describe().c_str());
      std::exit(1);
    }
    (void)run_clients(*node_, plan_, s.clients, std::min(0.5, s.seconds)); // warm-up
  }

  /// One timed window of durable appends.
  void window() {
    auto w = run_clients(*node_, plan_, s_.clients, s_.seconds);
    if (w.failed || w.rejected) {
      std::fprintf(stderr, "%llu commands failed, %llu were rejected: %s\n",
                   static_cast<unsigned long long>(w.failed),
                   static_cast<unsigned long long>(w.rejected), w.first_failure.c_str());
      p_.ok = false;
    }
    p_.events_per_s_runs.push_back(double(w.accepted) / w.seconds);
    p_.p50_runs.push_back(double(percentile(w.latencies_ns, 0.50)) / 1e3);
    p_.p99_us_runs.push_back(double(percentile(w.latencies_ns, 0.99)) / 1e3);
    p_.p999_runs.push_back(double(percentile(w.latencies_ns, 0.999)) / 1e3);
  }

  /// The medians of the windows, printed.
  point result() {
    p_.events_per_s = median(p_.events_per_s_runs);
    p_.p50_us = median(p_.p50_runs);
    p_.p99_us = median(p_.p99_us_runs);
    p_.p999_us = median(p_.p999_runs);
    std::printf("  %llu events stored (%.0f MiB, opened in %.2f s): median %.0f durable appends/s, "
                "p50 %.0f us, p99 %.0f us, p999 %.0f us\n",
                static_cast<unsigned long long>(p_.stored_events), double(p_.store_bytes) / (1 << 20),
                p_.open_seconds, p_.events_per_s, p_.p50_us, p_.p99_us, p_.p999_us);
    std::fflush(stdout);
    return p_;
  }

private:
  const settings& s_;
  const std::vector<bank::planned_command>& plan_;
  node_config cfg_; // outlives the node, whose actor system refers to it
  std::unique_ptr<node> node_;
  point p_;
};

nlohmann::json to_json(const point& p) {
  return {{"stored_events", p.stored_events}, {"store_bytes", p.store_bytes},
          {"open_seconds", p.open_seconds},   {"events_per_s", p.events_per_s},
          {"events_per_s_runs", p.events_per_s_runs},
          {"p50_us", p.p50_us},               {"p99_us", p.p99_us},
          {"p99_us_runs", p.p99_us_runs},     {"p999_us", p.p999_us}};
}

} // namespace

int main(int argc, char** argv) {
  settings s;
  arguments args{argc, argv};
  s.dir = args.get("dir", s.dir.string());
  s.small = args.get("small", s.small);
  s.large = args.get("large", s.large);
  s.clients = args.get("clients", s.clients);
  s.accounts = args.get("accounts", s.accounts);
  s.seconds = args.get("seconds", s.seconds);
  s.runs = args.get("runs", s.runs);
  s.fill_streams = args.get("fill-streams", s.fill_streams);
  if (!args.all_used(usage)) return 2;
  if (s.small == 0 || s.large <= s.small || s.clients == 0 || s.accounts == 0 || s.runs == 0 ||
      s.seconds <= 0 || s.fill_streams == 0) {
    std::fprintf(stderr, "bad option value (need 0 < small < large)\nusage: %s\n", usage);
    return 2;
  }
  std::error_code ec;
  fs::remove_all(s.dir, ec);
  std::printf("scale_bench: %u cores, file store, sync always, K=%llu clients, A=%llu accounts, "
              "%llu windows of %.1f s at %llu and at %llu stored events\n",
              std::thread::hardware_concurrency(), static_cast<unsigned long long>(s.clients),
              static_cast<unsigned long long>(s.accounts), static_cast<unsigned long long>(s.runs),
              s.seconds, static_cast<unsigned long long>(s.small),
              static_cast<unsigned long long>(s.large));
  // The workload's plan made deposits only, so every command appends exactly one event.
  auto plan = bank::plan_commands(s.accounts, 100'000);
  for (auto& pc : plan)
    if (auto w = std::get_if<bank::withdraw>(&pc.command)) pc.command = bank::deposit{w->amount};

  auto fill_small = fill_to(s, s.dir / "small", s.small);
  auto fill_large = fill_to(s, s.dir / "large", s.large);
  point small, large;
  {
    measured_store at_small{s, s.dir / "small", plan};
    measured_store at_large{s, s.dir / "large", plan};
    for (uint64_t r = 0; r < s.runs; ++r) { // ABBA: neither size always goes first
      auto& first = r % 2 == 0 ? at_small : at_large;
      auto& second = r % 2 == 0 ? at_large : at_small;
      first.window();
      second.window();
    }
    small = at_small.result();
    large = at_large.result();
  }
  double throughput_ratio = small.events_per_s > 0 ? large.events_per_s / small.events_per_s : 0;
  double p99_ratio = small.p99_us > 0 ? large.p99_us / small.p99_us : 0;
  std::printf("scale_bench: appends/s at %llu vs %llu events: ratio %.2f; p99 ratio %.2f "
              "(pre-fill %.0f and %.0f events/s)\n",
              static_cast<unsigned long long>(large.stored_events),
              static_cast<unsigned long long>(small.stored_events), throughput_ratio, p99_ratio,
              fill_small, fill_large);
  print_result({
    {"bench", "scale"},
    {"clients", s.clients},
    {"accounts", s.accounts},
    {"runs", s.runs},
    {"seconds", s.seconds},
    {"small", to_json(small)},
    {"large", to_json(large)},
    {"throughput_ratio", throughput_ratio},
    {"p99_ratio", p99_ratio},
    {"fill_events_per_s", {fill_small, fill_large}},
    {"ok", small.ok && large.ok},
    {"peak_rss_bytes", peak_rss_bytes()},
  });
  fs::remove_all(s.dir, ec);
  return small.ok && large.ok ? 0 : 1;
}
