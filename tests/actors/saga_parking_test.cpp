// Sagas never drop work and never spin: with the shop domain (fulfilment.hpp), an
// invalid command goes to on_rejected; a decision that cannot be carried out parks
// its instance durably (listed, counted), the others go on, and an operator retries
// it after a fix or closes it, through the node or the `cairn sagas` tool.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <cairn/file_journal.hpp>
#include <cairn/saga_process.hpp>
#include <cairn/test_node.hpp>

#include "actors/eventually.hpp"
#include "actors/fulfilment.hpp"
#include "actors/shop_test_support.hpp"
#include "conformance/journal_conformance_support.hpp"

using namespace cairn;
using cairn::test::eventually;
using cairn::testkit::test_node;

namespace {

using shop::test::bug_guard;
using shop::test::outcome;
using shop::test::register_shop;
using shop::test::run_cli;
using shop::test::stream;

std::string cancel_reason(const journal& store, const std::string& id) {
  auto e = variant_codec<shop::order::event_type>::decode(stream(store, "order", id).back());
  REQUIRE(e);
  return std::get<shop::cancelled>(*e).reason;
}

int64_t available(const journal& store, const std::string& id) {
  shop::item state;
  for (auto& e : stream(store, "item", id)) {
    auto ev = variant_codec<shop::item::event_type>::decode(e);
    REQUIRE(ev);
    std::visit([&](const auto& x) { state.apply(x); }, *ev);
  }
  return state.available;
}

void stock(node& n, const std::string& id, int64_t qty) { shop::test::stock_item(n, id, qty); }

void place(node& n, const std::string& id, std::vector<shop::line> lines) {
  shop::test::place_order(n, id, std::move(lines));
}

std::vector<parked_saga> parked(node& n) {
  auto p = n.parked_sagas("fulfilment");
  REQUIRE(p);
  return *p;
}

bool settled(node& n, size_t parked_count) {
  auto s = n.saga_status_of<shop::fulfilment_saga>();
  return s && s->open == 0 && s->parked == parked_count && s->pending_steps == 0;
}

} // namespace

TEST_CASE("a command with an empty target id goes to on_rejected, which compensates") {
  bug_guard guard;
  shop::bugs::empty_reserve_target = true; // the second line's reserve has no item id
  test_node n;
  register_shop(*n);
  stock(*n, "a", 5);
  stock(*n, "b", 5);
  place(*n, "o1", {{"a", 2}, {"b", 1}});
  REQUIRE(eventually([&] { return !outcome(n.store(), "o1").empty(); }));
  REQUIRE(outcome(n.store(), "o1") == "cancelled");
  auto reason = cancel_reason(n.store(), "o1");
  INFO(reason);
  REQUIRE(reason.find("reserve 1") != std::string::npos);
  REQUIRE(reason.find("empty id") != std::string::npos);
  REQUIRE(eventually([&] { return settled(*n, 0); }));
  REQUIRE(available(n.store(), "a") == 5); // reserved, then released
  REQUIRE(available(n.store(), "b") == 5);
  bool recorded = false;
  for (auto& e : stream(n.store(), "saga_fulfilment", "o1"))
    if (e.type == "cairn.saga_failed") {
      auto f = decode<saga_failed>(e.payload);
      REQUIRE(f);
      recorded = recorded || f->code == static_cast<uint8_t>(errc::invalid_argument);
    }
  REQUIRE(recorded);
}

