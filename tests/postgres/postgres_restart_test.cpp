// A node on PostgreSQL under load while the server restarts (pg_ctl restart -m immediate):
// commands in flight fail (unavailable), the store reconnects by itself, the node serves
// again without a restart, and every acknowledged event is stored exactly once.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <cairn/postgres_journal.hpp>
#include <cairn/test_node.hpp>

#include "bank/account.hpp"
#include "postgres/pg_server.hpp"

using namespace cairn;
using cairn::test::pg_server;

TEST_CASE("postgres: a node survives a server restart mid-load without loss or duplicates",
          "[restart]") {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  auto store = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(store.has_value());
  testkit::test_node n(2, *store);
  REQUIRE(n->register_aggregate<bank::account>());
  constexpr int accounts = 64, clients = 8;
  for (int a = 0; a < accounts; ++a)
    REQUIRE(n->execute<bank::account>("a" + std::to_string(a), bank::open{"owner"}));

  std::mutex mutex;
  std::set<std::string> acked;
  std::map<std::string, size_t> failures; // by error code
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      for (size_t seq = 0; !stop; ++seq) {
        auto id = "c" + std::to_string(c) + "-" + std::to_string(seq);
        metadata meta{id, "", {}};
        auto r = n->execute<bank::account>("a" + std::to_string((c * 7 + seq) % accounts),
                                           bank::deposit{1}, meta);
        std::lock_guard<std::mutex> lock(mutex);
        if (r) acked.insert(id);
        else ++failures[std::string(to_string(r.error().code()))];
        if (!r) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return acked.size();
  };
  auto wait_for_acks = [&](size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (acked_count() < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return acked_count() >= n;
  };
  REQUIRE(wait_for_acks(2000));
  pg_server::shared().restart_immediate();
  size_t at_restart = acked_count();
  // The node serves again by itself: many more commands succeed after the restart.
  bool recovered = wait_for_acks(at_restart + 2000);
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(recovered);
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& [code, count] : failures) WARN(count << " commands failed with " << code);
  }

  // Every acknowledged deposit is stored exactly once; nothing is stored twice.
  std::map<std::string, size_t> stored;
  uint64_t next = 1;
  for (;;) {
    auto chunk = n.store().read_all(next, 4096);
    REQUIRE(chunk.has_value());
    if (chunk->empty()) break;
    for (auto& e : *chunk) {
      REQUIRE(e.position == next++);
      if (e.type == "deposited") ++stored[e.meta.correlation_id];
    }
  }
  size_t missing = 0, twice = 0;
  for (auto& id : acked)
    if (stored[id] != 1) ++missing;
  for (auto& [id, count] : stored)
    if (count > 1) ++twice;
  CHECK(missing == 0);
  CHECK(twice == 0);
  CHECK(stored.size() >= acked.size());
}
