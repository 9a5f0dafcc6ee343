// Event versioning on a node: events stored by older programs (v1 schemas, an old
// type name, split events) are read by the v3 aggregate and projection, and the
// node's temporal queries see them too.
#include <catch2/catch.hpp>

#include <chrono>

#include <cairn/memory_journal.hpp>
#include <cairn/test_node.hpp>

#include "framework/versioned_wallet.hpp"

using namespace cairn;
using cairn::testkit::test_node;
using namespace versioned;

namespace {

/// A memory store holding wallet w1's history as older programs wrote it.
std::shared_ptr<journal> store_with_old_events() {
  auto store = make_memory_journal();
  REQUIRE(store->append_one({stream_id{"wallet", "w1"}, expected_version::no_stream, old_history()}));
  return store;
}

// An event variant whose declared upcasters are unsound (a step that leads nowhere).
struct gadget_added { int64_t n = 0; };
struct gadget_added_v1 { int64_t n = 0; };
struct gadget_added_v2 { int64_t n = 0; };
inline auto describe(cairn::type<gadget_added>) {
  return cairn::schema<gadget_added>("gadget_added", 3, cairn::field("n", &gadget_added::n));
}
inline auto describe(cairn::type<gadget_added_v1>) {
  return cairn::schema<gadget_added_v1>("gadget_added", 1, cairn::field("n", &gadget_added_v1::n));
}
inline auto describe(cairn::type<gadget_added_v2>) {
  return cairn::schema<gadget_added_v2>("gadget_added", 2, cairn::field("n", &gadget_added_v2::n));
}
struct add_gadget { int64_t n = 0; };
inline auto describe(cairn::type<add_gadget>) {
  return cairn::schema<add_gadget>("add_gadget", 1, cairn::field("n", &add_gadget::n));
}
struct gadgets {
  using command_type = std::variant<add_gadget>;
  using event_type = std::variant<gadget_added>;
  static constexpr std::string_view category = "gadgets";
  int64_t count = 0;
  decision<event_type> decide(const add_gadget& c) const { return gadget_added{c.n}; }
  void apply(const gadget_added& e) { count += e.n; }
};
inline auto upcasters(cairn::type<gadgets::event_type>) {
  return upcaster_set<gadgets::event_type>{}.add(
    [](const gadget_added_v1& e) { return gadget_added_v2{e.n}; }); // and v2 -> v3 is missing
}
struct gadget_count {
  static constexpr std::string_view name = "gadget_count";
  using event_type = gadgets::event_type;
  int64_t count = 0;
  void apply(const gadget_added& e) { count += e.n; }
};

} // namespace

TEST_CASE("a v3 aggregate on a node recovers from v1, renamed and split events") {
  test_node n{2, store_with_old_events()};
  REQUIRE(n->register_aggregate<wallet>());
  // The aggregate's version is the stored stream's (8), though 9 events were applied.
  auto r = n->execute<wallet>("w1", withdraw{expected_balance});
  REQUIRE(r);
  REQUIRE(r->version == 9);
  REQUIRE(r->position == 9);
  auto overdrawn = n->execute<wallet>("w1", withdraw{1});
  REQUIRE(is_rejected(overdrawn.error()));
  // An optimistic check against the stored version passes.
  auto cmd = make_command<wallet>("w1", deposit{5});
  cmd.expected_version = 9;
  auto checked = n->execute_command(cmd);
  REQUIRE(checked);
  REQUIRE(checked->version == 10);
}

TEST_CASE("a v3 projection on a node applies every upcast event, split parts included") {
  test_node n{2, store_with_old_events()};
  REQUIRE(n->register_aggregate<wallet>());
  REQUIRE(n->register_projection<wallet_totals>());
  auto r = n->execute<wallet>("w1", deposit{1});
  REQUIRE(r);
  auto seen = n->query<wallet_totals>(
    [](const wallet_totals& t) { return std::make_tuple(t.balance, t.fees, t.positions); },
    r->position);
  REQUIRE(seen);
  auto [balance, fees, positions] = *seen;
  REQUIRE(balance == expected_balance + 1);
  REQUIRE(fees == 5);
  // Each part of a split carries the stored event's position; the dropped event (7) none.
  REQUIRE(positions == std::vector<uint64_t>{1, 2, 3, 4, 5, 5, 6, 6, 8, 9});
}

TEST_CASE("the node's temporal queries read old events through the upcasters") {
  test_node n{2, store_with_old_events()};
  REQUIRE(n->register_aggregate<wallet>());
  auto v4 = n->state_at<wallet>("w1", 4);
  REQUIRE(v4);
  REQUIRE(v4->balance == 100 + 250 + 200);
  REQUIRE(v4->currency == "EUR");
  auto v3 = n->state_at<wallet>("w1", 3);
  REQUIRE(v3);
  REQUIRE(v3->currency == "CHF");
  REQUIRE(is_not_found(n->state_at<wallet>("w1", 99).error()));

  auto r = n->execute<wallet>("w1", withdraw{10});
  REQUIRE(r);
  auto now = n->state_as_of<wallet>("w1", std::chrono::system_clock::now() + std::chrono::hours{1});
  REQUIRE(now);
  REQUIRE(now->balance == expected_balance - 10);
  auto long_ago = n->state_as_of<wallet>("w1", std::chrono::system_clock::time_point{});
  REQUIRE(long_ago);
  REQUIRE_FALSE(long_ago->is_open);
}

TEST_CASE("an old event with no upcaster is a typed error for aggregate and projection") {
  auto store = store_with_old_events();
  REQUIRE(store->append_one({stream_id{"wallet", "w2"}, expected_version::no_stream,
                             {stored(opened{"bo"}), event_data{"deposited", 9, {}, {}}}}));
  test_node n{2, store};
  REQUIRE(n->register_aggregate<wallet>());
  REQUIRE(n->register_projection<wallet_totals>());
  auto r = n->execute<wallet>("w2", deposit{1});
  REQUIRE_FALSE(r);
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(r.error().message().find("no upcaster for deposited v9") != std::string::npos);
  auto q = n->query<wallet_totals>([](const wallet_totals& t) { return t.balance; },
                                   store->head_position());
  REQUIRE_FALSE(q);
  REQUIRE(is_corrupt(q.error()));
  // The node keeps serving the wallet whose history upcasts.
  REQUIRE(n->execute<wallet>("w1", deposit{1}));
}

TEST_CASE("registering types whose upcasters are unsound is refused, naming the problem") {
  test_node n;
  auto a = n->register_aggregate<gadgets>();
  REQUIRE(is_invalid_argument(a.error()));
  REQUIRE(a.error().message() ==
          "gadgets: the upcaster from gadget_added v1 produces gadget_added v2, which is not "
          "current and has no upcaster");
  auto p = n->register_projection<gadget_count>();
  REQUIRE(is_invalid_argument(p.error()));
  REQUIRE(p.error().message().find("gadget_count: the upcaster from gadget_added v1") == 0);
}
