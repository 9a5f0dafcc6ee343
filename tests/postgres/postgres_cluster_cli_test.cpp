// `cairn cluster status` on a real PostgreSQL server: members, lease owners with their
// epochs and the membership log, as text and JSON; a schema without a cluster fails
// with exit code 1 and creates nothing.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cairn/cluster_store.hpp>

#include "postgres/pg_server.hpp"
#include "support/run_cli.hpp"

using namespace cairn;
using cairn::test::pg_server;
using cairn::test::run_cli;
using namespace std::chrono_literals;

TEST_CASE("cairn cluster status prints members and lease owners and epochs and the log", "[postgres][cluster][cli]") {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  auto c = cluster_store::open(pg_server::shared().url(), 4, o);
  REQUIRE(c.has_value());
  auto& store = **c;
  member_row m;
  m.name = "node1";
  m.host = "127.0.0.1";
  m.port = 7101;
  m.roles = {"aggregates"};
  REQUIRE(store.join(m));
  m.name = "node2";
  m.port = 7102;
  REQUIRE(store.join(m));
  REQUIRE(store.claim("node1", {0, 1}, 60s));
  REQUIRE(store.claim("node2", {2}, 60s));
  REQUIRE(store.release("node2", {2}));
  REQUIRE(store.claim("node1", {2}, 60s));
  std::vector<std::string> base{"--postgres-url", pg_server::shared().url(), "--postgres-schema",
                                o.schema, "cluster", "status"};
  auto text = run_cli(base);
  REQUIRE(text.first == 0);
  CHECK_THAT(text.second, Catch::Contains("node1        127.0.0.1:7101"));
  CHECK_THAT(text.second, Catch::Contains("shard-2          owner node1        epoch 2"));
  CHECK_THAT(text.second, Catch::Contains("shard-3          owner -            epoch 0"));
  CHECK_THAT(text.second, Catch::Contains("node2: node2 joined"));

  auto with_json = base;
  with_json.push_back("--json");
  auto js = run_cli(with_json);
  REQUIRE(js.first == 0);
  auto doc = nlohmann::json::parse(js.second);
  CHECK(doc["shards"] == 4);
  REQUIRE(doc["members"].size() == 2);
  CHECK(doc["members"][1]["name"] == "node2");
  CHECK(doc["members"][1]["state"] == "up");
  CHECK(doc["leases"][2]["owner"] == "node1");
  CHECK(doc["leases"][2]["epoch"] == 2);
  CHECK(doc["leases"][3]["owner"].is_null());
  CHECK(doc["log"].size() == 2);

  // A schema with no Cairn store: exit 1, and no schema is created.
  std::string missing = pg_server::fresh_schema();
  auto none = run_cli({"--postgres-url", pg_server::shared().url(), "--postgres-schema", missing,
                       "cluster", "status"});
  CHECK(none.first == 1);
  CHECK_THROWS(pg_server::shared().exec("SELECT * FROM " + missing + ".head"));
  // Without --postgres-url: a usage error.
  CHECK(run_cli({"cluster", "status"}).first == 2);
}
