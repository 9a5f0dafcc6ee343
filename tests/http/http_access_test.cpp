// Access: an exposed address needs credentials (or insecure = true); a bearer
// token is checked on every request, and a refused request does nothing.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "http/http_fixture.hpp"

using namespace cairn;
using namespace cairn::http_test;

TEST_CASE("http access: a non-loopback address needs credentials or insecure = true") {
  testkit::test_node node;
  http_options o;
  o.enabled = true;
  o.port = 0;
  o.address = "0.0.0.0";
  {
    http_server http{*node, o};
    auto started = http.start();
    REQUIRE_FALSE(started);
    CHECK(started.error().code() == errc::invalid_argument);
    CHECK(started.error().message().find("not loopback") != std::string::npos);
  }
  {
    o.insecure = true;
    http_server http{*node, o};
    CHECK(http.start());
    CHECK(request(http.port(), "GET", "/health").status == 200);
  }
  {
    o.insecure = false;
    o.bearer_token = "s3cret";
    http_server http{*node, o};
    CHECK(http.start());
  }
  CHECK(is_loopback_address("127.0.0.1"));
  CHECK(is_loopback_address("127.1.2.3"));
  CHECK(is_loopback_address("::1"));
  CHECK(is_loopback_address("localhost"));
  CHECK_FALSE(is_loopback_address("10.0.0.1"));
  CHECK_FALSE(is_loopback_address("::"));
  http_options half;
  half.tls_cert_file = "cert.pem";
  CHECK_FALSE(validate(half));
}

TEST_CASE("http access: without the bearer token a request gets 401 and does nothing") {
  auto o = bank_server::local();
  o.bearer_token = "tok-123";
  bank_server s{o};
  const std::string open = R"({"type":"open","data":{"owner":"E"}})";
  auto none = s.post("/commands/account/eve", open);
  CHECK(none.status == 401);
  CHECK(none.headers.at("www-authenticate") == "Bearer");
  CHECK(nlohmann::json::parse(none.body)["error"] == "unauthorized");
  CHECK(s.post("/commands/account/eve", open, "Authorization: Bearer tok-124\r\n").status == 401);
  CHECK(s.post("/commands/account/eve", open, "Authorization: Basic tok-123\r\n").status == 401);
  CHECK(s.get("/events?from=1").status == 401);
  CHECK(s.get("/health").status == 401);
  CHECK(s.node.store().head_position() == 0);
  CHECK(s.post("/commands/account/eve", open, "Authorization: Bearer tok-123\r\n").status == 200);
  CHECK(s.node.store().head_position() == 1);
}
