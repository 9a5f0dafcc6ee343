// The PostgreSQL journal passes the shared conformance suite (with its pipeline and reopen
// variants) against a real throwaway server; its snapshot store keeps the latest snapshot.
#include "conformance/journal_conformance.hpp"
#include "conformance/journal_conformance_reopen.hpp"
#include "postgres/pg_server.hpp"

#include <functional>

#include <cairn/postgres_journal.hpp>

using namespace cairn;
using cairn::test::pg_server;

namespace {

std::shared_ptr<journal> open_in(const std::string& schema) {
  postgres_options o;
  o.schema = schema;
  auto j = open_postgres_journal(pg_server::shared().url(), o);
  INFO((j ? std::string("ok") : j.error().describe()));
  REQUIRE(j.has_value());
  return *j;
}

/// The reopen checks name a directory: each directory gets a schema of its own.
std::string schema_for(const std::string& dir) {
  return "r" + std::to_string(std::hash<std::string>{}(dir) % 1000000000000ull);
}

} // namespace

CAIRN_JOURNAL_CONFORMANCE("postgres", [] { return open_in(pg_server::fresh_schema()); })
CAIRN_JOURNAL_CONFORMANCE_REOPEN("postgres",
                                 [](const std::string& dir) { return open_in(schema_for(dir)); })

TEST_CASE("postgres: the snapshot store keeps the latest snapshot per stream", "[postgres]") {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  auto opened = open_postgres_snapshot_store(pg_server::shared().url(), o);
  REQUIRE(opened.has_value());
  auto& store = **opened;
  auto make = [](const std::string& id, uint64_t version, bytes state) {
    return snapshot{{"account", id}, version, "account", 1, 1234, std::move(state)};
  };
  auto none = store.load({"account", "missing"});
  REQUIRE(none);
  REQUIRE_FALSE(none->has_value());
  REQUIRE(store.save(make("a1", 10, {1, 2, 3})));
  REQUIRE(store.save(make("a2", 5, {9})));
  bytes all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<uint8_t>(b));
  auto big = make("a1", 20, all_bytes);
  big.schema_version = 7;
  REQUIRE(store.save(big));
  auto a1 = store.load({"account", "a1"});
  REQUIRE(a1);
  REQUIRE(a1->has_value());
  CHECK((*a1)->version == 20);
  CHECK((*a1)->state == all_bytes);
  CHECK((*a1)->type == "account");
  CHECK((*a1)->schema_version == 7);
  CHECK((*a1)->timestamp_ns == 1234);
  auto a2 = store.load({"account", "a2"});
  REQUIRE(a2);
  REQUIRE(a2->has_value());
  CHECK((*a2)->version == 5);
  // A second store on the same schema (another node) sees them.
  auto other = open_postgres_snapshot_store(pg_server::shared().url(), o);
  REQUIRE(other.has_value());
  auto seen = (*other)->load({"account", "a2"});
  REQUIRE(seen);
  REQUIRE(seen->has_value());
  CHECK((*seen)->state == bytes{9});
}
