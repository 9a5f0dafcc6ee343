// The saga manager: runs one saga type. It follows the committed events in position
// order, routes each to the instance it concerns, stores what the instances decide
// (one write per instance per round, group-committed by the journal actor), then
// sends their commands through the node and feeds replies and timeouts back to them.
// The guarantees are in saga.hpp; the per-instance mechanics in saga_process.hpp.
#include "saga_manager.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "cairn/codec.hpp"
#include "cairn/saga_process.hpp"
#include "event_feed.hpp"
#include "log.hpp"
#include "message_types.hpp"

namespace cairn {
namespace {

/// What happened to one send of an instance's command, queued for the next round.
struct saga_outcome {
  enum class kind : uint8_t { reply, timeout, resend };
  kind what = kind::reply;
  std::string key;
  uint64_t step_id = 0;
  uint64_t send_seq = 0;
  bool ok = false;
  command_reply reply;
  error err;
};

} // namespace
} // namespace cairn

// Local only: replies travel from the node's dispatchers to the manager in-process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::saga_outcome)

namespace cairn {
namespace {

using sweep_atom = caf::atom_constant<caf::atom("sagasweep")>;
using checkpoint_atom = caf::atom_constant<caf::atom("sagacheck")>;
using again_atom = caf::atom_constant<caf::atom("sagaretry")>;

struct deadline {
  caf::timestamp at;
  std::string key;
  uint64_t step_id;
  uint64_t send_seq;
};

struct saga_manager_state {
  static inline const char* name = "cairn.saga";

  std::shared_ptr<const saga_model> model;
  saga_options opts;
  std::shared_ptr<journal> store;
  caf::actor journal_actor;
  saga_command_sender send;
  std::unique_ptr<feed_cursor> feed;
  stream_id checkpoint_stream;

  std::unordered_map<std::string, std::unique_ptr<saga_process>> live; // open instances
  std::unordered_set<std::string> to_reload; // dropped after a failure: load and resume
  uint64_t processed = 0;       // every event up to here is processed and its effects stored
  uint64_t checkpointed = 0;
  uint64_t since_checkpoint = 0; // events (not its own) processed since the last checkpoint
  bool checkpoint_timer = false;
  bool checkpoint_due = false;
  bool checkpoint_backoff = false; // the last checkpoint write failed: wait for the timer

  // The round in flight: instance writes (or a checkpoint write) not yet answered.
  bool busy = false;
  size_t outstanding = 0;
  bool round_failed = false;
  uint64_t round_through = 0; // the last event position the round covers (0: none)
  std::unordered_set<std::string> touched;

  bool retry_scheduled = false;
  bool restart_feed = false; // on the next retry, re-read events from processed + 1
  uint64_t rounds_failed = 0;

