// Projection actors: keep one read model current and answer queries on it, waiting
// for a position when asked to (read-your-writes).
#include <algorithm>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "log.hpp"
#include "message_types.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

struct waiting_query {
  uint64_t id;
  query_job job;
};

struct projection_state {
  static inline const char* name = "cairn.projection";
  std::shared_ptr<const projection_model> model;
  std::unique_ptr<projection_instance> instance;
  uint64_t applied = 0; // position of the last event folded in (or skipped)
  error broken;
  std::vector<waiting_query> waiting;
  uint64_t next_query_id = 1;
  std::shared_ptr<journal> store;
  caf::actor journal_actor;
};

using projection_actor_t = caf::stateful_actor<projection_state>;

/// Folds events in, skipping any already applied (catch-up and live may overlap).
void apply_events(projection_state& st, const std::vector<envelope>& events) {
  for (auto& e : events) {
    if (e.position <= st.applied || st.broken) continue;
    if (auto ok = st.instance->apply(e); !ok) {
      st.broken = ok.error();
      log().error("projection {} stopped applying: {}", st.model->name(), st.broken.describe());
      break;
    }
    st.applied = e.position;
  }
}

void answer(projection_state& st, query_job& job) {
  if (st.broken) job.call->fail(st.broken);
  else job.call->run(st.instance->model());
}

void release_waiting(projection_state& st) {
  auto ready = std::stable_partition(st.waiting.begin(), st.waiting.end(),
                                     [&](const waiting_query& q) {
                                       return q.job.min_position > st.applied && !st.broken;
                                     });
  std::vector<waiting_query> done(std::make_move_iterator(ready),
                                  std::make_move_iterator(st.waiting.end()));
  st.waiting.erase(ready, st.waiting.end());
  for (auto& q : done) answer(st, q.job);
}

caf::behavior projection_actor(projection_actor_t* self,
                               std::shared_ptr<const projection_model> model,
                               std::shared_ptr<journal> store, caf::actor journal_actor,
                               std::chrono::nanoseconds query_timeout) {
  self->state.model = std::move(model);
  self->state.instance = self->state.model->make_instance();
  self->state.store = std::move(store);
  self->state.journal_actor = std::move(journal_actor);
  // Catch up by reading the store directly, a chunk per message so queries are
  // served in between and the journal actor never stalls on a long rebuild.
  self->send(self, catch_up_atom::value);
  return {
    [self](catch_up_atom) {
      auto& st = self->state;
      constexpr size_t chunk = 4096;
      auto events = st.store->read_all(st.applied + 1, chunk);
      if (!events) {
        st.broken = events.error();
        log().error("projection {} cannot catch up: {}", st.model->name(), st.broken.describe());
        return release_waiting(st);
      }
      apply_events(st, *events);
      release_waiting(st);
      if (events->size() == chunk && !st.broken) return self->send(self, catch_up_atom::value);
      // Close to the head: the journal sends what is left, then every new commit.
      self->send(st.journal_actor, subscribe_atom::value, caf::actor_cast<caf::actor>(self),
                 st.applied + 1);
    },
    [self](events_atom, const std::vector<envelope>& events) {
      auto& st = self->state;
      apply_events(st, events);
      release_waiting(st);
    },
    [self, query_timeout](query_atom, query_job& job) {
      auto& st = self->state;
      if (st.broken || job.min_position <= st.applied) return answer(st, job);
      auto id = st.next_query_id++;
      auto timeout = job.timeout_ns > 0 ? std::chrono::nanoseconds{job.timeout_ns}
                                        : query_timeout;
      st.waiting.push_back(waiting_query{id, std::move(job)});
      self->delayed_send(self, timeout, expire_atom::value, id);
    },
    [self](expire_atom, uint64_t id) {
      auto& st = self->state;
      auto it = std::find_if(st.waiting.begin(), st.waiting.end(),
                             [&](const waiting_query& q) { return q.id == id; });
      if (it == st.waiting.end()) return;
      auto job = std::move(it->job);
      st.waiting.erase(it);
      job.call->fail(error{errc::timeout, std::string{st.model->name()} + " has applied up to " +
                                            std::to_string(st.applied) + ", not yet " +
                                            std::to_string(job.min_position)});
    },
    [self](position_atom) { return self->state.applied; },
  };
}

} // namespace

caf::actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const projection_model> model,
                            std::shared_ptr<journal> store, caf::actor journal_actor,
                            std::chrono::nanoseconds query_timeout) {
  return sys.spawn(projection_actor, std::move(model), std::move(store), std::move(journal_actor),
                   query_timeout);
}

} // namespace cairn
