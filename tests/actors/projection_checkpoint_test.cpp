// Projection checkpoints (position plus saved read model) and rebuilds: a restart
// replays only what follows the checkpoint; a rebuild under load ends in the same
// read model as a projection that never stopped.
#include <catch2/catch.hpp>

#include <thread>

#include <cairn/codec.hpp>
#include <cairn/test_node.hpp>

#include "actors/feed_test_support.hpp"
#include "bank/account.hpp"
#include "bank/balances.hpp"

using namespace cairn;
using namespace cairn::feed_test;
using cairn::testkit::test_node;

namespace {

struct totals_state {
  int64_t total = 0;
  uint64_t events = 0;
};
inline auto describe(type<totals_state>) {
  return schema<totals_state>("totals_state", 1, field("total", &totals_state::total),
                              field("events", &totals_state::events));
}

/// Counts every apply call across instances, to see how much a start replays.
std::atomic<uint64_t> totals_applies{0};

/// A read model that saves and loads itself with save()/load().
struct checkpointed_totals {
  static constexpr std::string_view name = "checkpointed_totals";
  static constexpr std::string_view category = "account";
  using event_type = bank::account::event_type;
  totals_state s;

  void apply(const bank::opened&) { count(0); }
  void apply(const bank::deposited& d) { count(d.amount); }
  void apply(const bank::withdrawn& w) { count(-w.amount); }
  void count(int64_t amount) {
    s.total += amount;
    ++s.events;
    ++totals_applies;
  }

  bytes save() const { return encode(s); }
  static expected<checkpointed_totals> load(const bytes& b) {
    auto s = decode<totals_state>(b);
    if (!s) return s.error();
    checkpointed_totals t;
    t.s = *s;
    return t;
  }
};

/// A read model with a schema: checkpointed through its codec.
struct described_totals {
  static constexpr std::string_view name = "described_totals";
  using event_type = bank::account::event_type;
  int64_t total = 0;
  void apply(const bank::opened&) {}
  void apply(const bank::deposited& d) { total += d.amount; }
  void apply(const bank::withdrawn& w) { total -= w.amount; }
};
inline auto describe(type<described_totals>) {
  return schema<described_totals>("described_totals", 1, field("total", &described_totals::total));
}

projection_options every(uint64_t n, bool on_stop) {
  projection_options o;
  o.checkpoint_every = n;
  o.checkpoint_on_stop = on_stop;
  return o;
}

node_options small_batches() {
  auto o = test_node::quiet();
  o.feed.batch_events = 32;
  o.query_timeout = std::chrono::seconds{60}; // a loaded (or sanitized) build is slow
  return o;
}

totals_state totals_at(node& n, uint64_t head) {
  auto s = n.query<checkpointed_totals>([](const checkpointed_totals& t) { return t.s; }, head);
  REQUIRE(s);
  return *s;
}

} // namespace

TEST_CASE("a projection restarts from its checkpoint and replays only the events after it") {
  auto store = make_memory_journal();
  auto snaps = make_memory_snapshot_store();
  fill(*store, 9, 20); // 180 events: 9 openings and 171 deposits of 1
  const uint64_t head = 180;

  totals_applies = 0;
  {
    test_node n{2, store, small_batches(), snaps};
    REQUIRE(n->register_projection<checkpointed_totals>(every(100, false)));
    auto t = totals_at(*n, head);
    REQUIRE(t.events == head);
    REQUIRE(t.total == 171);
  }
  REQUIRE(totals_applies == head);
  auto snap = snaps->load(projection_checkpoint_stream("checkpointed_totals"));
  REQUIRE(snap);
  REQUIRE(snap->has_value());
  auto at = (*snap)->version;
  REQUIRE(at >= 100); // taken once 100 positions had passed...
  REQUIRE(at < head); // ...and not again (no checkpoint on stop this time)

  totals_applies = 0;
  {
    test_node n{2, store, small_batches(), snaps};
    REQUIRE(n->register_projection<checkpointed_totals>(every(100, true)));
    auto t = totals_at(*n, head);
    CHECK(t.events == head);
    CHECK(t.total == 171);
    CHECK(totals_applies == head - at); // only the tail was replayed
  }
  // That node checkpointed on stop: the next start replays nothing.
  totals_applies = 0;
  {
    test_node n{2, store, small_batches(), snaps};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->register_projection<checkpointed_totals>(every(100, true)));
    REQUIRE(n->execute<bank::account>("new", bank::open{"n"}));
    auto t = totals_at(*n, head + 1);
    CHECK(t.events == head + 1);
    CHECK(totals_applies == 1);
  }
}

