// Bad input never harms the node: oversized bodies and headers, malformed JSON and
// HTTP, wrong content types, unknown routes, slow and abandoned clients, clients
// that vanish mid-stream. Each gets a clear status or is dropped, and the server
// goes on serving others.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "http/http_fixture.hpp"

using namespace cairn;
using namespace cairn::http_test;
using json = nlohmann::json;

namespace {

/// The server still answers a fresh client, and still takes commands.
void still_serving(bank_server& s) {
  CHECK(s.get("/health").status == 200);
  CHECK(s.post("/commands/account/alive", R"({"type":"open","data":{"owner":"A"}})").status == 200);
}

http_options limited() {
  auto o = bank_server::local();
  o.max_body_bytes = 1024;
  o.max_header_bytes = 2048;
  o.header_timeout = std::chrono::milliseconds{500};
  o.idle_timeout = std::chrono::milliseconds{800};
  return o;
}

} // namespace

TEST_CASE("http bad input: an oversized body gets 413") {
  bank_server s{limited()};
  auto r = s.post("/commands/account/x",
                  R"({"type":"open","data":{"owner":")" + std::string(5000, 'a') + "\"}}");
  CHECK(r.status == 413);
  CHECK(json::parse(r.body)["error"] == "payload_too_large");
  CHECK(s.node.store().head_position() == 0);
  still_serving(s);
}

TEST_CASE("http bad input: an oversized header gets 431") {
  bank_server s{limited()};
  auto r = s.get("/health", "X-Junk: " + std::string(4000, 'j') + "\r\n");
  CHECK(r.status == 431);
  CHECK(json::parse(r.body)["error"] == "header_too_large");
  still_serving(s);
}

TEST_CASE("http bad input: malformed JSON gets 400") {
  bank_server s;
  auto r = s.post("/commands/account/x", R"({"type":"open","data":{"owner":)");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["message"] == "the body is not valid JSON");
  CHECK(s.node.store().head_position() == 0);
  still_serving(s);
}

TEST_CASE("http bad input: a wrong content type gets 415") {
  bank_server s;
  auto r = request(s.port(), "POST", "/commands/account/x", R"({"type":"open","data":{"owner":"o"}})",
                   "", "text/plain");
  CHECK(r.status == 415);
  CHECK(s.node.store().head_position() == 0);
  still_serving(s);
}

TEST_CASE("http bad input: unknown routes get 404, malformed HTTP gets 400") {
  bank_server s;
  auto r = s.get("/nowhere/at/all");
  CHECK(r.status == 404);
  CHECK(json::parse(r.body)["error"] == "not_found");
  CHECK(s.get("/queries/balance/extra").status == 404);
  CHECK(raw(s.port(), "NOT HTTP AT ALL\r\n\r\n").status == 400);
  CHECK(raw(s.port(), "GET /health HTTP/1.1\r\nContent-Length: zz\r\n\r\n").status == 400);
  still_serving(s);
}

TEST_CASE("http bad input: slow and abandoned clients are dropped by the timeouts") {
  bank_server s{limited()};
  // Slowloris: a header trickled a byte at a time never completes in time.
  int slow = connect_to(s.port());
  REQUIRE(slow >= 0);
  REQUIRE(send_all(slow, "GET /health HTTP/1.1\r\n"));
  auto start = std::chrono::steady_clock::now();
  bool dropped = false;
  for (int i = 0; i < 60 && !dropped; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    dropped = !send_all(slow, "X") || closed_within(slow, 1);
  }
  CHECK(dropped);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds{3});
  ::close(slow);
  // A client that connects and never sends anything.
  int silent = connect_to(s.port());
  REQUIRE(silent >= 0);
  CHECK(closed_within(silent, 3000));
  ::close(silent);
  // A kept-alive client that goes quiet after a request.
  int idle = connect_to(s.port());
  REQUIRE(send_all(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(read_response(idle).status == 200);
  CHECK(closed_within(idle, 3000));
  ::close(idle);
  for (int i = 0; i < 100 && s.http->connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  CHECK(s.http->connections() == 0);
  still_serving(s);
}

TEST_CASE("http bad input: a client vanishing mid-stream leaves the rest serving") {
  bank_server s;
  REQUIRE(s.post("/commands/account/v", R"({"type":"open","data":{"owner":"V"}})").status == 200);
  for (int round = 0; round < 20; ++round) {
    int fd = connect_to(s.port());
    REQUIRE(fd >= 0);
    REQUIRE(send_all(fd, "GET /events?from=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
    char buf[64];
    REQUIRE(::recv(fd, buf, sizeof buf, 0) > 0);
    ::close(fd); // gone, maybe mid-frame
    REQUIRE(s.post("/commands/account/v", R"({"type":"deposit","data":{"amount":1}})").status == 200);
  }
  // The server noticed each departure and let its connection go.
  for (int i = 0; i < 100 && s.http->connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  CHECK(s.http->connections() == 0);
  // A new stream still gets everything.
  int fd = connect_to(s.port());
  REQUIRE(send_all(fd, "GET /events?from=21 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got;
  char chunk[4096];
  while (got.find("id: 21\n") == std::string::npos) {
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    got.append(chunk, static_cast<size_t>(n));
  }
  CHECK(got.find("id: 21\n") != std::string::npos);
  ::close(fd);
  still_serving(s);
}
