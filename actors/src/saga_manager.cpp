// The saga manager: runs one saga type. It follows the committed events in position
// order, routes each to the instance it concerns, stores what the instances decide
// (one write per instance per round, group-committed by the journal actor), then
// sends their commands through the node and feeds replies and timeouts back to them.
// The guarantees are in saga.hpp; the per-instance mechanics in saga_process.hpp.
#include "saga_manager.hpp"

#include <algorithm>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "cairn/codec.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "saga_manager_state.hpp"

namespace cairn {
namespace saga_detail {


caf::timespan sweep_interval(const saga_options& opts) {
  return std::clamp<caf::timespan>(opts.step_timeout / 4, std::chrono::milliseconds{1},
                                   std::chrono::milliseconds{50});
}

bool lost_lease(manager_t* self, const error& why) {
  auto& st = self->state;
  if (why.code() != errc::fenced) return false;
  if (!st.lost_lease)
    log().info("saga {}: this member no longer holds the saga's lease; stopping here ({})",
               st.model->name(), why.message());
  st.lost_lease = true;
  self->quit();
  return true;
}

append_request fenced(const manager_state& st, append_request req) {
  req.fence = st.lease.fence;
  return req;
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
  if (st.lost_lease) return;
  if (st.lease.holds && !st.lease.holds()) {
    lost_lease(self, error{errc::fenced, "the lease expired or moved"});
    return;
  }
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

/// Forgets an instance whose in-memory state can no longer be trusted after a
/// transient error; it is loaded again from the store (and its pending commands
/// re-sent) on the next retry.
void drop(manager_t* self, const std::string& key, const error& why) {
  auto& st = self->state;
  uint64_t stored = 0;
  if (auto it = st.live.find(key); it != st.live.end()) stored = it->second->stored_position();
  st.warnings.log(log(), spdlog::level::warn,
                  fmt::format("saga {} instance {}: reloading after: {}", st.model->name(), key,
                              why.describe()));
  st.live.erase(key);
  st.touched.erase(key);
  forget_prefetched(st, key);
  st.to_reload[key] = stored;
  schedule_retry(self);
}

/// The live instance for `key`, loaded from the store (and resumed: its pending
/// commands sent again; or retried, if it is parked and an operator asked for that)
/// if it is not in memory. Null if it cannot be loaded: after a transient store
/// error it is tried again later; after any other (a key unusable as a stream id, a
/// corrupt runtime record) it is left alone. `why` (if given) gets the error.
saga_process* get_or_load(manager_t* self, const std::string& key, error* why) {
  auto& st = self->state;
  if (auto it = st.live.find(key); it != st.live.end()) return it->second.get();
  auto p = load_instance(st, key);
  if (!p) {
    auto level = transient(p.error()) ? spdlog::level::warn : spdlog::level::err;
    st.warnings.log(log(), level,
                    fmt::format("saga {}: cannot load instance {}{}: {}", st.model->name(), key,
                                transient(p.error()) ? " now" : "", p.error().describe()));
    if (transient(p.error())) {
      st.to_reload.emplace(key, 0);
      schedule_retry(self);
    } else {
      st.to_reload.erase(key);
    }
    if (why) *why = p.error();
    return nullptr;
  }
  st.to_reload.erase(key);
  auto* raw = p->get();
  bool retry = raw->retry_requested();
  auto resumed = raw->resume();
  st.live.emplace(key, std::move(*p));
  if (raw->has_append()) st.touched.insert(key); // parked as it loaded
  for (auto& d : resumed) dispatch(self, key, std::move(d));
  if (retry) {
    if (auto ok = retry_parked(self, key); !ok && transient(ok.error())) return nullptr;
    if (auto it = st.live.find(key); it != st.live.end()) return it->second.get();
    return nullptr;
  }
  return raw;
}

/// Routes one event to its instance. False: stop before it and try again later.
bool handle_event(manager_t* self, const envelope& e) {
  auto& st = self->state;
  if (e.stream.category == st.model->category()) {
    // After a restart, each instance that stored an event since the checkpoint's
    // low-water mark may be open: load it (routing never leads to a saga's own events).
    if (e.position <= st.find_open_through && !st.live.count(e.stream.id)) {
      error why;
      auto* p = get_or_load(self, e.stream.id, &why);
      if (!p) return !transient(why);
      if (p->finished() && !p->has_append()) st.live.erase(e.stream.id);
    }
    return true;
  }
  if (e.position <= st.processed) return true; // re-read only to find open instances
  if (unrouted_known(st, e.position)) return true; // parked: waits for an operator
  auto key = saga_process::route(*st.model, e);
  if (!key) {
    park_unrouted(self, e, key.error()); // stored with this round; the others go on
    return true;
  }
  if (key->empty()) return true;
  error why;
  auto* p = get_or_load(self, *key, &why);
  if (!p) {
    if (transient(why)) return false; // stop here and try again
    park_unrouted(self, e, error{why.code(), "instance \"" + *key + "\" cannot be loaded: " +
                                               why.message()});
    return true;
  }
  if (auto ok = p->on_event(e, *st.store); !ok) {
    if (transient(ok.error())) {
      // Its earlier inputs of this round were lost with it: read them again.
      st.round_failed = true;
      drop(self, *key, ok.error());
      return false;
    }
    park(self, *key, ok.error(), p->inputs_since_flush());
    return true;
  }
  if (p->empty()) st.live.erase(*key); // not started by this event: nothing to keep
  else st.touched.insert(*key);
  return true;
}

void finish_round(manager_t* self) {
  auto& st = self->state;
  st.busy = false;
  finish_unrouted_round(self, st.round_failed);
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
  for (auto& answer : std::exchange(st.answer_after_round, {})) answer.deliver(true);
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
    self->request(st.journal_actor, caf::infinite, append_atom::value,
                  fenced(st, it->second->take_append()))
      .then(
        [self, key](const append_result& r) {
          auto& st = self->state;
          if (auto it = st.live.find(key); it != st.live.end()) it->second->committed(r);
          if (--st.outstanding == 0) finish_round(self);
        },
        [self, key](caf::error& err) {
          auto& st = self->state;
          auto why = from_caf(err);
          if (lost_lease(self, why)) return;
          st.round_failed = true;
          drop(self, key, why);
          // Storing it will not work by trying again (too large, say): park it. The
          // inputs of this round come in again and are held.
          if (!transient(why)) st.to_park[key] = park_order{why, {}};
          if (--st.outstanding == 0) finish_round(self);
        });
  }
  store_unrouted(self);
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
    if (ok) st.touched.insert(o.key);
    else if (transient(ok.error())) drop(self, o.key, ok.error());
    else park(self, o.key, ok.error(), p.inputs_since_flush());
  }
}

/// Starts whatever is next once nothing is in flight: a checkpoint, the queued
/// outcomes, or more events.
void next_round(manager_t* self) {
  auto& st = self->state;
  if (st.busy || st.loading) return;
  if (!st.checkpoint_backoff && st.processed > st.checkpointed &&
      (st.checkpoint_due || st.since_checkpoint >= std::max<uint64_t>(st.opts.checkpoint_every, 1)))
    return write_checkpoint(self);
  if (!st.queued.empty() || !st.admin.empty() || unrouted_waiting(st)) {
    run_unrouted_requests(self); // first: the instances it retries into hold no unstored work
    apply_outcomes(self);
    run_admin(self);
    return store_round(self, 0);
  }
  if (!st.restart_feed && !st.retry_scheduled && st.feed->paused()) st.feed->resume();
}

/// The feed hands over the next events in position order.
uint64_t deliver(manager_t* self, const std::vector<const envelope*>& events, uint64_t through) {
  auto& st = self->state;
  if (st.busy || st.loading || st.restart_feed || st.retry_scheduled) // again later
    return events.empty() ? st.processed : events.front()->position - 1;
  apply_outcomes(self);
  uint64_t consumed = through;
  for (size_t i = 0; i < events.size(); ++i) {
    auto* e = events[i];
    // An instance to load: on a reader thread, then the events from here come again.
    if (prefetch_for_events(self, events, i) || !handle_event(self, *e)) {
      consumed = e->position - 1;
      break;
    }
    if (e->position <= st.rescan_through) st.rescan_next = e->position + 1;
    if (e->position <= st.processed) continue;
    if (e->stream.category != st.model->category() && e->stream != st.checkpoint_stream &&
        e->stream.category != saga_unrouted_category &&
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

caf::behavior saga_manager(manager_t* self, std::shared_ptr<const saga_model> model,
                           saga_options opts, std::shared_ptr<journal> store,
                           caf::actor journal_actor, caf::actor feed, feed_options feed_opts,
                           saga_command_sender send, caf::actor reader, saga_lease_hold lease) {
  auto& st = self->state;
  st.lease = std::move(lease);
  st.model = std::move(model);
  st.opts = opts;
  st.store = std::move(store);
  st.journal_actor = std::move(journal_actor);
  st.send = std::move(send);
  st.checkpoint_stream = saga_checkpoint_stream(st.model->name());
  st.reader = std::move(reader);
  st.feed = follow_events(self, std::move(feed), feed_opts);
  start_manager(self);
  return {
    [self](saga_outcome& o) {
      self->state.queued.push_back(std::move(o));
      next_round(self);
    },
    [self](again_atom) {
      auto& st = self->state;
      st.retry_scheduled = false;
      if (st.busy || st.loading) return schedule_retry(self);
      if (!load_unrouted(self)) return;
      park_waiting(self);
      if (prefetch_reloads(self)) return; // then again
      std::vector<std::string> keys;
      for (auto& kv : st.to_reload) keys.push_back(kv.first);
      for (auto& key : keys)
        if (!st.to_reload.count(key)) continue; // parked meanwhile
        else if (auto* p = get_or_load(self, key);
                 p && (p->finished() || p->empty()) && !p->has_append())
          st.live.erase(key);
      if (st.retry_scheduled) return; // a load failed: the store is not back yet
      if (st.restart_feed) {
        st.restart_feed = false;
        bool rescanning = st.rescan_next > 0 && st.rescan_next <= st.rescan_through;
        st.feed->start(rescanning ? st.rescan_next : st.processed + 1);
      }
      store_round(self, 0); // what the loads and parks recorded; then the next round
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
      s.open = st.to_reload.size();
      for (auto& kv : st.live) {
        // Parked counts once stored: until its round's writes are done, an instance
        // being parked is still open (a node stopped meanwhile resumes it as it was).
        if (kv.second->parked() && st.outstanding == 0 && !kv.second->has_append() &&
            !st.touched.count(kv.first)) {
          ++s.parked;
        } else {
          ++s.open;
          s.pending_steps += kv.second->pending_steps();
        }
      }
      s.rounds_failed = st.rounds_failed;
      s.parked_events = st.unrouted.parked.size();
      return s;
    },
    [self](saga_parked_atom) { return list_parked(self->state); },
    [self](saga_parked_events_atom) {
      std::vector<parked_saga_event> out;
      for (auto& kv : self->state.unrouted.parked) out.push_back(kv.second);
      return out;
    },
    [self](saga_retry_event_atom, uint64_t position) {
      auto answer = self->make_response_promise();
      self->state.unrouted.requests.push_back(unrouted_request{false, position, {}, answer, {}});
      next_round(self);
      return answer;
    },
    [self](saga_close_event_atom, uint64_t position, std::string& reason) {
      auto answer = self->make_response_promise();
      self->state.unrouted.requests.push_back(
        unrouted_request{true, position, std::move(reason), answer, {}});
      next_round(self);
      return answer;
    },
    [self](saga_retry_atom, std::string& key) {
      auto& st = self->state;
      auto answer = self->make_response_promise();
      st.admin.push_back(admin_request{false, std::move(key), {}, answer});
      next_round(self);
      return answer;
    },
    [self](saga_close_atom, std::string& key, std::string& reason) {
      auto& st = self->state;
      auto answer = self->make_response_promise();
      st.admin.push_back(admin_request{true, std::move(key), std::move(reason), answer});
      next_round(self);
      return answer;
    },
  };
}

} // namespace saga_detail

caf::actor spawn_saga_manager(caf::actor_system& sys, std::shared_ptr<const saga_model> model,
                              saga_options opts, std::shared_ptr<journal> store,
                              caf::actor journal_actor, caf::actor feed, feed_options feed_opts,
                              saga_command_sender send, caf::actor reader,
                              saga_lease_hold lease) {
  // With a store whose reads wait on a server, the manager gets a thread of its own: a
  // saga step reads its target's version (saga_process) and the parking paths load
  // instances inline, and those waits must not hold one of CAF's scheduler threads.
  if (reader)
    return sys.spawn<caf::detached>(saga_detail::saga_manager, std::move(model), opts,
                                    std::move(store), std::move(journal_actor), std::move(feed),
                                    feed_opts, std::move(send), std::move(reader),
                                    std::move(lease));
  return sys.spawn(saga_detail::saga_manager, std::move(model), opts, std::move(store),
                   std::move(journal_actor), std::move(feed), feed_opts, std::move(send),
                   std::move(reader), std::move(lease));
}

} // namespace cairn