TEST_CASE("an invalid compensation parks the instance instead of looping, after a fix a "
          "retry finishes it") {
  bug_guard guard;
  shop::bugs::empty_release_target = true;
  test_node n;
  register_shop(*n);
  stock(*n, "a", 5);
  stock(*n, "b", 0);
  place(*n, "o2", {{"a", 2}, {"b", 1}}); // b is refused; releasing a has no item id
  REQUIRE(eventually([&] { return parked(*n).size() == 1; }));
  place(*n, "o3", {{"a", 1}}); // other instances keep going
  REQUIRE(eventually([&] { return outcome(n.store(), "o3") == "confirmed"; }));
  REQUIRE(eventually([&] { return settled(*n, 1); }));

  auto p = parked(*n).front();
  REQUIRE(p.saga == "fulfilment");
  REQUIRE(p.key == "o2");
  CHECK_THAT(n->metrics_text(),
             Catch::Contains("cairn_saga_instances_parked{saga=\"fulfilment\"} 1"));
  REQUIRE(p.code == errc::invalid_argument);
  INFO(p.reason);
  REQUIRE(p.reason.find("release 0") != std::string::npos);
  REQUIRE(p.pending_steps == 1); // the refused reserve: its failure is handled on retry
  // It does not spin: nothing more is written while it waits.
  auto version = stream(n.store(), "saga_fulfilment", "o2").size();
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  REQUIRE(stream(n.store(), "saga_fulfilment", "o2").size() == version);
  REQUIRE(outcome(n.store(), "o2").empty());

  shop::bugs::fix_all(); // the new build
  REQUIRE(n->retry_saga("fulfilment", "o2"));
  REQUIRE(eventually([&] { return outcome(n.store(), "o2") == "cancelled"; }));
  REQUIRE(eventually([&] { return settled(*n, 0); }));
  REQUIRE(parked(*n).empty());
  REQUIRE(available(n.store(), "a") == 4); // o2's reservation released, o3's kept
  // Retrying what is not parked says so.
  auto again = n->retry_saga("fulfilment", "o2");
  REQUIRE_FALSE(again);
  REQUIRE(is_not_found(again.error()));
  REQUIRE(is_not_found(n->retry_saga("nosuchsaga", "o2").error()));
}

TEST_CASE("a react that throws parks the instance with its input, a retry after the fix "
          "processes it") {
  bug_guard guard;
  shop::bugs::react_throws = true;
  test_node n;
  register_shop(*n);
  stock(*n, "a", 5);
  place(*n, "bad-1", {{"a", 1}});
  place(*n, "good-1", {{"a", 1}});
  REQUIRE(eventually([&] { return outcome(n.store(), "good-1") == "confirmed"; }));
  REQUIRE(eventually([&] { return settled(*n, 1); }));
  auto p = parked(*n);
  REQUIRE(p.size() == 1);
  REQUIRE(p.front().key == "bad-1");
  REQUIRE(p.front().reason.find("a bug in react") != std::string::npos);
  REQUIRE(p.front().held.size() == 1); // the placed event, kept for the retry
  REQUIRE(p.front().held.front() == stream(n.store(), "order", "bad-1").front().position);

  // A retry before the fix fails the same way and leaves it parked.
  auto early = n->retry_saga("fulfilment", "bad-1");
  REQUIRE_FALSE(early);
  REQUIRE(parked(*n).size() == 1);
  REQUIRE(parked(*n).front().held.size() == 1);

  shop::bugs::fix_all();
  REQUIRE(n->retry_saga("fulfilment", "bad-1"));
  REQUIRE(eventually([&] { return outcome(n.store(), "bad-1") == "confirmed"; }));
  REQUIRE(eventually([&] { return settled(*n, 0); }));
  REQUIRE(available(n.store(), "a") == 3);
}

