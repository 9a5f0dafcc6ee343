// reply_sink: where one command's outcome goes, whichever comes first: the
// aggregate's reply, the node's timeout sweep, or the node stopping.
#pragma once

#include <atomic>
#include <memory>

#include <caf/response_promise.hpp>

#include "cairn/node.hpp"
#include "log.hpp"
#include "message_types.hpp"

namespace cairn {

/// Calls the application's reply_handler exactly once, from any thread: with the
/// first outcome given, or with unavailable if it is dropped unanswered.
class reply_sink {
public:
  explicit reply_sink(reply_handler fn) : fn_(std::move(fn)) {}
  reply_sink(const reply_sink&) = delete;
  reply_sink& operator=(const reply_sink&) = delete;
  ~reply_sink() { (*this)(error{errc::unavailable, "the node stopped before replying"}); }

  void operator()(expected<command_reply> r) {
    if (called_.exchange(true, std::memory_order_acq_rel)) return;
    try {
      fn_(std::move(r));
    } catch (const std::exception& ex) {
      log().error("a command reply handler threw: {}", ex.what());
    }
  }

  bool called() const { return called_.load(std::memory_order_acquire); }

private:
  reply_handler fn_;
  std::atomic<bool> called_{false};
};

/// A command's sink as a message element (local only).
struct command_sink {
  std::shared_ptr<reply_sink> sink;
};

/// Where an aggregate answers a command: a CAF request's promise, or a sink.
struct command_reply_to {
  caf::response_promise promise;
  std::shared_ptr<reply_sink> sink;

  void deliver(expected<command_reply> r) {
    if (sink) return (*sink)(std::move(r));
    if (r) promise.deliver(std::move(*r));
    else promise.deliver(to_caf(r.error()));
  }
};

} // namespace cairn

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::command_sink)
