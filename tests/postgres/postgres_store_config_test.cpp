// The node config selects the store: [cairn] store = file | postgres | memory with
// postgres-url and postgres-schema, opened by cairn::open_store once cairn::postgres has
// registered itself; an unknown or unavailable store is one clear, typed error.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>

#include <unistd.h>

#include <cairn/node.hpp>
#include <cairn/node_config.hpp>
#include <cairn/postgres_journal.hpp>
#include <cairn/store_config.hpp>

#include "bank/account.hpp"
#include "postgres/pg_server.hpp"

using namespace cairn;
using cairn::test::pg_server;

namespace {

/// A node config parsed from `ini` (no command line).
void parse(node_config& cfg, const std::string& ini) {
  std::istringstream in(ini);
  auto err = cfg.parse(caf::actor_system_config::string_list{}, in);
  REQUIRE_FALSE(err);
}

} // namespace

TEST_CASE("store config: unknown and unregistered stores are typed errors at open",
          "[store-config]") {
  node_config cfg;
  parse(cfg, "[cairn]\nstore=\"mongo\"\n");
  REQUIRE(cfg.options.store.kind == "mongo");
  auto unknown = open_store(cfg.options.store);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == errc::invalid_argument);
  CHECK_THAT(unknown.error().message(), Catch::Contains("unknown store \"mongo\""));
  CHECK_THAT(unknown.error().message(), Catch::Contains("file, memory"));

  // Before cairn::postgres registers itself, "postgres" says what to do.
  store_config pg;
  pg.kind = "postgres";
  pg.postgres_url = pg_server::shared().url();
  auto missing = open_store(pg);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == errc::unavailable);
  CHECK_THAT(missing.error().message(), Catch::Contains("register_postgres_store"));

  store_config sync;
  sync.kind = "file";
  sync.file_sync = "sometimes";
  auto bad_sync = open_store(sync);
  REQUIRE_FALSE(bad_sync);
  CHECK(bad_sync.error().code() == errc::invalid_argument);
}

TEST_CASE("store config: [cairn] store selects file, memory or postgres for the node",
          "[store-config]") {
  register_postgres_store();
  auto schema = pg_server::fresh_schema();
  auto dir = std::filesystem::temp_directory_path() /
             ("cairn-store-config-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::string postgres_ini = "[cairn]\nstore=\"postgres\"\npostgres-url=\"" +
                             pg_server::shared().url() + "\"\npostgres-schema=\"" + schema +
                             "\"\nlog-level=\"warn\"\n[scheduler]\nmax-threads=2\n";
  std::string file_ini = "[cairn]\nstore=\"file\"\ndata=\"" + dir.string() +
                         "\"\nfile-sync=\"never\"\nlog-level=\"warn\"\n[scheduler]\nmax-threads=2\n";
  std::string memory_ini = "[cairn]\nstore=\"memory\"\nlog-level=\"warn\"\n[scheduler]\nmax-threads=2\n";
  for (auto* ini : {&postgres_ini, &file_ini, &memory_ini}) {
    node_config cfg;
    parse(cfg, *ini);
    INFO(cfg.options.store.kind);
    auto opened = open_store(cfg.options.store);
    if (!opened) FAIL(opened.error().describe());
    REQUIRE(opened->events);
    REQUIRE(opened->snapshots);
    {
      node n(cfg, opened->events, opened->snapshots);
      REQUIRE(n.register_aggregate<bank::account>());
      REQUIRE(n.execute<bank::account>("a1", bank::open{"ann"}));
      auto r = n.execute<bank::account>("a1", bank::deposit{5});
      REQUIRE(r);
      CHECK(r->version == 2);
    }
    // The events went to the store the config named.
    auto stored = opened->events->read_stream(stream_id{"account", "a1"}, 1, 10);
    REQUIRE(stored);
    CHECK(stored->size() == 2);
  }
  CHECK(std::filesystem::exists(dir / "events"));
  std::filesystem::remove_all(dir);

  // The postgres store is where the config said: another open of that schema sees it.
  auto again = open_postgres_journal(pg_server::shared().url(), [&] {
    postgres_options o;
    o.schema = schema;
    return o;
  }());
  REQUIRE(again);
  CHECK((*again)->head_position() == 2);

  store_config no_url;
  no_url.kind = "postgres";
  auto refused = open_store(no_url);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == errc::invalid_argument);
  CHECK_THAT(refused.error().message(), Catch::Contains("postgres-url"));
}
