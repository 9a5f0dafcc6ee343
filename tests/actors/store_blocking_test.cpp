// Checkpoint and snapshot reads and writes run on the node's reader threads, never on
// CAF's scheduler threads: while a projection's checkpoint load, a subscription's
// start, a saga's instance load or an aggregate's snapshot save waits on a slow store,
// the other aggregates of the node keep answering (on a single scheduler thread), and
// once the store answers everything completes, in order, each event once.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <vector>

#include <cairn/codec.hpp>
#include <cairn/test_node.hpp>

#include "actors/eventually.hpp"
#include "actors/gated_store.hpp"
#include "actors/waiter_saga.hpp"
#include "bank/account.hpp"
#include "bank/transfer.hpp"
#include "bank/transfer_saga.hpp"

using namespace cairn;
using namespace cairn::test;
using namespace std::chrono_literals;
using cairn::testkit::test_node;

namespace {

/// A node with one scheduler thread and two store reader threads.
node_options one_thread_two_readers() {
  auto o = test_node::quiet();
  o.command_timeout = 10s;
  o.query_timeout = 60s;
  o.store_read_threads = 2;
  return o;
}

/// Twenty deposits to account "live" (opened first if `open`): true if all succeeded.
bool live_serves(node& n, bool open = true) {
  if (open && !n.execute<bank::account>("live", bank::open{"ann"})) return false;
  for (int i = 0; i < 20; ++i)
    if (!n.execute<bank::account>("live", bank::deposit{1})) return false;
  return true;
}

/// Counts the deposits it applied since the last reset (how much a start replays).
std::atomic<uint64_t> counted_applies{0};

/// The sum of all deposits; checkpointed by save()/load().
struct deposit_sum {
  static constexpr std::string_view name = "deposit_sum";
  static constexpr std::string_view category = "account";
  using event_type = bank::account::event_type;
  int64_t sum = 0;

  void apply(const bank::opened&) { ++counted_applies; }
  void apply(const bank::deposited& d) {
    sum += d.amount;
    ++counted_applies;
  }
  void apply(const bank::withdrawn& w) {
    sum -= w.amount;
    ++counted_applies;
  }
  bytes save() const { return encode(sum); }
  static expected<deposit_sum> load(const bytes& b) {
    auto s = decode<int64_t>(b);
    if (!s) return s.error();
    deposit_sum d;
    d.sum = *s;
    return d;
  }
};

projection_options checkpoint_every_event() {
  projection_options o;
  o.checkpoint_every = 1;
  o.checkpoint_on_stop = true;
  return o;
}

} // namespace

TEST_CASE("a snapshot save that waits on the store delays no command, and the newest "
          "snapshot is stored once it answers", "[store-readers]") {
  auto snaps = std::make_shared<gated_snapshots>(make_memory_snapshot_store(),
                                                 id_starts_with("snap"));
  snaps->gate_loads = false;
  auto opts = one_thread_two_readers();
  opts.aggregates.snapshot_every = 1;
  test_node n(1, make_memory_journal(), opts, snaps);
  struct open_at_exit {
    gated_snapshots& s;
    ~open_at_exit() { s.save_gate.open(); }
  } guard{*snaps};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("snap-1", bank::open{"bob"}));
  REQUIRE(eventually([&] { return snaps->save_gate.waiting.load() == 1; }, 10s));

  // The aggregate whose snapshot waits, and the others, go on meanwhile.
  CHECK(serves_meanwhile(
    [&] {
      for (int i = 0; i < 20; ++i) {
        auto r = n->execute<bank::account>("snap-1", bank::deposit{1});
        if (!r || r->version != uint64_t(i) + 2) return false;
      }
      return live_serves(*n);
    },
    [&] { snaps->save_gate.open(); }));
  // One save of snap-1 at a time: the newer ones wait behind it.
  CHECK(snaps->save_gate.waiting.load() == 1);
  snaps->save_gate.open();

  stream_id stream{"account", "snap-1"};
  REQUIRE(eventually([&] {
    auto s = snaps->load(stream);
    return s && *s && (*s)->version == 21;
  }));
  auto saved = snaps->saved_versions();
  INFO("snapshots saved: " << saved.size());
  CHECK(saved.size() < 21); // those asked for while one was in flight: only the newest
  CHECK(std::is_sorted(saved.begin(), saved.end()));
  CHECK(std::adjacent_find(saved.begin(), saved.end()) == saved.end());
  CHECK(snaps->max_concurrent_saves.load() == 1);
}

