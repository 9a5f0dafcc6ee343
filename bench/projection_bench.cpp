// Benchmarks the read side:
//  1. catch-up: a projection started on a file store of --events events, timed from
//     register_projection() until a query for the store's head answers (events/s);
//  2. live lag under a steady write load: --clients threads send deposits at a
//     total of --rate commands/s for --seconds; --projections projections record,
//     per applied event, the time from its commit (the envelope's timestamp, taken
//     by the store before its durable write) to the moment apply runs.
// With --postgres-url URL the catch-up reads a PostgreSQL store (schema bench_catchup,
// emptied first) instead of the file store; the live part stays on the file store.
// Prints medians of --runs catch-up runs and the lag's p50/p99/max, then one
// "RESULT {json}" line. No assertions on the figures.
// Usage: projection_bench [--dir DIR] [--events N] [--runs R] [--seconds S]
//   [--rate R] [--clients C] [--projections P] [--sync always|interval|never]
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cairn/file_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>
#ifdef CAIRN_WITH_POSTGRES
#include <cairn/postgres_journal.hpp>
#endif
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "bench_support.hpp"

namespace fs = std::filesystem;
using namespace cairn;
using namespace cairn::bench;

namespace {

/// Catch-up: folds every account event into a count and a sum.
struct event_count {
  static constexpr std::string_view name = "event_count";
  static constexpr std::string_view category = "account";
  using event_type = bank::account::event_type;
  uint64_t events = 0;
  int64_t total = 0;
  void apply(const bank::opened&) { ++events; }
  void apply(const bank::deposited& d) {
    ++events;
    total += d.amount;
  }
  void apply(const bank::withdrawn& w) {
    ++events;
    total -= w.amount;
  }
};

/// Live lag: records commit-to-apply time per event (ns).
template <int N>
struct lag_recorder {
  static constexpr std::string_view name = N == 0 ? "lag0" : N == 1 ? "lag1" : "lag2";
  static constexpr std::string_view category = "account";
  using event_type = bank::account::event_type;
  std::vector<int64_t> lags;
  template <class E>
  void apply(const envelope& e, const E&) {
    lags.push_back(now_ns() - e.timestamp_ns);
  }
};

std::string postgres_url; ///< --postgres-url: catch up from PostgreSQL

std::shared_ptr<journal> open_catch_up_store(const fs::path& dir, bool fresh);

std::shared_ptr<journal> open_store(const fs::path& dir, sync_policy sync) {
  file_journal_options o;
  o.sync = sync;
  auto store = open_file_journal(dir.string(), o);
  if (!store) {
    std::fprintf(stderr, "cannot open %s: %s\n", dir.c_str(), store.error().describe().c_str());
    std::exit(1);
  }
  return *store;
}

std::shared_ptr<journal> open_catch_up_store(const fs::path& dir, bool fresh) {
  if (postgres_url.empty()) return open_store(dir, sync_policy::never);
#ifdef CAIRN_WITH_POSTGRES
  postgres_options o;
  o.schema = "bench_catchup";
  if (fresh) {
    if (auto dropped = drop_postgres_schema(postgres_url, o); !dropped) {
      std::fprintf(stderr, "%s\n", dropped.error().describe().c_str());
      std::exit(1);
    }
  }
  auto opened = open_postgres_journal(postgres_url, o);
  if (opened) return *opened;
  std::fprintf(stderr, "cannot open the PostgreSQL store: %s\n", opened.error().describe().c_str());
#else
  (void)fresh;
  std::fprintf(stderr, "built without PostgreSQL support\n");
#endif
  std::exit(1);
}

/// Appends `events` account events straight to the store, 1,000 per stream and write.
void fill(journal& store, uint64_t events) {
  constexpr uint64_t per_batch = 1000;
  for (uint64_t b = 0; b * per_batch < events; ++b) {
    std::vector<event_data> batch;
    auto n = std::min(per_batch, events - b * per_batch);
    for (uint64_t i = 0; i < n; ++i)
      batch.push_back(variant_codec<bank::account::event_type>::encode(
        i == 0 ? bank::account::event_type{bank::opened{"owner"}}
               : bank::account::event_type{bank::deposited{int64_t(i)}}));
    if (!store.append_one({{"account", "c" + std::to_string(b)}, expected_version::any,
                           std::move(batch)})) {
      std::fprintf(stderr, "fill failed\n");
      std::exit(1);
    }
  }
}

std::unique_ptr<node_config> make_config() {
  auto cfg = std::make_unique<node_config>();
  cfg->options.log_level = "warn";
  cfg->options.query_timeout = std::chrono::minutes{10};
  return cfg;
}

double catch_up_once(const fs::path& dir, uint64_t events) {
  auto cfg = make_config();
  node n{*cfg, open_catch_up_store(dir, false)};
  auto t0 = clock_type::now();
  if (!n.register_projection<event_count>()) std::exit(1);
  auto seen = n.query<event_count>([](const event_count& c) { return c.events; }, events);
  auto secs = seconds_since(t0);
  if (!seen || *seen != events) {
    std::fprintf(stderr, "catch-up saw %llu of %llu events\n",
                 seen ? static_cast<unsigned long long>(*seen) : 0ULL,
                 static_cast<unsigned long long>(events));
    std::exit(1);
  }
  return double(events) / secs;
}

template <int N>
void collect_lags(node& n, uint64_t head, std::vector<int64_t>& out) {
  auto lags = n.query<lag_recorder<N>>([](const lag_recorder<N>& r) { return r.lags; }, head);
  if (!lags) {
    std::fprintf(stderr, "lag query failed: %s\n", lags.error().describe().c_str());
    std::exit(1);
  }
  out.insert(out.end(), lags->begin(), lags->end());
}

struct live_figures {
  double writes_per_s;
  int64_t p50_us, p99_us, max_us;
  uint64_t samples;
};

live_figures live_lag(const fs::path& dir, sync_policy sync, double seconds, double rate,
                      uint64_t clients, uint64_t projections) {
  auto cfg = make_config();
  node n{*cfg, open_store(dir, sync)};
  if (!n.register_aggregate<bank::account>() || !n.register_projection<lag_recorder<0>>() ||
      (projections > 1 && !n.register_projection<lag_recorder<1>>()) ||
      (projections > 2 && !n.register_projection<lag_recorder<2>>()))
    std::exit(1);
  std::atomic<uint64_t> sent{0}, answered{0};
  std::vector<std::thread> threads;
  auto t0 = clock_type::now();
  auto interval = std::chrono::duration<double>(double(clients) / rate);
  for (uint64_t c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      auto next = clock_type::now();
      std::string id = "live" + std::to_string(c);
      n.send<bank::account>(id, bank::open{"o"}, [&](expected<command_reply>) { ++answered; });
      ++sent;
      while (seconds_since(t0) < seconds) {
        next += std::chrono::duration_cast<clock_type::duration>(interval);
        std::this_thread::sleep_until(next);
        n.send<bank::account>(id, bank::deposit{1}, [&](expected<command_reply>) { ++answered; });
        ++sent;
      }
    });
  for (auto& t : threads) t.join();
  while (answered < sent) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  auto elapsed = seconds_since(t0);
  auto head = n.store()->head_position();
  std::vector<int64_t> lags;
  collect_lags<0>(n, head, lags);
  if (projections > 1) collect_lags<1>(n, head, lags);
  if (projections > 2) collect_lags<2>(n, head, lags);
  live_figures f{};
  f.writes_per_s = double(head) / elapsed;
  f.samples = lags.size();
  f.p50_us = percentile(lags, 0.50) / 1000;
  f.p99_us = percentile(lags, 0.99) / 1000;
  f.max_us = percentile(lags, 1.0) / 1000;
  return f;
}

} // namespace

