// Events a saga can hand to no instance (its correlate throws, the event does not
// decode for it) are parked in the saga's dead-letter stream, never logged and
// skipped: the saga goes on with the others, they are counted and listed, and an
// operator retries them after a fix (through the node, or `cairn sagas retry --event`
// and a restart) or closes them.
#include <catch2/catch.hpp>

#include <cairn/file_journal.hpp>
#include <cairn/test_node.hpp>

#include "actors/eventually.hpp"
#include "actors/fulfilment.hpp"
#include "actors/shop_test_support.hpp"
#include "conformance/journal_conformance_support.hpp"

using namespace cairn;
using cairn::test::eventually;
using cairn::testkit::test_node;
using shop::test::bug_guard;
using shop::test::outcome;
using shop::test::place_order;
using shop::test::register_shop;
using shop::test::run_cli;
using shop::test::stock_item;
using shop::test::stream;

namespace {

std::vector<parked_saga_event> parked_events(node& n) {
  auto p = n.parked_saga_events("fulfilment");
  REQUIRE(p);
  return *p;
}

saga_status status(node& n) {
  auto s = n.saga_status_of<shop::fulfilment_saga>();
  REQUIRE(s);
  return *s;
}

/// Nothing open or pending, and `events` input events parked.
bool settled(node& n, size_t events) {
  auto s = n.saga_status_of<shop::fulfilment_saga>();
  return s && s->open == 0 && s->pending_steps == 0 && s->parked_events == events;
}

/// Appends an order event whose payload the saga cannot decode, straight to the store
/// (before a node runs on it: the node's journal actor is the store's only writer).
uint64_t append_undecodable(journal& store, const std::string& order_id) {
  auto r = store.append_one({stream_id{"order", order_id}, expected_version::any,
                             {event_data{"placed", 1, {}, bytes{0xff, 0xff, 0xff, 0xff}}}});
  REQUIRE(r);
  return r->last_position;
}

} // namespace

TEST_CASE("an event whose correlate throws is parked, the saga goes on, a retry after the "
          "fix delivers it, a close discards one that cannot be read") {
  bug_guard guard;
  shop::bugs::correlate_throws = true;
  auto store = make_memory_journal();
  auto junk = append_undecodable(*store, "junk-1");
  test_node n{2, store};
  register_shop(*n);
  stock_item(*n, "a", 5);
  place_order(*n, "lost-1", {{"a", 1}});
  place_order(*n, "good-1", {{"a", 1}});
  REQUIRE(eventually([&] { return outcome(*store, "good-1") == "confirmed"; }));
  REQUIRE(eventually([&] { return settled(*n, 2); }));

  auto p = parked_events(*n);
  REQUIRE(p.size() == 2);
  REQUIRE(p.front().position == junk);
  REQUIRE(p.front().code == errc::corrupt); // it does not decode for the saga
  REQUIRE(p.front().stream == "order-junk-1");
  p.erase(p.begin());
  REQUIRE(p.front().saga == "fulfilment");
  REQUIRE(p.front().position == stream(*store, "order", "lost-1").front().position);
  REQUIRE(p.front().stream == "order-lost-1");
  REQUIRE(p.front().type == "placed");
  REQUIRE(p.front().code == errc::invalid_argument);
  INFO(p.front().reason);
  REQUIRE(p.front().reason.find("a bug in correlate") != std::string::npos);
  REQUIRE(status(*n).parked == 0); // no instance is parked: the event is
  CHECK_THAT(n->metrics_text(), Catch::Contains("cairn_saga_events_parked{saga=\"fulfilment\"} 2"));
  // Durably: the dead-letter stream holds them.
  auto dead = stream(*store, "cairn_saga_unrouted", "fulfilment");
  REQUIRE(dead.size() == 2);
  REQUIRE(dead.front().type == "cairn.saga_unrouted");
  REQUIRE(outcome(*store, "lost-1").empty());

  // A retry before the fix fails the same way and leaves it parked.
  auto early = n->retry_saga_event("fulfilment", p.front().position);
  REQUIRE_FALSE(early);
  REQUIRE(early.error().message().find("a bug in correlate") != std::string::npos);
  REQUIRE(eventually([&] { return stream(*store, "cairn_saga_unrouted", "fulfilment").size() == 3; }));
  REQUIRE(parked_events(*n).size() == 2);

  shop::bugs::fix_all(); // the new build
  REQUIRE(n->retry_saga_event("fulfilment", p.front().position));
  REQUIRE(eventually([&] { return outcome(*store, "lost-1") == "confirmed"; }));
  REQUIRE(eventually([&] { return settled(*n, 1); }));
  REQUIRE(parked_events(*n).size() == 1);
  REQUIRE(stream(*store, "cairn_saga_unrouted", "fulfilment").back().type ==
          "cairn.saga_unrouted_delivered");
  auto again = n->retry_saga_event("fulfilment", p.front().position);
  REQUIRE_FALSE(again);
  REQUIRE(is_not_found(again.error()));

  // The event that does not decode cannot be fixed by a new build: closed by hand.
  REQUIRE(n->close_saga_event("fulfilment", junk, "junk written by a test"));
  REQUIRE(eventually([&] { return settled(*n, 0); }));
  REQUIRE(is_not_found(n->close_saga_event("fulfilment", junk).error()));
  REQUIRE(is_not_found(n->retry_saga_event("nosuchsaga", junk).error()));
}

