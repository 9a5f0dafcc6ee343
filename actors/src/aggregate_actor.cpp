// Aggregate actors, one per entity id: recovery from the store, commands one at a
// time, fences and idempotency keys (aggregate_instance.hpp).
#include <chrono>
#include <optional>
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
#include "idempotency_memory.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "node_metrics.hpp"
#include "reply_sink.hpp"
#include "spawn.hpp"
#include "store_readers.hpp"
#include "store_saver.hpp"

namespace cairn {

namespace {

/// An instance rebuilt from the store: by the actor itself, or on a reader thread
/// (then it belongs to no actor until handed over).
struct recovery {
  std::unique_ptr<aggregate_instance> instance;
  error broken; // set when the state could not be rebuilt from the store
  uint64_t snapshot_version = 0;
  std::unique_ptr<idempotency_memory> keys; // null until a keyed event is seen
  fence_token fence; // taken before reading the store
};

/// Feeds `e`'s idempotency key (if any) to `r`'s memory.
void observe_key(const aggregate_context& ctx, recovery& r, const envelope& e) {
  if (ctx.options.idempotency_window == 0) return;
  if (!r.keys) {
    if (!e.meta.find(idempotency_key_entry)) return;
    r.keys = std::make_unique<idempotency_memory>(ctx.options.idempotency_window);
  }
  r.keys->observe(e);
}

bool snapshots_on(const aggregate_context& ctx) {
  return ctx.snapshots && ctx.options.snapshot_every > 0;
}

/// Why `snap` is not of the stream's history, if it is not: the event it ends with
/// must still be there, committed no later than the snapshot was taken (else the
/// stream was cut back, by a repair or a lost unsynced tail, and perhaps regrown).
std::optional<std::string> other_history(const aggregate_context& ctx, const stream_id& stream,
                                         const snapshot& snap) {
  auto last = ctx.store->read_stream(stream, snap.version, 1);
  if (!last) return "cannot read the event it ends with: " + last.error().describe();
  if (last->empty() || last->front().version != snap.version)
    return "it ends at version " + std::to_string(snap.version) +
           ", which the stream does not have (any more)";
  if (last->front().timestamp_ns > snap.timestamp_ns)
    return "the stream's event " + std::to_string(snap.version) +
           " was written after the snapshot was taken";
  return std::nullopt;
}

/// Starts from the latest usable snapshot (if any), then replays the events after it.
/// Reads the store and touches nothing but `ctx` (shared, read-only) and its result,
/// so it may run on a reader thread.
recovery recover_from_store(const aggregate_context& ctx, const stream_id& stream) {
  recovery r;
  // The fence first: once this member holds the shard under that epoch, no earlier
  // owner can store anything more, so the read below sees the whole stream.
  if (ctx.cluster) r.fence = ctx.cluster->fence_for(stream);
  r.instance = ctx.model->make_instance();
  auto& instance = r.instance;
  auto& broken = r.broken;
  if (snapshots_on(ctx)) {
    auto snap = ctx.snapshots->load(stream);
    if (!snap) {
      log().warn("aggregate {}: ignoring snapshot: {}", stream.str(), snap.error().describe());
    } else if (*snap) {
      if (auto other = other_history(ctx, stream, **snap))
        log().warn("aggregate {}: ignoring snapshot: {}", stream.str(), *other);
      else if (auto ok = instance->restore(**snap); ok) {
        r.snapshot_version = (*snap)->version;
      }
      else
        log().info("aggregate {}: ignoring snapshot: {}", stream.str(), ok.error().describe());
    }
  }
  // In chunks, not through read_stream_all: one chunk's envelopes at a time stay in
  // the same, reused memory, where a whole stream's would be fresh pages whose
  // faults cost more than reading and decoding the events.
  constexpr size_t chunk = 512;
  for (uint64_t next = instance->version() + 1; !broken;) {
    auto events = ctx.store->read_stream(stream, next, chunk);
    if (!events) {
      broken = events.error();
      break;
    }
    for (auto& e : *events) {
      observe_key(ctx, r, e);
      if (auto ok = instance->replay(e); !ok) {
        broken = error{ok.error().code(), "cannot recover " + stream.str() + ": " +
                                            ok.error().message()};
        break;
      }
    }
    if (events->size() < chunk) break;
    next = events->back().version + 1;
  }
  if (broken) log().error("aggregate {}: {}", stream.str(), broken.describe());
  return r;
}

struct aggregate_state {
  static inline const char* name = "cairn.aggregate";

