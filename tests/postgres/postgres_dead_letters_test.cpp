// Dead letters on the PostgreSQL store with the cairn tool: a node on a real server parks
// a subscription's events, saga instances and saga input events; `cairn --postgres-url`
// lists them (beside the running node), retries or closes/discards them while the node
// is stopped, and the next node start carries the answers out. Bad input is a typed
// failure, and the tool never creates a schema.
#include <catch2/catch.hpp>

#include <initializer_list>

#include <cairn/postgres_journal.hpp>
#include <cairn/postgres_tools.hpp>
#include <cairn/test_node.hpp>

#include "actors/audit_handler.hpp"
#include "actors/eventually.hpp"
#include "actors/fulfilment.hpp"
#include "actors/shop_test_support.hpp"
#include "bank/account.hpp"
#include "postgres/pg_server.hpp"

using namespace cairn;
using namespace std::chrono_literals;
using cairn::test::audit;
using cairn::test::eventually;
using cairn::test::pg_server;
using cairn::test::run_cli;
using cairn::testkit::test_node;

namespace {

/// A fresh schema on the test's server, opened as a node opens it, and the tool on it.
struct pg_store {
  std::string url = pg_server::shared().url();
  postgres_options options;
  pg_store() { options.schema = pg_server::fresh_schema(); }

  std::shared_ptr<journal> events() const {
    auto j = open_postgres_journal(url, options);
    REQUIRE(j);
    return *j;
  }
  std::shared_ptr<snapshot_store> snapshots() const {
    auto s = open_postgres_snapshot_store(url, options);
    REQUIRE(s);
    return *s;
  }
  /// `cairn --postgres-url URL --postgres-schema SCHEMA args...`: exit code and stdout.
  std::pair<int, std::string> cli(std::initializer_list<std::string> args) const {
    std::vector<std::string> all{"--postgres-url", url, "--postgres-schema", options.schema};
    all.insert(all.end(), args);
    return run_cli(all);
  }
};

std::string pos(uint64_t p) { return std::to_string(p); }

/// The tool fails with exit code 1 (not a crash, not a usage error) on a server that
/// does not answer and on a schema that holds no store, and creates no schema.
void check_bad_targets(const pg_store& pg, std::initializer_list<std::string> args) {
  std::vector<std::string> unreachable{"--postgres-url", "postgresql://postgres@127.0.0.1:1/postgres"};
  unreachable.insert(unreachable.end(), args);
  CHECK(run_cli(unreachable).first == 1);
  postgres_options none = pg.options;
  none.schema = pg_server::fresh_schema();
  std::vector<std::string> missing{"--postgres-url", pg.url, "--postgres-schema", none.schema};
  missing.insert(missing.end(), args);
  CHECK(run_cli(missing).first == 1);
  auto version = postgres_store_version(pg.url, none);
  REQUIRE_FALSE(version);
  CHECK(is_not_found(version.error()));
}

} // namespace

TEST_CASE("postgres: parked subscription events are listed, retried and discarded with the "
          "cairn tool, and the next node start handles them", "[subscriptions]") {
  pg_store pg;
  notification_options opts;
  opts.retry_delay = 1ms;
  opts.max_attempts = 2;
  const event_filter deposits{"account", {"deposited"}};
  uint64_t poison = 0, poison2 = 0;
  {
    audit a;
    test_node n{2, pg.events(), test_node::quiet(), pg.snapshots()};
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
    // Listing reads the snapshots table: it works beside the running node.
    auto [rc, listed] = pg.cli({"subscriptions", "failed"});
    INFO(listed);
    REQUIRE(rc == 0);
    REQUIRE(listed.find("audit\t" + pos(poison) + "\taccount-y\tdeposited\tunlucky amount") !=
            std::string::npos);
    REQUIRE(listed.find("audit\t" + pos(poison2) + "\t") != std::string::npos);
    REQUIRE(listed.find("2 parked events") != std::string::npos);
  } // the node stops: answers are given with no node running (see `subscriptions --help`)

  auto [rc_json, json] = pg.cli({"subscriptions", "failed", "--json", "--name", "audit"});
  INFO(json);
  REQUIRE(rc_json == 0);
  REQUIRE(json.find("\"position\":" + pos(poison2) + ",") != std::string::npos);
  REQUIRE(json.find("\"attempts\":2") != std::string::npos);
  REQUIRE(pg.cli({"subscriptions", "retry", "audit", pos(poison)}).first == 0);
  REQUIRE(pg.cli({"subscriptions", "discard", "audit", pos(poison2)}).first == 0);
  // Typed failures: what is not parked, an unknown subscription, a folder option.
  REQUIRE(pg.cli({"subscriptions", "discard", "audit", pos(poison2)}).first == 1);
  REQUIRE(pg.cli({"subscriptions", "retry", "audit", pos(poison2)}).first == 1);
  REQUIRE(pg.cli({"subscriptions", "retry", "nobody"}).first == 1);
  REQUIRE(pg.cli({"subscriptions", "failed", "--snapshots", "somewhere"}).first == 2);
  check_bad_targets(pg, {"subscriptions", "failed"});
  check_bad_targets(pg, {"subscriptions", "retry", "audit"});
  auto [rc2, after] = pg.cli({"subscriptions", "failed"});
  INFO(after);
  REQUIRE(rc2 == 0);
  REQUIRE(after.find("retry requested") != std::string::npos);
  REQUIRE(after.find("1 parked event\n") != std::string::npos); // the discard is stored

  {
    audit a;
    a.fixed = true; // the new build
    test_node n{2, pg.events(), test_node::quiet(), pg.snapshots()};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->subscribe_events("audit", deposits, a.handler(), opts));
    REQUIRE(eventually([&] { return a.saw(poison); })); // retried as it started
    REQUIRE_FALSE(a.saw(poison2));                      // discarded
    auto parked = n->parked_events("audit");
    REQUIRE(parked);
    REQUIRE(parked->empty());
  }
  // The emptied list is stored too: a later start finds nothing parked.
  auto [rc3, none] = pg.cli({"subscriptions", "failed"});
  REQUIRE(rc3 == 0);
  REQUIRE(none == "0 parked events\n");
}

