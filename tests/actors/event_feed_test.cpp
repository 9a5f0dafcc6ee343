// The event feed under load: projections switch between catching up from the store
// and following the ring with no gap and no duplicate while writers keep going; a
// slow projection stalls nobody and the feed's buffer stays within its bound; type
// filters skip events before decoding them.
#include <catch2/catch.hpp>

#include <array>
#include <thread>

#include <cairn/test_node.hpp>

#include "actors/feed_test_support.hpp"
#include "bank/account.hpp"
#include "bank/balances.hpp"

using namespace cairn;
using namespace cairn::feed_test;
using cairn::testkit::test_node;

namespace {

struct first_tag {
  static constexpr std::string_view name = "positions_first";
};
struct second_tag {
  static constexpr std::string_view name = "positions_second";
};
struct slow_tag {
  static constexpr std::string_view name = "positions_slow";
};

/// The slow projection's gate: its first apply waits there.
gate* slow_gate = nullptr;

struct slow_positions : positions_of<slow_tag> {
  template <class E>
  void apply(const envelope& e, const E& ev) {
    if (positions.empty() && slow_gate) slow_gate->pass();
    positions_of<slow_tag>::apply(e, ev);
  }
};

node_options small_feed(size_t ring, size_t batch) {
  auto o = test_node::quiet();
  o.feed.ring_events = ring;
  o.feed.batch_events = batch;
  o.query_timeout = std::chrono::seconds{60}; // a loaded (or sanitized) build is slow
  return o;
}

template <class P>
std::vector<uint64_t> positions_at(node& n, uint64_t head) {
  auto seen = n.query<P>([](const P& p) { return p.positions; }, head);
  REQUIRE(seen);
  return *seen;
}

/// Sends `count` commands to accounts "<prefix>0".."<prefix>9" without waiting;
/// counts the replies and the failed ones (Catch assertions are not thread-safe).
void write(node& n, const std::string& prefix, int count, counter& replies,
           std::atomic<int>& failed) {
  for (int i = 0; i < count; ++i)
    n.send<bank::account>(prefix + std::to_string(i % 10),
                          i < 10 ? bank::account::command_type{bank::open{"o"}}
                                 : bank::account::command_type{bank::deposit{1}},
                          [&](expected<command_reply> r) {
                            if (!r) ++failed;
                            replies.add();
                          });
}

} // namespace

TEST_CASE("projections switch between store catch-up and the live feed with no gap or "
          "duplicate while many writers keep appending") {
  counter replies; // declared before the node, whose threads signal them
  std::atomic<int> failed{0};
  auto store = make_memory_journal();
  fill(*store, 60, 500); // 30,000 events before the node starts
  // Store reads inline, and on reader threads (the feed's gap fill goes there too).
  auto read_threads = GENERATE(0, 2);
  INFO("store read threads: " << read_threads);
  // A small ring and small hand-overs: followers fall behind and come back often.
  auto opts = small_feed(256, 100);
  opts.store_read_threads = read_threads;
  test_node n{2, store, opts};
  REQUIRE(n->register_aggregate<bank::account>());

  constexpr int writers = 8, per_writer = 400, direct_batches = 50;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back(
      [&, w] { write(*n, "w" + std::to_string(w) + "-", per_writer, replies, failed); });
  // Another writer appends to the same store directly (the memory store allows it):
  // its commits can reach the feed out of order, which the feed must repair.
  threads.emplace_back([&] {
    for (int b = 0; b < direct_batches; ++b) fill(*store, 1, 10, "direct" + std::to_string(b) + "-");
  });

  // Both projections start while the writes are in full flow.
  REQUIRE(replies.wait_for(200));
  REQUIRE(n->register_projection<positions_of<first_tag>>());
  REQUIRE(replies.wait_for(writers * per_writer / 2));
  REQUIRE(n->register_projection<positions_of<second_tag>>());
  for (auto& t : threads) t.join();
  REQUIRE(replies.wait_for(writers * per_writer));
  REQUIRE(failed == 0);

  auto head = n.store().head_position();
  REQUIRE(head == 30'000 + writers * per_writer + direct_batches * 10);
  REQUIRE(positions_at<positions_of<first_tag>>(*n, head) == one_to(head));
  REQUIRE(positions_at<positions_of<second_tag>>(*n, head) == one_to(head));

  auto stats = n->feed_stats();
  REQUIRE(stats);
  CHECK(stats->answered_behind > 0); // they did read the store...
  CHECK(stats->answered_live > 0);   // ...and they did follow the ring
  CHECK(stats->peak_ring_events <= 256);
  CHECK(stats->head_position == head);
}

TEST_CASE("a projection blocked in apply stalls neither writers nor other projections, the "
          "feed stays within its bound, and it catches up exactly afterwards") {
  gate hold;
  slow_gate = &hold;
  struct reset {
    ~reset() { slow_gate = nullptr; }
  } reset_gate;

  counter replies;
  std::atomic<int> failed{0};
  test_node n{2, make_memory_journal(), small_feed(128, 32)};
  struct opener {
    gate& g;
    ~opener() { g.open(); } // before the node stops, even if a check below fails
  } open_on_exit{hold};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_projection<bank::balances>());
  REQUIRE(n->register_projection<slow_positions>());
  REQUIRE(n->execute<bank::account>("first", bank::open{"o"}));
  REQUIRE(hold.wait_for_arrival()); // the slow projection now sits in apply

  constexpr int writers = 4, per_writer = 1500;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back(
      [&, w] { write(*n, "s" + std::to_string(w) + "-", per_writer, replies, failed); });
  for (auto& t : threads) t.join();
  // Every write was acknowledged and the other projection is current, all while the
  // slow one is still blocked.
  REQUIRE(replies.wait_for(writers * per_writer));
  REQUIRE(failed == 0);
  auto head = n.store().head_position();
  REQUIRE(head == 1 + writers * per_writer);
  auto events = n->query<bank::balances>([](const bank::balances& b) { return b.events; }, head);
  REQUIRE(events);
  REQUIRE(*events == head);

  auto during = n->feed_stats();
  REQUIRE(during);
  CHECK(during->peak_ring_events <= 128);
  CHECK(during->ring_events <= 128);
  CHECK(during->head_position == head);

  hold.open();
  REQUIRE(positions_at<slow_positions>(*n, head) == one_to(head));
  auto after = n->feed_stats();
  REQUIRE(after);
  CHECK(after->answered_behind > 0); // it fell behind the ring and read the store
  CHECK(after->peak_ring_events <= 128);
}

