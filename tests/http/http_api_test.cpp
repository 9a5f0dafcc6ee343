// The HTTP API over real loopback sockets: commands and their error mapping,
// metadata from headers, named queries with read-your-writes, health, readiness
// and the event stream (catch-up, live, Last-Event-ID).
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/http_fixture.hpp"
#include "support/prometheus_text.hpp"

using namespace cairn;
using namespace cairn::http_test;
using json = nlohmann::json;

namespace {

json body_of(const response& r) { return json::parse(r.body); }

/// Reads SSE frames from `fd` until `count` events arrived; returns their JSON.
std::vector<json> read_events(int fd, size_t count, std::string& pending) {
  std::vector<json> out;
  char chunk[4096];
  while (out.size() < count) {
    size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
      auto frame = pending.substr(0, end);
      pending.erase(0, end + 2);
      auto data = frame.find("data: ");
      if (data != std::string::npos) out.push_back(json::parse(frame.substr(data + 6)));
    }
    if (out.size() >= count) break;
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    pending.append(chunk, static_cast<size_t>(n));
  }
  return out;
}

} // namespace

TEST_CASE("http: a command returns its version and position, and a query reads its write") {
  bank_server s;
  auto opened = s.post("/commands/account/ann", R"({"type":"open","data":{"owner":"Ann"}})");
  REQUIRE(opened.status == 200);
  CHECK(body_of(opened)["version"] == 1);
  auto dep = s.post("/commands/account/ann", R"({"type":"deposit","data":{"amount":250}})");
  REQUIRE(dep.status == 200);
  auto reply = body_of(dep);
  CHECK(reply["version"] == 2);
  CHECK(reply["events"] == 1);
  auto position = reply["position"].get<uint64_t>();
  CHECK(position == 2);
  auto q = s.get("/queries/balance?account=ann&at_least=" + std::to_string(position));
  REQUIRE(q.status == 200);
  CHECK(body_of(q) == json{{"account", "ann"}, {"balance", 250}});
  auto top = s.get("/queries/top?n=5&at_least=" + std::to_string(position));
  REQUIRE(top.status == 200);
  CHECK(body_of(top) == json::array({{{"account", "ann"}, {"balance", 250}}}));
  CHECK(s.get("/health").status == 200);
  auto ready = s.get("/ready");
  CHECK(ready.status == 200);
  CHECK(body_of(ready)["projections"]["balances"] == "caught up");
}

TEST_CASE("http: errors map to statuses with a JSON body") {
  bank_server s{bank_server::local(), [] {
                  auto o = testkit::test_node::quiet();
                  o.query_timeout = std::chrono::milliseconds{200};
                  return o;
                }()};
  REQUIRE(s.post("/commands/account/bob", R"({"type":"open","data":{"owner":"Bob"}})").status == 200);
  auto check = [](const response& r, int status, const std::string& code) {
    CHECK(r.status == status);
    CHECK(r.headers.at("content-type") == "application/json");
    auto b = json::parse(r.body);
    CHECK(b["error"] == code);
    CHECK(b["message"].is_string());
    return b;
  };
  auto rejected = check(s.post("/commands/account/bob", R"({"type":"withdraw","data":{"amount":5}})"),
                        422, "rejected");
  CHECK(rejected["message"] == "insufficient funds");
  check(s.post("/commands/account/bob", R"({"type":"deposit","data":{"amount":1},"expected_version":7})"),
        409, "conflict");
  check(s.post("/commands/nosuch/bob", R"({"type":"deposit","data":{"amount":1}})"), 404, "not_found");
  check(s.post("/commands/account/bob", R"({"type":"rob","data":{}})"), 404, "not_found");
  auto invalid = check(s.post("/commands/account/bob", R"({"type":"deposit","data":{"amount":"x"}})"),
                       400, "invalid_argument");
  CHECK(invalid["message"] == "$.amount: expected an integer, got string");
  check(s.post("/commands/account/bob", R"({"type":"deposit","data":{}})"), 400, "invalid_argument");
  check(s.post("/commands/account/bob", R"({"type":"deposit","data":{"amount":1},"x":1})"), 400,
        "invalid_argument");
  check(s.post("/commands/account/bob", R"(["deposit"])"), 400, "invalid_argument");
  check(s.get("/queries/nosuch"), 404, "not_found");
  check(s.get("/queries/balance?account=bob&at_least=x"), 400, "invalid_argument");
  check(s.get("/queries/balance?account=nobody"), 404, "not_found");
  check(s.get("/queries/balance?account=bob&at_least=1000"), 504, "timeout");
  check(s.get("/commands/account/bob"), 405, "method_not_allowed");
  // Nothing of the failed commands reached the store.
  CHECK(s.node.store().head_position() == 1);
  s.node->shutdown();
  check(s.post("/commands/account/bob", R"({"type":"deposit","data":{"amount":1}})"), 503,
        "unavailable");
}

