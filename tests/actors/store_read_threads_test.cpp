// Store reads of aggregate recovery and of subscription catch-up run on the node's reader
// threads, not on CAF's scheduler threads: while such a read waits (a slow server), the
// other, live aggregates keep answering, even on a node with a single scheduler thread.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>

#include <cairn/test_node.hpp>

#include "actors/eventually.hpp"
#include "actors/gated_store.hpp"
#include "bank/account.hpp"

using namespace cairn;
using cairn::test::eventually;
using cairn::test::gated_journal;
using namespace std::chrono_literals;

namespace {

/// Opens the gate when the test ends, also when it fails, so the node can stop.
struct release_at_exit {
  gated_journal& store;
  ~release_at_exit() { store.release(); }
};

/// Runs `commands` while a read waits at the store's gate (gated_store.hpp).
template <class F>
bool serves_meanwhile(gated_journal& store, F commands) {
  return test::serves_meanwhile(commands, [&] { store.release(); });
}

node_options one_thread_options(int read_threads) {
  auto o = testkit::test_node::quiet();
  o.command_timeout = 5s;
  o.store_read_threads = read_threads;
  return o;
}

} // namespace

TEST_CASE("node: a slow recovery read leaves other aggregates serving (one scheduler thread)",
          "[store-readers]") {
  auto store = std::make_shared<gated_journal>(make_memory_journal());
  // -1: the store's reads wait on a server, so the node runs them on reader threads.
  testkit::test_node n(1, store, one_thread_options(-1));
  release_at_exit guard{*store};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("live", bank::open{"ann"}));

  std::promise<expected<command_reply>> slow_reply;
  n->send<bank::account>("slow-1", bank::open{"bob"},
                         [&](expected<command_reply> r) { slow_reply.set_value(std::move(r)); });
  REQUIRE(eventually([&] { return store->gate.waiting.load() == 1; }, std::chrono::seconds{10}));

  // The recovery of slow-1 waits on its read; live answers meanwhile.
  CHECK(serves_meanwhile(*store, [&] {
    for (int i = 0; i < 20; ++i) {
      auto r = n->execute<bank::account>("live", bank::deposit{1});
      if (!r || r->version != uint64_t(i) + 2) return false;
    }
    return true;
  }));
  // Commands for the recovering instance wait for it, in order, and none is lost.
  std::promise<expected<command_reply>> second;
  n->send<bank::account>("slow-1", bank::deposit{7},
                         [&](expected<command_reply> r) { second.set_value(std::move(r)); });
  auto first_answer = slow_reply.get_future();
  CHECK(first_answer.wait_for(100ms) == std::future_status::timeout);

  store->release();
  auto r1 = first_answer.get();
  REQUIRE(r1);
  CHECK(r1->version == 1);
  auto r2 = second.get_future().get();
  REQUIRE(r2);
  CHECK(r2->version == 2);
}

TEST_CASE("node: a slow catch-up read leaves aggregates serving (one scheduler thread)",
          "[store-readers]") {
  auto store = std::make_shared<gated_journal>(make_memory_journal());
  testkit::test_node n(1, store, one_thread_options(2));
  release_at_exit guard{*store};
  REQUIRE(n->register_aggregate<bank::account>());
  for (int i = 0; i < 10; ++i)
    REQUIRE(n->execute<bank::account>("a" + std::to_string(i), bank::open{"x"}));
  REQUIRE(n->execute<bank::account>("live", bank::open{"ann"}));

  // A subscription from the store's first event must read the store (catch-up).
  store->gate_read_all = true;
  std::atomic<uint64_t> handled{0}, last{0};
  REQUIRE(n->subscribe_events("counter", event_filter{}, [&](const envelope& e) {
    ++handled;
    last = e.position;
  }));
  REQUIRE(eventually([&] { return store->gate.waiting.load() >= 1; }, std::chrono::seconds{10}));
  CHECK(serves_meanwhile(*store, [&] {
    for (int i = 0; i < 20; ++i)
      if (!n->execute<bank::account>("live", bank::deposit{1})) return false;
    return true;
  }));
  CHECK(handled == 0);
  store->gate_read_all = false;
  store->release();
  // Every event once, in order, up to the last deposit.
  REQUIRE(eventually([&] { return handled.load() == 31; }, std::chrono::seconds{20}));
  CHECK(last == 31);
}
