// The per-category router: spawns one aggregate actor per entity id on first use,
// forwards commands to it, passivates idle ones and stops them all at exit.
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "aggregate_instance.hpp"
#include "append_inbox.hpp"
#include "cairn/cluster_hooks.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "node_metrics.hpp"
#include "reply_sink.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

using steady = std::chrono::steady_clock;

struct live_aggregate {
  caf::actor actor;
  steady::time_point last_used;
};

struct router_state {
  static inline const char* name = "cairn.router";
  std::shared_ptr<const aggregate_context> ctx;
  std::unordered_map<std::string, live_aggregate> live;
  std::unordered_map<caf::actor_addr, std::string> ids;
  /// Instances told to passivate and not yet down; commands for them wait here.
  std::unordered_map<std::string, std::vector<std::pair<command_reply_to, command_message>>>
    draining;
  /// The live aggregates' addresses, shared with the router's exit functor.
  std::shared_ptr<std::unordered_set<caf::actor_addr>> children =
    std::make_shared<std::unordered_set<caf::actor_addr>>();
  bool ticking = false;
  bool stopping = false; // told to exit; waiting for the aggregates to go
  caf::error stop_reason;
};

using router_actor_t = caf::stateful_actor<router_state>;

caf::actor spawn_aggregate(router_actor_t* self, const std::string& id) {
  auto& st = self->state;
  auto agg = spawn_aggregate_instance(
    self, stream_id{std::string{st.ctx->model->category()}, id}, st.ctx);
  self->monitor(agg);
  st.ids.emplace(agg.address(), id);
  st.children->insert(agg.address());
  st.live.emplace(id, live_aggregate{agg, steady::now()});
  if (st.ctx->metrics) st.ctx->metrics->live.add(1);
  auto idle = st.ctx->options.passivate_after;
  if (idle.count() > 0 && !st.ticking) {
    st.ticking = true;
    self->delayed_send(self, std::max<caf::timespan>(idle / 4, std::chrono::milliseconds{10}),
                       tick_atom::value);
  }
  return agg;
}

/// Passivates instances idle longer than passivate_after. One periodic tick per
/// router instead of a timer per aggregate keeps the clock thread out of the
/// command path.
void passivate_idle(router_actor_t* self) {
  auto& st = self->state;
  auto idle = st.ctx->options.passivate_after;
  auto cutoff = steady::now() - idle;
  for (auto it = st.live.begin(); it != st.live.end();) {
    if (it->second.last_used <= cutoff) {
      self->send(it->second.actor, passivate_atom::value);
      if (st.ctx->metrics) st.ctx->metrics->passivations.add();
      st.draining.try_emplace(it->first);
      it = st.live.erase(it);
    } else {
      ++it;
    }
  }
  st.ticking = !st.live.empty() && !st.stopping;
  if (st.ticking)
    self->delayed_send(self, std::max<caf::timespan>(idle / 4, std::chrono::milliseconds{10}),
                       tick_atom::value);
}

/// The live instance for `cmd`'s target, spawned if needed; a null actor while
/// the instance is passivating (park the command until it is down). Errors: the
/// node is stopping, a command of another category, an invalid id.
expected<caf::actor> route(router_actor_t* self, const command_message& cmd) {
  auto& st = self->state;
  if (st.stopping) return error{errc::unavailable, "the node is stopping"};
  if (cmd.target.category != st.ctx->model->category())
    return error{errc::invalid_argument, "router of " + std::string{st.ctx->model->category()} +
                                           " got a command for " + cmd.target.str()};
  auto it = st.live.find(cmd.target.id);
  if (it == st.live.end()) {
    if (st.draining.count(cmd.target.id)) return caf::actor{};
    if (auto ok = cmd.target.validate(); !ok) return ok.error();
    return spawn_aggregate(self, cmd.target.id);
  }
  if (st.ctx->options.passivate_after.count() > 0) it->second.last_used = steady::now();
  return it->second.actor;
}

/// Stops every aggregate, for the router's exit. An idle instance is referenced by the
/// router alone: releasing that reference (after dropping the monitor) destroys it
/// right here, as CAF's "unreachable" exit, with no message either way. With a million
/// live instances that takes a second or two, where an exit message to each and a
/// down message back took minutes. Instances that are still referenced elsewhere (an
/// append or a message in flight) or are passivating get an exit message as before,
/// and the router waits for their down messages. Nothing acknowledged is lost either
/// way: a command is answered only once its events are durable.
void stop_aggregates(router_actor_t* self) {
  auto& st = self->state;
  // The handles in a vector, so that the instances' memory can be fetched ahead.
  std::vector<caf::actor> handles;
  handles.reserve(st.live.size());
  for (auto& kv : st.live) handles.push_back(std::move(kv.second.actor));
  st.live.clear();
  std::vector<caf::actor_addr> still; // stopping on their own, or referenced elsewhere
  constexpr size_t ahead = 8;
  for (size_t i = 0; i < handles.size(); ++i) {
    if (i + ahead < handles.size())
      __builtin_prefetch(caf::actor_cast<caf::abstract_actor*>(handles[i + ahead]));
    auto addr = handles[i].address();
    self->demonitor(addr);
    handles[i] = nullptr; // destroys an idle instance here
    if (auto alive = caf::actor_cast<caf::actor>(addr)) {
      self->monitor(alive); // a down message at once if it has just stopped
      still.push_back(std::move(addr));
    }
  }
  std::unordered_map<caf::actor_addr, std::string> ids;
  for (auto& addr : still)
    if (auto it = st.ids.find(addr); it != st.ids.end()) ids.emplace(addr, std::move(it->second));
  if (!st.draining.empty()) // passivating instances, which are not in `live`
    for (auto& kv : st.ids)
      if (st.draining.count(kv.second)) ids.emplace(kv.first, std::move(kv.second));
  st.ids.swap(ids);
  st.children->clear();
  for (auto& kv : st.ids) st.children->insert(kv.first);
  for (auto& kv : st.ids) self->send_exit(kv.first, st.stop_reason);
}

