// The shared state of one http_server: registrations, options and counters, plus
// the I/O runtime (defined in server.cpp, the only TU that includes Beast).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/http_server.hpp"

namespace cairn::http {

struct io_runtime;
struct io_runtime_deleter {
  void operator()(io_runtime* rt) const;
};

/// What the routes need from a request; filled from Beast's parser in server.cpp.
struct api_request {
  std::string method;
  std::string target; ///< path and query string, still percent-encoded
  std::string content_type;
  std::string correlation_id;
  std::string causation_id;
  std::string idempotency_key;
  std::string last_event_id;
  std::string body;
};

struct api_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

/// A request for the event stream: events from `from` on, of these categories
/// (all if empty).
struct sse_request {
  uint64_t from = 1;
  std::vector<std::string> categories;
};

/// Hands a response back; may be called on any thread, exactly once.
using responder = std::function<void(api_response)>;

} // namespace cairn::http

namespace cairn {

struct http_server::impl : std::enable_shared_from_this<http_server::impl> {
  impl(node& n, http_options o) : target(n), opts(std::move(o)) {}

  node& target;
  http_options opts;
  std::map<std::string, command_parser, std::less<>> parsers;
  std::map<std::string, event_renderer, std::less<>> renderers;
  std::map<std::string, query_runner, std::less<>> queries;
  std::vector<std::string> watched_projections;

  /// Runs work that blocks (a metrics scrape asks actors and waits) off the I/O
  /// threads, on the server's one worker thread.
  std::function<void(std::function<void()>)> run_blocking;

  /// Sends a command to the node (node::send_command), on an I/O thread. The
  /// commands of one pass of the event loop go together (io_runtime::submit), so
  /// that the node's router wakes once for them rather than once each.
  std::function<void(command_message, reply_handler)> submit_command;

  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> head{0}; ///< the store's head as its listener last saw it
  uint64_t listener = 0;
  bool listening = false;

  // Last: destroyed first, while everything above is still there for the
  // sessions it destroys.
  std::unique_ptr<http::io_runtime, http::io_runtime_deleter> io;
};

} // namespace cairn
