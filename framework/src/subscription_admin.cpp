// Event subscriptions' dead letters in a snapshot store (subscription_admin.hpp).
#include "cairn/subscription_admin.hpp"

#include <algorithm>

#include "cairn/codec.hpp"

namespace cairn {

namespace {

constexpr const char* parked_category = "notification_parked";
constexpr const char* retry_category = "notification_retry";
constexpr const char* parked_type = "cairn.parked_events";
constexpr const char* retry_type = "cairn.parked_retry";

template <class T>
expected<T> decode_list(const snapshot& s, const char* type) {
  if (s.type != type || s.schema_version != 1)
    return error{errc::corrupt, "snapshot " + s.stream.str() + " holds " + s.type + " v" +
                                  std::to_string(s.schema_version) + ", not " + type};
  auto list = decode<T>(s.state);
  if (!list) return error{errc::corrupt, "snapshot " + s.stream.str() + ": " + list.error().message()};
  return list;
}

template <class T>
expected<T> load_list(const snapshot_store& store, const stream_id& stream, const char* type) {
  auto snap = store.load(stream);
  if (!snap) return snap.error();
  if (!*snap) return T{};
  return decode_list<T>(**snap, type);
}

/// Saves `list` one version above the stored one: a store may keep only the snapshot
/// with the highest version (PostgreSQL's does), so a shorter list must not go lower.
template <class T>
expected<void> save_list(snapshot_store& store, const stream_id& stream, const char* type,
                         const T& list) {
  uint64_t version = 1;
  auto stored = store.load(stream);
  if (stored && *stored) version = (*stored)->version + 1;
  else if (!stored && !is_corrupt(stored.error())) return stored.error(); // corrupt: replaced
  return store.save(snapshot{stream, version, type, 1, now_ns(), encode(list)});
}

error no_parked(const std::string& name, std::optional<uint64_t> position) {
  return error{errc::not_found, "event subscription " + name + " has no parked event" +
                                  (position ? " at position " + std::to_string(*position) : "")};
}

} // namespace

stream_id parked_events_stream(const std::string& name) { return {parked_category, name}; }

expected<std::vector<parked_event>> load_parked_events(const snapshot_store& store,
                                                       const std::string& name) {
  return load_list<std::vector<parked_event>>(store, parked_events_stream(name), parked_type);
}

expected<void> save_parked_events(snapshot_store& store, const std::string& name,
                                  const std::vector<parked_event>& parked) {
  return save_list(store, parked_events_stream(name), parked_type, parked);
}

expected<std::vector<uint64_t>> load_retry_requests(const snapshot_store& store,
                                                    const std::string& name) {
  return load_list<std::vector<uint64_t>>(store, stream_id{retry_category, name}, retry_type);
}

expected<void> save_retry_requests(snapshot_store& store, const std::string& name,
                                   const std::vector<uint64_t>& positions) {
  return save_list(store, stream_id{retry_category, name}, retry_type, positions);
}

expected<void> request_parked_event_retry(snapshot_store& store, const std::string& name,
                                          std::optional<uint64_t> position) {
  auto parked = load_parked_events(store, name);
  if (!parked) return parked.error();
  auto requested = load_retry_requests(store, name);
  if (!requested) return requested.error();
  bool found = false;
  for (auto& p : *parked) {
    if (position && p.position != *position) continue;
    found = true;
    if (std::find(requested->begin(), requested->end(), p.position) == requested->end())
      requested->push_back(p.position);
  }
  if (!found) return no_parked(name, position);
  std::sort(requested->begin(), requested->end());
  return save_retry_requests(store, name, *requested);
}

expected<void> discard_parked_event(snapshot_store& store, const std::string& name,
                                    uint64_t position) {
  auto parked = load_parked_events(store, name);
  if (!parked) return parked.error();
  auto it = std::find_if(parked->begin(), parked->end(),
                         [&](const parked_event& p) { return p.position == position; });
  if (it == parked->end()) return no_parked(name, position);
  parked->erase(it);
  if (auto ok = save_parked_events(store, name, *parked); !ok) return ok;
  auto requested = load_retry_requests(store, name);
  if (!requested) return requested.error();
  auto r = std::remove(requested->begin(), requested->end(), position);
  if (r == requested->end()) return {};
  requested->erase(r, requested->end());
  return save_retry_requests(store, name, *requested);
}

std::string subscription_admin_prefix() { return "notification_"; }

expected<std::vector<parked_subscription>> find_parked_subscriptions(const std::string& dir) {
  // Reads the files only (opening the store would clean up a running node's saves).
  auto snaps = read_file_snapshots(dir, subscription_admin_prefix());
  if (!snaps) return snaps.error();
  return find_parked_subscriptions(*snaps);
}

expected<std::vector<parked_subscription>>
find_parked_subscriptions(const std::vector<snapshot>& snapshots) {
  std::vector<parked_subscription> out;
  for (auto& s : snapshots) {
    if (s.stream.category != parked_category) continue;
    auto parked = decode_list<std::vector<parked_event>>(s, parked_type);
    if (!parked) return parked.error();
    if (parked->empty()) continue;
    parked_subscription sub{s.stream.id, std::move(*parked), {}};
    for (auto& r : snapshots)
      if (r.stream.category == retry_category && r.stream.id == sub.name) {
        auto requested = decode_list<std::vector<uint64_t>>(r, retry_type);
        if (!requested) return requested.error();
        sub.retry_requested = std::move(*requested);
      }
    out.push_back(std::move(sub));
  }
  std::sort(out.begin(), out.end(), [](const parked_subscription& a, const parked_subscription& b) {
    return a.name < b.name;
  });
  return out;
}

} // namespace cairn