  std::vector<saga_outcome> queued;
  std::deque<deadline> deadlines;
  bool sweeping = false;
};

using manager_t = caf::stateful_actor<saga_manager_state>;

void next_round(manager_t* self);

caf::timespan sweep_interval(const saga_options& opts) {
  return std::clamp<caf::timespan>(opts.step_timeout / 4, std::chrono::milliseconds{1},
                                   std::chrono::milliseconds{50});
}

void schedule_retry(manager_t* self) {
  auto& st = self->state;
  if (st.retry_scheduled) return;
  st.retry_scheduled = true;
  self->delayed_send(self, st.opts.retry_delay, again_atom::value);
}

/// Hands a command to the node; its reply comes back as a saga_outcome.
void dispatch(manager_t* self, const std::string& key, saga_dispatch d) {
  auto& st = self->state;
  st.deadlines.push_back(
    deadline{caf::make_timestamp() + st.opts.step_timeout, key, d.step_id, d.send_seq});
  if (!st.sweeping) {
    st.sweeping = true;
    self->delayed_send(self, sweep_interval(st.opts), sweep_atom::value);
  }
  auto me = caf::actor_cast<caf::actor>(self);
  st.send(std::move(d.command),
          [me, key, step = d.step_id, seq = d.send_seq](expected<command_reply> r) {
            saga_outcome o;
            o.key = key;
            o.step_id = step;
            o.send_seq = seq;
            o.ok = r.has_value();
            if (r) o.reply = *r;
            else o.err = r.error();
            caf::anon_send(me, std::move(o));
          });
}

/// Sends what `p` has ready and schedules its delayed re-sends.
void flush_sends(manager_t* self, saga_process& p) {
  auto& st = self->state;
  for (auto& d : p.take_ready()) dispatch(self, p.key(), std::move(d));
  for (auto& [step, seq] : p.take_delayed()) {
    saga_outcome o;
    o.what = saga_outcome::kind::resend;
    o.key = p.key();
    o.step_id = step;
    o.send_seq = seq;
    self->delayed_send(self, st.opts.retry_delay, std::move(o));
  }
}

/// Forgets an instance whose in-memory state can no longer be trusted; it is
/// loaded again from the store (and its pending commands re-sent) on the next retry.
void drop(manager_t* self, const std::string& key, const error& why) {
  auto& st = self->state;
  log().warn("saga {} instance {}: reloading after: {}", st.model->name(), key, why.describe());
  st.live.erase(key);
  st.touched.erase(key);
  st.to_reload.insert(key);
  schedule_retry(self);
}

bool transient(const error& e) { return is_unavailable(e) || is_timeout(e); }

/// The live instance for `key`, loaded from the store (and resumed: its pending
/// commands sent again) if it is not in memory. Null if it cannot be loaded: after a
/// transient store error it is tried again later; after any other (a malformed key,
/// a corrupt stream) it is left alone. `why` (if given) gets the error.
saga_process* get_or_load(manager_t* self, const std::string& key, error* why = nullptr) {
  auto& st = self->state;
  if (auto it = st.live.find(key); it != st.live.end()) return it->second.get();
  auto p = saga_process::load(*st.store, st.model, key);
  if (!p) {
    if (transient(p.error())) {
      log().warn("saga {}: cannot load instance {} now: {}", st.model->name(), key,
                 p.error().describe());
      st.to_reload.insert(key);
      schedule_retry(self);
    } else {
      log().error("saga {}: cannot load instance {}: {}", st.model->name(), key,
                  p.error().describe());
      st.to_reload.erase(key);
    }
    if (why) *why = p.error();
    return nullptr;
  }
  st.to_reload.erase(key);
  auto* raw = p->get();
  auto resumed = raw->resume();
  st.live.emplace(key, std::move(*p));
  for (auto& d : resumed) dispatch(self, key, std::move(d));
  return raw;
}

/// Routes one event to its instance. False: stop before it and try again later.
bool handle_event(manager_t* self, const envelope& e) {
  auto& st = self->state;
  auto key = saga_process::route(*st.model, e);
  if (!key) {
    log().error("saga {}: skipping {} ({}): {}", st.model->name(), event_id(e), e.type,
                key.error().describe());
    return true;
  }
  if (key->empty()) return true;
  error why;
  auto* p = get_or_load(self, *key, &why);
  if (!p) return !transient(why); // a transient error: stop here and try again
  if (auto ok = p->on_event(e, *st.store); !ok) {
    if (!transient(ok.error()))
      log().error("saga {} instance {}: skipping {} ({}): {}", st.model->name(), *key,
                  event_id(e), e.type, ok.error().describe());
    drop(self, *key, ok.error());
    return !transient(ok.error());
  }
  if (p->empty()) st.live.erase(*key); // not started by this event: nothing to keep
  else st.touched.insert(*key);
  return true;
}

void finish_round(manager_t* self) {
  auto& st = self->state;
  st.busy = false;
  auto touched = std::move(st.touched);
  st.touched.clear();
  for (auto& key : touched) {
    auto it = st.live.find(key);
    if (it == st.live.end()) continue;
    flush_sends(self, *it->second);
    if (it->second->finished() && !it->second->has_append()) st.live.erase(it);
  }
  if (st.round_failed) {
    // Read again from the last position whose effects are all stored: instances
    // whose writes went through skip what they already did.
    st.round_failed = false;
    ++st.rounds_failed;
    st.restart_feed = true;
    schedule_retry(self);
  } else if (st.round_through > st.processed) {
    st.processed = st.round_through;
  }
  st.round_through = 0;
  next_round(self);
}

/// Stores what the touched instances decided; finish_round() runs once all is stored.
void store_round(manager_t* self, uint64_t through) {
  auto& st = self->state;
  st.round_through = through;
  for (auto& key : st.touched) {
    auto it = st.live.find(key);
    if (it == st.live.end() || !it->second->has_append()) continue;
    ++st.outstanding;
    self->request(st.journal_actor, caf::infinite, append_atom::value, it->second->take_append())
      .then(
        [self, key](const append_result& r) {
          auto& st = self->state;
          if (auto it = st.live.find(key); it != st.live.end()) it->second->committed(r);
          if (--st.outstanding == 0) finish_round(self);
        },
        [self, key](caf::error& err) {
          auto& st = self->state;
          st.round_failed = true;
          drop(self, key, from_caf(err));
          if (--st.outstanding == 0) finish_round(self);
        });
  }
  if (st.outstanding == 0) finish_round(self);
  else st.busy = true;
}

/// Applies the replies, timeouts and re-sends queued since the last round.
void apply_outcomes(manager_t* self) {
  auto& st = self->state;
  auto outcomes = std::move(st.queued);
  st.queued.clear();
  for (auto& o : outcomes) {
    auto it = st.live.find(o.key);
    if (it == st.live.end()) continue; // finished, or dropped (and resumed on reload)
    auto& p = *it->second;
    expected<void> ok;
    switch (o.what) {
      case saga_outcome::kind::reply:
        ok = p.on_reply(o.step_id, o.send_seq,
                        o.ok ? expected<command_reply>{o.reply} : expected<command_reply>{o.err},
                        *st.store);
        break;
      case saga_outcome::kind::timeout:
        ok = p.on_timeout(o.step_id, o.send_seq, *st.store);
        break;
      case saga_outcome::kind::resend:
        p.resend(o.step_id, o.send_seq);
        break;
    }
    if (!ok) drop(self, o.key, ok.error());
    else st.touched.insert(o.key);
  }
}

void write_checkpoint(manager_t* self) {
  auto& st = self->state;
  saga_checkpoint cp;
  cp.position = st.processed;
  for (auto& kv : st.live) cp.open.push_back(kv.first);
  cp.open.insert(cp.open.end(), st.to_reload.begin(), st.to_reload.end());
  auto s = schema_of<saga_checkpoint>();
  append_request req{st.checkpoint_stream, expected_version::any, {}};
  req.events.push_back(event_data{std::string{s.name}, s.version, {}, encode(cp)});
  st.busy = true;
  st.checkpoint_due = false;
  st.since_checkpoint = 0;
  self->request(st.journal_actor, caf::infinite, append_atom::value, std::move(req))
    .then(
      [self, pos = cp.position](const append_result&) {
        self->state.checkpointed = pos;
        self->state.busy = false;
        next_round(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        log().warn("saga {}: checkpoint not stored: {}", st.model->name(),
                   from_caf(err).describe());
        st.busy = false;
        st.checkpoint_backoff = true;
        st.since_checkpoint = std::max<uint64_t>(st.since_checkpoint, 1);
        if (!st.checkpoint_timer) {
          st.checkpoint_timer = true;
          self->delayed_send(self, st.opts.checkpoint_interval, checkpoint_atom::value);
        }
        next_round(self);
      });
}

/// Starts whatever is next once nothing is in flight: a checkpoint, the queued
/// outcomes, or more events.
void next_round(manager_t* self) {
  auto& st = self->state;
  if (st.busy) return;
  if (!st.checkpoint_backoff && st.processed > st.checkpointed &&
      (st.checkpoint_due || st.since_checkpoint >= std::max<uint64_t>(st.opts.checkpoint_every, 1)))
    return write_checkpoint(self);
  if (!st.queued.empty()) {
    apply_outcomes(self);
    return store_round(self, 0);
  }
  if (!st.restart_feed && !st.retry_scheduled && st.feed->paused()) st.feed->resume();
}

/// The feed hands over the next events in position order.
uint64_t deliver(manager_t* self, const std::vector<const envelope*>& events, uint64_t through) {
  auto& st = self->state;
  if (st.busy || st.restart_feed || st.retry_scheduled) return st.processed; // again later
  apply_outcomes(self);
  uint64_t consumed = through;
  for (auto* e : events) {
    if (!handle_event(self, *e)) {
      consumed = e->position - 1;
      break;
    }
    if (e->stream.category != st.model->category() && e->stream != st.checkpoint_stream &&
        st.since_checkpoint++ == 0 && !st.checkpoint_timer) {
      st.checkpoint_timer = true;
      self->delayed_send(self, st.opts.checkpoint_interval, checkpoint_atom::value);
    }
  }
  store_round(self, consumed);
  if (st.busy) st.feed->pause();
  return consumed;
}

/// The one place that knows how committed events arrive: the node's event feed,
/// every event (routing needs their metadata), in position order.
std::unique_ptr<feed_cursor> follow_events(manager_t* self, caf::actor feed,
                                           feed_options feed_opts) {
  auto& st = self->state;
  auto batch = std::max<size_t>(1, std::min(st.opts.batch_events, feed_opts.batch_events));
  return std::make_unique<feed_cursor>(
    self, std::move(feed), st.store, event_filter{}, feed_cursor::settings{batch, batch},
    [self](const std::vector<const envelope*>& events, uint64_t through) {
      return deliver(self, events, through);
    },
    [self](const error& why) {
      log().warn("saga {}: reading events failed, retrying: {}", self->state.model->name(),
                 why.describe());
      schedule_retry(self);
    });
}

/// The last stored checkpoint (position 0 and no instances if none).
saga_checkpoint load_checkpoint(const saga_manager_state& st) {
  auto version = st.store->stream_version(st.checkpoint_stream);
  if (version && *version > 0) {
    auto last = st.store->read_stream(st.checkpoint_stream, *version, 1);
    if (last && !last->empty()) {
      auto cp = decode<saga_checkpoint>(last->front().payload);
      if (cp) return std::move(*cp);
      log().error("saga {}: ignoring a corrupt checkpoint: {}", st.model->name(),
                  cp.error().describe());
    }
  }
  if (!version)
    log().error("saga {}: cannot read its checkpoint ({}); starting from the first event",
                st.model->name(), version.error().describe());
  return {};
}

caf::behavior saga_manager(manager_t* self, std::shared_ptr<const saga_model> model,
                           saga_options opts, std::shared_ptr<journal> store,
                           caf::actor journal_actor, caf::actor feed, feed_options feed_opts,
                           saga_command_sender send) {
  auto& st = self->state;
  st.model = std::move(model);
  st.opts = opts;
  st.store = std::move(store);
  st.journal_actor = std::move(journal_actor);
  st.send = std::move(send);
  st.checkpoint_stream = saga_checkpoint_stream(st.model->name());
  auto cp = load_checkpoint(st);
  st.processed = st.checkpointed = cp.position;
  st.to_reload.insert(cp.open.begin(), cp.open.end());
  st.feed = follow_events(self, std::move(feed), feed_opts);
  // The first retry loads the open instances (re-sending their pending commands)
  // and starts reading after the checkpoint.
  st.restart_feed = true;
  st.retry_scheduled = true;
  self->send(self, again_atom::value);
  return {
    [self](saga_outcome& o) {
      self->state.queued.push_back(std::move(o));
      next_round(self);
    },
    [self](again_atom) {
      auto& st = self->state;
      st.retry_scheduled = false;
      if (st.busy) return schedule_retry(self);
      auto keys = std::vector<std::string>(st.to_reload.begin(), st.to_reload.end());
      for (auto& key : keys)
        if (auto* p = get_or_load(self, key); p && (p->finished() || p->empty()))
          st.live.erase(key);
      if (st.retry_scheduled) return; // a load failed: the store is not back yet
      if (st.restart_feed) {
        st.restart_feed = false;
        st.feed->start(st.processed + 1);
      }
      next_round(self);
    },
    [self](sweep_atom) {
      auto& st = self->state;
      auto now = caf::make_timestamp();
      while (!st.deadlines.empty() && st.deadlines.front().at <= now) {
        auto& d = st.deadlines.front();
        if (auto it = st.live.find(d.key);
            it != st.live.end() && it->second->expects(d.step_id, d.send_seq)) {
          saga_outcome o;
          o.what = saga_outcome::kind::timeout;
          o.key = std::move(d.key);
          o.step_id = d.step_id;
          o.send_seq = d.send_seq;
          st.queued.push_back(std::move(o));
        }
        st.deadlines.pop_front();
      }
      st.sweeping = !st.deadlines.empty();
      if (st.sweeping) self->delayed_send(self, sweep_interval(st.opts), sweep_atom::value);
      next_round(self);
    },
    [self](checkpoint_atom) {
      auto& st = self->state;
      st.checkpoint_timer = false;
      st.checkpoint_backoff = false;
      if (st.since_checkpoint > 0) st.checkpoint_due = true;
      next_round(self);
    },
    [self](caf::get_atom) {
      auto& st = self->state;
      saga_status s;
      s.processed = st.processed;
      s.checkpointed = st.checkpointed;
      s.open = st.live.size() + st.to_reload.size();
      for (auto& kv : st.live) s.pending_steps += kv.second->pending_steps();
      s.rounds_failed = st.rounds_failed;
      return s;
    },
  };
}

} // namespace

caf::actor spawn_saga_manager(caf::actor_system& sys, std::shared_ptr<const saga_model> model,
                              saga_options opts, std::shared_ptr<journal> store,
                              caf::actor journal_actor, caf::actor feed, feed_options feed_opts,
                              saga_command_sender send) {
  return sys.spawn(saga_manager, std::move(model), opts, std::move(store),
                   std::move(journal_actor), std::move(feed), feed_opts, std::move(send));
}

} // namespace cairn