  stream_id stream;
  std::shared_ptr<const aggregate_context> ctx;
  std::unique_ptr<aggregate_instance> instance;
  error broken; // set when the state could not be rebuilt from the store
  bool busy = false; // a command's append is in flight
  command_reply_to in_flight; // where its command's reply goes
  uint32_t in_flight_events = 0;
  uint64_t append_tag = 0; // of the append in flight
  bool stop_requested = false; // passivation: quit once idle
  uint64_t snapshot_version = 0; // version of the last snapshot taken or loaded
  // Commands that arrived while busy, oldest first from `next_waiting`. A vector,
  // not a deque: an empty std::deque allocates ~600 bytes, and most aggregates
  // are idle with nothing waiting.
  std::vector<std::pair<command_message, command_reply_to>> waiting;
  size_t next_waiting = 0;

  std::unique_ptr<idempotency_memory> keys; // recent keyed commands (null: none yet)
  // Recovered from a snapshot: the keys of the commands just before it are read when
  // the first keyed command comes (most aggregates never see one).
  uint64_t keys_unread_through = 0; // the recovered snapshot's version; 0: nothing unread
  std::string in_flight_key; // the idempotency key of the command in flight, if any
  fence_token fence; // what appends carry (cluster members)
  bool fenced_out = false; // lost the lease: answers fenced until the router stops it
  caf::actor_addr router;

  bool recovering = false; // a recovery runs on a reader thread (busy is set too)
  bool just_recovered = false; // the waiting commands see that recovery's outcome

  bool snapshots_on() const { return cairn::snapshots_on(*ctx); }

  void adopt(recovery r) {
    instance = std::move(r.instance);
    broken = std::move(r.broken);
    snapshot_version = r.snapshot_version;
    keys = std::move(r.keys);
    fence = r.fence;
    keys_unread_through = ctx->options.idempotency_window > 0 ? snapshot_version : 0;
  }

  /// Rebuilds the state here and now (on the actor's thread).
  void recover() { adopt(recover_from_store(*ctx, stream)); }

  // Snapshot writes (made on the first one: most aggregates never take one). With a
  // reader they run on its threads: the next command never waits for one.
  std::unique_ptr<store_saver> snapshot_saver;

