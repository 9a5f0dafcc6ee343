// Event subscriptions never drop work: an event whose handler keeps failing is
// parked with the reason (stored, so it survives a restart), delivery goes on, and
// an operator retries it after a fix or discards it.
#include <catch2/catch.hpp>

#include <thread>

#include <cairn/file_journal.hpp>
#include <cairn/test_node.hpp>

#include "actors/audit_handler.hpp"
#include "actors/eventually.hpp"
#include "bank/account.hpp"
#include "conformance/journal_conformance_support.hpp"
#include "support/run_cli.hpp"

using namespace cairn;
using cairn::test::audit;
using cairn::test::eventually;
using cairn::test::run_cli;
using cairn::testkit::test_node;
using namespace std::chrono_literals;

TEST_CASE("a subscription parks the event its handler keeps failing on, keeps it over a "
          "restart, and retries it after the fix") {
  conformance::temp_dir dir;
  auto open_parts = [&] {
    file_journal_options o;
    o.sync = sync_policy::never;
    auto store = open_file_journal((dir.path / "events").string(), o);
    REQUIRE(store);
    auto snaps = open_file_snapshot_store((dir.path / "snapshots").string());
    REQUIRE(snaps);
    return std::make_pair(*store, *snaps);
  };
  notification_options opts;
  opts.retry_delay = 1ms;
  opts.max_attempts = 3;
  const event_filter deposits{"account", {"deposited"}};
  uint64_t poison = 0, poison2 = 0;
  {
    auto [store, snaps] = open_parts();
    audit a;
    test_node n{2, store, test_node::quiet(), snaps};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->execute<bank::account>("x", bank::open{"o"}));
    REQUIRE(n->execute<bank::account>("x", bank::deposit{1}));
    poison = n->execute<bank::account>("x", bank::deposit{13})->position;
    REQUIRE(n->execute<bank::account>("x", bank::deposit{2}));
    poison2 = n->execute<bank::account>("x", bank::deposit{13})->position;
    REQUIRE(n->subscribe_events("audit", deposits, a.handler(), opts));
    REQUIRE(eventually([&] { return a.count() == 2; })); // delivery went on past both
    REQUIRE(eventually([&] {
      auto p = n->parked_events("audit");
      return p && p->size() == 2;
    }));
    auto parked = n->parked_events("audit");
    REQUIRE(parked);
    REQUIRE(parked->size() == 2);
    auto& p = parked->front();
    REQUIRE(p.position == poison);
    REQUIRE(p.stream == "account-x");
    REQUIRE(p.type == "deposited");
    REQUIRE(p.reason == "unlucky amount");
    REQUIRE(p.attempts == 3);
    // Retrying before the fix keeps them parked and counts the attempt.
    auto early = n->retry_parked_events("audit");
    REQUIRE(early);
    REQUIRE(early->size() == 2);
    REQUIRE(early->front().attempts == 4);
    REQUIRE(is_not_found(n->parked_events("nobody").error()));
  }
  {
    auto [store, snaps] = open_parts();
    audit a;
    a.fixed = true; // the new build
    test_node n{2, store, test_node::quiet(), snaps};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->subscribe_events("audit", deposits, a.handler(), opts));
    auto parked = n->parked_events("audit");
    REQUIRE(parked);
    REQUIRE(parked->size() == 2); // kept over the restart
    REQUIRE(n->discard_parked_event("audit", poison2));
    REQUIRE(is_not_found(n->discard_parked_event("audit", poison2).error()));
    auto left = n->retry_parked_events("audit");
    REQUIRE(left);
    REQUIRE(left->empty());
    REQUIRE(a.saw(poison));
    REQUIRE_FALSE(a.saw(poison2));
    REQUIRE(n->parked_events("audit")->empty());
  }
}

TEST_CASE("parked subscription events with the cairn tool: listed beside the node, retried "
          "at the restart after the fix, discarded") {
  conformance::temp_dir dir;
  auto data = dir.path.string();
  auto open_parts = [&] {
    file_journal_options o;
    o.sync = sync_policy::never;
    auto store = open_file_journal((dir.path / "events").string(), o);
    REQUIRE(store);
    auto snaps = open_file_snapshot_store((dir.path / "snapshots").string());
    REQUIRE(snaps);
    return std::make_pair(*store, *snaps);
  };
  notification_options opts;
  opts.retry_delay = 1ms;
  opts.max_attempts = 2;
  const event_filter deposits{"account", {"deposited"}};
  uint64_t poison = 0, poison2 = 0;
  {
    auto [store, snaps] = open_parts();
    audit a;
    test_node n{2, store, test_node::quiet(), snaps};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->execute<bank::account>("y", bank::open{"o"}));
    poison = n->execute<bank::account>("y", bank::deposit{13})->position;
    poison2 = n->execute<bank::account>("y", bank::deposit{13})->position;
    REQUIRE(n->execute<bank::account>("y", bank::deposit{5}));
    REQUIRE(n->subscribe_events("audit", deposits, a.handler(), opts));
    REQUIRE(eventually([&] {
      auto p = n->parked_events("audit");
      return p && p->size() == 2 && a.count() == 1;
    }));
    // Listing works beside the running node; answering needs it stopped.
    auto [rc, listed] = run_cli({"--data", data, "subscriptions", "failed"});
    INFO(listed);
    REQUIRE(rc == 0);
    REQUIRE(listed.find("audit\t" + std::to_string(poison) + "\taccount-y\tdeposited\tunlucky amount") !=
            std::string::npos);
    REQUIRE(listed.find("2 attempt(s)") != std::string::npos);
    REQUIRE(listed.find("2 parked events") != std::string::npos);
    REQUIRE(run_cli({"--data", data, "subscriptions", "retry", "audit"}).first == 1);
  }
  auto pos = [](uint64_t p) { return std::to_string(p); };
  auto [rc_json, json] = run_cli({"--data", data, "subscriptions", "failed", "--json", "--name", "audit"});
  INFO(json);
  REQUIRE(rc_json == 0);
  REQUIRE(json.find("\"position\":" + pos(poison2)) != std::string::npos);
  REQUIRE(json.find("\"attempts\":2") != std::string::npos);
  REQUIRE(run_cli({"--data", data, "subscriptions", "retry", "audit", pos(poison)}).first == 0);
  REQUIRE(run_cli({"--data", data, "subscriptions", "discard", "audit", pos(poison2)}).first == 0);
  REQUIRE(run_cli({"--data", data, "subscriptions", "discard", "audit", pos(poison2)}).first == 1);
  REQUIRE(run_cli({"--data", data, "subscriptions", "retry", "nobody"}).first == 1);
  REQUIRE(run_cli({"--data", data, "subscriptions", "discard", "audit"}).first == 2);
  auto [rc2, after] = run_cli({"--data", data, "subscriptions", "failed"});
  INFO(after);
  REQUIRE(after.find("retry requested") != std::string::npos);
  REQUIRE(after.find("1 parked event\n") != std::string::npos);
  {
    auto [store, snaps] = open_parts();
    audit a;
    a.fixed = true; // the new build
    test_node n{2, store, test_node::quiet(), snaps};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->subscribe_events("audit", deposits, a.handler(), opts));
    REQUIRE(eventually([&] { return a.saw(poison); })); // retried as it started
    REQUIRE_FALSE(a.saw(poison2)); // discarded
    auto parked = n->parked_events("audit");
    REQUIRE(parked);
    REQUIRE(parked->empty());
  }
  auto [rc3, none] = run_cli({"--data", data, "subscriptions", "failed"});
  REQUIRE(rc3 == 0);
  REQUIRE(none == "0 parked events\n");
}
