// The saga manager's parked input events: an event it cannot hand to any instance
// (its correlate() threw, it cannot be decoded or upcast for the saga, the instance it
// routes to cannot be loaded) is stored in the saga's dead-letter stream
// (saga_unrouted_stream) and the manager goes on; an operator retries it after a fix
// (it is routed again and handed to its instance, even if later inputs went first) or
// closes it. A retry's dead-letter record is stored only once the instance's own
// write is, so a crash between the two retries it again, and the instance skips it.
#include <utility>

#include <caf/event_based_actor.hpp>

#include "cairn/codec.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "saga_manager_state.hpp"

namespace cairn::saga_detail {

namespace {

bool pending_park(const unrouted_state& u, uint64_t position) {
  for (auto& w : u.unwritten)
    if (w.what == unrouted_write::kind::park && w.event.position == position) return true;
  return false;
}

void answer_error(std::optional<caf::response_promise>& answer, const error& why) {
  if (answer) answer->deliver(to_caf(why));
}

/// Records (again) that the event at `position` cannot be handed on, for `why`.
void repark(manager_t* self, const parked_saga_event& was, const error& why) {
  auto& st = self->state;
  unrouted_write w;
  w.event = was;
  w.event.code = why.code();
  w.event.reason = why.message();
  w.event.retry_requested = false;
  st.unrouted.unwritten.push_back(std::move(w));
}

/// The parked event `req` names, or null after answering `req` with not_found.
const parked_saga_event* find_parked(manager_t* self, unrouted_request& req) {
  auto& st = self->state;
  auto it = st.unrouted.parked.find(req.position);
  if (it != st.unrouted.parked.end() && !pending_park(st.unrouted, req.position)) return &it->second;
  answer_error(req.answer, error{errc::not_found, "saga " + std::string{st.model->name()} +
                                                    " has no parked event at position " +
                                                    std::to_string(req.position)});
  return nullptr;
}

/// Retries the parked event of `req`; on success the instance's write goes with this
/// round and `req` waits in after_round.
void retry_one(manager_t* self, unrouted_request req) {
  auto& st = self->state;
  auto* parked = find_parked(self, req);
  if (!parked) return;
  auto was = *parked;
  auto failed = [&](const error& why, bool keep_reason) {
    st.warnings.log(log(), spdlog::level::err,
                    fmt::format("saga {}: retrying the parked event at position {} failed: {}",
                                st.model->name(), req.position, why.describe()));
    if (!keep_reason) repark(self, was, why);
    answer_error(req.answer, why);
  };
  auto read = st.store->read_all(req.position, 1);
  if (!read) return failed(read.error(), transient(read.error()));
  if (read->empty() || read->front().position != req.position)
    return failed(error{errc::not_found, "the event at position " + std::to_string(req.position) +
                                           " is not in the store"},
                  false);
  auto& e = read->front();
  auto key = saga_process::route(*st.model, e);
  if (!key) return failed(key.error(), false);
  req.key = *key;
  if (key->empty()) { // the saga now says it concerns no instance
    st.unrouted.after_round.push_back(std::move(req));
    return;
  }
  error why;
  auto* p = get_or_load(self, *key, &why);
  if (!p) return failed(why, transient(why));
  if (auto ok = p->on_late_event(e, *st.store); !ok) {
    // Its state in memory may be half changed: load it again; the event stays parked.
    drop(self, *key, ok.error());
    return failed(ok.error(), transient(ok.error()));
  }
  if (p->empty()) st.live.erase(*key); // not started by it: nothing to store
  else st.touched.insert(*key);
  st.unrouted.after_round.push_back(std::move(req));
}

void close_one(manager_t* self, unrouted_request req) {
  auto& st = self->state;
  auto* parked = find_parked(self, req);
  if (!parked) return;
  unrouted_write w;
  w.what = unrouted_write::kind::closed;
  w.event = *parked;
  w.text = std::move(req.reason);
  w.answer = std::move(req.answer);
  st.unrouted.unwritten.push_back(std::move(w));
}

template <class T>
event_data record_of(const T& rec) {
  auto s = schema_of<T>();
  return event_data{std::string{s.name}, s.version, {}, encode(rec)};
}

} // namespace

void park_unrouted(manager_t* self, const envelope& e, const error& why) {
  auto& st = self->state;
  if (st.unrouted.parked.count(e.position) || pending_park(st.unrouted, e.position)) return;
  unrouted_write w;
  w.event.saga = std::string{st.model->name()};
  w.event.position = e.position;
  w.event.stream = e.stream.str();
  w.event.type = e.type;
  w.event.code = why.code();
  w.event.reason = why.message();
  st.unrouted.unwritten.push_back(std::move(w));
  st.warnings.log(log(), spdlog::level::err,
                  fmt::format("saga {}: parked the event at position {} ({} {}) that no instance "
                              "can take (retry or close it: `cairn sagas`): {}",
                              st.model->name(), e.position, e.stream.str(), e.type,
                              why.describe()));
}

bool load_unrouted(manager_t* self) {
  auto& st = self->state;
  if (st.unrouted.loaded) return true;
  std::vector<uint64_t> resolved;
  // Read at the start on a reader thread (saga_loading.cpp), or here and now.
  auto& pre = st.unrouted.preread;
  auto parked = pre ? std::move(*pre) : read_parked_saga_events(*st.store, st.model->name(), &resolved);
  if (pre) resolved = std::move(st.unrouted.preread_resolved);
  pre.reset();
  if (!parked) {
    if (transient(parked.error())) {
      st.warnings.log(log(), spdlog::level::warn,
                      fmt::format("saga {}: cannot read its parked events now: {}",
                                  st.model->name(), parked.error().describe()));
      schedule_retry(self);
      return false;
    }
    log().error("saga {}: ignoring its unreadable dead-letter stream: {}", st.model->name(),
                parked.error().describe());
  } else {
    st.unrouted.parked = std::move(*parked);
    for (auto position : resolved)
      if (position > st.checkpointed) st.unrouted.resolved.insert(position);
  }
  st.unrouted.loaded = true;
  // What an operator asked for while the node was down.
  for (auto& [position, p] : st.unrouted.parked)
    if (p.retry_requested) st.unrouted.requests.push_back(unrouted_request{false, position, {}, {}, {}});
  return true;
}

void prune_unrouted(manager_state& st) {
  auto& r = st.unrouted.resolved;
  r.erase(r.begin(), r.upper_bound(st.checkpointed));
}

bool unrouted_waiting(const manager_state& st) {
  return !st.unrouted.unwritten.empty() || (st.unrouted.loaded && !st.unrouted.requests.empty());
}

void run_unrouted_requests(manager_t* self) {
  auto& st = self->state;
  if (!st.unrouted.loaded) return;
  for (auto& req : std::exchange(st.unrouted.requests, {})) {
    if (req.close) close_one(self, std::move(req));
    else retry_one(self, std::move(req));
  }
}

void finish_unrouted_round(manager_t* self, bool failed) {
  auto& st = self->state;
  for (auto& req : std::exchange(st.unrouted.after_round, {})) {
    if (failed) { // the instance's write may be lost: try again (it skips what it did)
      st.unrouted.requests.push_back(std::move(req));
      continue;
    }
    unrouted_write w;
    w.what = unrouted_write::kind::delivered;
    w.event.position = req.position;
    w.text = std::move(req.key);
    w.answer = std::move(req.answer);
    st.unrouted.unwritten.push_back(std::move(w));
  }
}

void store_unrouted(manager_t* self) {
  auto& st = self->state;
  if (st.unrouted.unwritten.empty()) return;
  auto writes = std::make_shared<std::vector<unrouted_write>>(std::exchange(st.unrouted.unwritten, {}));
  append_request req{saga_unrouted_stream(st.model->name()), expected_version::any, {}};
  for (auto& w : *writes) {
    auto& ev = w.event;
    switch (w.what) {
      case unrouted_write::kind::park:
        req.events.push_back(record_of(saga_unrouted{ev.position, ev.stream, ev.type,
                                                     static_cast<uint8_t>(ev.code), ev.reason}));
        break;
      case unrouted_write::kind::delivered:
        req.events.push_back(record_of(saga_unrouted_delivered{ev.position, w.text}));
        break;
      case unrouted_write::kind::closed:
        req.events.push_back(record_of(saga_unrouted_closed{ev.position, w.text}));
        break;
    }
  }
  ++st.outstanding;
  self->request(st.journal_actor, caf::infinite, append_atom::value, fenced(st, std::move(req)))
    .then(
      [self, writes](const append_result&) {
        auto& st = self->state;
        for (auto& w : *writes) {
          auto position = w.event.position;
          if (w.what == unrouted_write::kind::park) {
            w.event.parked_at_ns = now_ns(); // about the commit time the store gave it
            st.unrouted.parked[position] = std::move(w.event);
          } else {
            st.unrouted.parked.erase(position);
            st.unrouted.resolved.insert(position);
            log().info("saga {}: the parked event at position {} is {}", st.model->name(),
                       position,
                       w.what == unrouted_write::kind::closed ? "closed: " + w.text
                       : w.text.empty() ? std::string{"retried: it concerns no instance"}
                                        : "retried: handed to instance " + w.text);
          }
          if (w.answer) w.answer->deliver(true);
        }
        if (--st.outstanding == 0) finish_round(self);
      },
      [self, writes](caf::error& err) {
        auto& st = self->state;
        auto why = from_caf(err);
        if (lost_lease(self, why)) return;
        st.warnings.log(log(), spdlog::level::warn,
                        fmt::format("saga {}: parked events not stored: {}", st.model->name(),
                                    why.describe()));
        // Parks are made again when the round's events are read again; an operator's
        // retry or close is answered with the error (and may be asked again).
        st.round_failed = true;
        for (auto& w : *writes) answer_error(w.answer, why);
        if (--st.outstanding == 0) finish_round(self);
      });
}

} // namespace cairn::saga_detail
