// reply_sink: where one command's outcome goes, whichever comes first: the
// aggregate's reply, the node's timeout sweep, or the node stopping.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include <caf/response_promise.hpp>

#include "cairn/node.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "node_metrics.hpp"

namespace cairn {

/// Commands a node holds (node_options::max_commands_in_flight): each sink holds one
/// until its command is answered, or, if it timed out, until the command is dropped.
using command_slots = std::shared_ptr<std::atomic<size_t>>;

/// Calls the application's reply_handler exactly once, from any thread: with the
/// first outcome given, or with unavailable if it is dropped unanswered.
class reply_sink {
public:
  /// `timed`: note when the command was taken, for the latency metric. `slots`: the
  /// node's count of commands held, of which this command holds one.
  explicit reply_sink(reply_handler fn, bool timed = false, command_slots slots = nullptr)
    : started(timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}),
      fn_(std::move(fn)), slots_(std::move(slots)) {}
  reply_sink(const reply_sink&) = delete;
  reply_sink& operator=(const reply_sink&) = delete;
  ~reply_sink() {
    (*this)(error{errc::unavailable, "the node stopped before replying"});
    release();
  }

  /// Answers, and frees the command's slot first, so that a handler sending its next
  /// command finds it free.
  void operator()(expected<command_reply> r) { answer(std::move(r), true); }

  /// Answers with a timeout. The command may still wait in a queue, so its slot stays
  /// taken until the command is dropped (this sink destroyed).
  void expire(error why) { answer(std::move(why), false); }

  bool called() const { return called_.load(std::memory_order_acquire); }

  /// When the node took the command (unset if not timed).
  const std::chrono::steady_clock::time_point started;

private:
  void release() {
    if (slots_ && !released_.exchange(true, std::memory_order_acq_rel))
      slots_->fetch_sub(1, std::memory_order_acq_rel);
  }

  void answer(expected<command_reply> r, bool free_slot) {
    if (called_.exchange(true, std::memory_order_acq_rel)) return;
    if (free_slot) release();
    try {
      fn_(std::move(r));
    } catch (const std::exception& ex) {
      log().error("a command reply handler threw: {}", ex.what());
    }
  }

  reply_handler fn_;
  command_slots slots_;
  std::atomic<bool> called_{false};
  std::atomic<bool> released_{false};
};

/// A command's sink as a message element (local only).
struct command_sink {
  std::shared_ptr<reply_sink> sink;
};

/// Where an aggregate answers a command: a CAF request's promise, or a sink.
struct command_reply_to {
  caf::response_promise promise;
  std::shared_ptr<reply_sink> sink;
  const command_metrics* metrics = nullptr; // counts the outcome, if set
  std::chrono::steady_clock::time_point started{};

  /// Counts this command's outcome in `m` (if not null): timed from when the node
  /// took it, or, for a request that did not come through the node, from now.
  void count_in(const command_metrics* m) {
    metrics = m;
    if (!m) return;
    started = sink ? sink->started : std::chrono::steady_clock::now();
  }

  void deliver(expected<command_reply> r) {
    if (metrics) metrics->record(r, started);
    if (sink) return (*sink)(std::move(r));
    if (r) promise.deliver(std::move(*r));
    else promise.deliver(to_caf(r.error()));
  }
};

} // namespace cairn

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::command_sink)
