// Aggregate actors (one per entity id) and the per-category router that spawns them.
#include <deque>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>

#include "log.hpp"
#include "message_types.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

struct aggregate_state {
  static inline const char* name = "cairn.aggregate";

  stream_id stream;
  std::shared_ptr<const aggregate_model> model;
  std::shared_ptr<journal> store;
  caf::actor journal_actor;
  std::unique_ptr<aggregate_instance> instance;
  error broken; // set when the state could not be rebuilt from the store
  bool busy = false; // a command's append is in flight
  std::deque<std::pair<command_message, caf::response_promise>> waiting;

  /// Rebuilds the state by replaying the stream from the store.
  void recover() {
    instance = model->make_instance();
    broken = {};
    auto events = read_stream_all(*store, stream);
    if (!events) {
      broken = events.error();
    } else {
      for (auto& e : *events) {
        if (auto ok = instance->replay(e); !ok) {
          broken = error{ok.error().code(), "cannot recover " + stream.str() + ": " +
                                              ok.error().message()};
          break;
        }
      }
    }
    if (broken) log().error("aggregate {}: {}", stream.str(), broken.describe());
  }
};

using aggregate_actor_t = caf::stateful_actor<aggregate_state>;

void process_queue(aggregate_actor_t* self);

/// Runs one command. Either answers `rp` at once (rejection, no-op, error) or
/// starts its append and marks the actor busy until the journal answers.
void handle(aggregate_actor_t* self, command_message& cmd, caf::response_promise& rp) {
  auto& st = self->state;
  if (st.broken) st.recover(); // the store may have been repaired meanwhile
  if (st.broken) return rp.deliver(to_caf(st.broken));
  auto version = st.instance->version();
  if (cmd.expected_version != expected_version::any && cmd.expected_version != version)
    return rp.deliver(to_caf(error{errc::conflict, "expected version " +
                                                     std::to_string(cmd.expected_version) +
                                                     ", found " + std::to_string(version) +
                                                     " in stream " + st.stream.str()}));
  auto decided = st.instance->decide(cmd);
  if (!decided) return rp.deliver(to_caf(decided.error()));
  if (decided->empty()) return rp.deliver(command_reply{version, 0, 0});
  auto count = static_cast<uint32_t>(decided->size());
  st.busy = true;
  self
    ->request(st.journal_actor, caf::infinite, append_atom::value,
              append_request{st.stream, version, std::move(*decided)})
    .then(
      [self, rp, count](const append_result& r) mutable {
        auto& st = self->state;
        if (auto ok = st.instance->commit(); !ok) {
          log().error("aggregate {}: {}; reloading", st.stream.str(), ok.error().describe());
          st.recover();
        }
        rp.deliver(command_reply{r.last_version, r.last_position, count});
        st.busy = false;
        process_queue(self);
      },
      [self, rp](caf::error& err) mutable {
        auto& st = self->state;
        st.instance->discard();
        // Someone else wrote to this stream: catch up before the next command.
        if (is_conflict(from_caf(err))) st.recover();
        rp.deliver(std::move(err));
        st.busy = false;
        process_queue(self);
      });
}

void process_queue(aggregate_actor_t* self) {
  auto& st = self->state;
  while (!st.busy && !st.waiting.empty()) {
    auto next = std::move(st.waiting.front());
    st.waiting.pop_front();
    handle(self, next.first, next.second);
  }
}

caf::behavior aggregate_actor(aggregate_actor_t* self, stream_id stream,
                              std::shared_ptr<const aggregate_model> model,
                              std::shared_ptr<journal> store, caf::actor journal_actor) {
  auto& st = self->state;
  st.stream = std::move(stream);
  st.model = std::move(model);
  st.store = std::move(store);
  st.journal_actor = std::move(journal_actor);
  st.recover();
  return {
    // Commands run strictly one at a time, in arrival order: while one's events
    // are being made durable, later ones wait in `waiting`.
    [self](command_atom, command_message& cmd) -> caf::result<command_reply> {
      auto& st = self->state;
      auto rp = self->make_response_promise();
      if (st.busy) st.waiting.emplace_back(std::move(cmd), rp);
      else handle(self, cmd, rp);
      return rp;
    },
  };
}

struct router_state {
  static inline const char* name = "cairn.router";
  std::shared_ptr<const aggregate_model> model;
  std::shared_ptr<journal> store;
  caf::actor journal_actor;
  std::unordered_map<std::string, caf::actor> live;
  std::unordered_map<caf::actor_addr, std::string> ids;
  bool stopping = false; // told to exit; waiting for the aggregates to go
  caf::error stop_reason;
};

using router_actor_t = caf::stateful_actor<router_state>;

caf::behavior router_actor(router_actor_t* self, std::shared_ptr<const aggregate_model> model,
                           caf::actor journal_actor, std::shared_ptr<journal> store) {
  self->state.model = std::move(model);
  self->state.store = std::move(store);
  self->state.journal_actor = std::move(journal_actor);
  // Aggregates are linked, so they die with the router even if it crashes, and
  // monitored: the router stops only once every aggregate is down, so a stopped
  // router means stopped aggregates. An aggregate that dies on its own is
  // forgotten and respawned (and recovered) by its next command.
  self->set_exit_handler([self](const caf::exit_msg& em) {
    auto& st = self->state;
    if (st.ids.count(em.source) || st.stopping) return; // its down_msg follows
    st.stopping = true;
    st.stop_reason = em.reason;
    for (auto& kv : st.live) self->send_exit(kv.second, em.reason);
    if (st.live.empty()) self->quit(st.stop_reason);
  });
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.ids.find(dm.source);
    if (it == st.ids.end()) return;
    if (dm.reason && !st.stopping)
      log().warn("aggregate {}-{} stopped: {}", st.model->category(), it->second,
                 caf::to_string(dm.reason));
    st.live.erase(it->second);
    st.ids.erase(it);
    if (st.stopping && st.live.empty()) self->quit(st.stop_reason);
  });
  return {
    [self](command_atom a, command_message& cmd) -> caf::result<caf::message> {
      auto& st = self->state;
      if (st.stopping) return to_caf(error{errc::unavailable, "the node is stopping"});
      if (cmd.target.category != st.model->category())
        return to_caf(error{errc::invalid_argument, "router of " +
                                                      std::string{st.model->category()} +
                                                      " got a command for " + cmd.target.str()});
      auto it = st.live.find(cmd.target.id);
      if (it == st.live.end()) {
        if (auto ok = cmd.target.validate(); !ok) return to_caf(ok.error());
        auto agg = self->spawn<caf::linked>(aggregate_actor, cmd.target, st.model, st.store,
                                            st.journal_actor);
        self->monitor(agg);
        st.ids.emplace(agg.address(), cmd.target.id);
        it = st.live.emplace(cmd.target.id, std::move(agg)).first;
      }
      return self->delegate(it->second, a, std::move(cmd));
    },
  };
}

} // namespace

caf::actor spawn_router(caf::actor_system& sys, std::shared_ptr<const aggregate_model> model,
                        caf::actor journal_actor, std::shared_ptr<journal> store) {
  return sys.spawn(router_actor, std::move(model), std::move(journal_actor), std::move(store));
}

} // namespace cairn
