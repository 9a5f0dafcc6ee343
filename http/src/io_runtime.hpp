// The I/O side of an http_server: its io_context, threads, listener, TLS context
// and the event-stream sessions to wake on commits. Included only by server.cpp
// (with session.hpp), the one translation unit that compiles Beast.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>

#include "server_state.hpp"

namespace cairn::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

/// An event-stream session, woken when the store commits.
class sse_target {
public:
  virtual ~sse_target() = default;
  virtual void wake() = 0;
};

struct io_runtime {
  explicit io_runtime(size_t threads) : io(static_cast<int>(threads)) {}

  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_backoff{io};
  std::optional<asio::ssl::context> tls;
  asio::thread_pool blocking{1}; ///< http_server::impl::run_blocking
  std::vector<std::thread> threads;
  uint16_t port = 0;

  std::mutex sse_mutex;
  std::vector<std::weak_ptr<sse_target>> sse;

  void add_sse(std::weak_ptr<sse_target> t) {
    std::lock_guard<std::mutex> g{sse_mutex};
    sse.erase(std::remove_if(sse.begin(), sse.end(), [](auto& w) { return w.expired(); }),
              sse.end());
    sse.push_back(std::move(t));
  }

  void wake_all() {
    std::lock_guard<std::mutex> g{sse_mutex};
    for (auto& w : sse)
      if (auto t = w.lock()) t->wake();
  }
};

} // namespace cairn::http