namespace {

/// Reads only deposits of account streams, though it shares the account's event
/// variant: withdrawals and openings need no handler and are never decoded.
struct deposits_only {
  static constexpr std::string_view name = "deposits_only";
  static constexpr std::string_view category = "account";
  using event_type = bank::account::event_type;
  static constexpr std::array<std::string_view, 1> event_types{"deposited"};
  int64_t total = 0;
  uint64_t count = 0;
  void apply(const bank::deposited& d) {
    total += d.amount;
    ++count;
  }
};

struct lists_unhandled_type {
  static constexpr std::string_view name = "lists_unhandled_type";
  using event_type = bank::account::event_type;
  static constexpr std::array<std::string_view, 2> event_types{"deposited", "withdrawn"};
  void apply(const bank::deposited&) {}
};

struct lists_unknown_type {
  static constexpr std::string_view name = "lists_unknown_type";
  using event_type = bank::account::event_type;
  static constexpr std::array<std::string_view, 1> event_types{"depositted"};
  void apply(const bank::deposited&) {}
};

} // namespace

TEST_CASE("a type filter skips other events before decoding them") {
  auto store = make_memory_journal();
  auto garbage = [](std::string type) { return event_data{std::move(type), 1, {}, {0xff, 0xff}}; };
  REQUIRE(store->append_one({{"account", "a"}, expected_version::any,
                             {encoded(bank::opened{"o"}), encoded(bank::deposited{5}),
                              encoded(bank::withdrawn{2}), garbage("withdrawn"),
                              encoded(bank::deposited{7})}}));
  // Another category's "deposited" must not be read either (its bytes are garbage).
  REQUIRE(store->append_one({{"ledger", "x"}, expected_version::any, {garbage("deposited")}}));
  REQUIRE(store->append_one({{"account", "b"}, expected_version::any,
                             {encoded(bank::opened{"p"}), encoded(bank::deposited{11})}}));

  test_node n{2, store};
  REQUIRE(n->register_projection<deposits_only>());
  REQUIRE(n->register_projection<bank::balances>());
  auto head = store->head_position();
  auto seen = n->query<deposits_only>(
    [](const deposits_only& d) { return std::make_pair(d.count, d.total); }, head);
  REQUIRE(seen);
  CHECK(seen->first == 3);
  CHECK(seen->second == 23);
  // A projection that reads withdrawals does decode the damaged one, and says so.
  auto broken = n->query<bank::balances>([](const bank::balances& b) { return b.total; }, head);
  REQUIRE_FALSE(broken);
  CHECK(is_corrupt(broken.error()));

  auto unhandled = n->register_projection<lists_unhandled_type>();
  REQUIRE_FALSE(unhandled);
  CHECK(is_invalid_argument(unhandled.error()));
  CHECK(unhandled.error().message().find("no apply handler for it") != std::string::npos);
  auto unknown = n->register_projection<lists_unknown_type>();
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().message().find("not an alternative") != std::string::npos);
}