TEST_CASE("http: correlation id, causation id and idempotency key travel as metadata") {
  bank_server s;
  auto r = s.post("/commands/account/cy", R"({"type":"open","data":{"owner":"Cy"}})",
                  "X-Correlation-Id: corr-1\r\nX-Causation-Id: cause-1\r\nIdempotency-Key: key-9\r\n");
  REQUIRE(r.status == 200);
  auto events = s.node.store().read_all(1, 10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  auto& meta = events->front().meta;
  CHECK(meta.correlation_id == "corr-1");
  CHECK(meta.causation_id == "cause-1");
  REQUIRE(meta.find("idempotency-key"));
  CHECK(*meta.find("idempotency-key") == "key-9");
}

TEST_CASE("http: the event stream catches up, goes live and resumes from Last-Event-ID") {
  bank_server s;
  REQUIRE(s.post("/commands/account/di", R"({"type":"open","data":{"owner":"Di"}})").status == 200);
  REQUIRE(s.post("/commands/account/di", R"({"type":"deposit","data":{"amount":7}})").status == 200);

  int fd = connect_to(s.port());
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, "GET /events?from=1&category=account HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string pending;
  auto caught_up = read_events(fd, 2, pending);
  REQUIRE(caught_up.size() == 2);
  CHECK(caught_up[0]["type"] == "opened");
  CHECK(caught_up[0]["data"] == json{{"owner", "Di"}});
  CHECK(caught_up[1]["position"] == 2);
  CHECK(caught_up[1]["data"] == json{{"amount", 7}});
  // Live: a command made now arrives on the open stream.
  REQUIRE(s.post("/commands/account/di", R"({"type":"withdraw","data":{"amount":3}})").status == 200);
  auto live = read_events(fd, 1, pending);
  REQUIRE(live.size() == 1);
  CHECK(live[0]["type"] == "withdrawn");
  CHECK(live[0]["stream"] == "account-di");
  ::close(fd);

  // Resume: Last-Event-ID 1 gives positions 2 and 3 again.
  fd = connect_to(s.port());
  REQUIRE(send_all(fd, "GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1\r\n\r\n"));
  pending.clear();
  auto resumed = read_events(fd, 2, pending);
  REQUIRE(resumed.size() == 2);
  CHECK(resumed[0]["position"] == 2);
  CHECK(resumed[1]["position"] == 3);
  ::close(fd);

  // A category filter leaves other categories out.
  fd = connect_to(s.port(), 1500);
  REQUIRE(send_all(fd, "GET /events?from=1&category=other HTTP/1.1\r\nHost: x\r\n\r\n"));
  pending.clear();
  CHECK(read_events(fd, 1, pending).empty());
  ::close(fd);
}

TEST_CASE("http: GET /metrics serves the node's metrics in Prometheus text format") {
  bank_server s;
  REQUIRE(s.post("/commands/account/mo", R"({"type":"open","data":{"owner":"M"}})").status == 200);
  REQUIRE(s.post("/commands/account/mo", R"({"type":"withdraw","data":{"amount":9}})").status == 422);
  auto r = s.get("/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.headers.at("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  auto text = cairn::test::parse_prometheus(r.body);
  INFO(r.body);
  CHECK(text.problems.empty());
  CHECK(text.value("cairn_commands_total", {{"category", "account"}, {"outcome", "handled"}}) == 1);
  CHECK(text.value("cairn_commands_total", {{"category", "account"}, {"outcome", "rejected"}}) == 1);
  CHECK(text.value("cairn_store_head_position") == 1);
}

namespace {

/// Reads `n` responses from one keep-alive connection (Content-Length bodies), in
/// the order the server sent them; fewer if the connection ends first.
std::vector<response> read_responses(int fd, size_t n) {
  std::vector<response> out;
  std::string buf;
  char chunk[4096];
  while (out.size() < n) {
    auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      auto head = buf.substr(0, end);
      auto cl = head.find("Content-Length: ");
      if (cl == std::string::npos) return out;
      size_t length = std::stoul(head.substr(cl + 16));
      if (buf.size() >= end + 4 + length) {
        response r;
        r.status = std::atoi(head.c_str() + head.find(' ') + 1);
        r.body = buf.substr(end + 4, length);
        out.push_back(std::move(r));
        buf.erase(0, end + 4 + length);
        continue;
      }
    }
    auto got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return out;
    buf.append(chunk, static_cast<size_t>(got));
  }
  return out;
}

} // namespace

TEST_CASE("http: many keep-alive connections with pipelined requests each get their own answers, in order") {
  // Replies come back from the node's threads in batches and commands go to it in
  // batches (io_runtime): each answer must still reach its own connection, in order.
  bank_server s;
  constexpr int connections = 16, per_connection = 40;
  for (int c = 0; c < connections; ++c)
    REQUIRE(s.post("/commands/account/k" + std::to_string(c),
                   R"({"type":"open","data":{"owner":"K"}})").status == 200);
  std::atomic<int> in_order{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < connections; ++c)
    clients.emplace_back([&, c] {
      int fd = connect_to(s.port());
      if (fd < 0) return;
      // All requests in one write: the server reads several at once and must answer
      // them one after another.
      std::string requests;
      const std::string body = R"({"type":"deposit","data":{"amount":1}})";
      for (int i = 0; i < per_connection; ++i)
        requests += "POST /commands/account/k" + std::to_string(c) +
                    " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
      if (send_all(fd, requests)) {
        auto answers = read_responses(fd, per_connection);
        bool ok = answers.size() == per_connection;
        for (size_t i = 0; ok && i < answers.size(); ++i)
          ok = answers[i].status == 200 &&
               json::parse(answers[i].body)["version"] == static_cast<int>(i) + 2;
        if (ok) ++in_order;
      }
      ::close(fd);
    });
  for (auto& t : clients) t.join();
  CHECK(in_order == connections);
  // Read-your-writes: the opens and every deposit are at positions 1..656.
  auto total = s.get("/queries/balances?at_least=" +
                     std::to_string(connections + connections * per_connection));
  REQUIRE(total.status == 200);
  CHECK(body_of(total)["total"] == connections * per_connection);
}
