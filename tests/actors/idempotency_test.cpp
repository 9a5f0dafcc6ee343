// Idempotency keys: a command sent again with the key of one already stored gets the
// first outcome and stores nothing, also after the aggregate was recovered from the
// store (passivated, restarted, from a snapshot).
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <cairn/test_node.hpp>

#include "bank/account.hpp"

using namespace cairn;
using cairn::testkit::test_node;
using namespace std::chrono_literals;

namespace {

metadata keyed(const std::string& key) {
  metadata m;
  m.entries.emplace_back("idempotency-key", key);
  return m;
}

node_options with(uint64_t snapshot_every, std::chrono::nanoseconds passivate_after,
                  size_t window = 256) {
  auto o = test_node::quiet();
  o.aggregates.snapshot_every = snapshot_every;
  o.aggregates.passivate_after = passivate_after;
  o.aggregates.idempotency_window = window;
  return o;
}

size_t stored(journal& store, const std::string& id) {
  auto events = store.read_stream(stream_id{"account", id}, 1, 1000);
  REQUIRE(events);
  return events->size();
}

} // namespace

TEST_CASE("a repeated idempotency key gets the first outcome and stores nothing") {
  auto store = make_memory_journal();
  test_node n{2, store, with(0, 0s)};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("k1", bank::open{"ann"}));
  auto first = n->execute<bank::account>("k1", bank::deposit{10}, keyed("d-1"));
  REQUIRE(first);
  REQUIRE(n->execute<bank::account>("k1", bank::deposit{5}, keyed("d-2")));
  auto again = n->execute<bank::account>("k1", bank::deposit{10}, keyed("d-1"));
  REQUIRE(again);
  CHECK(again->version == first->version);
  CHECK(again->position == first->position);
  CHECK(again->events == 1);
  CHECK(stored(*store, "k1") == 3);
  // Another key, or none, is a new command.
  REQUIRE(n->execute<bank::account>("k1", bank::deposit{10}, keyed("d-3")));
  REQUIRE(n->execute<bank::account>("k1", bank::deposit{10}));
  CHECK(stored(*store, "k1") == 5);
  // The key belongs to the aggregate: the same key on another account is another command.
  REQUIRE(n->execute<bank::account>("k2", bank::open{"bob"}));
  REQUIRE(n->execute<bank::account>("k2", bank::deposit{1}, keyed("d-1")));
  CHECK(stored(*store, "k2") == 2);
}

TEST_CASE("idempotency keys are remembered across recovery, also from a snapshot") {
  auto store = make_memory_journal();
  auto snaps = make_memory_snapshot_store();
  uint64_t first_position = 0;
  {
    test_node n{2, store, with(3, 0s), snaps};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->execute<bank::account>("r1", bank::open{"ann"}));
    auto first = n->execute<bank::account>("r1", bank::deposit{7}, keyed("once"));
    REQUIRE(first);
    first_position = first->position;
    for (int i = 0; i < 5; ++i) REQUIRE(n->execute<bank::account>("r1", bank::deposit{1}));
  } // a snapshot was taken at version 3 and at 6: "once" (version 2) is before both
  test_node n{2, store, with(3, 0s), snaps};
  REQUIRE(n->register_aggregate<bank::account>());
  auto again = n->execute<bank::account>("r1", bank::deposit{7}, keyed("once"));
  REQUIRE(again);
  CHECK(again->version == 2);
  CHECK(again->position == first_position);
  CHECK(stored(*store, "r1") == 7);
  auto balance = n->state_at<bank::account>("r1", 7);
  REQUIRE(balance);
  CHECK(balance->balance == 12);
}

TEST_CASE("idempotency keys survive passivation, and a window of 0 turns deduplication off") {
  auto store = make_memory_journal();
  {
    test_node n{2, store, with(0, 1ms)};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->execute<bank::account>("p1", bank::open{"ann"}));
    REQUIRE(n->execute<bank::account>("p1", bank::deposit{3}, keyed("k")));
    std::this_thread::sleep_for(50ms); // passivated meanwhile
    REQUIRE(n->execute<bank::account>("p1", bank::deposit{3}, keyed("k")));
    CHECK(stored(*store, "p1") == 2);
  }
  test_node n{2, store, with(0, 0s, 0)};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("p1", bank::deposit{3}, keyed("k")));
  CHECK(stored(*store, "p1") == 3);
}