TEST_CASE("parked events end to end on a file store: listed and answered with the cairn tool, "
          "retried at the restart after the fix") {
  bug_guard guard;
  conformance::temp_dir dir;
  auto data = (dir.path / "data").string();
  auto open_store = [&] {
    file_journal_options o;
    o.sync = sync_policy::never;
    auto s = open_file_journal((dir.path / "data" / "events").string(), o);
    REQUIRE(s);
    return *s;
  };
  shop::bugs::correlate_throws = true;
  uint64_t lost = 0, junk = append_undecodable(*open_store(), "junk-2");
  {
    test_node n{2, open_store()};
    register_shop(*n);
    stock_item(*n, "a", 5);
    place_order(*n, "lost-2", {{"a", 2}});
    place_order(*n, "good-3", {{"a", 1}});
    REQUIRE(eventually([&] { return outcome(n.store(), "good-3") == "confirmed"; }));
    REQUIRE(eventually([&] { return settled(*n, 2); }));
    lost = stream(n.store(), "order", "lost-2").front().position;
  }
  {
    // A restart with the bug still there: they stay parked, and counted.
    test_node n{2, open_store()};
    register_shop(*n);
    REQUIRE(eventually([&] { return settled(*n, 2); }));
  }

  auto [rc, listed] = run_cli({"--data", data, "sagas", "failed"});
  INFO(listed);
  REQUIRE(rc == 0);
  REQUIRE(listed.find("fulfilment\t@" + std::to_string(lost) + "\tinvalid_argument\t") !=
          std::string::npos);
  REQUIRE(listed.find("fulfilment\t@" + std::to_string(junk) + "\tcorrupt\t") != std::string::npos);
  REQUIRE(listed.find("event order-lost-2 placed") != std::string::npos);
  REQUIRE(listed.find("0 parked instances, 2 parked events") != std::string::npos);
  auto [rc_json, json] = run_cli({"--data", data, "sagas", "failed", "--json"});
  INFO(json);
  REQUIRE(rc_json == 0);
  REQUIRE(json.find("\"event_position\":" + std::to_string(lost)) != std::string::npos);

  auto pos = [](uint64_t p) { return std::to_string(p); };
  REQUIRE(run_cli({"--data", data, "sagas", "retry", "fulfilment", "--event", pos(lost)}).first == 0);
  REQUIRE(run_cli({"--data", data, "sagas", "close", "fulfilment", "--event", pos(junk), "--reason",
                   "not an order"}).first == 0);
  REQUIRE(run_cli({"--data", data, "sagas", "close", "fulfilment", "--event", pos(junk)}).first == 1);
  REQUIRE(run_cli({"--data", data, "sagas", "retry", "fulfilment", "--event", "x"}).first == 2);
  auto [rc2, after] = run_cli({"--data", data, "sagas", "failed"});
  INFO(after);
  REQUIRE(after.find("retry requested") != std::string::npos);
  REQUIRE(after.find("\t@" + pos(junk) + "\t") == std::string::npos);

  shop::bugs::fix_all(); // the new build, then the restart
  {
    test_node n{2, open_store()};
    register_shop(*n);
    REQUIRE(eventually([&] { return outcome(n.store(), "lost-2") == "confirmed"; }));
    REQUIRE(eventually([&] { return settled(*n, 0); }));
  }
  auto [rc3, none] = run_cli({"--data", data, "sagas", "failed"});
  REQUIRE(rc3 == 0);
  REQUIRE(none == "0 parked instances\n");
}
