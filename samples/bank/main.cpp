// This sample shows a Cairn application end to end: the account aggregate and the
// balances and top-accounts projections hosted on a node, driven by the standard bank
// workload from many concurrent closed-loop clients, then verified against the stored
// events. With --transfers=N it then runs N money transfers through the transfer saga
// (withdraw, deposit, refund if the deposit is refused) and verifies those too.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include <sys/resource.h>

#include <cairn/file_journal.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>
#include <cairn/variant_codec.hpp>
#ifdef CAIRN_WITH_POSTGRES
#include <cairn/postgres_journal.hpp>
#endif

#include "bank/account.hpp"
#include "bank/balances.hpp"
#include "bank/top_accounts.hpp"
#include "bank/transfer.hpp"
#include "bank/transfer_saga.hpp"
#include "bank/transfers.hpp"
#include "bank/latch.hpp"
#include "bank/open_accounts.hpp"
#include "bank/workload.hpp"
#ifdef CAIRN_BANK_KAFKA
#include <cairn/kafka_settings.hpp>

#include "bank/kafka_bridge.hpp"
#endif

namespace {

using clock_type = std::chrono::steady_clock;

struct bank_config : cairn::node_config {
  size_t accounts = 10'000;
  size_t commands = 1'000'000;
  size_t clients = 256;
  std::string store;        ///< empty: [cairn] store (default file)
  std::string data;         ///< empty: [cairn] data (default ./data)
  std::string postgres_url; ///< empty: [cairn] postgres-url
  // The node config's store keys ([cairn] store, data, postgres-url, postgres-schema in
  // config/node.ini, bound by node_config to options.store) are overridden by --store,
  // --data and --postgres-url.
  std::string sync = "always";
  bool fresh = false;
  size_t transfers = 0;
  std::string kafka_brokers;  // empty: no Kafka; "mock": an in-process mock cluster
  size_t kafka_payments = 100;
  bank_config() {
    caf::config_option_adder{custom_options_, "global"}
      .add(accounts, "accounts,a", "number of accounts (A)")
      .add(commands, "commands,c", "number of timed commands (C)")
      .add(clients, "clients,k", "concurrent closed-loop clients (K)")
      .add(store, "store", "event store: file (default), postgres or memory")
      .add(data, "data", "data folder of the file store")
      .add(postgres_url, "postgres-url", "PostgreSQL URL of the postgres store")
      .add(sync, "sync", "file store sync policy: always, interval or never")
      .add(fresh, "fresh", "delete the store's events first (data folder or schema)")
      .add(transfers, "transfers", "after the workload, run N transfers through the saga")
      .add(kafka_brokers, "kafka-brokers",
           "publish account events to Kafka and take deposits from topic payments "
           "(host:port,...; mock: an in-process mock cluster)")
      .add(kafka_payments, "kafka-payments", "payments sent through Kafka (with --kafka-brokers)");
  }
};

using bank::latch;

/// One closed-loop client: sends its next command only after the previous reply.
struct client {
  cairn::node* node = nullptr;
  const std::vector<bank::planned_command>* plan = nullptr;
  size_t next = 0, stride = 1;
  std::vector<int64_t> latencies_ns;
  uint64_t accepted = 0, rejected = 0, failed = 0, max_position = 0;
  latch* done = nullptr;

  void send_next() {
    if (next >= plan->size()) return done->count_down();
    auto& pc = (*plan)[next];
    next += stride;
    auto sent = clock_type::now();
    node->send_command(cairn::make_command<bank::account>(bank::account_id(pc.account), pc.command),
                       [this, sent](cairn::expected<cairn::command_reply> r) {
                         latencies_ns.push_back((clock_type::now() - sent).count());
                         if (r) {
                           ++accepted;
                           max_position = std::max(max_position, r->position);
                         } else if (cairn::is_rejected(r.error())) {
                           ++rejected;
                         } else {
                           ++failed;
                           if (failed == 1)
                             std::fprintf(stderr, "command failed: %s\n",
                                          r.error().describe().c_str());
                         }
                         send_next();
                       });
  }
};

int64_t percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  auto idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
  return v[idx];
}

