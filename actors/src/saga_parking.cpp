// The saga manager's dead letters and checkpoints: parking an instance that cannot
// go on, the operator's retry and close, and the small checkpoint (position plus a
// low-water mark) from which a restart finds the open instances.
#include <algorithm>
#include <utility>

#include <caf/event_based_actor.hpp>

#include "cairn/codec.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "saga_manager_state.hpp"

namespace cairn::saga_detail {

void park(manager_t* self, const std::string& key, error why, std::vector<uint64_t> inputs) {
  auto& st = self->state;
  st.live.erase(key);
  st.touched.erase(key);
  st.to_reload.erase(key);
  forget_prefetched(st, key);
  // What it did in memory since its last write is lost with it: it parks as stored.
  auto p = saga_process::load(*st.store, st.model, key);
  if (!p) {
    if (transient(p.error())) {
      auto& order = st.to_park[key];
      order.why = std::move(why);
      order.inputs.insert(order.inputs.end(), inputs.begin(), inputs.end());
      std::sort(order.inputs.begin(), order.inputs.end());
      schedule_retry(self);
    } else {
      st.to_park.erase(key);
      st.warnings.log(log(), spdlog::level::err,
                      fmt::format("saga {} instance {}: cannot park it ({}); it stays as stored",
                                  st.model->name(), key, p.error().describe()));
    }
    return;
  }
  st.to_park.erase(key);
  (*p)->park(why, inputs);
  st.warnings.log(log(), spdlog::level::err,
                  fmt::format("saga {} instance {} parked (retry or close it: `cairn sagas`): {}",
                              st.model->name(), key, why.describe()));
  st.live.emplace(key, std::move(*p));
  st.touched.insert(key);
}

bool park_waiting(manager_t* self) {
  auto& st = self->state;
  auto orders = std::exchange(st.to_park, {});
  for (auto& [key, order] : orders) park(self, key, std::move(order.why), std::move(order.inputs));
  return st.to_park.empty();
}

namespace {

error not_parked(const manager_state& st, const std::string& key) {
  return error{errc::not_found,
               "saga " + std::string{st.model->name()} + " has no parked instance \"" + key + "\""};
}

/// The parked instance `key`, loaded afresh from the store (so a fixed saga is the
/// one that runs), or an error: not_found if it is not parked.
expected<saga_process*> reload_parked(manager_t* self, const std::string& key) {
  auto& st = self->state;
  if (auto it = st.live.find(key); it != st.live.end() && !it->second->parked())
    return not_parked(st, key);
  forget_prefetched(st, key);
  auto p = saga_process::load(*st.store, st.model, key);
  if (!p) return p.error();
  if (!(*p)->parked()) return not_parked(st, key);
  st.live.erase(key);
  st.to_reload.erase(key);
  auto* raw = p->get();
  st.live[key] = std::move(*p);
  return raw;
}

} // namespace

expected<void> retry_parked(manager_t* self, const std::string& key) {
  auto& st = self->state;
  auto p = reload_parked(self, key);
  if (!p) return p.error();
  if (auto ok = (*p)->unpark(*st.store); !ok) {
    if (transient(ok.error())) {
      st.live.erase(key);
      st.to_reload[key] = 0;
      schedule_retry(self);
    } else {
      park(self, key, ok.error(), {}); // parked again, for the new reason
    }
    return ok.error();
  }
  log().info("saga {} instance {}: retried", st.model->name(), key);
  st.touched.insert(key);
  return {};
}

void run_admin(manager_t* self) {
  auto& st = self->state;
  for (auto& req : std::exchange(st.admin, {})) {
    expected<void> ok;
    if (req.close) {
      if (auto p = reload_parked(self, req.key); !p) {
        ok = p.error();
      } else {
        (*p)->close(req.reason);
        st.touched.insert(req.key);
        log().info("saga {} instance {}: closed: {}", st.model->name(), req.key, req.reason);
      }
    } else {
      ok = retry_parked(self, req.key);
    }
    if (ok) st.answer_after_round.push_back(std::move(req.answer));
    else req.answer.deliver(to_caf(ok.error()));
  }
}

std::vector<parked_saga> list_parked(const manager_state& st) {
  std::vector<parked_saga> out;
  for (auto& [key, p] : st.live) {
    auto* why = p->park_reason();
    if (!why) continue;
    parked_saga s;
    s.saga = std::string{st.model->name()};
    s.key = key;
    s.code = static_cast<errc>(why->code);
    s.reason = why->reason;
    s.held = p->held();
    s.pending_steps = p->pending_steps();
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const parked_saga& a, const parked_saga& b) { return a.key < b.key; });
  return out;
}

void write_checkpoint(manager_t* self) {
  auto& st = self->state;
  saga_checkpoint cp;
  cp.position = st.processed;
  auto lower = [&](uint64_t pos) {
    if (pos > 0 && (cp.low_water == 0 || pos < cp.low_water)) cp.low_water = pos;
  };
  for (auto& [key, p] : st.live) {
    if (p->parked()) cp.reload.push_back(key);
    else if (!p->finished()) lower(p->stored_position());
  }
  for (auto& [key, stored] : st.to_reload) {
    if (stored > 0) lower(stored);
    else cp.reload.push_back(key);
  }
  for (auto& kv : st.to_park) cp.reload.push_back(kv.first);
  auto s = schema_of<saga_checkpoint>();
  append_request req{st.checkpoint_stream, expected_version::any, {}};
  req.events.push_back(event_data{std::string{s.name}, s.version, {}, encode(cp)});
  st.busy = true;
  st.checkpoint_due = false;
  st.since_checkpoint = 0;
  self->request(st.journal_actor, caf::infinite, append_atom::value, fenced(st, std::move(req)))
    .then(
      [self, pos = cp.position](const append_result&) {
        self->state.checkpointed = pos;
        prune_unrouted(self->state);
        self->state.busy = false;
        next_round(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        if (lost_lease(self, from_caf(err))) return;
        st.warnings.log(log(), spdlog::level::warn,
                        fmt::format("saga {}: checkpoint not stored: {}", st.model->name(),
                                    from_caf(err).describe()));
        st.busy = false;
        st.checkpoint_backoff = true;
        st.since_checkpoint = std::max<uint64_t>(st.since_checkpoint, 1);
        if (!st.checkpoint_timer) {
          st.checkpoint_timer = true;
          self->delayed_send(self, st.opts.checkpoint_interval,
                             checkpoint_atom::value);
        }
        next_round(self);
      });
}

saga_checkpoint load_checkpoint(const journal& store, std::string_view name,
                                const stream_id& checkpoint_stream) {
  auto version = store.stream_version(checkpoint_stream);
  if (version && *version > 0) {
    auto last = store.read_stream(checkpoint_stream, *version, 1);
    if (last && !last->empty()) {
      auto& e = last->front();
      if (e.schema_version == 1) {
        // Version 1 listed every open instance: load them all.
        if (auto v1 = decode<saga_checkpoint_v1>(e.payload))
          return saga_checkpoint{v1->position, 0, std::move(v1->open)};
      } else if (auto cp = decode<saga_checkpoint>(e.payload)) {
        return std::move(*cp);
      }
      log().error("saga {}: ignoring a corrupt checkpoint ({} version {})", name, event_id(e),
                  e.schema_version);
    }
  }
  if (!version)
    log().error("saga {}: cannot read its checkpoint ({}); starting from the first event", name,
                version.error().describe());
  return {};
}

} // namespace cairn::saga_detail
