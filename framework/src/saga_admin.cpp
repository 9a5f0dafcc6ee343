// Saga dead letters read and handled from a store (saga_admin.hpp).
#include "cairn/saga_admin.hpp"

#include <algorithm>
#include <map>

#include "cairn/codec.hpp"
#include "cairn/saga.hpp"
#include "cairn/saga_records.hpp"

namespace cairn {

namespace {

template <class T>
expected<T> decode_as(const envelope& e) {
  auto r = decode<T>(e.payload);
  if (!r) return error{errc::corrupt, event_id(e) + ": " + r.error().message()};
  return r;
}

template <class T>
bool is(const envelope& e) {
  return e.type == schema_of<T>().name;
}

/// Appends one runtime record to a parked instance's stream, at its current version.
template <class T>
expected<void> append_to_parked(journal& store, std::string_view saga, const std::string& key,
                                const T& rec) {
  stream_id stream{saga_category(saga), key};
  if (auto ok = stream.validate(); !ok) return ok.error();
  auto events = read_stream_all(store, stream);
  if (!events) return events.error();
  parked_saga state;
  bool parked = false;
  if (auto ok = read_park_state(*events, state, parked); !ok) return ok.error();
  if (!parked)
    return error{errc::not_found, "saga " + std::string{saga} + " has no parked instance \"" +
                                    key + "\""};
  auto s = schema_of<T>();
  event_data ev{std::string{s.name}, s.version, {}, encode(rec)};
  ev.meta.correlation_id = key;
  auto r = store.append_one({stream, events->back().version, {std::move(ev)}});
  if (!r) return r.error();
  return {};
}

/// Appends one record to saga `saga`'s dead-letter stream if `position` is parked there.
template <class T>
expected<void> append_unrouted(journal& store, std::string_view saga, uint64_t position,
                               const T& rec) {
  auto stream = saga_unrouted_stream(saga);
  if (auto ok = stream.validate(); !ok) return ok.error();
  auto version = store.stream_version(stream);
  if (!version) return version.error();
  auto parked = read_parked_saga_events(store, saga);
  if (!parked) return parked.error();
  if (!parked->count(position))
    return error{errc::not_found, "saga " + std::string{saga} + " has no parked event at position " +
                                    std::to_string(position)};
  auto s = schema_of<T>();
  auto r = store.append_one({stream, *version, {event_data{std::string{s.name}, s.version, {}, encode(rec)}}});
  if (!r) return r.error();
  return {};
}

} // namespace

expected<std::map<uint64_t, parked_saga_event>>
read_parked_saga_events(const journal& store, std::string_view saga,
                        std::vector<uint64_t>* resolved) {
  auto stream = saga_unrouted_stream(saga);
  if (auto ok = stream.validate(); !ok) return ok.error();
  auto events = read_stream_all(store, stream);
  if (!events) return events.error();
  std::map<uint64_t, parked_saga_event> out;
  for (auto& e : *events) {
    if (is<saga_unrouted>(e)) {
      auto r = decode_as<saga_unrouted>(e);
      if (!r) return r.error();
      auto& p = out[r->position];
      p.saga = std::string{saga};
      p.position = r->position;
      p.stream = std::move(r->stream);
      p.type = std::move(r->type);
      p.code = static_cast<errc>(r->code);
      p.reason = std::move(r->reason);
      p.retry_requested = false;
      p.parked_at_ns = e.timestamp_ns;
    } else if (is<saga_unrouted_retry_requested>(e)) {
      auto r = decode_as<saga_unrouted_retry_requested>(e);
      if (!r) return r.error();
      if (auto it = out.find(r->position); it != out.end()) it->second.retry_requested = true;
    } else if (is<saga_unrouted_delivered>(e)) {
      auto r = decode_as<saga_unrouted_delivered>(e);
      if (!r) return r.error();
      if (out.erase(r->position) && resolved) resolved->push_back(r->position);
    } else if (is<saga_unrouted_closed>(e)) {
      auto r = decode_as<saga_unrouted_closed>(e);
      if (!r) return r.error();
      if (out.erase(r->position) && resolved) resolved->push_back(r->position);
    } else {
      return error{errc::corrupt, event_id(e) + ": " + e.type + " does not belong in " +
                                    stream.str()};
    }
  }
  return out;
}

expected<std::vector<parked_saga_event>> find_parked_saga_events(const journal& store,
                                                                 std::string_view saga) {
  std::vector<parked_saga_event> out;
  auto add = [&](std::string_view name) -> expected<void> {
    auto parked = read_parked_saga_events(store, name);
    if (!parked) return parked.error();
    for (auto& kv : *parked) out.push_back(std::move(kv.second));
    return {};
  };
  if (!saga.empty()) {
    if (auto ok = add(saga); !ok) return ok.error();
    return out;
  }
  auto streams = store.list_streams();
  if (!streams) return streams.error();
  for (auto& s : *streams)
    if (s.category == saga_unrouted_category)
      if (auto ok = add(s.id); !ok) return ok.error();
  std::sort(out.begin(), out.end(), [](const parked_saga_event& a, const parked_saga_event& b) {
    return a.saga != b.saga ? a.saga < b.saga : a.position < b.position;
  });
  return out;
}

expected<void> request_saga_event_retry(journal& store, std::string_view saga, uint64_t position,
                                        std::string by) {
  return append_unrouted(store, saga, position,
                         saga_unrouted_retry_requested{position, std::move(by)});
}

expected<void> close_parked_saga_event(journal& store, std::string_view saga, uint64_t position,
                                       std::string reason) {
  return append_unrouted(store, saga, position, saga_unrouted_closed{position, std::move(reason)});
}

expected<void> read_park_state(const std::vector<envelope>& stream, parked_saga& out,
                               bool& parked) {
  parked = false;
  std::map<uint64_t, bool> pending; // step id -> still pending
  for (auto& e : stream) {
    if (e.type.compare(0, 6, "cairn.") != 0) continue;
    if (is<saga_sent>(e)) {
      auto r = decode_as<saga_sent>(e);
      if (!r) return r.error();
      pending[r->step_id] = true;
    } else if (is<saga_done>(e)) {
      auto r = decode_as<saga_done>(e);
      if (!r) return r.error();
      pending.erase(r->step_id);
    } else if (is<saga_failed>(e)) {
      auto r = decode_as<saga_failed>(e);
      if (!r) return r.error();
      pending.erase(r->step_id);
    } else if (is<saga_parked>(e)) {
      auto r = decode_as<saga_parked>(e);
      if (!r) return r.error();
      parked = true;
      out.code = static_cast<errc>(r->code);
      out.reason = std::move(r->reason);
      if (r->position > 0) out.held.push_back(r->position);
      out.retry_requested = false;
      out.parked_at_ns = e.timestamp_ns;
    } else if (is<saga_held>(e)) {
      auto r = decode_as<saga_held>(e);
      if (!r) return r.error();
      out.held.push_back(r->position);
    } else if (is<saga_retry_requested>(e)) {
      out.retry_requested = parked;
    } else if (is<saga_resumed>(e) || is<saga_closed>(e)) {
      parked = false;
      out.held.clear();
      out.retry_requested = false;
      if (is<saga_closed>(e)) pending.clear();
    }
  }
  out.pending_steps = pending.size();
  return {};
}

expected<std::vector<parked_saga>> find_parked_sagas(const journal& store, std::string_view saga) {
  auto streams = store.list_streams();
  if (!streams) return streams.error();
  std::vector<parked_saga> out;
  for (auto& s : *streams) {
    if (s.category.compare(0, 5, "saga_") != 0 || s.category.size() == 5) continue;
    std::string name = s.category.substr(5);
    if (!saga.empty() && name != saga) continue;
    auto events = read_stream_all(store, s);
    if (!events) return events.error();
    parked_saga p;
    bool parked = false;
    if (auto ok = read_park_state(*events, p, parked); !ok) return ok.error();
    if (!parked) continue;
    p.saga = std::move(name);
    p.key = s.id;
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const parked_saga& a, const parked_saga& b) {
    return a.saga != b.saga ? a.saga < b.saga : a.key < b.key;
  });
  return out;
}

expected<void> request_saga_retry(journal& store, std::string_view saga, const std::string& key,
                                  std::string by) {
  return append_to_parked(store, saga, key, saga_retry_requested{std::move(by)});
}

expected<void> close_parked_saga(journal& store, std::string_view saga, const std::string& key,
                                 std::string reason) {
  return append_to_parked(store, saga, key, saga_closed{std::move(reason)});
}

} // namespace cairn
