// A test node serving the bank sample's HTTP API on a free loopback port.
#pragma once

#include <memory>

#include <cairn/http_server.hpp>
#include <cairn/test_node.hpp>

#include "bank/http_api.hpp"
#include "http/http_client.hpp"

namespace cairn::http_test {

struct bank_server {
  testkit::test_node node;
  std::unique_ptr<http_server> http;

  explicit bank_server(http_options opts = local(), node_options nopts = testkit::test_node::quiet())
      : node(2, make_memory_journal(), nopts) {
    if (!node->register_aggregate<bank::account>() ||
        !node->register_projection<bank::balances>() ||
        !node->register_projection<bank::top_accounts>())
      throw std::runtime_error("cannot register the bank types");
    http = std::make_unique<http_server>(*node, opts);
    bank::expose_over_http(*http);
    if (auto ok = http->start(); !ok) throw std::runtime_error(ok.error().describe());
  }

  static http_options local() {
    http_options o;
    o.enabled = true;
    o.port = 0;
    return o;
  }

  unsigned short port() const { return http->port(); }

  response post(const std::string& path, const std::string& body, const std::string& headers = "") {
    return request(port(), "POST", path, body, headers);
  }
  response get(const std::string& path, const std::string& headers = "") {
    return request(port(), "GET", path, "", headers);
  }
};

} // namespace cairn::http_test
