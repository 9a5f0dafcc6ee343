// 10,000 idle connections: memory stays bounded, the connection cap answers the
// excess with 503, and the server keeps serving other clients. The idle clients
// live in a child process, so neither side needs more than ~10,000 descriptors.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "http/http_fixture.hpp"

using namespace cairn;
using namespace cairn::http_test;

namespace {

constexpr int idle_clients = 10'000;
constexpr int extra = 20;

long rss_kib() {
  std::ifstream in{"/proc/self/statm"};
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/// Soft limit up to at least `want` descriptors (raising the hard limit if allowed).
bool raise_nofile(rlim_t want) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur >= want) return true;
  if (r.rlim_max < want) r.rlim_max = want; // needs CAP_SYS_RESOURCE
  r.rlim_cur = want;
  return setrlimit(RLIMIT_NOFILE, &r) == 0;
}

int fds[idle_clients];

/// The child: opens the idle connections, reports how many on `report`, then
/// waits until `hold` closes and exits. Only system calls after fork().
[[noreturn]] void idle_child(unsigned short port, int report, int hold) {
  int opened = 0;
  for (int fd = 3; fd < 65536; ++fd) // the parent's descriptors, its pipe ends included
    if (fd != report && fd != hold) ::close(fd);
  for (int i = 0; i < idle_clients; ++i) {
    fds[i] = connect_to(port, 30000);
    if (fds[i] < 0) break;
    ++opened;
  }
  (void)!::write(report, &opened, sizeof opened);
  char c;
  (void)!::read(hold, &c, 1);
  _exit(0);
}

} // namespace

TEST_CASE("http: 10,000 idle connections, a connection cap, and the node serves others") {
  REQUIRE(raise_nofile(idle_clients + 1024));
  auto opts = bank_server::local();
  opts.max_connections = idle_clients + extra;
  opts.header_timeout = std::chrono::seconds{120};
  opts.idle_timeout = std::chrono::seconds{120};
  bank_server s{opts};
  REQUIRE(s.post("/commands/account/busy", R"({"type":"open","data":{"owner":"B"}})").status == 200);
  auto rss_before = rss_kib();

  int report[2], hold[2];
  REQUIRE(::pipe(report) == 0);
  REQUIRE(::pipe(hold) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) idle_child(s.port(), report[1], hold[0]);
  ::close(report[1]);
  ::close(hold[0]);
  int opened = 0;
  REQUIRE(::read(report[0], &opened, sizeof opened) == sizeof opened);
  CHECK(opened == idle_clients);

  // Others are served while the 10,000 sit idle.
  CHECK(s.get("/health").status == 200);
  CHECK(s.post("/commands/account/busy", R"({"type":"deposit","data":{"amount":5}})").status == 200);

  // Fill the cap: the remaining slots are accepted, the next connection gets 503.
  // (once the connections of those two requests are gone)
  for (int i = 0; i < 200 && s.http->connections() > size_t{idle_clients}; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  CHECK(s.http->connections() == size_t{idle_clients});
  std::vector<int> mine;
  for (int i = 0; i < extra; ++i) mine.push_back(connect_to(s.port()));
  for (int i = 0; i < 200 && s.http->connections() < size_t{idle_clients + extra}; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  INFO("server connections: " << s.http->connections());
  auto refused = s.get("/health");
  CHECK(refused.status == 503);
  CHECK(refused.body.find("too many connections") != std::string::npos);

  auto grown_kib = rss_kib() - rss_before;
  INFO("server RSS grew by " << grown_kib << " KiB for " << idle_clients + extra << " connections");
  CHECK(grown_kib < (idle_clients + extra) * 32L); // under 32 KiB per idle connection

  // The idle clients leave; the server serves again.
  for (int fd : mine) ::close(fd);
  ::close(hold[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(report[0]);
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = s.get("/health").status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  CHECK(served);
}
