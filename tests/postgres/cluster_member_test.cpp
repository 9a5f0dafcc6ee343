// Two cluster members in one process over a real PostgreSQL server: commands sent to
// either reach their shard's owner (forwarded over CAF's network layer), a repeated
// idempotency key stores nothing twice across members, and each saga type runs on
// exactly one member, moving to another when that one leaves or dies.
#include <catch2/catch.hpp>

#include <thread>

#include <cairn/cluster_member.hpp>

#include "actors/eventually.hpp"
#include "bank/account.hpp"
#include "bank/transfer.hpp"
#include "bank/transfer_saga.hpp"
#include "bank/transfers.hpp"
#include "postgres/pg_server.hpp"

using namespace cairn;
using cairn::test::eventually;
using cairn::test::pg_server;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<cluster_config> member_config(const std::string& name, const std::string& schema,
                                              std::vector<std::string> roles = {
                                                "aggregates", "projections", "sagas"}) {
  auto cfg = std::make_unique<cluster_config>();
  cfg->set("scheduler.max-threads", size_t{2});
  cfg->options.log_level = "warn";
  auto& c = cfg->cluster;
  c.name = name;
  c.postgres_url = pg_server::shared().url();
  c.postgres_schema = schema;
  c.insecure = true;
  c.roles = std::move(roles);
  c.shards = 8;
  c.heartbeat_interval = 100ms;
  c.member_timeout = 1s;
  c.lease_ttl = 1s;
  c.lease_margin = 300ms;
  return cfg;
}

std::unique_ptr<cluster_member> start_member(cluster_config& cfg) {
  auto m = cluster_member::start(cfg);
  REQUIRE(m);
  auto& n = (*m)->local();
  REQUIRE(n.register_aggregate<bank::account>());
  REQUIRE(n.register_aggregate<bank::transfer>());
  REQUIRE(n.register_projection<bank::transfers>());
  REQUIRE(n.register_saga<bank::transfer_saga>());
  REQUIRE((*m)->join());
  return std::move(*m);
}

bool runs_saga(cluster_member& m) {
  return m.local().saga_status_of<bank::transfer_saga>().has_value();
}

uint64_t completed(cluster_member& m) {
  auto r = m.local().query<bank::transfers>([](const bank::transfers& t) { return t.completed; });
  return r ? *r : 0;
}

} // namespace

TEST_CASE("cluster members forward commands to shard owners and run each saga type once",
          "[cluster-member]") {
  auto schema = pg_server::fresh_schema();
  auto cfg1 = member_config("m1", schema);
  auto cfg2 = member_config("m2", schema);
  auto m1 = start_member(*cfg1);
  auto m2 = start_member(*cfg2);
  REQUIRE(eventually([&] {
    return m1->status().owned_shards.size() == 4 && m2->status().owned_shards.size() == 4;
  }, 20s));

  // Any member takes any command.
  for (int i = 0; i < 20; ++i) {
    auto& via = (i % 2 ? m1 : m2)->local();
    auto id = "a" + std::to_string(i);
    REQUIRE(via.execute<bank::account>(id, bank::open{"owner"}));
    REQUIRE(via.execute<bank::account>(id, bank::deposit{100}));
  }
  CHECK(m1->status().forwarded > 0);
  CHECK(m2->status().forwarded > 0);
  CHECK(m1->status().received + m2->status().received ==
        m1->status().forwarded + m2->status().forwarded);

  // A retry through the other member finds the first outcome.
  metadata meta;
  meta.entries.emplace_back("idempotency-key", "once");
  auto first = m1->local().execute<bank::account>("a3", bank::deposit{5}, meta);
  auto again = m2->local().execute<bank::account>("a3", bank::deposit{5}, meta);
  REQUIRE(first);
  REQUIRE(again);
  CHECK(again->position == first->position);
  auto a3 = m1->local().store()->read_stream(stream_id{"account", "a3"}, 1, 100);
  REQUIRE(a3);
  CHECK(a3->size() == 3);

  // The saga runs on one member only.
  REQUIRE(eventually([&] { return runs_saga(*m1) != runs_saga(*m2); }, 20s));
  std::this_thread::sleep_for(500ms); // several rounds: still exactly one
  REQUIRE(runs_saga(*m1) != runs_saga(*m2));
  auto t1 = m2->local().execute<bank::transfer>("t1", bank::request_transfer{"a1", "a2", 30});
  REQUIRE(t1);
  // Read-your-writes across members: m1's read model waits for m2's write.
  auto seen = m1->local().query<bank::transfers>(
    [](const bank::transfers& t) { return t.requested; }, t1->position);
  REQUIRE(seen);
  CHECK(*seen == 1);
  REQUIRE(eventually([&] { return completed(*m1) == 1 && completed(*m2) == 1; }, 30s));

  // A member with the projections role only owns no shard and forwards every command.
  auto cfg3 = member_config("m3", schema, {"projections"});
  auto m3 = start_member(*cfg3);
  for (int i = 0; i < 6; ++i)
    REQUIRE(m3->local().execute<bank::account>("a" + std::to_string(i), bank::deposit{1}));
  CHECK(m3->status().owned_shards.empty());
  CHECK(m3->status().forwarded == 6);
  CHECK_FALSE(runs_saga(*m3));
  auto at = m3->local().execute<bank::account>("a7", bank::deposit{1});
  REQUIRE(at);
  auto total = m3->local().query<bank::transfers>([](const bank::transfers& t) { return t.requested; },
                                                  at->position);
  REQUIRE(total);
  m3->leave();

  // Its member leaves: the other takes the saga over and runs the next transfer.
  auto& runner = runs_saga(*m1) ? m1 : m2;
  auto& other = runs_saga(*m1) ? m2 : m1;
  runner->leave();
  REQUIRE(eventually([&] { return runs_saga(*other); }, 20s));
  REQUIRE(eventually([&] { return other->status().owned_shards.size() == 8; }, 20s));
  REQUIRE(other->local().execute<bank::transfer>("t2", bank::request_transfer{"a2", "a5", 20}));
  REQUIRE(eventually([&] { return completed(*other) == 2; }, 30s));
  // A member running the saga dies: once its lease expires, a survivor resumes the saga.
  auto cfg4 = member_config("m4", schema);
  auto m4 = start_member(*cfg4);
  REQUIRE(eventually([&] { return m4->status().owned_shards.size() == 4; }, 20s));
  REQUIRE(runs_saga(*other));
  other->halt();
  REQUIRE(eventually([&] { return runs_saga(*m4); }, 20s));
  REQUIRE(m4->local().execute<bank::transfer>("t3", bank::request_transfer{"a4", "a6", 10}));
  REQUIRE(eventually([&] { return completed(*m4) == 3; }, 30s));
  auto state = m4->local().state_at<bank::account>("a2", 3);
  REQUIRE(state);
  CHECK(state->balance == 130);
  auto a2 = m4->local().store()->read_stream(stream_id{"account", "a2"}, 1, 100);
  REQUIRE(a2);
  CHECK(a2->size() == 5); // opened, deposited, credited 30, deposited 1, debited 20
}
