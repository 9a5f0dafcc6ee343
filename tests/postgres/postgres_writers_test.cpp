// Several writer processes append to one PostgreSQL store at once. A follower that reads by
// global position (never re-reading) and a listener of another journal on the same schema
// (fed by LISTEN/NOTIFY and polling) must each see every acknowledged event exactly once,
// in position order, with no holes.
#include <catch2/catch.hpp>

#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <cairn/postgres_journal.hpp>

#include "postgres/pg_server.hpp"

using namespace cairn;
using cairn::test::pg_server;

namespace {

struct writer_outcome {
  int status = -1;
  std::string output;
};

/// Runs one pg_writer process to the end.
writer_outcome run_writer(const std::string& schema, int id, size_t events) {
  std::string cmd = std::string(CAIRN_PG_WRITER) + " '" + pg_server::shared().url() + "' " +
                    schema + " " + std::to_string(id) + " " + std::to_string(events) + " 2>&1";
  writer_outcome out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.output.append(buf, n);
  out.status = ::pclose(p);
  return out;
}

/// "" if `es` are positions first.. with no hole and each writer's seqs strictly rise.
std::string order_problem(const std::vector<envelope>& es, uint64_t first,
                          std::map<std::string, size_t>& per_writer) {
  std::map<std::string, long> last_seq;
  for (size_t i = 0; i < es.size(); ++i) {
    if (es[i].position != first + i)
      return "expected position " + std::to_string(first + i) + ", got " +
             std::to_string(es[i].position);
    std::string p(es[i].payload.begin(), es[i].payload.end());
    auto colon = p.find(':');
    if (colon == std::string::npos) return "bad payload " + p;
    auto writer = p.substr(0, colon);
    long seq = std::stol(p.substr(colon + 1));
    auto it = last_seq.find(writer);
    if (it != last_seq.end() && seq <= it->second)
      return "writer " + writer + " seq " + std::to_string(seq) + " after " +
             std::to_string(it->second);
    last_seq[writer] = seq;
    ++per_writer[writer];
  }
  return {};
}

} // namespace

TEST_CASE("postgres: concurrent writer processes and a follower see one gap-free order",
          "[postgres][writers]") {
  constexpr int writers = 4;
  constexpr size_t events = 3000;
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  o.poll_interval = std::chrono::milliseconds(500);
  auto opened = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(opened.has_value());
  auto& follower = **opened;
  std::mutex heard_mutex;
  std::vector<envelope> heard;
  follower.subscribe([&](const std::vector<envelope>& es) {
    std::lock_guard<std::mutex> lock(heard_mutex);
    heard.insert(heard.end(), es.begin(), es.end());
  });

  std::vector<std::future<writer_outcome>> running;
  for (int w = 0; w < writers; ++w)
    running.push_back(std::async(std::launch::async, run_writer, o.schema, w, events));

  // Follow by position while they write: read from the next position, never re-read.
  std::vector<envelope> followed;
  std::string problem;
  auto follow_once = [&] {
    for (;;) {
      auto chunk = follower.read_all(followed.size() + 1, 500);
      if (!chunk) {
        problem = chunk.error().describe();
        return;
      }
      if (chunk->empty()) return;
      for (auto& e : *chunk) followed.push_back(std::move(e));
    }
  };
  auto all_done = [&] {
    for (auto& f : running)
      if (f.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) return false;
    return true;
  };
  while (!all_done() && problem.empty()) {
    follow_once();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  size_t acked = 0;
  for (auto& f : running) {
    auto out = f.get();
    INFO(out.output);
    REQUIRE(out.status == 0);
    size_t n = 0, conflicts = 0;
    REQUIRE(std::sscanf(out.output.c_str(), "acked %zu conflicts %zu", &n, &conflicts) == 2);
    acked += n;
  }
  follow_once();
  REQUIRE(problem == "");

  std::map<std::string, size_t> per_writer;
  CHECK(order_problem(followed, 1, per_writer) == "");
  CHECK(followed.size() == acked);
  CHECK(per_writer.size() == writers);
  auto stored = follower.read_all(1, acked + 10);
  REQUIRE(stored.has_value());
  CHECK(*stored == followed);

  // The listener hears other writers' commits too (notifications, else polling).
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(heard_mutex);
      if (heard.size() >= acked) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::lock_guard<std::mutex> lock(heard_mutex);
  std::map<std::string, size_t> heard_per_writer;
  CHECK(order_problem(heard, 1, heard_per_writer) == "");
  CHECK(heard == followed);
  CHECK(follower.head_position() == acked);
}