TEST_CASE("a described read model is checkpointed through its schema, and a stale or damaged "
          "checkpoint is ignored") {
  auto store = make_memory_journal();
  auto snaps = make_memory_snapshot_store();
  fill(*store, 3, 10);
  {
    test_node n{2, store, test_node::quiet(), snaps};
    REQUIRE(n->register_projection<described_totals>(every(1, true)));
    REQUIRE(n->query<described_totals>([](const described_totals& d) { return d.total; }, 30));
  }
  auto snap = snaps->load(projection_checkpoint_stream("described_totals"));
  REQUIRE(snap);
  REQUIRE(snap->has_value());
  CHECK((*snap)->version == 30);
  CHECK((*snap)->type == "described_totals");

  // A checkpoint claiming another total, but of another format version: ignored.
  described_totals rich;
  rich.total = 1'000'000;
  REQUIRE(snaps->save(snapshot{projection_checkpoint_stream("described_totals"), 30,
                               "described_totals", 99, 0, encode(rich)}));
  {
    test_node n{2, store, test_node::quiet(), snaps};
    REQUIRE(n->register_projection<described_totals>(every(1000, false)));
    auto total = n->query<described_totals>([](const described_totals& d) { return d.total; }, 30);
    REQUIRE(total);
    CHECK(*total == 27);
  }
  // Bytes that do not decode: ignored too.
  REQUIRE(snaps->save(snapshot{projection_checkpoint_stream("described_totals"), 30,
                               "described_totals", 1, 0, {0x07}}));
  {
    test_node n{2, store, test_node::quiet(), snaps};
    REQUIRE(n->register_projection<described_totals>(every(1000, false)));
    auto total = n->query<described_totals>([](const described_totals& d) { return d.total; }, 30);
    REQUIRE(total);
    CHECK(*total == 27);
  }
}

TEST_CASE("checkpoint options are checked at registration") {
  test_node without_snapshots;
  auto no_store = without_snapshots->register_projection<checkpointed_totals>(every(10, true));
  REQUIRE_FALSE(no_store);
  CHECK(is_invalid_argument(no_store.error()));

  test_node n{2, make_memory_journal(), test_node::quiet(), make_memory_snapshot_store()};
  // bank::balances can neither save nor load itself.
  auto cannot = n->register_projection<bank::balances>(every(10, true));
  REQUIRE_FALSE(cannot);
  CHECK(is_invalid_argument(cannot.error()));
  // Without explicit options it simply runs without checkpoints.
  REQUIRE(n->register_projection<bank::balances>());
}

namespace {

/// bank::balances under another name: never rebuilt, the reference.
struct balances_twin : bank::balances {
  static constexpr std::string_view name = "balances_twin";
};

} // namespace

TEST_CASE("a projection rebuilt under load ends with the same read model as one never rebuilt") {
  counter replies; // declared before the node, whose threads signal them
  std::atomic<int> failed{0};
  test_node n{2, make_memory_journal(), small_batches()};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_projection<bank::balances>());
  REQUIRE(n->register_projection<balances_twin>());

  constexpr int writers = 4, per_writer = 1000;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i)
        n->send<bank::account>("r" + std::to_string(w) + "-" + std::to_string(i % 25),
                               i < 25 ? bank::account::command_type{bank::open{"o"}}
                                      : bank::account::command_type{bank::deposit{i}},
                               [&](expected<command_reply> r) {
                                 if (!r) ++failed; // (Catch assertions are not thread-safe)
                                 replies.add();
                               });
    });
  REQUIRE(replies.wait_for(writers * per_writer / 4));
  auto first = n->rebuild_projection<bank::balances>();
  REQUIRE(first);
  // A query for the head at the time of the rebuild waits for the rebuild to get there.
  auto mid = n->query<bank::balances>([](const bank::balances& b) { return b.events; }, *first);
  REQUIRE(mid);
  CHECK(*mid >= *first);
  REQUIRE(replies.wait_for(writers * per_writer / 2));
  REQUIRE(n->rebuild_projection("balances")); // twice in a row: the second restarts it again
  REQUIRE(n->rebuild_projection("balances"));
  for (auto& t : threads) t.join();
  REQUIRE(replies.wait_for(writers * per_writer));
  REQUIRE(failed == 0);

  auto head = n.store().head_position();
  auto rebuilt = n->query<bank::balances>(
    [](const bank::balances& b) { return std::make_tuple(b.events, b.total, b.by_account); }, head);
  auto twin = n->query<balances_twin>(
    [](const balances_twin& b) { return std::make_tuple(b.events, b.total, b.by_account); }, head);
  INFO((rebuilt ? std::string{} : rebuilt.error().describe()));
  REQUIRE(rebuilt);
  INFO((twin ? std::string{} : twin.error().describe()));
  REQUIRE(twin);
  CHECK(std::get<0>(*rebuilt) == head);
  CHECK(*rebuilt == *twin);

  auto unknown = n->rebuild_projection("no_such_projection");
  REQUIRE_FALSE(unknown);
  CHECK(is_not_found(unknown.error()));
}