  void maybe_snapshot(caf::event_based_actor* self) {
    if (!snapshots_on() || instance->version() - snapshot_version < ctx->options.snapshot_every)
      return;
    snapshot_version = instance->version();
    auto snap = instance->take_snapshot(stream);
    if (!snap) return log().warn("aggregate {}: {}", stream.str(), snap.error().describe());
    if (!snapshot_saver) snapshot_saver = std::make_unique<store_saver>(self, ctx->reader);
    snapshot_saver->save(
      [snapshots = ctx->snapshots, s = std::move(*snap)] { return snapshots->save(s); },
      [this](const expected<void>& ok) {
        if (!ok)
          log().warn("aggregate {}: snapshot not saved: {}", stream.str(), ok.error().describe());
      });
  }
};

using aggregate_actor_t = caf::stateful_actor<aggregate_state>;

void process_queue(aggregate_actor_t* self);

/// Rebuilds the state from the store: inline without a reader; else on a reader
/// thread, the actor holding commands meanwhile (as while an append is in flight)
/// and going on with them once the state is back.
void start_recovery(aggregate_actor_t* self) {
  auto& st = self->state;
  if (!st.ctx->reader) return st.recover();
  st.busy = true;
  st.recovering = true;
  read_off_thread<recovery>(
    self, st.ctx->reader,
    [ctx = st.ctx, stream = st.stream] { return recover_from_store(*ctx, stream); },
    [self](recovery& r) {
      auto& st = self->state;
      st.adopt(std::move(r));
      st.recovering = false;
      st.busy = false;
      st.just_recovered = true;
      process_queue(self);
    });
}

/// Puts a command back at the head of the queue (it waits for a recovery).
void requeue_first(aggregate_state& st, command_message& cmd, command_reply_to& rp) {
  if (st.next_waiting > 0)
    st.waiting[--st.next_waiting] = {std::move(cmd), std::move(rp)};
  else
    st.waiting.emplace(st.waiting.begin(), std::move(cmd), std::move(rp));
}

/// Reads the keys of the commands just before the snapshot the state was recovered
/// from (a retry may repeat one). On the actor's thread: it happens once per recovery,
/// and only for an aggregate that gets a keyed command.
void read_keys_before_snapshot(aggregate_state& st) {
  auto last = std::exchange(st.keys_unread_through, 0);
  auto window = st.ctx->options.idempotency_window;
  auto first = last > window ? last - window + 1 : 1;
  auto before = st.ctx->store->read_stream(st.stream, first, last - first + 1);
  if (!before) {
    log().warn("aggregate {}: cannot read the idempotency keys before its snapshot: {}",
               st.stream.str(), before.error().describe());
    return;
  }
  idempotency_memory older{window};
  for (auto& e : *before) older.observe(e);
  if (older.size() == 0) return;
  if (!st.keys) st.keys = std::make_unique<idempotency_memory>(window);
  st.keys->absorb(older);
}

/// This member no longer holds the stream's shard under the epoch the state was
/// recovered with (the lease moved, perhaps away and back): answers `rp` and every
/// waiting command with errc::fenced (nothing of them is stored, so the cluster
/// routes them again), and from then on every command that still reaches it, while
/// the router passivates it; the next command here recovers afresh.
error fenced_error(const aggregate_state& st) {
  return error{errc::fenced, "aggregate " + st.stream.str() + " moved: its shard's lease " +
                               std::to_string(st.fence.lease) + " is not held under epoch " +
                               std::to_string(st.fence.epoch) + " any more"};
}

void fence_out(aggregate_actor_t* self, command_reply_to& rp, bool by_store) {
  auto& st = self->state;
  log().info("aggregate {}: {} its shard's lease; stopping", st.stream.str(),
             by_store ? "the store refused an append under a stale epoch of"
                      : "this member no longer holds (under the same epoch)");
  st.ctx->cluster->fenced(st.stream, by_store);
  auto why = fenced_error(st);
  rp.deliver(why);
  for (; st.next_waiting < st.waiting.size(); ++st.next_waiting)
    st.waiting[st.next_waiting].second.deliver(why);
  st.waiting.clear();
  st.next_waiting = 0;
  st.busy = false;
  st.fenced_out = true;
  if (auto router = caf::actor_cast<caf::actor>(st.router))
    self->send(router, passivate_atom::value, st.stream.id);
  else
    self->quit();
}

/// Runs one command. Either answers `rp` at once (rejection, no-op, error) or
/// starts its append and marks the actor busy until the journal answers.
void handle(aggregate_actor_t* self, command_message& cmd, command_reply_to& rp) {
  auto& st = self->state;
  if (st.broken && !st.just_recovered) { // the store may have been repaired meanwhile
    if (st.ctx->reader) {
      requeue_first(st, cmd, rp);
      return start_recovery(self);
    }
    st.recover();
  }
  if (st.broken) return rp.deliver(st.broken);
  if (st.ctx->cluster && !(st.ctx->cluster->fence_for(st.stream) == st.fence && st.fence.active()))
    return fence_out(self, rp, false);
  auto* key = st.ctx->options.idempotency_window > 0 ? cmd.meta.find(idempotency_key_entry) : nullptr;
  if (key && st.keys_unread_through > 0) read_keys_before_snapshot(st);
  if (key && st.keys)
    if (auto* first = st.keys->find(*key)) return rp.deliver(*first); // a retry
  auto version = st.instance->version();
  if (cmd.expected_version != expected_version::any && cmd.expected_version != version)
    return rp.deliver(error{errc::conflict, "expected version " +
                                              std::to_string(cmd.expected_version) + ", found " +
                                              std::to_string(version) + " in stream " +
                                              st.stream.str()});
  auto decided = st.instance->decide(cmd);
  if (!decided) return rp.deliver(decided.error());
  if (decided->empty()) return rp.deliver(command_reply{version, 0, 0});
  st.busy = true;
  st.in_flight = std::move(rp);
  st.in_flight_events = static_cast<uint32_t>(decided->size());
  if (key) st.in_flight_key = *key;
  else st.in_flight_key.clear();
  // Straight to the journal's writer, which answers with an appended message
  // carrying the tag.
  st.ctx->inbox->submit(append_request{st.stream, version, std::move(*decided), st.fence},
                        caf::actor_cast<caf::actor>(self), ++st.append_tag);
}

/// The journal's answer to the append in flight.
void appended(aggregate_actor_t* self, uint64_t tag, expected<append_result> r) {
  auto& st = self->state;
  if (!st.busy || tag != st.append_tag) return; // not ours (cannot happen), ignore
  auto rp = std::move(st.in_flight);
  bool reload = false;
  if (r) {
    if (auto ok = st.instance->commit(); !ok) {
      log().error("aggregate {}: {}; reloading", st.stream.str(), ok.error().describe());
      reload = true;
    } else {
      st.maybe_snapshot(self);
    }
    if (!st.in_flight_key.empty()) {
      if (!st.keys) st.keys = std::make_unique<idempotency_memory>(st.ctx->options.idempotency_window);
      st.keys->remember(st.in_flight_key,
                        command_reply{r->last_version, r->last_position, st.in_flight_events});
    }
  } else {
    st.instance->discard();
    if (r.error().code() == errc::fenced) {
      st.busy = false;
      return fence_out(self, rp, true);
    }
    // Someone else wrote to this stream: catch up before the next command.
    reload = is_conflict(r.error());
  }
  if (reload && !st.ctx->reader) {
    st.recover();
    reload = false;
  }
  if (r)
    rp.deliver(command_reply{r->last_version, r->last_position, st.in_flight_events});
  else
    rp.deliver(r.error());
  st.busy = false;
  if (reload) return start_recovery(self);
  process_queue(self);
}

void process_queue(aggregate_actor_t* self) {
  auto& st = self->state;
  while (!st.busy && st.next_waiting < st.waiting.size()) {
    auto next = std::move(st.waiting[st.next_waiting++]);
    if (st.next_waiting == st.waiting.size()) {
      st.waiting.clear();
      st.next_waiting = 0;
    } else if (st.next_waiting >= 64 && st.next_waiting * 2 >= st.waiting.size()) {
      // A hot aggregate may never drain: drop the handled half now and then.
      st.waiting.erase(st.waiting.begin(), st.waiting.begin() + st.next_waiting);
      st.next_waiting = 0;
    }
    handle(self, next.first, next.second);
  }
  if (!st.busy && st.next_waiting == st.waiting.size()) st.just_recovered = false;
  if (st.stop_requested && !st.busy && st.next_waiting == st.waiting.size()) self->quit();
}

void accept(aggregate_actor_t* self, command_message& cmd, command_reply_to& rp) {
  auto& st = self->state;
  rp.count_in(st.ctx->metrics.get());
  if (st.fenced_out) return rp.deliver(fenced_error(st));
  if (!st.busy) return handle(self, cmd, rp);
  auto limit = st.ctx->options.max_queued_commands;
  if (limit > 0 && st.waiting.size() - st.next_waiting >= limit)
    return rp.deliver(queue_full(st.stream, limit));
  st.waiting.emplace_back(std::move(cmd), std::move(rp));
}

caf::behavior aggregate_actor(aggregate_actor_t* self, stream_id stream,
                              std::shared_ptr<const aggregate_context> ctx, caf::actor_addr router) {
  auto& st = self->state;
  st.router = std::move(router);
  st.stream = std::move(stream);
  st.ctx = std::move(ctx);
  start_recovery(self);
  return {
    // Commands run strictly one at a time, in arrival order: while one's events
    // are being made durable, later ones wait in `waiting`.
    [self](command_atom, command_message& cmd) -> caf::result<command_reply> {
      auto promise = self->make_response_promise();
      command_reply_to rp{promise, nullptr};
      accept(self, cmd, rp);
      return promise;
    },
    // The node's fast path: one-way, answered through the sink.
    [self](command_atom, command_message& cmd, command_sink& sink) {
      command_reply_to rp{{}, std::move(sink.sink)};
      accept(self, cmd, rp);
    },
    [self](appended_atom, uint64_t tag, append_result& r) { appended(self, tag, r); },
    [self](appended_atom, uint64_t tag, const caf::error& err) {
      appended(self, tag, from_caf(err));
    },
    // From the router: this instance was idle; stop once the commands it already
    // has are done (the router holds new ones until this actor is down).
    [self](passivate_atom) {
      self->state.stop_requested = true;
      process_queue(self);
    },
  };
}

} // namespace

error queue_full(const stream_id& stream, size_t limit) {
  return error{errc::unavailable, "overloaded: aggregate " + stream.str() + " holds " +
                                    std::to_string(limit) +
                                    " waiting commands, its limit (max_queued_commands); "
                                    "retry later or send fewer at once"};
}

caf::actor spawn_aggregate_instance(caf::local_actor* router, stream_id stream,
                                    std::shared_ptr<const aggregate_context> ctx) {
  return router->spawn(aggregate_actor, std::move(stream), std::move(ctx), router->address());
}

} // namespace cairn
