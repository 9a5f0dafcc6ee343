// Projection actors: keep one read model current by following the event feed,
// checkpoint it, rebuild it on demand, and answer queries on it, waiting for a
// position when asked to (read-your-writes).
#include <algorithm>
#include <chrono>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "event_feed.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "spawn.hpp"
#include "store_readers.hpp"
#include "store_saver.hpp"

namespace cairn {

namespace {

using steady = std::chrono::steady_clock;

/// How long a projection waits before reading again after a failed store read.
constexpr auto read_retry_delay = std::chrono::seconds{1};

struct waiting_query {
  uint64_t id;
  query_job job;
};

struct projection_state {
  static inline const char* name = "cairn.projection";
  std::shared_ptr<const projection_model> model;
  std::unique_ptr<projection_instance> instance;
  uint64_t applied = 0; // every event up to here is folded in (or was not wanted)
  error broken;         // set when apply failed: queries fail with it until a rebuild
  std::vector<waiting_query> waiting;
  uint64_t next_query_id = 1;
  std::shared_ptr<journal> store;
  std::unique_ptr<feed_cursor> feed;

  std::shared_ptr<snapshot_store> checkpoints; // null: no checkpoints
  projection_options options;
  uint64_t checkpointed = 0; // position of the checkpoint last saved or loaded
  steady::time_point checkpointed_at = steady::now();

  std::unique_ptr<store_saver> saver; // checkpoint writes, off CAF's threads if it can

  /// The checkpoint of the model as applied now.
  std::optional<snapshot> take_checkpoint() {
    checkpointed_at = steady::now();
    auto snap = instance->save_checkpoint(applied);
    if (!snap) {
      log().warn("projection {}: no checkpoint: {}", model->name(), snap.error().describe());
      return std::nullopt;
    }
    return std::move(*snap);
  }

  /// Stores the checkpoint (on a reader thread when the node has them: the actor
  /// goes on meanwhile; a newer checkpoint asked for meanwhile is written after it).
  void save_checkpoint() {
    auto snap = take_checkpoint();
    if (!snap) return;
    saver->save([cps = checkpoints, s = std::move(*snap)] { return cps->save(s); },
                [this, version = applied](const expected<void>& ok) {
                  if (!ok) {
                    log().warn("projection {}: checkpoint not saved: {}", model->name(),
                               ok.error().describe());
                    return;
                  }
                  checkpointed = version;
                  maybe_checkpoint(); // what was applied while this one was in flight
                });
  }

  void maybe_checkpoint() {
    if (!checkpoints || broken || applied <= checkpointed || saver->busy()) return;
    bool by_count = options.checkpoint_every > 0 &&
                    applied - checkpointed >= options.checkpoint_every;
    bool by_time = options.checkpoint_interval.count() > 0 &&
                   steady::now() - checkpointed_at >= options.checkpoint_interval;
    if (by_count || by_time) save_checkpoint();
  }

  /// Starts from the loaded checkpoint `snap` if it is usable.
  void use_checkpoint(expected<std::optional<snapshot>>& snap) {
    if (!snap) {
      log().warn("projection {}: ignoring checkpoint: {}", model->name(), snap.error().describe());
      return;
    }
    if (!*snap) return;
    auto& s = **snap;
    if (s.version > store->head_position()) {
      log().warn("projection {}: ignoring checkpoint at position {}, past the store's head {}",
                 model->name(), s.version, store->head_position());
      return;
    }
    if (auto ok = instance->load_checkpoint(s); !ok) {
      log().info("projection {}: ignoring checkpoint: {}", model->name(), ok.error().describe());
      instance = model->make_instance(); // a failed load may have left anything behind
      return;
    }
    applied = checkpointed = s.version;
    log().debug("projection {}: resumed from its checkpoint at position {}", model->name(), applied);
  }

