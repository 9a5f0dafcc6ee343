// The journal's way in for appends: any actor hands its request straight to the
// journal's writer, which group-commits everything that gathered meanwhile (one
// write, one fdatasync) and answers each appender.
//
// This is the hot path of every command, so it takes no actor hop on the way in: a
// request costs a lock and a push, not a CAF message and a scheduled actor. Answers go
// back as ordinary one-way messages: (appended_atom, tag, append_result) or
// (appended_atom, tag, caf::error).
//
// Two threads pipeline the work (journal::begin_append / finish_append): the writer
// stages and writes batches; the syncer makes them durable, commits them and answers
// their appenders. So the disk syncs one batch while the next is written.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include "cairn/journal.hpp"

namespace cairn {

struct journal_metrics;

class append_inbox {
public:
  /// Called on the syncer thread with an append's result; must not block, and must not
  /// stop or destroy the inbox.
  using completion = std::function<void(expected<append_result>)>;

  explicit append_inbox(std::shared_ptr<journal> store);
  ~append_inbox(); ///< stop()

  append_inbox(const append_inbox&) = delete;
  append_inbox& operator=(const append_inbox&) = delete;

  /// Queues `request`; once it is durable (or has failed), `reply_to` receives
  /// (appended_atom, tag, append_result) or (appended_atom, tag, caf::error).
  /// Answers at once with `unavailable` after stop(). Thread-safe.
  void submit(append_request request, caf::actor reply_to, uint64_t tag);

  /// The same for callers that are not actors: `done` runs on the writer thread.
  void submit(append_request request, completion done);

  /// Finishes and answers the batches being written, fails what waits for the next
  /// one and every later submit with `unavailable`, and stops the threads. Idempotent.
  void stop();

  /// Answers to actors go in one message per batch to `replier`, which sends them
  /// (from a scheduler thread, where CAF enqueues cheaply). Set once, before appends;
  /// from stop() on, answers go straight to the appenders.
  void set_replier(caf::actor replier);

  /// Counts batch sizes in `m` from the next batch on (null: stop counting).
  void set_metrics(std::shared_ptr<const journal_metrics> m);

  /// Batches written so far (for tests and statistics).
  uint64_t batches_written() const;

private:
  struct reply_address {
    caf::actor actor;
    uint64_t tag = 0;
    completion done; // instead of actor
  };
  struct batch_in_flight {
    std::unique_ptr<journal::pending_append> pending;
    std::vector<reply_address> replies;
    std::vector<expected<append_result>> results; // once finished
  };

  void enqueue(append_request request, reply_address reply);
  void run_writer();
  /// Answers every appender of a finished batch.
  void answer_all(batch_in_flight& b);
  void run_syncer();

  std::shared_ptr<journal> store_;
  caf::actor replier_;
  std::shared_ptr<const journal_metrics> metrics_; // guarded by mutex_
  mutable std::mutex mutex_;
  std::condition_variable writer_wake_;
  std::condition_variable syncer_wake_;
  std::vector<append_request> pending_; // submitted, not yet begun
  std::vector<reply_address> pending_replies_;
  std::deque<batch_in_flight> to_finish_; // begun, for the syncer, in order
  size_t in_flight_ = 0;                  // begun and not yet finished
  bool writer_waiting_ = false;
  bool stopping_ = false;
  bool writer_done_ = false;
  uint64_t batches_ = 0;
  std::thread syncer_;
  std::thread writer_; // last: starts once everything above exists
};

/// One batch's answers to actors, for the replier (append_inbox::set_replier).
struct append_answers {
  struct answer {
    caf::actor to;
    uint64_t tag;
    expected<append_result> result;
  };
  std::vector<answer> items;
};

} // namespace cairn

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::append_answers)
