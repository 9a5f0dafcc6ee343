// The journal actor: group commit in front of a store. (Committed events reach
// projections and other followers through the event feed: event_feed.hpp.)
//
// Appends gather while the store writes the previous batch, then go to it together:
// one write and one fdatasync for all of them. The store is written on a thread of
// the journal's own (a durable write blocks for milliseconds, which must not hold a
// scheduler thread), so the actor keeps gathering, and the disk is never idle while
// appends wait.
#include <condition_variable>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "log.hpp"
#include "message_types.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

using written_atom = caf::atom_constant<caf::atom("written")>;

/// Writes one batch at a time to the store on its own thread, then calls `on_done`.
class store_writer {
public:
  using results = std::vector<expected<append_result>>;

  store_writer(std::shared_ptr<journal> store, std::function<void()> on_done)
    : store_(std::move(store)), on_done_(std::move(on_done)), thread_([this] { run(); }) {}

  ~store_writer() { stop(); }

  /// Finishes the batch in progress (its results stay for take_results()), then
  /// stops the thread. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  /// Hands a batch over. Only while idle (after the last batch's take_results()).
  void start(std::vector<append_request> batch) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      batch_ = std::move(batch);
      has_batch_ = true;
    }
    wake_.notify_one();
  }

  /// The last batch's results, one per request, once on_done has been called.
  results take_results() {
    std::lock_guard<std::mutex> guard{mutex_};
    return std::move(results_);
  }

private:
  void run() {
    std::unique_lock<std::mutex> lock{mutex_};
    for (;;) {
      wake_.wait(lock, [this] { return has_batch_ || stopping_; });
      if (!has_batch_) return; // stopping, and nothing left to write
      auto batch = std::move(batch_);
      has_batch_ = false;
      size_t n = batch.size();
      lock.unlock();
      results out;
      try {
        out = store_->append(std::move(batch));
      } catch (const std::exception& ex) {
        log().error("journal: store append threw: {}", ex.what());
      }
      if (out.size() != n)
        out.assign(n, error{errc::unavailable, "the store failed the whole batch"});
      lock.lock();
      results_ = std::move(out);
      lock.unlock();
      on_done_();
      lock.lock();
    }
  }

  std::shared_ptr<journal> store_;
  std::function<void()> on_done_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<append_request> batch_;
  bool has_batch_ = false;
  bool stopping_ = false;
  results results_;
  std::thread thread_; // last: starts once everything above exists
};

/// Where an append's result goes: a request's promise, or an (appended) message.
struct reply_target {
  caf::response_promise promise; // pending() for requests
  caf::actor actor;              // for the async form
  uint64_t tag = 0;

  void deliver(expected<append_result> result) {
    if (promise.pending()) {
      if (result) promise.deliver(std::move(*result));
      else promise.deliver(to_caf(result.error()));
    } else if (actor) {
      if (result) caf::anon_send(actor, appended_atom::value, tag, std::move(*result));
      else caf::anon_send(actor, appended_atom::value, tag, to_caf(result.error()));
    }
  }
};

/// Answers each reply with its result (results are in request order).
void deliver(std::vector<reply_target>& replies, store_writer::results results) {
  for (size_t i = 0; i < replies.size(); ++i)
    replies[i].deliver(i < results.size() ? std::move(results[i])
                                          : error{errc::unavailable, "no result"});
  replies.clear();
}

struct journal_state {
  static inline const char* name = "cairn.journal";

  std::shared_ptr<journal> store;
  std::unique_ptr<store_writer> writer;

  // Gathering: the next batch and where its results go.
  std::vector<append_request> gathering;
  std::vector<reply_target> gathering_replies;
  bool flush_scheduled = false;

  // In the store's hands.
  std::vector<reply_target> writing_replies;
  bool writing = false;

  ~journal_state() {
    // Stopping: the batch being written completes and is answered; the rest fail.
    if (writer) {
      writer->stop();
      if (writing) deliver(writing_replies, writer->take_results());
    }
    error stopped{errc::unavailable, "the journal stopped before this append was written"};
    for (auto& r : gathering_replies) r.deliver(stopped);
  }
};

using journal_actor_t = caf::stateful_actor<journal_state>;

/// Hands what has gathered to the store, if it is idle.
void start_write(journal_actor_t* self) {
  auto& st = self->state;
  if (st.writing || st.gathering.empty()) return;
  st.writing = true;
  st.writing_replies.swap(st.gathering_replies);
  st.writer->start(std::move(st.gathering));
  st.gathering.clear();
  st.gathering_replies.clear();
}

void gather(journal_actor_t* self, append_request&& req, reply_target&& reply) {
  auto& st = self->state;
  st.gathering.push_back(std::move(req));
  st.gathering_replies.push_back(std::move(reply));
  // While the store is idle, a flush message queues behind every append already in
  // the mailbox, so one write takes all of them. While it is busy, its completion
  // starts the next write.
  if (!st.writing && !st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, flush_atom::value);
  }
}

caf::behavior journal_actor(journal_actor_t* self, std::shared_ptr<journal> store) {
  auto& st = self->state;
  st.store = std::move(store);
  st.writer = std::make_unique<store_writer>(
    st.store, [addr = self->address()] {
      if (auto me = caf::actor_cast<caf::actor>(addr)) caf::anon_send(me, written_atom::value);
    });
  return {
    // The fast form: the result comes back as (appended, tag, result or error).
    [self](append_atom, append_request& req, uint64_t tag) {
      gather(self, std::move(req),
             reply_target{{}, caf::actor_cast<caf::actor>(self->current_sender()), tag});
    },
    // The request form, for callers that append rarely.
    [self](append_atom, append_request& req) -> caf::result<append_result> {
      auto rp = self->make_response_promise();
      gather(self, std::move(req), reply_target{rp, {}, 0});
      return rp;
    },
    [self](flush_atom) {
      self->state.flush_scheduled = false;
      start_write(self);
    },
    [self](written_atom) {
      auto& st = self->state;
      if (!st.writing) return;
      auto done = std::move(st.writing_replies);
      st.writing_replies.clear();
      auto results = st.writer->take_results();
      st.writing = false;
      start_write(self); // keep the disk busy first, then answer
      deliver(done, std::move(results));
    },
    [self](position_atom) { return self->state.store->head_position(); },
  };
}

} // namespace

caf::actor spawn_journal(caf::actor_system& sys, std::shared_ptr<journal> store) {
  return sys.spawn(journal_actor, std::move(store));
}

} // namespace cairn
