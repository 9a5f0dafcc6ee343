// Opening the PostgreSQL store: one clear error for each bad input (malformed URL, no
// server, refused password, missing database, silent server, bad schema name, a schema
// newer than this Cairn), and migration of an older schema.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <atomic>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cairn/postgres_journal.hpp>

#include "postgres/pg_server.hpp"
#include "postgres_internal.hpp"

using namespace cairn;
using cairn::test::pg_server;

namespace {

/// Opens a journal on `url` and requires it to fail with `code`; returns the message.
std::string open_fails(const std::string& url, errc code, postgres_options o = {}) {
  auto start = std::chrono::steady_clock::now();
  auto j = open_postgres_journal(url, o);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(j.has_value());
  INFO(j.error().describe());
  CHECK(j.error().code() == code);
  CHECK(took < std::chrono::seconds(20)); // nothing hangs
  return j.error().message();
}

/// A loopback port that accepts connections (into the backlog) and never answers.
struct silent_listener {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int port = 0;
  silent_listener() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
  ~silent_listener() { ::close(fd); }
};

} // namespace

TEST_CASE("postgres: a malformed connection string is an invalid argument", "[postgres]") {
  CHECK_THAT(open_fails("postgresql://[::1", errc::invalid_argument),
             Catch::Contains("invalid PostgreSQL connection string"));
  CHECK_THAT(open_fails("host=127.0.0.1 port", errc::invalid_argument),
             Catch::Contains("invalid PostgreSQL connection string"));
  CHECK_THAT(open_fails("postgresql://x@127.0.0.1:5432/db?nonsense=1", errc::invalid_argument),
             Catch::Contains("nonsense"));
}

TEST_CASE("postgres: no server at the address is unavailable and names the address",
          "[postgres]") {
  silent_listener closed; // a port surely free of servers once closed
  int port = closed.port;
  ::close(closed.fd);
  closed.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto message = open_fails("postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres",
                            errc::unavailable);
  CHECK_THAT(message, Catch::Contains("cannot connect to PostgreSQL"));
  CHECK_THAT(message, Catch::Contains(std::to_string(port)));
}

TEST_CASE("postgres: a refused password and a missing database are named", "[postgres]") {
  auto& server = pg_server::shared();
  std::string base = "postgresql://" + std::string(cairn::test::password_user);
  std::string at = "@127.0.0.1:" + std::to_string(server.port());
  CHECK_THAT(open_fails(base + ":wrong" + at + "/postgres", errc::unavailable),
             Catch::Contains("password authentication failed"));
  auto good = open_postgres_journal(base + ":" + cairn::test::password + at + "/postgres");
  INFO((good ? std::string("ok") : good.error().describe()));
  CHECK(good.has_value());
  CHECK_THAT(open_fails(server.url("no_such_db"), errc::unavailable),
             Catch::Contains("\"no_such_db\" does not exist"));
}

TEST_CASE("postgres: a server that never answers times out at open", "[postgres]") {
  silent_listener silent;
  postgres_options o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  auto message = open_fails(
    "postgresql://postgres@127.0.0.1:" + std::to_string(silent.port) + "/postgres",
    errc::unavailable, o);
  CHECK_THAT(message, Catch::Contains("timeout"));
}

TEST_CASE("postgres: a bad schema name is an invalid argument", "[postgres]") {
  for (std::string bad : std::vector<std::string>{"", "Cairn", "1st", "a-b", "x\"; DROP TABLE y; --",
                          std::string(64, 'a')}) {
    postgres_options o;
    o.schema = bad;
    CHECK_THAT(open_fails(pg_server::shared().url(), errc::invalid_argument, o),
               Catch::Contains("schema name"));
  }
}

