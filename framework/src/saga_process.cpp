// saga_process: a saga instance and its command ledger (see saga_process.hpp).
#include "cairn/saga_process.hpp"

#include <algorithm>
#include <cstdlib>

#include "cairn/codec.hpp"

namespace cairn {

namespace {

const std::string& command_key() {
  static const std::string key{command_id_key};
  return key;
}

const std::string& position_key() {
  static const std::string key{trigger_position_key};
  return key;
}

template <class T>
expected<T> decode_record(const envelope& e) {
  auto s = schema_of<T>();
  if (e.schema_version != s.version)
    return error{errc::corrupt, event_id(e) + ": " + e.type + " v" +
                                  std::to_string(e.schema_version) + " is not known"};
  auto r = decode<T>(e.payload);
  if (!r) return error{errc::corrupt, event_id(e) + ": " + r.error().message()};
  return r;
}

/// True if an event of `target` at a version after `after` carries `id`.
expected<bool> applied_after(const journal& store, const stream_id& target, uint64_t after,
                             const std::string& id) {
  constexpr size_t chunk = 256;
  for (uint64_t next = after + 1;;) {
    auto events = store.read_stream(target, next, chunk);
    if (!events) return events.error();
    for (auto& ev : *events)
      if (auto v = ev.meta.find(command_key()); v && *v == id) return true;
    if (events->size() < chunk) return false;
    next = events->back().version + 1;
  }
}

} // namespace

saga_process::saga_process(std::shared_ptr<const saga_model> model, std::string key)
  : model_(std::move(model)),
    instance_(model_->make_instance()),
    key_(std::move(key)),
    stream_{model_->category(), key_} {}

expected<std::unique_ptr<saga_process>>
saga_process::load(const journal& store, std::shared_ptr<const saga_model> model,
                   std::string key) {
  std::unique_ptr<saga_process> p{new saga_process(std::move(model), std::move(key))};
  if (auto ok = p->stream_.validate(); !ok) return ok.error();
  auto events = read_stream_all(store, p->stream_);
  if (!events) return events.error();
  error broken;
  for (auto& e : *events) {
    auto ok = p->replay(e);
    if (ok) continue;
    if (is_corrupt(ok.error()) && e.type.compare(0, 6, "cairn.") == 0) return ok.error();
    if (!p->broken_) broken = ok.error(); // its state is unusable from here on
    p->broken_ = true;
  }
  if (p->broken_ && !p->closed_ && !p->parked_)
    p->park(error{errc::corrupt, "the saga cannot replay its own stream: " + broken.message()});
  return p;
}

expected<std::string> saga_process::route(const saga_model& model, const envelope& e) {
  if (e.stream.category == model.category() ||
      e.stream.category == saga_checkpoint_stream(model.name()).category ||
      e.stream.category == saga_unrouted_category)
    return std::string{};
  if (auto id = e.meta.find(command_key())) {
    // "<saga category>-<key>#<step>": the key is between the first '-' and the last '#'.
    auto& c = model.category();
    if (id->size() > c.size() + 1 && id->compare(0, c.size(), c) == 0 && (*id)[c.size()] == '-') {
      auto hash = id->rfind('#');
      if (hash != std::string::npos && hash > c.size() + 1)
        return id->substr(c.size() + 1, hash - c.size() - 1);
    }
  }
  if (model.correlates(e.type)) return model.correlate(e);
  return std::string{};
}

std::string saga_process::command_id(uint64_t step_id) const {
  return stream_.str() + "#" + std::to_string(step_id);
}

expected<void> saga_process::replay(const envelope& e) {
  if (auto p = e.meta.find(position_key()))
    last_position_ = std::max<uint64_t>(last_position_, std::strtoull(p->c_str(), nullptr, 10));
  version_ = e.version;
  stored_position_ = e.position;
  if (e.type == schema_of<saga_sent>().name) {
    auto r = decode_record<saga_sent>(e);
    if (!r) return r.error();
    auto target = stream_id::parse(r->target);
    if (!target) return error{errc::corrupt, event_id(e) + ": " + target.error().message()};
    pending_step s;
    s.name = r->step;
    s.command.target = std::move(*target);
    s.command.type = r->type;
    s.command.schema_version = r->schema_version;
    s.command.payload = std::move(r->payload);
    s.command.meta.correlation_id = key_;
    s.command.meta.causation_id = r->causation_id;
    s.command.meta.entries.emplace_back(command_key(), command_id(r->step_id));
    s.command.expected_version = r->expected_version;
    s.recorded_version = r->expected_version;
    pending_[r->step_id] = std::move(s);
    next_step_id_ = std::max(next_step_id_, r->step_id + 1);
    return {};
  }
  if (e.type == schema_of<saga_done>().name) {
    auto r = decode_record<saga_done>(e);
    if (!r) return r.error();
    pending_.erase(r->step_id);
    return {};
  }
  if (e.type == schema_of<saga_failed>().name) {
    auto r = decode_record<saga_failed>(e);
    if (!r) return r.error();
    pending_.erase(r->step_id);
    next_step_id_ = std::max(next_step_id_, r->step_id + 1); // an invalid step was never sent
    return {};
  }
  if (e.type == schema_of<saga_parked>().name) {
    auto r = decode_record<saga_parked>(e);
    if (!r) return r.error();
    if (r->position > 0) held_.push_back(r->position);
    parked_ = std::move(*r);
    retry_requested_ = false;
    return {};
  }
  if (e.type == schema_of<saga_held>().name) {
    auto r = decode_record<saga_held>(e);
    if (!r) return r.error();
    held_.push_back(r->position);
    return {};
  }
  if (e.type == schema_of<saga_retry_requested>().name) {
    if (auto r = decode_record<saga_retry_requested>(e); !r) return r.error();
    retry_requested_ = true;
    return {};
  }
  if (e.type == schema_of<saga_resumed>().name) {
    if (auto r = decode_record<saga_resumed>(e); !r) return r.error();
    parked_.reset();
    held_.clear();
    retry_requested_ = false;
    return {};
  }
  if (e.type == schema_of<saga_closed>().name) {
    if (auto r = decode_record<saga_closed>(e); !r) return r.error();
    closed_ = true;
    parked_.reset();
    held_.clear();
    pending_.clear();
    return {};
  }
  if (e.type == schema_of<saga_retried>().name) {
    auto r = decode_record<saga_retried>(e);
    if (!r) return r.error();
    if (auto it = pending_.find(r->step_id); it != pending_.end()) ++it->second.attempts;
    return {};
  }
  if (broken_) return {}; // its state is unusable: only the runtime records count
  return instance_->replay(e);
}

void saga_process::record(event_data ev, const std::string& cause, uint64_t position) {
  ev.meta.correlation_id = key_;
  ev.meta.causation_id = cause;
  if (position > 0) ev.meta.entries.emplace_back(position_key(), std::to_string(position));
  unflushed_.push_back(std::move(ev));
}

template <class T>
void saga_process::record_runtime(const T& rec, const std::string& cause, uint64_t position) {
  auto s = schema_of<T>();
  record(event_data{std::string{s.name}, s.version, {}, encode(rec)}, cause, position);
}

expected<void> saga_process::absorb(saga_effects effects, const std::string& cause,
                                    uint64_t position, const journal& store, bool compensating) {
  for (auto& ev : effects.events) record(std::move(ev), cause, position);
  std::vector<std::pair<uint64_t, saga_failure>> invalid;
  for (auto& c : effects.commands) {
    if (auto ok = c.command.target.validate(); !ok) {
      // A command that cannot be sent fails at once, like a rejected one. One decided
      // while handling a failure would only fail again: the caller parks the instance.
      error why{errc::invalid_argument, std::string{model_->name()} + " saga step \"" + c.step +
                                          "\": " + ok.error().message()};
      if (compensating) return why;
      auto id = next_step_id_++;
      record_runtime(saga_failed{id, static_cast<uint8_t>(why.code()), why.message()}, cause,
                     position);
      invalid.emplace_back(id, saga_failure{c.step, c.command.target, why, 1});
      continue;
    }
    auto version = store.stream_version(c.command.target);
    if (!version) return version.error();
    auto id = next_step_id_++;
    pending_step s;
    s.name = std::move(c.step);
    s.command = std::move(c.command);
    s.command.meta.correlation_id = key_;
    s.command.meta.causation_id = cause;
    s.command.meta.entries.emplace_back(command_key(), command_id(id));
    s.command.expected_version = *version;
    s.recorded_version = *version;
    record_runtime(saga_sent{id, s.name, s.command.target.str(), s.command.type,
                             s.command.schema_version, s.command.payload, *version, cause},
                   cause, position);
    pending_.emplace(id, std::move(s));
    after_commit_.push_back(id);
  }
  for (auto& [id, f] : invalid) {
    auto more = instance_->on_rejected(f);
    if (!more) return more.error();
    if (auto ok = absorb(std::move(*more), command_id(id), 0, store, true); !ok) return ok;
  }
  return {};
}

expected<void> saga_process::on_event(const envelope& e, const journal& store) {
  if (e.position <= last_position_ || closed_) return {};
  last_position_ = e.position;
  if (parked_) {
    held_.push_back(e.position);
    record_runtime(saga_held{e.position}, event_id(e), e.position);
    return {};
  }
  inputs_.push_back(e.position);
  return process(e, store);
}

expected<void> saga_process::on_late_event(const envelope& e, const journal& store) {
  if (e.position > last_position_ || closed_) return on_event(e, store);
  auto events = read_stream_all(store, stream_);
  if (!events) return events.error();
  auto position = std::to_string(e.position);
  for (auto& stored : *events)
    if (auto p = stored.meta.find(position_key()); p && *p == position) return {};
  if (parked_) {
    held_.push_back(e.position);
    record_runtime(saga_held{e.position}, event_id(e), e.position);
    return {};
  }
  return process(e, store);
}

expected<void> saga_process::process(const envelope& e, const journal& store) {
  auto cause = event_id(e);
  if (auto id = e.meta.find(command_key())) {
    auto prefix = stream_.str() + "#";
    if (id->compare(0, prefix.size(), prefix) == 0) {
      auto step = std::strtoull(id->c_str() + prefix.size(), nullptr, 10);
      if (pending_.erase(step) > 0) record_runtime(saga_done{step, e.position}, cause, e.position);
    }
  }
  if (!model_->reads(e.type)) return {};
  auto effects = instance_->react(e);
  if (!effects) return effects.error();
  return absorb(std::move(*effects), cause, e.position, store, false);
}

void saga_process::park(const error& why, const std::vector<uint64_t>& inputs) {
  saga_parked rec{static_cast<uint8_t>(why.code()), why.message(), 0};
  std::vector<uint64_t> hold;
  for (auto pos : inputs)
    if (pos > last_position_ && (hold.empty() || pos > hold.back())) hold.push_back(pos);
  if (!hold.empty()) rec.position = hold.front();
  parked_ = rec;
  retry_requested_ = false;
  record_runtime(rec, key_, rec.position);
  for (size_t i = 0; i < hold.size(); ++i) {
    if (i > 0) record_runtime(saga_held{hold[i]}, key_, hold[i]);
    held_.push_back(hold[i]);
    last_position_ = hold[i];
  }
}

expected<void> saga_process::unpark(const journal& store) {
  if (!parked_) return {};
  if (broken_) return error{errc::corrupt, parked_->reason};
  record_runtime(saga_resumed{}, key_, 0);
  parked_.reset();
  retry_requested_ = false;
  std::vector<uint64_t> waiting;
  for (auto& kv : pending_) waiting.push_back(kv.first);
  auto held = std::move(held_);
  held_.clear();
  for (auto pos : held) {
    auto ev = store.read_all(pos, 1);
    if (!ev) return ev.error();
    if (ev->empty() || ev->front().position != pos)
      return error{errc::not_found, "the held input at position " + std::to_string(pos) +
                                      " is not in the store"};
    if (auto ok = process(ev->front(), store); !ok) return ok;
  }
  // Its steps pending since before it was parked go again, as after a restart.
  for (auto id : waiting)
    if (auto it = pending_.find(id); it != pending_.end()) {
      it->second.awaiting_event = false;
      it->second.command.expected_version = it->second.recorded_version;
      after_commit_.push_back(id);
    }
  return {};
}

void saga_process::close(std::string reason) {
  record_runtime(saga_closed{std::move(reason)}, key_, 0);
  closed_ = true;
  parked_.reset();
  held_.clear();
  pending_.clear();
  after_commit_.clear();
  ready_.clear();
  delayed_.clear();
}

saga_dispatch saga_process::dispatch(uint64_t step_id, pending_step& step) {
  ++step.send_seq;
  return saga_dispatch{step_id, step.send_seq, step.command};
}

expected<void> saga_process::fail(std::map<uint64_t, pending_step>::iterator it,
                                  const error& why, const journal& store) {
  auto step_id = it->first;
  saga_failure f{it->second.name, it->second.command.target, why, it->second.attempts};
  auto cause = command_id(step_id);
  if (is_timeout(why)) {
    auto effects = instance_->on_timeout(f);
    if (!effects) return effects.error();
    if (effects->retry) {
      // Same command, same expected version: a copy that arrives late cannot also apply.
      record_runtime(saga_retried{step_id}, cause, 0);
      ++it->second.attempts;
      after_commit_.push_back(step_id);
      return absorb(std::move(*effects), cause, 0, store, true);
    }
    pending_.erase(it);
    record_runtime(saga_failed{step_id, static_cast<uint8_t>(why.code()), why.message()}, cause, 0);
    return absorb(std::move(*effects), cause, 0, store, true);
  }
  pending_.erase(it);
  record_runtime(saga_failed{step_id, static_cast<uint8_t>(why.code()), why.message()}, cause, 0);
  auto effects = instance_->on_rejected(f);
  if (!effects) return effects.error();
  return absorb(std::move(*effects), cause, 0, store, true); // retry means nothing here
}

expected<void> saga_process::resolve_conflict(std::map<uint64_t, pending_step>::iterator it,
                                              const journal& store) {
  auto& s = it->second;
  auto found = applied_after(store, s.command.target, s.command.expected_version,
                             command_id(it->first));
  if (!found) return found.error();
  if (*found) {
    s.awaiting_event = true; // it was applied: its events come in as inputs
    return {};
  }
  // Someone else wrote to the target: decide again at its new version.
  auto version = store.stream_version(s.command.target);
  if (!version) return version.error();
  s.command.expected_version = *version;
  ready_.push_back(dispatch(it->first, s));
  return {};
}

expected<void> saga_process::on_reply(uint64_t step_id, uint64_t send_seq,
                                      const expected<command_reply>& reply,
                                      const journal& store) {
  auto it = pending_.find(step_id);
  if (parked_ || it == pending_.end() || it->second.send_seq != send_seq ||
      it->second.awaiting_event)
    return {};
  if (reply) {
    if (reply->events > 0) {
      it->second.awaiting_event = true;
    } else {
      pending_.erase(it);
      record_runtime(saga_done{step_id, 0}, command_id(step_id), 0);
    }
    return {};
  }
  const auto& why = reply.error();
  switch (why.code()) {
    case errc::conflict:
      return resolve_conflict(it, store);
    case errc::unavailable:
    case errc::fenced: // the stream's shard moved between nodes: send again later
      delayed_.emplace_back(step_id, send_seq);
      return {};
    default:
      return fail(it, why, store);
  }
}

expected<void> saga_process::on_timeout(uint64_t step_id, uint64_t send_seq,
                                        const journal& store) {
  auto it = pending_.find(step_id);
  if (parked_ || it == pending_.end() || it->second.send_seq != send_seq ||
      it->second.awaiting_event)
    return {};
  return fail(it,
              error{errc::timeout, "no reply from " + it->second.command.target.str() + " in time"},
              store);
}

void saga_process::resend(uint64_t step_id, uint64_t send_seq) {
  auto it = pending_.find(step_id);
  if (parked_ || it == pending_.end() || it->second.send_seq != send_seq ||
      it->second.awaiting_event)
    return;
  ready_.push_back(dispatch(step_id, it->second));
}

std::vector<saga_dispatch> saga_process::resume() {
  std::vector<saga_dispatch> out;
  if (parked_ || closed_) return out;
  for (auto& [id, s] : pending_) {
    s.awaiting_event = false;
    s.command.expected_version = s.recorded_version;
    out.push_back(dispatch(id, s));
  }
  return out;
}

append_request saga_process::take_append() {
  append_request req;
  req.stream = stream_;
  req.expected_version = version_;
  req.events = std::move(unflushed_);
  unflushed_.clear();
  inputs_.clear();
  return req;
}

void saga_process::committed(const append_result& r) {
  version_ = r.last_version;
  stored_position_ = r.last_position;
  for (auto id : after_commit_)
    if (auto it = pending_.find(id); it != pending_.end() && !it->second.awaiting_event)
      ready_.push_back(dispatch(id, it->second));
  after_commit_.clear();
}

std::vector<saga_dispatch> saga_process::take_ready() {
  std::vector<saga_dispatch> out;
  out.swap(ready_);
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> saga_process::take_delayed() {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  out.swap(delayed_);
  return out;
}

} // namespace cairn
