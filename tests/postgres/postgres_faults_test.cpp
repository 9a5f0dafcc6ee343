// Faults of the PostgreSQL store that must give a bounded, typed answer and never hang or
// skip: a full pool, a stopped server, a held head lock, a failed catch-up read, an
// oversized or non-text append, a missing head row, a writer that bypassed the head lock.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <dirent.h>

#include <cairn/postgres_journal.hpp>

#include "postgres/pg_server.hpp"
#include "postgres_internal.hpp"

using namespace cairn;
using cairn::test::pg_server;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

postgres_options fresh_options() {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  o.follow_external = false;
  return o;
}

append_request request(const std::string& id, size_t payload_bytes = 8,
                       uint64_t expected = expected_version::any) {
  event_data e;
  e.type = "noted";
  e.payload.assign(payload_bytes, 'x');
  append_request r{stream_id{"note", id}, expected, {}};
  r.events.push_back(std::move(e));
  return r;
}

std::shared_ptr<journal> open_journal(const postgres_options& o) {
  auto j = open_postgres_journal(pg_server::shared().url(), o);
  if (!j) FAIL(j.error().describe());
  return *j;
}

/// Positions a listener saw, thread-safe (the follower publishes on its own thread).
struct seen_positions {
  std::mutex m;
  std::vector<uint64_t> positions;
  void add(const std::vector<envelope>& es) {
    std::lock_guard<std::mutex> lock(m);
    for (auto& e : es) positions.push_back(e.position);
  }
  std::vector<uint64_t> get() {
    std::lock_guard<std::mutex> lock(m);
    return positions;
  }
};

std::vector<uint64_t> one_to(uint64_t n) {
  std::vector<uint64_t> v;
  for (uint64_t p = 1; p <= n; ++p) v.push_back(p);
  return v;
}