/// Holds a command for an instance that is passivating, within the instances' queue bound.
void park(router_actor_t* self, command_message& cmd, command_reply_to rp) {
  auto& st = self->state;
  auto& queue = st.draining[cmd.target.id];
  auto limit = st.ctx->options.max_queued_commands;
  if (limit > 0 && queue.size() >= limit) return rp.deliver(queue_full(cmd.target, limit));
  queue.emplace_back(std::move(rp), std::move(cmd));
}

caf::behavior router_actor(router_actor_t* self, std::shared_ptr<const aggregate_context> ctx) {
  self->state.ctx = std::move(ctx);
  // Aggregates are monitored: the router stops only once every aggregate is down,
  // so a stopped router means stopped aggregates. Should the router die any other
  // way, the functor below takes its aggregates along. An aggregate that dies on
  // its own is forgotten and respawned (and recovered) by its next command.
  self->set_exit_handler([self](const caf::exit_msg& em) {
    auto& st = self->state;
    if (st.stopping) return;
    st.stopping = true;
    st.stop_reason = em.reason;
    stop_aggregates(self);
    if (st.ids.empty()) self->quit(st.stop_reason);
  });
  self->attach_functor([children = self->state.children] {
    for (auto& addr : *children) caf::anon_send_exit(addr, caf::exit_reason::user_shutdown);
  });
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.ids.find(dm.source);
    if (it == st.ids.end()) return;
    auto id = std::move(it->second);
    st.ids.erase(it);
    st.children->erase(dm.source);
    if (st.ctx->metrics) st.ctx->metrics->live.add(-1);
    if (auto d = st.draining.find(id); d != st.draining.end()) {
      // Passivated: commands that arrived meanwhile go to a fresh instance.
      auto queued = std::move(d->second);
      st.draining.erase(d);
      if (!queued.empty() && !st.stopping) {
        auto agg = spawn_aggregate(self, id);
        for (auto& q : queued) {
          if (q.first.sink)
            self->send(agg, command_atom::value, std::move(q.second), command_sink{q.first.sink});
          else
            q.first.promise.delegate(agg, command_atom::value, std::move(q.second));
        }
      } else {
        for (auto& q : queued) q.first.deliver(error{errc::unavailable, "the node is stopping"});
      }
    } else {
      if (dm.reason && !st.stopping)
        log().warn("aggregate {}-{} stopped: {}", st.ctx->model->category(), id,
                   caf::to_string(dm.reason));
      st.live.erase(id);
    }
    if (st.stopping && st.ids.empty()) self->quit(st.stop_reason);
  });
  return {
    [self](command_atom a, command_message& cmd) -> caf::result<caf::message> {
      auto target = route(self, cmd);
      if (!target) return to_caf(target.error());
      if (!*target) { // passivating: parked until the instance is down
        auto rp = self->make_response_promise();
        park(self, cmd, command_reply_to{rp, nullptr});
        return rp;
      }
      return self->delegate(*target, a, std::move(cmd));
    },
    // The node's fast path: one-way, answered through the sink.
    [self](command_atom a, command_message& cmd, command_sink& sink) {
      auto target = route(self, cmd);
      if (!target) return (*sink.sink)(target.error());
      if (*target) return self->send(*target, a, std::move(cmd), std::move(sink));
      park(self, cmd, command_reply_to{{}, std::move(sink.sink)});
    },
    [self](tick_atom) { passivate_idle(self); },
    // node::stop_aggregates: passivate the matching ones, like idle ones. On a cluster
    // member they are those of shards it lost: they count as fenced.
    [self](aggregate_filter& filter) {
      auto& st = self->state;
      for (auto it = st.live.begin(); it != st.live.end();) {
        stream_id stream{std::string{st.ctx->model->category()}, it->first};
        if (!filter.matches(stream)) {
          ++it;
          continue;
        }
        self->send(it->second.actor, passivate_atom::value);
        if (st.ctx->cluster) st.ctx->cluster->fenced(stream, false);
        st.draining.try_emplace(it->first);
        it = st.live.erase(it);
      }
    },
    // From an aggregate that lost its shard's lease: passivate it like an idle one.
    [self](passivate_atom, const std::string& id) {
      auto& st = self->state;
      auto it = st.live.find(id);
      if (it == st.live.end() || it->second.actor.address() != self->current_sender()) return;
      self->send(it->second.actor, passivate_atom::value);
      st.draining.try_emplace(id);
      st.live.erase(it);
    },
  };
}

} // namespace

caf::actor spawn_router(caf::actor_system& sys, std::shared_ptr<const aggregate_model> model,
                        std::shared_ptr<append_inbox> inbox, std::shared_ptr<journal> store,
                        std::shared_ptr<snapshot_store> snapshots, aggregate_options opts,
                        std::shared_ptr<const command_metrics> metrics, caf::actor reader,
                        std::shared_ptr<cluster_hooks> cluster) {
  auto ctx = std::make_shared<aggregate_context>();
  ctx->cluster = std::move(cluster);
  ctx->reader = std::move(reader);
  ctx->metrics = std::move(metrics);
  ctx->model = std::move(model);
  ctx->store = std::move(store);
  ctx->snapshots = std::move(snapshots);
  ctx->inbox = std::move(inbox);
  ctx->options = opts;
  return sys.spawn(router_actor, std::shared_ptr<const aggregate_context>{std::move(ctx)});
}

} // namespace cairn