TEST_CASE("postgres: parked saga instances and saga events are listed, retried and closed "
          "with the cairn tool, and the next node start carries it out", "[sagas]") {
  shop::test::bug_guard guard;
  using shop::test::outcome;
  pg_store pg;
  shop::bugs::empty_release_target = true; // a refused line's compensation is invalid
  shop::bugs::correlate_throws = true;     // orders "lost-*" reach no instance
  uint64_t lost = 0, junk = 0;
  {
    auto store = pg.events();
    // An order event the saga cannot decode, stored before the node runs.
    auto r = store->append_one({stream_id{"order", "junk-1"}, expected_version::any,
                                {event_data{"placed", 1, {}, bytes{0xff, 0xff, 0xff}}}});
    REQUIRE(r);
    junk = r->last_position;
    test_node n{2, store};
    shop::test::register_shop(*n);
    shop::test::stock_item(*n, "a", 5);
    shop::test::stock_item(*n, "b", 0);
    shop::test::place_order(*n, "o-retry", {{"a", 1}, {"b", 1}});
    shop::test::place_order(*n, "o-close", {{"a", 2}, {"b", 1}});
    shop::test::place_order(*n, "lost-1", {{"a", 1}});
    REQUIRE(eventually([&] {
      auto s = n->saga_status_of<shop::fulfilment_saga>();
      return s && s->open == 0 && s->pending_steps == 0 && s->parked == 2 && s->parked_events == 2;
    }));
    lost = shop::test::stream(*store, "order", "lost-1").front().position;
    auto [rc, listed] = pg.cli({"sagas", "failed"}); // beside the running node
    INFO(listed);
    REQUIRE(rc == 0);
    REQUIRE(listed.find("fulfilment\to-close\tinvalid_argument\t") != std::string::npos);
    REQUIRE(listed.find("fulfilment\to-retry\tinvalid_argument\t") != std::string::npos);
    REQUIRE(listed.find("fulfilment\t@" + pos(lost) + "\tinvalid_argument\t") != std::string::npos);
    REQUIRE(listed.find("fulfilment\t@" + pos(junk) + "\tcorrupt\t") != std::string::npos);
    REQUIRE(listed.find("2 parked instances, 2 parked events") != std::string::npos);
  } // the node stops

  REQUIRE(pg.cli({"sagas", "retry", "fulfilment", "o-retry"}).first == 0);
  REQUIRE(pg.cli({"sagas", "close", "fulfilment", "o-close", "--reason", "refunded by hand"}).first == 0);
  REQUIRE(pg.cli({"sagas", "retry", "fulfilment", "--event", pos(lost)}).first == 0);
  REQUIRE(pg.cli({"sagas", "close", "fulfilment", "--event", pos(junk), "--reason", "not an order"})
            .first == 0);
  // Typed failures: what is not parked (any more), an unknown saga, bad arguments.
  REQUIRE(pg.cli({"sagas", "close", "fulfilment", "o-close"}).first == 1);
  REQUIRE(pg.cli({"sagas", "retry", "fulfilment", "o-none"}).first == 1);
  REQUIRE(pg.cli({"sagas", "close", "fulfilment", "--event", pos(junk)}).first == 1);
  REQUIRE(pg.cli({"sagas", "retry", "nosuchsaga", "--event", pos(lost)}).first == 1);
  REQUIRE(pg.cli({"sagas", "retry", "fulfilment", "--event", "x"}).first == 2);
  check_bad_targets(pg, {"sagas", "failed"});
  check_bad_targets(pg, {"sagas", "retry", "fulfilment", "o-retry"});
  auto [rc2, after] = pg.cli({"sagas", "failed", "--json"});
  INFO(after);
  REQUIRE(rc2 == 0);
  REQUIRE(after.find("\"key\":\"o-retry\"") != std::string::npos);
  REQUIRE(after.find("\"event_position\":" + pos(lost) + ",") != std::string::npos);
  REQUIRE(after.find("o-close") == std::string::npos);
  REQUIRE(after.find("\"event_position\":" + pos(junk) + ",") == std::string::npos);
  REQUIRE(after.find("\"retry_requested\":false") == std::string::npos); // both asked for

  shop::bugs::fix_all(); // the new build, then the restart
  {
    auto store = pg.events();
    test_node n{2, store};
    shop::test::register_shop(*n);
    REQUIRE(eventually([&] { return outcome(*store, "o-retry") == "cancelled"; }));
    REQUIRE(eventually([&] { return outcome(*store, "lost-1") == "confirmed"; }));
    REQUIRE(eventually([&] {
      auto s = n->saga_status_of<shop::fulfilment_saga>();
      return s && s->open == 0 && s->pending_steps == 0 && s->parked == 0 && s->parked_events == 0;
    }));
    REQUIRE(outcome(*store, "o-close").empty()); // closed: abandoned where it was
  }
  auto [rc3, none] = pg.cli({"sagas", "failed"});
  REQUIRE(rc3 == 0);
  REQUIRE(none == "0 parked instances\n");
}
