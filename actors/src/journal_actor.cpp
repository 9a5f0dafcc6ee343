// The journal actor: group commit in front of a store, and the publisher of
// committed events.
#include <atomic>
#include <chrono>
#include <mutex>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "log.hpp"
#include "message_types.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

/// Collects what the store publishes while append() runs. Guarded by a mutex
/// because anyone else appending to the same store also publishes here.
struct commit_buffer {
  std::mutex mutex;
  std::vector<envelope> events;
  /// False while nobody is subscribed: commits are then not copied at all. A new
  /// subscriber gets everything up to the head from the store (see subscribe), so
  /// nothing it needs is skipped.
  std::atomic<bool> wanted{false};
};

struct journal_state {
  static inline const char* name = "cairn.journal";

  std::shared_ptr<journal> store;
  std::shared_ptr<commit_buffer> committed = std::make_shared<commit_buffer>();
  journal::subscription listener = 0;

  // The batch being gathered: requests and the promises to answer them.
  std::vector<append_request> batch;
  std::vector<caf::response_promise> promises;
  bool flush_scheduled = false;

  // Adaptive linger: after a slow (durable) write, the appenders it answered need
  // a moment to send their next appends. Flushing at the first arrival would split
  // them over two writes, so while the batch is smaller than the last one, wait
  // until it is as large, or a quarter of the last write's duration (at most
  // 2 ms) has passed.
  size_t last_batch = 0;
  bool lingering = false;
  uint64_t flush_id = 0; // flush messages carry it: a stale (superseded) one is ignored
  std::chrono::nanoseconds last_write{0};

  std::vector<caf::actor> subscribers;

  ~journal_state() {
    if (store && listener) store->unsubscribe(listener);
  }
};

using journal_actor_t = caf::stateful_actor<journal_state>;

void publish(journal_actor_t* self) {
  std::vector<envelope> events;
  {
    std::lock_guard<std::mutex> guard{self->state.committed->mutex};
    events.swap(self->state.committed->events);
  }
  if (events.empty() || self->state.subscribers.empty()) return;
  // One message shared by every subscriber (CAF messages are copy-on-write).
  auto msg = caf::make_message(events_atom::value, std::move(events));
  for (auto& s : self->state.subscribers) self->send(s, msg);
}

void flush(journal_actor_t* self, uint64_t id) {
  auto& st = self->state;
  if (id != st.flush_id || !st.flush_scheduled) return; // superseded by an early flush
  st.flush_scheduled = false;
  st.lingering = false;
  auto batch = std::move(st.batch);
  auto promises = std::move(st.promises);
  st.batch.clear();
  st.promises.clear();
  std::vector<expected<append_result>> results;
  st.last_batch = batch.size();
  auto started = std::chrono::steady_clock::now();
  try {
    results = st.store->append(std::move(batch));
  } catch (const std::exception& ex) {
    log().error("journal: store append threw: {}", ex.what());
    results.clear();
  }
  st.last_write = std::chrono::steady_clock::now() - started;
  if (results.size() != promises.size()) {
    auto err = to_caf(error{errc::unavailable, "the store failed the whole batch"});
    for (auto& p : promises) p.deliver(err);
  } else {
    for (size_t i = 0; i < promises.size(); ++i) {
      if (results[i]) promises[i].deliver(std::move(*results[i]));
      else promises[i].deliver(to_caf(results[i].error()));
    }
  }
  publish(self);
}

/// Sends everything from `from_position` up to the store's head to `who`, in
/// chunks. Runs inside the journal actor, so no commit can slip in between this
/// catch-up and the live events that follow.
void catch_up(journal_actor_t* self, const caf::actor& who, uint64_t from_position) {
  constexpr size_t chunk = 4096;
  auto head = self->state.store->head_position();
  while (from_position <= head) {
    auto events = self->state.store->read_all(from_position, chunk);
    if (!events) {
      log().error("journal: catch-up read from {} failed: {}", from_position,
                  events.error().describe());
      return;
    }
    if (events->empty()) return;
    from_position = events->back().position + 1;
    self->send(who, events_atom::value, std::move(*events));
  }
}

caf::behavior journal_actor(journal_actor_t* self, std::shared_ptr<journal> store) {
  self->state.store = std::move(store);
  self->state.listener = self->state.store->subscribe(
    [buffer = self->state.committed](const std::vector<envelope>& events) {
      if (!buffer->wanted.load(std::memory_order_acquire)) return;
      std::lock_guard<std::mutex> guard{buffer->mutex};
      buffer->events.insert(buffer->events.end(), events.begin(), events.end());
    });
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const caf::actor& a) { return a.address() == dm.source; }),
               subs.end());
    if (subs.empty()) self->state.committed->wanted.store(false, std::memory_order_release);
  });
  return {
    [self](append_atom, append_request& req) -> caf::result<append_result> {
      auto& st = self->state;
      st.batch.push_back(std::move(req));
      st.promises.push_back(self->make_response_promise());
      // The flush message queues behind every append already in the mailbox, so
      // one store write takes all of them: group commit without a timer.
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        auto linger = std::min<std::chrono::nanoseconds>(st.last_write / 4,
                                                         std::chrono::milliseconds{2});
        ++st.flush_id;
        if (st.batch.size() < st.last_batch && linger > std::chrono::microseconds{50}) {
          st.lingering = true;
          self->delayed_send(self, linger, flush_atom::value, st.flush_id);
        } else {
          self->send(self, flush_atom::value, st.flush_id);
        }
      } else if (st.lingering && st.batch.size() >= st.last_batch) {
        st.lingering = false;
        ++st.flush_id; // the delayed flush is now stale
        self->send(self, flush_atom::value, st.flush_id); // as large as the last: go now
      }
      return st.promises.back();
    },
    [self](flush_atom, uint64_t id) { flush(self, id); },
    [self](subscribe_atom, const caf::actor& who, uint64_t from_position) {
      publish(self); // deliver anything pending first, to the existing subscribers
      // Start buffering before reading the catch-up, so a commit by another
      // writer lands either in the catch-up or in the buffer (positions already
      // seen are skipped by the subscriber).
      self->state.committed->wanted.store(true, std::memory_order_release);
      catch_up(self, who, from_position == 0 ? 1 : from_position);
      self->monitor(who);
      self->state.subscribers.push_back(who);
    },
    [self](position_atom) { return self->state.store->head_position(); },
  };
}

} // namespace

caf::actor spawn_journal(caf::actor_system& sys, std::shared_ptr<journal> store) {
  // Detached: a durable write blocks in fdatasync for milliseconds, which must not
  // take a scheduler thread away from the aggregates. (Never put it in the
  // registry: CAF 0.17 bug #1110 hangs shutdown on registered detached actors.)
  return sys.spawn<caf::detached>(journal_actor, std::move(store));
}

} // namespace cairn
