// http_options: the settings of a node's HTTP server (cairn::http), with their
// defaults. config/node.ini lists the same keys (section [cairn.http]).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cairn/expected.hpp"

namespace caf {
class config_option_set;
}

namespace cairn {

struct http_options {
  /// The server runs only when this is true (off by default).
  bool enabled = false;
  /// Where it listens. Loopback unless configured otherwise; anything else needs
  /// a bearer token or TLS client certificates, or `insecure`.
  std::string address = "127.0.0.1";
  /// TCP port; 0 picks a free one (http_server::port() tells which).
  uint16_t port = 8080;
  /// Threads running the server's I/O (never the node's scheduler threads).
  size_t threads = 1;

  // -- limits --
  /// Largest request body accepted (413 beyond).
  size_t max_body_bytes = 1 << 20;
  /// Largest request line plus headers accepted (431 beyond).
  size_t max_header_bytes = 8 << 10;
  /// Open connections at most; one more gets 503 and is closed.
  size_t max_connections = 10'000;
  /// A request must arrive whole within this time of its first byte (slow clients
  /// are dropped), and a new connection must send its first request within it.
  std::chrono::nanoseconds header_timeout = std::chrono::seconds{10};
  /// A kept-alive connection with no request for this long is closed.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds{60};
  /// A response (or a piece of an event stream) that the client does not take in
  /// this long drops the connection.
  std::chrono::nanoseconds write_timeout = std::chrono::seconds{30};
  /// Event streams send a comment line after this much silence, so proxies keep
  /// them open and vanished clients are noticed.
  std::chrono::nanoseconds sse_heartbeat = std::chrono::seconds{15};
  /// How long GET /ready waits for projections to reach the store's head.
  std::chrono::nanoseconds ready_timeout = std::chrono::seconds{2};

  // -- access --
  /// When set, every request needs `Authorization: Bearer <token>`.
  std::string bearer_token;
  /// TLS: the server's certificate chain and private key (PEM files). Both set
  /// turns TLS on.
  std::string tls_cert_file;
  std::string tls_key_file;
  /// TLS client certificates: CA file (PEM) that clients' certificates must chain
  /// to. Set, every connection must present a valid client certificate.
  std::string tls_client_ca_file;
  /// Allows a non-loopback address without any credentials (logs a warning).
  bool insecure = false;

  // -- content --
  /// When set, GET of any other path serves files from this folder ("/" is
  /// index.html): the application's static page.
  std::string static_dir;

  bool tls() const { return !tls_cert_file.empty() || !tls_key_file.empty(); }
};

/// Binds the options to the `[cairn.http]` section of a CAF config (and
/// --cairn.http.* on the command line). Call it from the constructor of your
/// node_config subclass: `cairn::bind_http_options(custom_options_, http);`.
void bind_http_options(caf::config_option_set& options, http_options& opts);

/// Checks the options as http_server::start() does: invalid_argument naming the
/// problem (zero limits, half a TLS setup, an exposed address without credentials).
expected<void> validate(const http_options& opts);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_address(const std::string& address);

} // namespace cairn
