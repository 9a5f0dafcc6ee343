// store_readers: the node's reader threads.
#include "store_readers.hpp"

#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <caf/atom.hpp>
#include <caf/skip.hpp>

namespace cairn {

store_readers::store_readers(size_t threads) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

store_readers::~store_readers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

void store_readers::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void store_readers::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

std::shared_ptr<store_readers> make_store_readers(const journal& store, int configured) {
  size_t threads = configured >= 0 ? static_cast<size_t>(configured)
                                   : store.reads_wait_on_server() ? 4 : 0;
  if (threads == 0) return nullptr;
  return std::make_shared<store_readers>(threads);
}

namespace {

using read_done_atom = caf::atom_constant<caf::atom("readdone")>;

struct reader_state {
  static inline const char* name = "cairn.reader";
  std::weak_ptr<store_readers> pool; // the node owns it (never joined from a reader)
  uint64_t next_id = 0;
  std::unordered_map<uint64_t, caf::response_promise> pending;
};

using reader_actor_t = caf::stateful_actor<reader_state>;

caf::behavior reader_actor(reader_actor_t* self, std::shared_ptr<store_readers> pool) {
  self->state.pool = std::move(pool);
  return {
    [self](read_job& job) -> caf::result<read_result> {
      auto& st = self->state;
      auto pool = st.pool.lock();
      if (!pool) return caf::make_error(caf::sec::request_receiver_down);
      auto promise = self->make_response_promise();
      auto id = ++st.next_id;
      st.pending.emplace(id, promise);
      // The answer comes back through this actor: a promise is delivered in its
      // actor's context, never from a foreign thread.
      pool->post([run = std::move(job.run), me = caf::actor_cast<caf::actor>(self), id] {
        caf::anon_send(me, read_done_atom::value, id, read_result{run()});
      });
      return caf::delegated<read_result>{};
    },
    [self](read_done_atom, uint64_t id, read_result& r) {
      auto& st = self->state;
      auto it = st.pending.find(id);
      if (it == st.pending.end()) return;
      it->second.deliver(std::move(r));
      st.pending.erase(it);
    },
  };
}

} // namespace

caf::behavior hold_messages(caf::event_based_actor* self) {
  self->set_default_handler(caf::skip);
  return {[](read_done_atom, uint64_t) {}}; // never sent to this actor: a placeholder
}

void serve_after_load(caf::event_based_actor* self, caf::behavior running) {
  self->set_default_handler(caf::print_and_drop);
  self->become(std::move(running));
}

caf::actor spawn_reader(caf::actor_system& sys, std::shared_ptr<store_readers> pool) {
  return sys.spawn(reader_actor, std::move(pool));
}

} // namespace cairn
