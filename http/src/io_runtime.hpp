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
#include <boost/asio/post.hpp>
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

/// A session waiting for the node's answer to its request.
class reply_target {
public:
  virtual ~reply_target() = default;
  /// Writes the answer; called on an I/O thread (see io_runtime::hand_back).
  virtual void answer(api_response res) = 0;
};

struct io_runtime {
  explicit io_runtime(size_t n) : io(static_cast<int>(n)), strands(n > 1) {}

  asio::io_context io;
  /// With one I/O thread a session needs no strand: everything runs on that thread.
  const bool strands;
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

  /// Hands a reply from any thread (a CAF worker) to the I/O threads. Replies come
  /// in bursts (one group commit answers many commands): they queue here, and only
  /// the first of a burst posts (and so wakes an I/O thread); one drain writes all.
  void hand_back(std::shared_ptr<reply_target> to, api_response res) {
    {
      std::lock_guard<std::mutex> g{reply_mutex};
      replies.push_back({std::move(to), std::move(res)});
      if (drain_posted) return;
      drain_posted = true;
    }
    asio::post(io, [this] { drain_replies(); });
  }

  void drain_replies() {
    std::vector<pending_reply> batch;
    {
      std::lock_guard<std::mutex> g{reply_mutex};
      batch.swap(replies);
      replies.reserve(batch.size());
      drain_posted = false;
    }
    for (auto& r : batch) r.to->answer(std::move(r.res));
  }

  /// Queues a command for the node; the first of a pass posts the flush, which
  /// runs after the completions already queued (the rest of this pass).
  void submit(node& target, command_message cmd, reply_handler on_reply) {
    {
      std::lock_guard<std::mutex> g{command_mutex};
      commands.emplace_back(std::move(cmd), std::move(on_reply));
      if (flush_posted) return;
      flush_posted = true;
    }
    asio::post(io, [this, &target] { flush_commands(target); });
  }

  void flush_commands(node& target) {
    std::vector<std::pair<command_message, reply_handler>> batch;
    {
      std::lock_guard<std::mutex> g{command_mutex};
      batch.swap(commands);
      commands.reserve(batch.size());
      flush_posted = false;
    }
    for (auto& [cmd, on_reply] : batch) target.send_command(std::move(cmd), std::move(on_reply));
  }

  std::mutex command_mutex;
  std::vector<std::pair<command_message, reply_handler>> commands;
  bool flush_posted = false;

  // After io: replies never drained (the server stopped) let go of their sessions
  // while the io_context is still there.
  struct pending_reply {
    std::shared_ptr<reply_target> to;
    api_response res;
  };
  std::mutex reply_mutex;
  std::vector<pending_reply> replies;
  bool drain_posted = false;
};

} // namespace cairn::http