/// Sums Deposited minus Withdrawn and counts events by reading the whole store back.
struct store_fold {
  int64_t total = 0;
  uint64_t events = 0;               ///< every stored event
  uint64_t account_events = 0;       ///< events of account streams
  uint64_t plain_account_events = 0; ///< ... not caused by a saga's command
  bool ok = true;
};

store_fold fold_store(const cairn::journal& store) {
  store_fold f;
  uint64_t pos = 1;
  for (;;) {
    auto chunk = store.read_all(pos, 65536);
    if (!chunk) {
      std::fprintf(stderr, "read_all failed: %s\n", chunk.error().describe().c_str());
      f.ok = false;
      return f;
    }
    if (chunk->empty()) return f;
    for (auto& e : *chunk) {
      ++f.events;
      if (e.stream.category != bank::account::category) continue;
      ++f.account_events;
      if (!e.meta.find(std::string{cairn::command_id_key})) ++f.plain_account_events;
      auto ev = cairn::variant_codec<bank::account::event_type>::decode(e);
      if (!ev) {
        std::fprintf(stderr, "undecodable event: %s\n", ev.error().describe().c_str());
        f.ok = false;
        continue;
      }
      if (auto d = std::get_if<bank::deposited>(&*ev)) f.total += d->amount;
      if (auto w = std::get_if<bank::withdrawn>(&*ev)) f.total -= w->amount;
    }
    pos = chunk->back().position + 1;
  }
}

/// One transfer of phase 3.
struct planned_transfer {
  std::string id;
  std::string from;
  std::string to;
  int64_t amount = 0;
};

/// Phase 3's N transfers (--transfers, not part of the standard workload), drawn from
/// splitmix64 seeded with 7: payer `r1 % A`; payee another account, except when
/// `r2 % 10 == 0` an account that does not exist (its deposit is refused, so the saga
/// refunds the payer); amount `1 + r3 % 500`. Transfer ids start with `prefix`.
std::vector<planned_transfer> plan_transfers(uint64_t accounts, uint64_t n,
                                             const std::string& prefix) {
  bank::splitmix64 rng{7};
  std::vector<planned_transfer> plan;
  plan.reserve(n);
  for (uint64_t j = 0; j < n; ++j) {
    auto r1 = rng.next(), r2 = rng.next(), r3 = rng.next();
    auto from = r1 % accounts;
    auto to = (r2 % 10 == 0 || accounts < 2)
                ? "missing-" + std::to_string(j)
                : bank::account_id((from + 1 + r2 % (accounts - 1)) % accounts);
    plan.push_back({prefix + std::to_string(j), bank::account_id(from), std::move(to),
                    static_cast<int64_t>(1 + r3 % 500)});
  }
  return plan;
}

struct transfer_report {
  uint64_t completed = 0;
  uint64_t refunded = 0;   ///< the deposit was refused and the payer refunded
  uint64_t refused = 0;    ///< the withdrawal was refused (insufficient funds)
  uint64_t unfinished = 0; ///< no outcome in time
  uint64_t request_failures = 0;
  double seconds = 0;
};