TEST_CASE("an event its apply cannot take parks the instance, also when it is loaded, "
          "close ends it for good") {
  bug_guard guard;
  auto store = make_memory_journal();
  shop::bugs::apply_throws = true; // line_reserved cannot be applied
  {
    test_node n{2, store};
    register_shop(*n);
    stock(*n, "a", 5);
    place(*n, "p1", {{"a", 1}});
    place(*n, "p2", {{"a", 1}});
    REQUIRE(eventually([&] { return settled(*n, 2); }));
    for (auto& p : parked(*n)) {
      REQUIRE(p.reason.find("a bug in apply") != std::string::npos);
      REQUIRE(p.held.size() == 1); // the reserved event
    }
    REQUIRE(n->close_saga("fulfilment", "p2", "given up by hand"));
    REQUIRE(eventually([&] { return settled(*n, 1); }));
    REQUIRE(parked(*n).size() == 1);
    auto closing = stream(*store, "saga_fulfilment", "p2").back();
    REQUIRE(closing.type == "cairn.saga_closed");
    REQUIRE(is_not_found(n->close_saga("fulfilment", "p2").error()));
  }
  {
    // A restart with the bug still there: p1 is parked again as it is loaded.
    test_node n{2, store};
    register_shop(*n);
    REQUIRE(eventually([&] { return settled(*n, 1); }));
    REQUIRE(parked(*n).front().key == "p1");
    shop::bugs::fix_all();
    REQUIRE(n->retry_saga("fulfilment", "p1"));
    REQUIRE(eventually([&] { return outcome(*store, "p1") == "confirmed"; }));
    REQUIRE(eventually([&] { return settled(*n, 0); }));
    REQUIRE(outcome(*store, "p2").empty()); // closed: abandoned where it was
  }
}

TEST_CASE("dead letters end to end on a file store: park, list, retry after a fix, close "
          "with the cairn tool") {
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
  shop::bugs::empty_release_target = true;
  {
    test_node n{2, open_store()};
    register_shop(*n);
    stock(*n, "a", 5);
    stock(*n, "b", 0);
    place(*n, "o-retry", {{"a", 1}, {"b", 1}});
    place(*n, "o-close", {{"a", 2}, {"b", 1}});
    REQUIRE(eventually([&] { return settled(*n, 2); }));
  } // the node stops: both wait in the store

  auto [rc, listed] = run_cli({"--data", data, "sagas", "failed"});
  INFO(listed);
  REQUIRE(rc == 0);
  REQUIRE(listed.find("fulfilment\to-close\tinvalid_argument\t") != std::string::npos);
  REQUIRE(listed.find("fulfilment\to-retry\tinvalid_argument\t") != std::string::npos);
  REQUIRE(listed.find("2 parked instances") != std::string::npos);
  auto [rc_json, json] = run_cli({"--data", data, "sagas", "failed", "--json", "--saga", "fulfilment"});
  REQUIRE(rc_json == 0);
  REQUIRE(json.find("\"key\":\"o-retry\"") != std::string::npos);
  REQUIRE(json.find("\"pending_steps\":1") != std::string::npos);

  REQUIRE(run_cli({"--data", data, "sagas", "retry", "fulfilment", "o-retry"}).first == 0);
  REQUIRE(run_cli({"--data", data, "sagas", "close", "fulfilment", "o-close", "--reason", "refunded by hand"})
            .first == 0);
  REQUIRE(run_cli({"--data", data, "sagas", "close", "fulfilment", "o-none"}).first == 1);
  REQUIRE(run_cli({"--data", data, "sagas", "retry", "fulfilment"}).first == 2);
  auto [rc2, after] = run_cli({"--data", data, "sagas", "failed"});
  INFO(after);
  REQUIRE(after.find("retry requested") != std::string::npos);
  REQUIRE(after.find("o-close") == std::string::npos);

  shop::bugs::fix_all(); // the new build, then the restart
  {
    test_node n{2, open_store()};
    register_shop(*n);
    REQUIRE(eventually([&] { return outcome(n.store(), "o-retry") == "cancelled"; }));
    REQUIRE(eventually([&] { return settled(*n, 0); }));
    REQUIRE(outcome(n.store(), "o-close").empty());
    REQUIRE(available(n.store(), "a") == 3); // o-retry released its 1; o-close keeps 2
  }
  auto [rc3, none] = run_cli({"--data", data, "sagas", "failed"});
  REQUIRE(rc3 == 0);
  REQUIRE(none == "0 parked instances\n");
}