TEST_CASE("a projection's checkpoint load and saves wait on reader threads, it resumes "
          "exactly from the checkpoint once loaded", "[store-readers]") {
  auto inner = make_memory_snapshot_store();
  auto store = make_memory_journal();
  auto checkpoint = projection_checkpoint_stream("deposit_sum");
  auto is_checkpoint = [checkpoint](const stream_id& s) { return s == checkpoint; };
  uint64_t first_head = 0;
  {
    // A first run leaves a checkpoint at the head.
    test_node n(2, store, test_node::quiet(), inner);
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->register_projection<deposit_sum>(checkpoint_every_event()));
    for (int i = 0; i < 5; ++i) {
      REQUIRE(n->execute<bank::account>("a" + std::to_string(i), bank::open{"x"}));
      REQUIRE(n->execute<bank::account>("a" + std::to_string(i), bank::deposit{10}));
    }
    first_head = store->head_position();
    REQUIRE(n->query<deposit_sum>([](const deposit_sum& d) { return d.sum; }, first_head));
  }
  {
    auto s = inner->load(checkpoint);
    REQUIRE(s);
    REQUIRE(*s);
    REQUIRE((*s)->version == first_head);
  }

  auto snaps = std::make_shared<gated_snapshots>(inner, is_checkpoint);
  test_node n(1, store, one_thread_two_readers(), snaps);
  struct open_at_exit {
    gated_snapshots& s;
    ~open_at_exit() {
      s.load_gate.open();
      s.save_gate.open();
    }
  } guard{*snaps};
  REQUIRE(n->register_aggregate<bank::account>());
  counted_applies = 0;
  REQUIRE(n->register_projection<deposit_sum>(checkpoint_every_event()));
  REQUIRE(eventually([&] { return snaps->load_gate.waiting.load() == 1; }, 10s));

  // A query for the coming head waits for the load and the events after it.
  auto sum = std::async(std::launch::async, [&] {
    return n->query<deposit_sum>([](const deposit_sum& d) { return d.sum; }, first_head + 21);
  });
  CHECK(serves_meanwhile([&] { return live_serves(*n); }, [&] { snaps->load_gate.open(); }));
  CHECK(sum.wait_for(100ms) == std::future_status::timeout);
  CHECK(counted_applies.load() == 0);

  snaps->load_gate.open();
  auto got = sum.get();
  REQUIRE(got);
  CHECK(*got == 50 + 20);
  CHECK(counted_applies.load() == 21); // only the events after the checkpoint

  // Its checkpoint save now waits; it still answers queries, the node still serves.
  REQUIRE(eventually([&] { return snaps->save_gate.waiting.load() == 1; }, 10s));
  CHECK(serves_meanwhile(
    [&] {
      if (!n->execute<bank::account>("live", bank::deposit{5})) return false;
      auto s = n->query<deposit_sum>([](const deposit_sum& d) { return d.sum; },
                                     first_head + 22);
      return s && *s == 75;
    },
    [&] { snaps->save_gate.open(); }));
  snaps->save_gate.open();
  REQUIRE(eventually([&] {
    auto s = inner->load(checkpoint);
    return s && *s && (*s)->version == first_head + 22;
  }));
  auto saved = snaps->saved_versions();
  CHECK(std::is_sorted(saved.begin(), saved.end()));
  CHECK(snaps->max_concurrent_saves.load() == 1);
}

TEST_CASE("a subscription's start waits on a reader thread, then it resumes after its "
          "stored position, each event once, in order", "[store-readers]") {
  auto store = make_memory_journal();
  auto inner = make_memory_snapshot_store();
  stream_id position_stream{"notification", "counter"};
  auto snaps = std::make_shared<gated_snapshots>(
    inner, [position_stream](const stream_id& s) { return s == position_stream; });
  snaps->gate_saves = false;
  test_node n(1, store, one_thread_two_readers(), snaps);
  struct open_at_exit {
    gated_snapshots& s;
    ~open_at_exit() { s.load_gate.open(); }
  } guard{*snaps};
  REQUIRE(n->register_aggregate<bank::account>());
  for (int i = 0; i < 10; ++i)
    REQUIRE(n->execute<bank::account>("a" + std::to_string(i), bank::open{"x"}));
  // Stored by an earlier run: events up to 6 were handled.
  REQUIRE(inner->save(snapshot{position_stream, 6, "position", 1, 0, {}}));

  std::mutex mutex;
  std::vector<uint64_t> seen;
  REQUIRE(n->subscribe_events("counter", event_filter{}, [&](const envelope& e) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(e.position);
  }));
  REQUIRE(eventually([&] { return snaps->load_gate.waiting.load() == 1; }, 10s));
  CHECK(serves_meanwhile([&] { return live_serves(*n); }, [&] { snaps->load_gate.open(); }));
  {
    std::lock_guard<std::mutex> lock(mutex);
    CHECK(seen.empty());
  }
  snaps->load_gate.open();
  auto head = store->head_position();
  REQUIRE(head == 31);
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> lock(mutex);
    return !seen.empty() && seen.back() == head;
  }));
  std::vector<uint64_t> expected;
  for (uint64_t p = 7; p <= head; ++p) expected.push_back(p);
  std::lock_guard<std::mutex> lock(mutex);
  CHECK(seen == expected);
}

