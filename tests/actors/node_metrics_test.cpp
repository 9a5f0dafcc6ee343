// node::metrics_text end to end: what a node counts while it serves commands, its
// projection and store, rendered as Prometheus text (checked by a strict reader).
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <cairn/file_journal.hpp>
#include <cairn/test_node.hpp>

#include "bank/account.hpp"
#include "bank/balances.hpp"
#include "conformance/journal_conformance_support.hpp"
#include "support/prometheus_text.hpp"

using namespace cairn;
using cairn::testkit::test_node;
using cairn::test::parse_prometheus;
using cairn::test::prometheus_text;

namespace {

prometheus_text scrape(node& n) {
  auto text = n.metrics_text();
  auto p = parse_prometheus(text);
  INFO(text);
  for (auto& problem : p.problems) FAIL_CHECK(problem);
  REQUIRE(p.problems.empty());
  return p;
}

std::map<std::string, std::string> outcome(const char* o) {
  return {{"category", "account"}, {"outcome", o}};
}

const std::map<std::string, std::string> account{{"category", "account"}};

} // namespace

TEST_CASE("a node's metrics count commands by outcome, batches, and its projection's position") {
  test_node n;
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_projection<bank::balances>());
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));            // handled
  auto dep = n->execute<bank::account>("a1", bank::deposit{50});           // handled
  REQUIRE(dep);
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));            // handled (no-op)
  REQUIRE_FALSE(n->execute<bank::account>("a1", bank::withdraw{500}));    // rejected
  REQUIRE_FALSE(n->execute<bank::account>("nobody", bank::deposit{5}));   // rejected
  auto stale = make_command<bank::account>("a1", bank::deposit{5});
  stale.expected_version = 0;
  REQUIRE_FALSE(n->execute_command(stale));                               // conflict
  // The projection has applied everything once this answers.
  REQUIRE(n->query<bank::balances>([](const bank::balances&) { return 0; }, dep->position));

  auto p = scrape(*n);
  CHECK(p.types["cairn_commands_total"] == "counter");
  CHECK(p.value("cairn_commands_total", outcome("handled")) == 3);
  CHECK(p.value("cairn_commands_total", outcome("rejected")) == 2);
  CHECK(p.value("cairn_commands_total", outcome("conflict")) == 1);
  CHECK(p.value("cairn_commands_total", outcome("failed")) == 0);
  CHECK(p.types["cairn_command_duration_seconds"] == "histogram");
  CHECK(p.value("cairn_command_duration_seconds_count", account) == 6);
  CHECK(p.value("cairn_command_duration_seconds_sum", account) > 0);
  CHECK(p.value("cairn_aggregates_live", account) == 2); // a1, and nobody's (rejected) instance
  CHECK(p.value("cairn_aggregate_passivations_total", account) == 0);
  // Two appends (open, deposit), each its own batch here (execute waits for each).
  CHECK(p.value("cairn_journal_batch_appends_count") == 2);
  CHECK(p.value("cairn_journal_batch_appends_sum") == 2);
  CHECK(p.value("cairn_journal_batch_events_sum") == 2);
  CHECK(p.value("cairn_store_head_position") == 2);
  CHECK(p.value("cairn_projection_position", {{"projection", "balances"}}) == 2);
  CHECK(p.value("cairn_projection_lag_events", {{"projection", "balances"}}) == 0);
  CHECK(p.value("cairn_feed_ring_capacity") == double(n->options().feed.ring_events));
  CHECK(p.has("cairn_feed_requests_total", {{"answer", "live"}}));
  CHECK(p.has("cairn_feed_requests_total", {{"answer", "behind"}}));
  CHECK_FALSE(p.has("cairn_store_fdatasync_seconds_count")); // the memory store keeps none
}

TEST_CASE("with metrics off a node counts nothing on the command path but still reports state") {
  auto opts = test_node::quiet();
  opts.metrics = false;
  test_node n{2, make_memory_journal(), opts};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));
  auto p = scrape(*n);
  CHECK_FALSE(p.has("cairn_commands_total", outcome("handled")));
  CHECK_FALSE(p.has("cairn_journal_batch_appends_count"));
  CHECK(p.value("cairn_store_head_position") == 1);
}

TEST_CASE("idle aggregates passivate and leave the live gauge") {
  auto opts = test_node::quiet();
  opts.aggregates.passivate_after = std::chrono::milliseconds{20};
  test_node n{2, make_memory_journal(), opts};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));
  REQUIRE(n->execute<bank::account>("a2", bank::open{"bob"}));
  // (Not checked at 2 here: a1 may already have passivated on a slow machine.)
  prometheus_text p;
  for (int i = 0; i < 500; ++i) { // up to 10 s on a loaded machine
    p = scrape(*n);
    if (p.value("cairn_aggregates_live", account) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  CHECK(p.value("cairn_aggregates_live", account) == 0);
  CHECK(p.value("cairn_aggregate_passivations_total", account) == 2);
  // The next command brings one back (live, or passivated once more by now).
  REQUIRE(n->execute<bank::account>("a1", bank::deposit{1}));
  p = scrape(*n);
  CHECK((p.value("cairn_aggregates_live", account) == 1 ||
         p.value("cairn_aggregate_passivations_total", account) == 3));
}

TEST_CASE("a node on the file store reports its fdatasync latency") {
  conformance::temp_dir dir;
  auto store = open_file_journal((dir.path / "events").string());
  REQUIRE(store);
  test_node n{2, *store};
  REQUIRE(n->register_aggregate<bank::account>());
  for (int i = 0; i < 3; ++i)
    REQUIRE(n->execute<bank::account>("a" + std::to_string(i), bank::open{"x"}));
  auto p = scrape(*n);
  CHECK(p.types["cairn_store_fdatasync_seconds"] == "histogram");
  CHECK(p.value("cairn_store_fdatasync_seconds_count") >= 3);
  CHECK(p.value("cairn_store_fdatasync_seconds_sum") > 0);
}