  /// The last checkpoint as the actor stops: written here and now (after a write still
  /// in flight), so a restart finds it.
  ~projection_state() {
    if (!checkpoints || !options.checkpoint_on_stop || broken || applied <= checkpointed) return;
    auto snap = take_checkpoint();
    if (!snap) return;
    if (auto ok = saver->save_now([&] { return checkpoints->save(*snap); }); !ok)
      log().warn("projection {}: checkpoint not saved: {}", model->name(), ok.error().describe());
  }
};

using projection_actor_t = caf::stateful_actor<projection_state>;

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

/// Folds a delivery from the feed in; returns the position consumed (the feed
/// pauses if that is short of `through`, which happens only when apply fails).
uint64_t apply_events(projection_state& st, const std::vector<const envelope*>& events,
                      uint64_t through) {
  if (st.broken) return st.applied;
  for (auto* e : events) {
    if (auto ok = st.instance->apply(*e); !ok) {
      st.broken = ok.error();
      st.applied = e->position - 1;
      log().error("projection {} stopped applying: {}", st.model->name(), st.broken.describe());
      release_waiting(st);
      return st.applied;
    }
  }
  st.applied = through;
  st.maybe_checkpoint();
  release_waiting(st);
  return through;
}

caf::behavior projection_actor(projection_actor_t* self,
                               std::shared_ptr<const projection_model> model,
                               std::shared_ptr<journal> store, caf::actor feed,
                               std::shared_ptr<snapshot_store> checkpoints,
                               projection_options options, feed_options feed_opts,
                               std::chrono::nanoseconds query_timeout, caf::actor reader) {
  auto& st = self->state;
  st.model = std::move(model);
  st.instance = st.model->make_instance();
  st.store = std::move(store);
  st.options = options;
  if (options.checkpoints() && st.model->can_checkpoint()) st.checkpoints = std::move(checkpoints);
  st.saver = std::make_unique<store_saver>(self, reader);
  st.feed = std::make_unique<feed_cursor>(
    self, std::move(feed), st.store, st.model->filter(),
    feed_cursor::settings{feed_opts.batch_events, feed_opts.batch_events},
    [self](const std::vector<const envelope*>& events, uint64_t through) {
      return apply_events(self->state, events, through);
    },
    [self](const error& why) {
      log().warn("projection {}: reading events failed, retrying: {}", self->state.model->name(),
                 why.describe());
      self->delayed_send(self, read_retry_delay, retry_atom::value);
    });
  caf::behavior running{
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
    [self](rebuild_atom) {
      // Back to the empty model at position 0, then replay everything; queries keep
      // being served (and wait for their position) meanwhile.
      auto& st = self->state;
      st.instance = st.model->make_instance();
      st.applied = 0;
      st.broken = error{};
      if (st.checkpoints) st.save_checkpoint(); // a restart continues the rebuild
      st.feed->start(1);
      log().info("projection {}: rebuilding from position 1", st.model->name());
      return st.store->head_position();
    },
    [self](retry_atom) {
      if (!self->state.broken) self->state.feed->resume();
    },
    [self](position_atom) { return self->state.applied; },
  };
  // Replays from the store, a chunk per message so queries are served in between,
  // then follows new commits: from the checkpoint, once it is loaded. Loaded on a
  // reader thread when the node has them, the messages waiting meanwhile.
  if (!st.checkpoints) {
    st.feed->start(1);
    return running;
  }
  read_off_thread<expected<std::optional<snapshot>>>(
    self, reader,
    [cps = st.checkpoints, stream = projection_checkpoint_stream(st.model->name())] {
      return cps->load(stream);
    },
    [self, running, held = static_cast<bool>(reader)](expected<std::optional<snapshot>>& snap) {
      auto& st = self->state;
      st.use_checkpoint(snap);
      st.feed->start(st.applied + 1);
      if (held) serve_after_load(self, running);
    });
  if (!reader) return running; // loaded inline, above
  return hold_messages(self);
}

} // namespace

caf::actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const projection_model> model,
                            std::shared_ptr<journal> store, caf::actor feed,
                            std::shared_ptr<snapshot_store> checkpoints,
                            projection_options options, feed_options feed_opts,
                            std::chrono::nanoseconds query_timeout, caf::actor reader) {
  return sys.spawn(projection_actor, std::move(model), std::move(store), std::move(feed),
                   std::move(checkpoints), options, feed_opts, query_timeout, std::move(reader));
}

} // namespace cairn