int main(int argc, char** argv) {
  arguments args{argc, argv};
  fs::path dir = args.get("dir", std::string{"bench-data-projection"});
  auto events = args.get("events", uint64_t{1'000'000});
  auto runs = args.get("runs", uint64_t{3});
  auto seconds = args.get("seconds", 5.0);
  auto rate = args.get("rate", 20000.0);
  auto clients = args.get("clients", uint64_t{8});
  auto projections = std::min<uint64_t>(std::max<uint64_t>(args.get("projections", uint64_t{2}), 1), 3);
  auto sync = parse_sync_policy(args.get("sync", std::string{"always"}));
  postgres_url = args.get("postgres-url", std::string{});
  if (!args.all_used("projection_bench [--dir DIR] [--events N] [--runs R] [--seconds S] "
                     "[--rate R] [--clients C] [--projections P] [--sync always|interval|never] "
                     "[--postgres-url URL]") ||
      !sync)
    return 2;

  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  {
    auto store = open_catch_up_store(dir / "catch-up", true);
    fill(*store, events);
  }
  std::vector<double> rates;
  for (uint64_t r = 0; r < runs; ++r) rates.push_back(catch_up_once(dir / "catch-up", events));
  std::printf("catch-up: %llu events from the %s store: median %.0f events/s (%llu runs)\n",
              static_cast<unsigned long long>(events),
              postgres_url.empty() ? "file" : "PostgreSQL", median(rates),
              static_cast<unsigned long long>(runs));

  auto live = live_lag(dir / "live", *sync, seconds, rate, clients, projections);
  std::printf("live lag, commit to applied, %llu projections, %.0f writes/s (sync %s): "
              "p50 %lld us, p99 %lld us, max %lld us (%llu samples)\n",
              static_cast<unsigned long long>(projections), live.writes_per_s, to_string(*sync),
              static_cast<long long>(live.p50_us), static_cast<long long>(live.p99_us),
              static_cast<long long>(live.max_us), static_cast<unsigned long long>(live.samples));
  print_result({{"program", "projection_bench"},
                {"catch_up_events", events},
                {"catch_up_store", postgres_url.empty() ? "file" : "postgres"},
                {"catch_up_events_per_s", median(rates)},
                {"live_writes_per_s", live.writes_per_s},
                {"live_sync", to_string(*sync)},
                {"live_projections", projections},
                {"live_lag_p50_us", live.p50_us},
                {"live_lag_p99_us", live.p99_us},
                {"live_lag_max_us", live.max_us}});
  fs::remove_all(dir, ec);
  return 0;
}
