// A writer process for the PostgreSQL ordering and restart tests. Usage:
//   pg_writer URL SCHEMA WRITER_ID EVENTS
// Appends EVENTS events in batches of 1..6 requests to its own streams "w<id>-0..4"
// (payload "<id>:<seq>", seq counting every event it sends) and, in every third batch, one
// request on the shared stream "shared-1" with the version it last saw, which other writers
// may have moved on (a conflict). Prints "acked N conflicts C" and exits 0 if every
// request either succeeded or (only on the shared stream) conflicted; exits 1 otherwise.
#include <cstdio>
#include <random>
#include <string>

#include <cairn/postgres_journal.hpp>

using namespace cairn;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: pg_writer URL SCHEMA WRITER_ID EVENTS\n");
    return 2;
  }
  postgres_options o;
  o.schema = argv[2];
  o.follow_external = false;
  std::string id = argv[3];
  size_t total = std::stoul(argv[4]);
  auto opened = open_postgres_journal(argv[1], o);
  if (!opened) {
    std::fprintf(stderr, "pg_writer %s: %s\n", id.c_str(), opened.error().describe().c_str());
    return 1;
  }
  auto& j = **opened;
  std::mt19937 rng(static_cast<unsigned>(std::stoul(id) * 7919 + 1));
  size_t seq = 0, acked = 0, conflicts = 0, batches = 0;
  uint64_t shared_version = 0;
  stream_id shared{"shared", "1"};
  while (seq < total) {
    std::vector<append_request> batch;
    size_t requests = 1 + rng() % 6;
    int shared_at = ++batches % 3 == 0 ? static_cast<int>(rng() % requests) : -1;
    for (size_t r = 0; r < requests && seq < total; ++r) {
      append_request req;
      bool on_shared = static_cast<int>(r) == shared_at;
      req.stream = on_shared ? shared : stream_id{"w" + id, std::to_string(rng() % 5)};
      req.expected_version = on_shared ? shared_version : expected_version::any;
      size_t n = on_shared ? 1 : 1 + rng() % 3;
      for (size_t e = 0; e < n && seq < total; ++e)
        req.events.push_back(event_data{"tick", 1, {}, {}});
      for (auto& e : req.events) {
        auto p = id + ":" + std::to_string(seq++);
        e.payload.assign(p.begin(), p.end());
      }
      batch.push_back(std::move(req));
    }
    auto results = j.append(batch);
    for (size_t r = 0; r < results.size(); ++r) {
      bool on_shared = batch[r].stream == shared;
      if (results[r]) {
        acked += batch[r].events.size();
        if (on_shared) shared_version = results[r]->last_version;
      } else if (on_shared && results[r].error().code() == errc::conflict) {
        ++conflicts;
        auto v = j.stream_version(shared);
        if (v) shared_version = *v;
      } else {
        std::fprintf(stderr, "pg_writer %s: %s\n", id.c_str(),
                     results[r].error().describe().c_str());
        return 1;
      }
    }
  }
  std::printf("acked %zu conflicts %zu\n", acked, conflicts);
  return 0;
}
