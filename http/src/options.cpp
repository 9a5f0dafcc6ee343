// Binding of http_options to the [cairn.http] config section, and their checks.
#include "cairn/http_options.hpp"

#include <arpa/inet.h>

#include <caf/config_option_adder.hpp>
#include <caf/config_option_set.hpp>

namespace cairn {

void bind_http_options(caf::config_option_set& options, http_options& opts) {
  caf::config_option_adder{options, "cairn.http"}
    .add(opts.enabled, "enabled", "serve the HTTP API (off by default)")
    .add(opts.address, "address", "listen address (loopback by default)")
    .add(opts.port, "port", "TCP port (0: any free one)")
    .add(opts.threads, "threads", "I/O threads of the HTTP server")
    .add(opts.max_body_bytes, "max-body-bytes", "largest request body (413 beyond)")
    .add(opts.max_header_bytes, "max-header-bytes", "largest request header (431 beyond)")
    .add(opts.max_connections, "max-connections", "open connections at most (503 beyond)")
    .add(opts.header_timeout, "header-timeout", "a request must arrive whole within this")
    .add(opts.idle_timeout, "idle-timeout", "close kept-alive connections idle this long")
    .add(opts.write_timeout, "write-timeout", "drop clients that do not read for this long")
    .add(opts.sse_heartbeat, "sse-heartbeat", "comment line on quiet event streams")
    .add(opts.ready_timeout, "ready-timeout", "how long GET /ready waits for projections")
    .add(opts.bearer_token, "bearer-token", "require Authorization: Bearer <token>")
    .add(opts.tls_cert_file, "tls-cert-file", "TLS certificate chain (PEM)")
    .add(opts.tls_key_file, "tls-key-file", "TLS private key (PEM)")
    .add(opts.tls_client_ca_file, "tls-client-ca-file",
         "require client certificates signed by this CA (PEM)")
    .add(opts.insecure, "insecure", "allow a non-loopback address without credentials")
    .add(opts.static_dir, "static-dir", "serve static files from this folder");
}

bool is_loopback_address(const std::string& address) {
  if (address == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

expected<void> validate(const http_options& opts) {
  auto bad = [](std::string why) { return error{errc::invalid_argument, "[cairn.http] " + why}; };
  if (opts.threads == 0) return bad("threads must be at least 1");
  if (opts.max_body_bytes == 0 || opts.max_header_bytes == 0 || opts.max_connections == 0)
    return bad("max-body-bytes, max-header-bytes and max-connections must be positive");
  using zero = std::chrono::nanoseconds;
  if (opts.header_timeout <= zero{} || opts.idle_timeout <= zero{} ||
      opts.write_timeout <= zero{} || opts.sse_heartbeat <= zero{} ||
      opts.ready_timeout <= zero{})
    return bad("timeouts and the heartbeat must be positive");
  if (opts.tls_cert_file.empty() != opts.tls_key_file.empty())
    return bad("TLS needs both tls-cert-file and tls-key-file");
  if (!opts.tls_client_ca_file.empty() && !opts.tls())
    return bad("tls-client-ca-file needs TLS (tls-cert-file and tls-key-file)");
  bool credentials = !opts.bearer_token.empty() || !opts.tls_client_ca_file.empty();
  if (!is_loopback_address(opts.address) && !credentials && !opts.insecure)
    return bad("address " + opts.address +
               " is not loopback: set bearer-token or tls-client-ca-file (TLS client "
               "certificates), or insecure=true to serve it without credentials");
  return {};
}

} // namespace cairn