/// The server's processes: the postmaster (first line of postmaster.pid) and its children.
std::vector<pid_t> server_processes() {
  std::ifstream pidfile(pg_server::shared().dir() + "/data/postmaster.pid");
  pid_t master = 0;
  pidfile >> master;
  REQUIRE(master > 0);
  std::vector<pid_t> out{master};
  DIR* proc = ::opendir("/proc");
  REQUIRE(proc);
  while (dirent* d = ::readdir(proc)) {
    pid_t pid = std::atoi(d->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(d->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    pid_t parent = 0;
    std::istringstream rest(line.substr(close + 1));
    rest >> state >> parent;
    if (parent == master) out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

void signal_server(int sig) {
  for (pid_t pid : server_processes()) ::kill(pid, sig);
}

/// A plain connection for playing another (misbehaving) client.
struct other_client {
  std::shared_ptr<pg::client> client;
  std::optional<pg::lease> conn;
  other_client() {
    auto c = pg::client::open(pg_server::shared().url(), postgres_options{}, 1);
    REQUIRE(c);
    client = *c;
    auto l = client->acquire();
    REQUIRE(l);
    conn.emplace(std::move(*l));
  }
  void run(std::vector<std::string> statements) {
    std::vector<pg::query> qs;
    for (auto& s : statements) qs.push_back(pg::query{s, {}});
    auto out = conn->run(std::move(qs));
    INFO(out.error);
    REQUIRE(out.ok());
  }
};

} // namespace

TEST_CASE("postgres: a full pool answers timeout within request_timeout, never waits forever",
          "[pgfaults]") {
  postgres_options o;
  o.request_timeout = 500ms;
  auto c = pg::client::open(pg_server::shared().url(), o, 1);
  REQUIRE(c);
  auto held = (*c)->acquire();
  REQUIRE(held);
  std::optional<pg::lease> lease(std::move(*held));
  auto start = steady::now();
  auto second = std::async(std::launch::async, [&] { return (*c)->acquire(); });
  bool answered = second.wait_for(20s) == std::future_status::ready;
  lease.reset(); // hands a waiting acquire (the bug) the connection, so the test ends
  REQUIRE(answered);
  auto r = second.get();
  CHECK(steady::now() - start < 10s);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == errc::timeout);
  CHECK_THAT(r.error().message(), Catch::Contains("pool"));
}

TEST_CASE("postgres: a failed catch-up read never lets listeners skip other writers' events",
          "[pgfaults]") {
  auto o = fresh_options();
  auto ours = open_journal(o);
  auto theirs = open_journal(o);
  seen_positions seen;
  ours->subscribe([&](const std::vector<envelope>& es) { seen.add(es); });
  std::vector<append_request> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(request("theirs-" + std::to_string(i)));
  for (auto& r : theirs->append(std::move(batch))) REQUIRE(r);

  pg::testing::fail_reads = true; // our catch-up of 1..10 fails
  std::vector<append_request> mine;
  mine.push_back(request("ours"));
  mine.push_back(request("ours"));
  auto results = ours->append(std::move(mine));
  for (auto& r : results) REQUIRE(r);
  CHECK(results[1]->last_position == 12);
  std::this_thread::sleep_for(300ms); // the follower retries meanwhile, and fails
  auto during = seen.get();
  CHECK(during.empty()); // never 11 and 12 without 1..10
  pg::testing::fail_reads = false;
  auto deadline = steady::now() + 20s;
  while (seen.get().size() < 12 && steady::now() < deadline) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(100ms); // and nothing more arrives
  CHECK(seen.get() == one_to(12));
  CHECK(ours->head_position() == 12);
}

TEST_CASE("postgres: an oversized or non-text append fails alone with invalid_argument",
          "[pgfaults]") {
  auto o = fresh_options();
  o.max_append_bytes = 1 << 20;
  auto j = open_journal(o);
  std::vector<append_request> batch;
  batch.push_back(request("small-1"));
  batch.push_back(request("big", 2 << 20));
  batch.push_back(append_request{stream_id{"note", "bad-\xff"}, expected_version::any,
                                 request("x").events});
  batch.push_back(request("small-2"));
  auto r = j->append(std::move(batch));
  REQUIRE(r.size() == 4);
  REQUIRE(r[0]);
  REQUIRE_FALSE(r[1]);
  CHECK(r[1].error().code() == errc::invalid_argument);
  CHECK_THAT(r[1].error().message(), Catch::Contains("max_append_bytes"));
  CHECK_THAT(r[1].error().message(), Catch::Contains(std::to_string(1 << 20)));
  REQUIRE_FALSE(r[2]);
  CHECK(r[2].error().code() == errc::invalid_argument);
  CHECK_THAT(r[2].error().message(), Catch::Contains("UTF-8"));
  REQUIRE(r[3]);
  CHECK(r[3]->first_position == r[0]->last_position + 1);

  SECTION("past the hard limit of 512 MiB with default options") {
    auto d = open_journal(fresh_options());
    std::vector<append_request> huge;
    huge.push_back(request("huge", (size_t{512} << 20) + 1));
    huge.push_back(request("fine"));
    auto h = d->append(std::move(huge));
    REQUIRE_FALSE(h[0]);
    CHECK(h[0].error().code() == errc::invalid_argument);
    CHECK_THAT(h[0].error().message(), Catch::Contains("512 MiB"));
    CHECK(h[1]);
  }
}

TEST_CASE("postgres: a batch over max_batch_bytes is stored in several transactions, in order",
          "[pgfaults]") {
  auto o = fresh_options();
  o.max_batch_bytes = 64 << 10;
  auto j = open_journal(o);
  std::vector<append_request> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(request("s", 20 << 10, uint64_t(i)));
  auto r = j->append(std::move(batch));
  for (size_t i = 0; i < r.size(); ++i) {
    REQUIRE(r[i]);
    CHECK(r[i]->last_version == i + 1);
    CHECK(r[i]->last_position == i + 1);
  }
  auto all = j->read_all(1, 100);
  REQUIRE(all);
  CHECK(all->size() == 10);
}

TEST_CASE("postgres: a missing head row is corrupt, at open and on append", "[pgfaults]") {
  auto o = fresh_options();
  auto j = open_journal(o);
  std::vector<append_request> batch;
  batch.push_back(request("a"));
  REQUIRE(j->append(std::move(batch))[0]);
  pg_server::shared().exec("DELETE FROM \"" + o.schema + "\".head");
  std::vector<append_request> again;
  again.push_back(request("a"));
  auto r = j->append(std::move(again));
  REQUIRE_FALSE(r[0]);
  CHECK(r[0].error().code() == errc::corrupt);
  CHECK_THAT(r[0].error().message(), Catch::Contains("head row"));
  auto reopened = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE_FALSE(reopened);
  CHECK(reopened.error().code() == errc::corrupt);
  CHECK_THAT(reopened.error().message(), Catch::Contains("head row"));
}

TEST_CASE("postgres: a writer that bypassed the head lock is reported precisely", "[pgfaults]") {
  auto o = fresh_options();
  o.request_timeout = 20s;
  auto j = open_journal(o);
  std::vector<append_request> first;
  first.push_back(request("taken"));
  first.push_back(request("innocent"));
  for (auto& r : j->append(std::move(first))) REQUIRE(r);
  std::string events = "\"" + o.schema + "\".events";

  SECTION("a stream's version: conflict for that stream, unavailable for the others") {
    other_client bypass;
    bypass.run({"BEGIN", "INSERT INTO " + events +
                           " VALUES (1000, 'note-taken', 2, 'noted', 1, 0, '', '')"});
    auto pending = std::async(std::launch::async, [&] {
      std::vector<append_request> batch;
      batch.push_back(request("taken", 8, 1));
      batch.push_back(request("innocent", 8, 1));
      return j->append(std::move(batch));
    });
    std::this_thread::sleep_for(500ms); // our INSERT waits on the uncommitted key
    bypass.run({"COMMIT"});
    auto r = pending.get();
    REQUIRE_FALSE(r[0]);
    CHECK(r[0].error().code() == errc::conflict);
    CHECK_THAT(r[0].error().message(), Catch::Contains("head lock"));
    REQUIRE_FALSE(r[1]);
    CHECK(r[1].error().code() == errc::unavailable);
    CHECK_THAT(r[1].error().message(), Catch::Contains("note-taken"));
    CHECK_THAT(r[1].error().message(), Catch::Contains("retry"));
    // Nothing was stored; the innocent append goes through when retried.
    std::vector<append_request> retry;
    retry.push_back(request("innocent", 8, 1));
    CHECK(j->append(std::move(retry))[0]);
  }
  SECTION("a position: corrupt, naming the head row") {
    pg_server::shared().exec("INSERT INTO " + events +
                             " VALUES (3, 'note-other', 1, 'noted', 1, 0, '', '')");
    std::vector<append_request> batch;
    batch.push_back(request("innocent"));
    auto r = j->append(std::move(batch));
    REQUIRE_FALSE(r[0]);
    CHECK(r[0].error().code() == errc::corrupt);
    CHECK_THAT(r[0].error().message(), Catch::Contains("head row"));
  }
}

TEST_CASE("postgres: a head lock held by a stuck writer fails appends within lock_timeout",
          "[pgfaults]") {
  auto o = fresh_options();
  o.lock_timeout = 500ms;
  auto j = open_journal(o);
  other_client stuck;
  stuck.run({"BEGIN", "SELECT position FROM \"" + o.schema + "\".head WHERE id = 1 FOR UPDATE"});
  auto start = steady::now();
  auto pending = std::async(std::launch::async, [&] {
    std::vector<append_request> batch;
    batch.push_back(request("a"));
    return j->append(std::move(batch));
  });
  bool answered = pending.wait_for(20s) == std::future_status::ready;
  stuck.run({"ROLLBACK"}); // frees a hanging append (the bug) so the test ends
  REQUIRE(answered);
  auto r = pending.get();
  CHECK(steady::now() - start < 10s);
  REQUIRE_FALSE(r[0]);
  CHECK(r[0].error().code() == errc::timeout);
  CHECK_THAT(r[0].error().message(), Catch::Contains("lock_timeout"));
  std::vector<append_request> again;
  again.push_back(request("a"));
  CHECK(j->append(std::move(again))[0]); // and serves once the lock is free
}

TEST_CASE("postgres: a stopped server fails appends and reads within request_timeout, and the "
          "store serves again once it runs",
          "[pgfaults]") {
  auto o = fresh_options();
  o.request_timeout = 1500ms;
  o.connect_timeout = 2000ms;
  auto j = open_journal(o);
  std::vector<append_request> batch;
  batch.push_back(request("a"));
  REQUIRE(j->append(std::move(batch))[0]);

  struct resume_guard { // SIGCONT whatever happens, so later tests have a server
    ~resume_guard() { signal_server(SIGCONT); }
  } resume;
  signal_server(SIGSTOP);
  auto start = steady::now();
  auto pending = std::async(std::launch::async, [&] {
    std::vector<append_request> b;
    b.push_back(request("a"));
    return j->append(std::move(b));
  });
  bool answered = pending.wait_for(30s) == std::future_status::ready;
  if (!answered) signal_server(SIGCONT);
  REQUIRE(answered);
  auto r = pending.get();
  CHECK(steady::now() - start < 10s);
  REQUIRE_FALSE(r[0]);
  CHECK((r[0].error().code() == errc::timeout || r[0].error().code() == errc::unavailable));
  INFO(r[0].error().describe());

  start = steady::now();
  auto read = std::async(std::launch::async, [&] { return j->read_all(1, 10); });
  answered = read.wait_for(30s) == std::future_status::ready;
  if (!answered) signal_server(SIGCONT);
  REQUIRE(answered);
  CHECK_FALSE(read.get());
  CHECK(steady::now() - start < 10s);

  signal_server(SIGCONT);
  auto deadline = steady::now() + 30s;
  bool served = false;
  while (!served && steady::now() < deadline) {
    std::vector<append_request> b;
    b.push_back(request("a"));
    served = bool(j->append(std::move(b))[0]);
    if (!served) std::this_thread::sleep_for(200ms);
  }
  CHECK(served);
  auto stored = j->read_stream(stream_id{"note", "a"}, 1, 100);
  REQUIRE(stored);
  CHECK(stored->size() >= 2);
}

TEST_CASE("postgres: a batch the server refuses does not fail the batch pipelined behind it",
          "[pgfaults]") {
  auto o = fresh_options();
  o.lock_timeout = 2s;
  auto j = open_journal(o);
  other_client stuck;
  stuck.run({"BEGIN", "SELECT position FROM \"" + o.schema + "\".head WHERE id = 1 FOR UPDATE"});
  // Both batches go out at once on the writer's connection; the server runs the second
  // only after the first has failed (its wait for the head lock timed out).
  std::vector<append_request> first, second;
  first.push_back(request("a"));
  second.push_back(request("b"));
  auto p1 = j->begin_append(std::move(first));
  auto p2 = j->begin_append(std::move(second));
  auto r1 = j->finish_append(std::move(p1));
  // The second batch now waits for the lock itself: free it well within its lock_timeout.
  std::this_thread::sleep_for(200ms);
  stuck.run({"ROLLBACK"});
  auto r2 = j->finish_append(std::move(p2));
  REQUIRE(r1.size() == 1);
  REQUIRE_FALSE(r1[0]);
  CHECK(r1[0].error().code() == errc::timeout);
  CHECK_THAT(r1[0].error().message(), Catch::Contains("lock_timeout"));
  REQUIRE(r2.size() == 1);
  INFO((r2[0] ? std::string("ok") : r2[0].error().describe()));
  REQUIRE(r2[0]);
  CHECK(r2[0]->first_position == 1);
  auto all = j->read_all(1, 10);
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  CHECK(all->front().stream == stream_id{"note", "b"});
}

TEST_CASE("postgres: a chunk read ahead past the head is read again, never served stale",
          "[pgfaults]") {
  // A reader that walks the store has the next chunks read ahead; those past the head come
  // back short. Once more is stored, reading there must see it, not the old short answer.
  auto o = fresh_options();
  auto writer = open_journal(o);
  auto reader = open_journal(o);
  constexpr size_t chunk = 1024; // read_all reads ahead for chunks of at least this many
  auto fill = [&] {
    std::vector<append_request> batch;
    for (size_t i = 0; i < chunk; ++i) batch.push_back(request("r" + std::to_string(i)));
    for (auto& r : writer->append(std::move(batch))) REQUIRE(r);
  };
  fill();
  auto first = reader->read_all(1, chunk);
  REQUIRE(first);
  REQUIRE(first->size() == chunk); // full: the next chunks are now being read ahead, empty
  std::this_thread::sleep_for(200ms); // let those reads finish before more is stored
  fill();
  auto second = reader->read_all(chunk + 1, chunk);
  REQUIRE(second);
  REQUIRE(second->size() == chunk);
  CHECK(second->front().position == chunk + 1);
  CHECK(second->back().position == 2 * chunk);
}