TEST_CASE("postgres: the longest schema name stores and notifies, a longer one is refused",
          "[postgres]") {
  // Its NOTIFY channel, "cairn.<schema>", must fit PostgreSQL's 63-byte names: with a
  // longer schema every append would fail in pg_notify.
  std::string longest = pg_server::fresh_schema();
  longest.resize(57, 'x');
  postgres_options o;
  o.schema = longest;
  auto opened = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(opened);
  auto reader = open_postgres_journal(pg_server::shared().url(), o); // follows the first
  REQUIRE(reader);
  std::atomic<uint64_t> heard{0};
  auto sub = (*reader)->subscribe([&](const std::vector<envelope>& events) {
    heard = events.back().position;
  });
  auto stored = (*opened)->append_one({{"acct", "long"}, expected_version::no_stream,
                                       {{"opened", 1, {}, {}}}});
  REQUIRE(stored);
  for (int i = 0; i < 200 && heard.load() < stored->last_position; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(heard.load() == stored->last_position);
  (*reader)->unsubscribe(sub);

  o.schema = longest + "x";
  CHECK_THAT(open_fails(pg_server::shared().url(), errc::invalid_argument, o),
             Catch::Contains("1 to 57"));
}

TEST_CASE("postgres: no read connection is an invalid argument, not a hang", "[postgres]") {
  postgres_options o;
  o.read_connections = 0;
  CHECK_THAT(open_fails(pg_server::shared().url(), errc::invalid_argument, o),
             Catch::Contains("read_connections"));
}

TEST_CASE("postgres: an older snapshot never replaces a newer one", "[postgres]") {
  postgres_options o;
  o.schema = "snapshot_order";
  auto snapshots = open_postgres_snapshot_store(pg_server::shared().url(), o);
  REQUIRE(snapshots.has_value());
  snapshot newer{stream_id{"account", "s1"}, 55, "account", 1, 2, bytes{1, 2}};
  snapshot older{stream_id{"account", "s1"}, 40, "account", 1, 1, bytes{3}};
  REQUIRE((*snapshots)->save(newer).has_value());
  REQUIRE((*snapshots)->save(older).has_value());
  auto loaded = (*snapshots)->load(newer.stream);
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->version == 55);
  CHECK((*loaded)->state == newer.state);
}

TEST_CASE("postgres: a schema newer than this Cairn is refused with both versions",
          "[postgres]") {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  {
    auto j = open_postgres_journal(pg_server::shared().url(), o);
    REQUIRE(j.has_value());
    REQUIRE((*j)->append_one({{"a", "1"}, expected_version::no_stream, {{"made", 1, {}, {}}}}));
  }
  pg_server::shared().exec("UPDATE " + o.schema + ".schema_info SET version = 99");
  auto message = open_fails(pg_server::shared().url(), errc::unavailable, o);
  CHECK_THAT(message, Catch::Contains("version 99"));
  CHECK_THAT(message, Catch::Contains(std::to_string(postgres_schema_version)));
  CHECK_THAT(message, Catch::Contains("upgrade Cairn"));
  auto snapshots = open_postgres_snapshot_store(pg_server::shared().url(), o);
  CHECK_FALSE(snapshots.has_value());
  // The refused open changed nothing.
  pg_server::shared().exec("UPDATE " + o.schema + ".schema_info SET version = " +
                           std::to_string(postgres_schema_version));
  auto again = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(again.has_value());
  CHECK((*again)->head_position() == 1);
}

TEST_CASE("postgres: a schema of version 1 is migrated and keeps its events", "[postgres]") {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  std::vector<envelope> before;
  {
    auto old = pg::open_journal_at(pg_server::shared().url(), o, 1);
    REQUIRE(old.has_value());
    // Events as a version 1 Cairn stored them (its appends took the head lock, read the
    // versions, then inserted rows and moved the head).
    for (int i = 1; i <= 5; ++i)
      pg_server::shared().exec("INSERT INTO " + o.schema + ".events VALUES (" + std::to_string(i) +
                               ", 'acc-" + std::to_string((i - 1) % 2) + "', " +
                               std::to_string((i + 1) / 2) + ", 'made', 1, " + std::to_string(1000 + i) +
                               ", '\\x0000000163000000016400000001000000016b0000000176', '\\x0102')");
    pg_server::shared().exec("UPDATE " + o.schema + ".head SET position = 5, last_timestamp = 1005");
    before = *(*old)->read_all(1, 100);
    REQUIRE(before.size() == 5);
    CHECK(before[4].meta.correlation_id == "c");
    CHECK(before[4].meta.entries.at(0).second == "v");
    // Version 1 has no snapshots table.
    CHECK_THROWS(pg_server::shared().exec("SELECT * FROM " + o.schema + ".snapshots"));
  }
  auto j = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(j.has_value());
  CHECK(*(*j)->read_all(1, 100) == before);
  CHECK((*j)->append_one({{"acc", "0"}, 3, {{"made", 1, {}, {}}}})->last_position == 6);
  auto snapshots = open_postgres_snapshot_store(pg_server::shared().url(), o);
  REQUIRE(snapshots.has_value());
  REQUIRE((*snapshots)->save(snapshot{{"acc", "0"}, 4, "acc", 1, 5, {7}}));
  CHECK((*(*snapshots)->load({"acc", "0"}))->version == 4);
  pg_server::shared().exec("DO $$ BEGIN IF (SELECT version FROM " + o.schema +
                           ".schema_info) <> " + std::to_string(postgres_schema_version) +
                           " THEN RAISE EXCEPTION 'not migrated'; END IF; END $$");
}
