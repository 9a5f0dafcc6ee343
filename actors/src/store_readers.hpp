// store_readers: a few threads of the node that run store reads (aggregate recovery,
// catch-up of projections, subscriptions and sagas) off CAF's scheduler threads, so a
// store whose reads wait on a server (PostgreSQL) never stalls the other actors while it
// answers. A job sends its result back to the asking actor as a message.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "cairn/journal.hpp"

namespace cairn {

class store_readers {
public:
  explicit store_readers(size_t threads);
  /// Waits for the jobs running now and drops the queued ones.
  ~store_readers();
  store_readers(const store_readers&) = delete;
  store_readers& operator=(const store_readers&) = delete;

  /// Runs `job` on one of the threads, in arrival order (jobs may run in parallel).
  void post(std::function<void()> job);

private:
  void run();
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

/// The readers for a node over `store`: `configured` threads (node_options::
/// store_read_threads), or for -1 four when the store's reads wait on a server
/// (journal::reads_wait_on_server) and none otherwise. Null: read inline.
std::shared_ptr<store_readers> make_store_readers(const journal& store, int configured);

/// A read to run on the readers, and its result, type-erased: the asking side knows
/// the type (read_off_thread below). Local messages only.
struct read_job {
  std::function<std::shared_ptr<void>()> run;
};
struct read_result {
  std::shared_ptr<void> value;
};

/// The actor through which actors use `pool`: it answers each read_job request with its
/// read_result once a reader thread has run it. CAF's scheduler threads only pass
/// messages; the reads wait on the reader threads.
caf::actor spawn_reader(caf::actor_system& sys, std::shared_ptr<store_readers> pool);

/// Runs `read()` (returning a T) through `reader`, then `done(T&)` inside `self` with its
/// result; meanwhile `self` handles its other messages. Without a reader, both run here
/// and now. `read` must not throw and may run on another thread: give it only what it
/// may use there (shared, immutable or its own).
template <class T, class Self, class Read, class Done>
void read_off_thread(Self* self, const caf::actor& reader, Read read, Done done) {
  if (!reader) {
    T value = read();
    done(value);
    return;
  }
  self->request(reader, caf::infinite,
                read_job{[read = std::move(read)]() mutable -> std::shared_ptr<void> {
                  return std::make_shared<T>(read());
                }})
    .then([done = std::move(done)](read_result& r) mutable {
      done(*std::static_pointer_cast<T>(r.value));
    });
}

/// The behavior of an actor that must finish a load (run with read_off_thread) before
/// it serves: every message waits in the mailbox (CAF 0.17 has no stash) until
/// serve_after_load(). Only the load's own answer gets through.
caf::behavior hold_messages(caf::event_based_actor* self);
/// Ends hold_messages(): `self` switches to `running`, then handles what waited, in order.
void serve_after_load(caf::event_based_actor* self, caf::behavior running);

} // namespace cairn

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::read_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::read_result)