/// Requests every planned transfer at once, waits until the saga has ended all of
/// them (the transfers read model counts outcomes), and reads how each one ended.
transfer_report run_transfers(cairn::node& node, const cairn::journal& store,
                              const std::vector<planned_transfer>& plan) {
  transfer_report report;
  auto start = clock_type::now();
  latch requested{plan.size()};
  std::atomic<uint64_t> failures{0};
  std::mutex m;
  uint64_t last_position = 0;
  for (auto& t : plan)
    node.send<bank::transfer>(t.id, bank::request_transfer{t.from, t.to, t.amount},
                              [&](cairn::expected<cairn::command_reply> r) {
                                if (!r) ++failures;
                                else {
                                  std::lock_guard<std::mutex> g{m};
                                  last_position = std::max(last_position, r->position);
                                }
                                requested.count_down();
                              });
  requested.wait();
  report.request_failures = failures;
  // The saga works on its own: poll the read model until nothing is in flight.
  auto give_up = clock_type::now() + std::chrono::minutes{5};
  for (;;) {
    auto left = node.query<bank::transfers>([](const bank::transfers& t) { return t.in_flight(); },
                                            last_position);
    if ((left && *left == 0) || clock_type::now() > give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  report.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  for (auto& t : plan) {
    auto events = store.read_stream({"transfer", t.id}, 1, 8);
    auto last = events && !events->empty() ? events->back().type : std::string{};
    if (last == "transfer_completed") {
      ++report.completed;
    } else if (last == "transfer_failed") {
      auto f = cairn::variant_codec<bank::transfer::event_type>::decode(events->back());
      bool refunded = f && std::get<bank::transfer_failed>(*f).reason.rfind("credit refused", 0) == 0;
      ++(refunded ? report.refunded : report.refused);
    } else {
      ++report.unfinished;
    }
  }
  return report;
}

} // namespace

int main(int argc, char** argv) {
  bank_config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::fprintf(stderr, "bad options: %s\n", caf::to_string(err).c_str());
    return 2;
  }
  if (cfg.cli_helptext_printed) return 0;
  if (cfg.accounts == 0 || cfg.clients == 0) {
    std::fprintf(stderr, "accounts and clients must be positive\n");
    return 2;
  }
  if (cfg.store.empty()) cfg.store = cfg.options.store.kind;
  if (cfg.data.empty()) cfg.data = cfg.options.store.data;
  if (cfg.postgres_url.empty()) cfg.postgres_url = cfg.options.store.postgres_url;
  std::shared_ptr<cairn::journal> store;
  std::shared_ptr<cairn::snapshot_store> snapshots;
  if (cfg.store == "postgres") {
#ifdef CAIRN_WITH_POSTGRES
    cairn::postgres_options po;
    po.schema = cfg.options.store.postgres_schema;
    if (cfg.fresh) {
      if (auto dropped = cairn::drop_postgres_schema(cfg.postgres_url, po); !dropped) {
        std::fprintf(stderr, "cannot empty the store: %s\n", dropped.error().describe().c_str());
        return 1;
      }
    }
    auto opened = cairn::open_postgres_journal(cfg.postgres_url, po);
    if (!opened) {
      std::fprintf(stderr, "cannot open the store: %s\n", opened.error().describe().c_str());
      return 1;
    }
    store = *opened;
    auto snaps = cairn::open_postgres_snapshot_store(cfg.postgres_url, po);
    if (!snaps) {
      std::fprintf(stderr, "cannot open snapshots: %s\n", snaps.error().describe().c_str());
      return 1;
    }
    snapshots = *snaps;
#else
    std::fprintf(stderr, "this build has no PostgreSQL store (CAIRN_BUILD_POSTGRES=OFF)\n");
    return 2;
#endif
  } else if (cfg.store == "memory") {
    store = cairn::make_memory_journal();
  } else if (cfg.store == "file") {
    auto sync = cairn::parse_sync_policy(cfg.sync);
    if (!sync) {
      std::fprintf(stderr, "%s\n", sync.error().describe().c_str());
      return 2;
    }
    std::error_code ec;
    if (cfg.fresh) std::filesystem::remove_all(cfg.data, ec);
    cairn::file_journal_options opts;
    opts.sync = *sync;
    auto opened = cairn::open_file_journal(cfg.data + "/events", opts);
    if (!opened) {
      std::fprintf(stderr, "cannot open the store: %s\n", opened.error().describe().c_str());
      return 1;
    }
    store = *opened;
    auto snaps = cairn::open_file_snapshot_store(cfg.data + "/snapshots");
    if (!snaps) {
      std::fprintf(stderr, "cannot open snapshots: %s\n", snaps.error().describe().c_str());
      return 1;
    }
    snapshots = *snaps;
  } else {
    std::fprintf(stderr, "unknown store \"%s\" (file, postgres or memory)\n", cfg.store.c_str());
    return 2;
  }
  int rc = 0;
  {
    cairn::node node{cfg, store, snapshots};
    if (!node.register_aggregate<bank::account>() || !node.register_projection<bank::balances>() ||
        !node.register_projection<bank::top_accounts>())
      return 1;
    const bool with_transfers = cfg.transfers > 0;
    if (with_transfers &&
        (!node.register_aggregate<bank::transfer>() || !node.register_projection<bank::transfers>() ||
         !node.register_saga<bank::transfer_saga>()))
      return 1;

#ifdef CAIRN_BANK_KAFKA
    // --kafka-brokers: account events go out while the workload runs (kafka_bridge.hpp).
    std::unique_ptr<bank::kafka_bridge> kafka;
    if (!cfg.kafka_brokers.empty()) {
      auto settings = cairn::read_kafka_settings(cfg);
      std::string why = settings ? "" : settings.error().describe();
      if (settings)
        kafka = bank::kafka_bridge::start(node, store, snapshots, *settings, cfg.kafka_brokers,
                                          cfg.accounts, why);
      if (!kafka) {
        std::fprintf(stderr, "kafka: %s\n", why.c_str());
        return 1;
      }
    }
#else
    if (!cfg.kafka_brokers.empty()) {
      std::fprintf(stderr, "this bank_sample was built without cairn::kafka\n");
      return 2;
    }
#endif
    // Events already in the store from earlier runs (a file store keeps them).
    const uint64_t events_before = store->head_position();
    // With transfers the store also holds transfer and saga streams, and account
    // events the saga caused: the workload's check then counts its own account events.
    const store_fold before = with_transfers ? fold_store(*store) : store_fold{};
    std::atomic<uint64_t> opened_now{0};

    // Phase 1 (not timed): open every account (a no-op for those already open), 1,024
    // at a time: the node answers beyond its bound with "overloaded" (docs/overload.md).
    {
      auto opened = bank::open_accounts(node, cfg.accounts);
      opened_now = opened.opened;
      if (opened.failed > 0) {
        std::fprintf(stderr, "%llu accounts failed to open; the first error: %s\n",
                     static_cast<unsigned long long>(opened.failed),
                     opened.first->describe().c_str());
        return 1;
      }
      if (opened.retried > 0) {
        // A send that timed out may have been applied all the same (its retry was then
        // a no-op): count what phase 1 stored instead of what its replies said.
        std::fprintf(stderr, "phase 1: %llu opens sent again after a timeout or `unavailable`; "
                             "the first error: %s\n",
                     static_cast<unsigned long long>(opened.retried),
                     opened.first->describe().c_str());
        auto after_opening = fold_store(*store);
        opened_now = (with_transfers ? after_opening.plain_account_events : after_opening.events) -
                     (with_transfers ? before.plain_account_events : events_before);
      }
    }

    // Phase 2 (timed): C commands from K closed-loop clients.
    auto plan = bank::plan_commands(cfg.accounts, cfg.commands);
    auto k = std::min(cfg.clients, std::max<size_t>(1, plan.size()));
    std::vector<client> clients(k);
    latch done{k};
    for (size_t i = 0; i < k; ++i) {
      clients[i].node = &node;
      clients[i].plan = &plan;
      clients[i].next = i;
      clients[i].stride = k;
      clients[i].done = &done;
      clients[i].latencies_ns.reserve(plan.size() / k + 1);
    }
    auto start = clock_type::now();
    for (auto& c : clients) c.send_next();
    done.wait();
    uint64_t accepted = 0, rejected = 0, failed = 0, last_position = 0;
    std::vector<int64_t> lat;
    lat.reserve(plan.size());
    for (auto& c : clients) {
      accepted += c.accepted;
      rejected += c.rejected;
      failed += c.failed;
      last_position = std::max(last_position, c.max_position);
      lat.insert(lat.end(), c.latencies_ns.begin(), c.latencies_ns.end());
    }
    // The run ends when the projection has applied every event as well.
    auto projected = node.query<bank::balances>(
      [](const bank::balances& b) { return std::make_pair(b.total, b.events); }, last_position);
    auto elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    if (!projected) {
      std::fprintf(stderr, "projection query failed: %s\n", projected.error().describe().c_str());
      return 1;
    }

    auto fold = fold_store(*store);
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("machine: %u cores\nstore: %s%s, sync: %s\n", std::thread::hardware_concurrency(),
                cfg.store.c_str(), cfg.store == "file" ? (" in " + cfg.data).c_str() : "",
                cfg.store == "file"       ? cfg.sync.c_str()
                : cfg.store == "postgres" ? "the server's (synchronous_commit)"
                                          : "none (in-memory)");
    std::printf("accounts (A): %zu  commands (C): %zu  clients (K): %zu\n", cfg.accounts,
                plan.size(), k);
    std::printf("accepted: %llu  rejected: %llu  failed: %llu\n",
                static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(rejected),
                static_cast<unsigned long long>(failed));
    std::printf("throughput: %.0f commands/s (%.3f s)\n",
                elapsed > 0 ? static_cast<double>(plan.size()) / elapsed : 0.0, elapsed);
    std::printf("latency: p50 %.1f us  p99 %.1f us  p999 %.1f us\n", percentile(lat, 0.50) / 1e3,
                percentile(lat, 0.99) / 1e3, percentile(lat, 0.999) / 1e3);
    std::printf("peak RSS: %ld MiB\n", ru.ru_maxrss / 1024);
    const uint64_t counted = with_transfers ? fold.plain_account_events : fold.events;
    const uint64_t counted_before = with_transfers ? before.plain_account_events : events_before;
    const uint64_t expected_events = counted_before + opened_now + accepted;
    std::printf("projection total: %lld  store total: %lld  stored events: %llu  expected: %llu"
                " (%llu before this run)\n",
                static_cast<long long>(projected->first), static_cast<long long>(fold.total),
                static_cast<unsigned long long>(counted),
                static_cast<unsigned long long>(expected_events),
                static_cast<unsigned long long>(counted_before));
    bool verified = fold.ok && failed == 0 && projected->first == fold.total &&
                    projected->second == fold.account_events &&
                    counted == expected_events;

    // Phase 3 (--transfers, not timed as part of the workload): transfers via the saga.
    if (with_transfers) {
      auto transfers = plan_transfers(cfg.accounts, cfg.transfers,
                                      "r" + std::to_string(events_before) + "-");
      auto report = run_transfers(node, *store, transfers);
      auto after = fold_store(*store);
      auto total = node.query<bank::balances>([](const bank::balances& b) { return b.total; },
                                              store->head_position());
      // Each completed or refunded transfer took exactly two account steps.
      auto saga_steps = (after.account_events - after.plain_account_events) -
                        (fold.account_events - fold.plain_account_events);
      std::printf("transfers: %zu requested, %llu completed, %llu refunded (payee missing), "
                  "%llu refused (insufficient funds), %llu unfinished in %.3f s (%.0f/s)\n",
                  transfers.size(), static_cast<unsigned long long>(report.completed),
                  static_cast<unsigned long long>(report.refunded),
                  static_cast<unsigned long long>(report.refused),
                  static_cast<unsigned long long>(report.unfinished), report.seconds,
                  report.seconds > 0 ? static_cast<double>(transfers.size()) / report.seconds : 0.0);
      std::printf("money before transfers: %lld  after: %lld  saga account steps: %llu\n",
                  static_cast<long long>(fold.total), static_cast<long long>(after.total),
                  static_cast<unsigned long long>(saga_steps));
      verified = verified && after.ok && report.request_failures == 0 && report.unfinished == 0 &&
                 report.completed + report.refunded + report.refused == transfers.size() &&
                 after.total == fold.total && total && *total == after.total &&
                 after.plain_account_events == fold.plain_account_events &&
                 saga_steps == 2 * (report.completed + report.refunded);
    }

    // The second read model: the richest accounts.
    auto top = node.query<bank::top_accounts>([](const bank::top_accounts& t) { return t.top(5); },
                                              store->head_position());
    if (top) {
      std::printf("top accounts:");
      for (auto& [id, balance] : *top)
        std::printf(" %s %lld", id.c_str(), static_cast<long long>(balance));
      std::printf("\n");
    } else {
      std::fprintf(stderr, "top accounts query failed: %s\n", top.error().describe().c_str());
      verified = false;
    }
#ifdef CAIRN_BANK_KAFKA
    // After the checks above (payments change the balances they compare).
    if (kafka) verified = kafka->run_and_verify(cfg.kafka_payments) && verified;
#endif
    std::printf("verification: %s\n", verified ? "PASSED" : "FAILED");
    rc = verified ? 0 : 1;
  } // the node stops every actor here; the process then exits promptly
  return rc;
}