TEST_CASE("a saga's instance load waits on a reader thread, the node serves meanwhile and "
          "the saga goes on once the store answers", "[store-readers]") {
  auto category = saga_category("waiter");
  auto store = std::make_shared<gated_journal>(make_memory_journal(), category_is(category));
  test_node n(1, store, one_thread_two_readers());
  struct open_at_exit {
    gated_journal& s;
    ~open_at_exit() { s.release(); }
  } guard{*store};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_saga<waiter_saga>());
  REQUIRE(n->execute<bank::account>("first", bank::open{"o"}));
  REQUIRE(eventually([&] { return store->gate.waiting.load() >= 1; }, 10s));

  CHECK(serves_meanwhile(
    [&] {
      // The saga manager itself answers too: its load waits on a reader thread.
      auto s = n->saga_status_of<waiter_saga>();
      return s && s->open == 0 && live_serves(*n);
    },
    [&] { store->release(); }));
  store->release();
  REQUIRE(eventually([&] {
    auto s = n->saga_status_of<waiter_saga>();
    return s && s->open == 2; // "first" and "live"
  }));
  auto first = store->read_stream(stream_id{category, "first"}, 1, 10);
  REQUIRE(first);
  CHECK(first->size() == 1);
}

TEST_CASE("a saga step that waits on the store for its target's version holds no scheduler "
          "thread, the transfer completes once the store answers", "[store-readers]") {
  auto store = std::make_shared<gated_journal>(make_memory_journal(),
                                               [](const stream_id&) { return false; });
  store->slow_versions = id_starts_with("payee");
  test_node n(1, store, one_thread_two_readers());
  struct open_at_exit {
    gated_journal& s;
    ~open_at_exit() { s.release(); }
  } guard{*store};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_aggregate<bank::transfer>());
  REQUIRE(n->register_saga<bank::transfer_saga>());
  REQUIRE(n->execute<bank::account>("payer", bank::open{"p"}));
  REQUIRE(n->execute<bank::account>("payer", bank::deposit{100}));
  REQUIRE(n->execute<bank::account>("payee-1", bank::open{"q"}));
  // The saga withdraws from the payer, then reads payee-1's version to deposit there.
  REQUIRE(n->execute<bank::transfer>("t1", bank::request_transfer{"payer", "payee-1", 10}));
  REQUIRE(eventually([&] { return store->gate.waiting.load() >= 1; }, 10s));

  CHECK(serves_meanwhile([&] { return live_serves(*n); }, [&] { store->release(); }));
  store->release();
  auto completed = [&] {
    auto events = store->read_stream(stream_id{"transfer", "t1"}, 1, 10);
    return events && !events->empty() && events->back().type == "transfer_completed";
  };
  REQUIRE(eventually(completed));
  auto payee = store->read_stream(stream_id{"account", "payee-1"}, 1, 10);
  REQUIRE(payee);
  CHECK(payee->size() == 2); // opened, and the transfer's one deposit
}

TEST_CASE("the event feed fills a gap in its ring on a reader thread, commits that arrive "
          "meanwhile wait, and followers get every event once, in order", "[store-readers]") {
  auto store = std::make_shared<gated_journal>(make_memory_journal(),
                                               [](const stream_id&) { return false; });
  test_node n(1, store, one_thread_two_readers());
  struct open_at_exit {
    gated_journal& s;
    ~open_at_exit() { s.release(); }
  } guard{*store};
  REQUIRE(n->register_aggregate<bank::account>());
  for (int i = 0; i < 10; ++i)
    REQUIRE(n->execute<bank::account>("a" + std::to_string(i), bank::open{"x"}));

  std::mutex mutex;
  std::vector<uint64_t> seen;
  auto seen_now = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return seen;
  };
  REQUIRE(n->subscribe_events("follower", event_filter{}, [&](const envelope& e) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(e.position);
  })); // from the beginning (the default)
  REQUIRE(eventually([&] { return seen_now().size() == 10; }));

  // Commits 11..15 never reach the feed's ring; commit 16 does, after a gap that the
  // feed reads from the store: that read waits at the gate.
  store->mute_listeners = true;
  for (int i = 0; i < 5; ++i) REQUIRE(n->execute<bank::account>("a0", bank::deposit{1}));
  store->mute_listeners = false;
  store->gate_read_all = true;
  REQUIRE(n->execute<bank::account>("a1", bank::deposit{1}));
  REQUIRE(eventually([&] { return store->gate.waiting.load() == 1; }, 10s));

  // The node and the feed itself answer meanwhile; the new commits wait in the feed.
  CHECK(serves_meanwhile(
    [&] {
      auto stats = n->feed_stats();
      return stats && stats->store_reads >= 1 && live_serves(*n);
    },
    [&] { store->release(); }));
  CHECK(seen_now().size() == 10);

  store->release();
  auto head = store->head_position();
  REQUIRE(head == 37);
  REQUIRE(eventually([&] { return seen_now().size() >= head; }));
  std::vector<uint64_t> expected;
  for (uint64_t p = 1; p <= head; ++p) expected.push_back(p);
  CHECK(seen_now() == expected);
}
