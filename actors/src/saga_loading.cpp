// The saga manager's store reads off CAF's scheduler threads: its start (checkpoint and
// parked input events) and the loads of instances, ahead of the events, reloads and
// retries that need them, on the node's reader threads (store_readers.hpp). Without a
// reader everything is read inline, as before.
#include <unordered_set>
#include <utility>

#include <caf/event_based_actor.hpp>

#include "log.hpp"
#include "message_types.hpp"
#include "saga_manager_state.hpp"
#include "store_readers.hpp"

namespace cairn::saga_detail {

namespace {

/// What the manager reads as it starts.
struct saga_start {
  saga_checkpoint checkpoint;
  expected<std::map<uint64_t, parked_saga_event>> unrouted = std::map<uint64_t, parked_saga_event>{};
  std::vector<uint64_t> resolved;
};

using loaded_instances =
  std::vector<std::pair<std::string, expected<std::unique_ptr<saga_process>>>>;

/// Takes the checkpoint: where to go on from, and which instances to load.
void adopt_checkpoint(manager_state& st, saga_checkpoint cp) {
  st.processed = st.checkpointed = cp.position;
  for (auto& key : cp.reload) st.to_reload.emplace(key, 0);
  if (cp.low_water > 0) {
    st.find_open_through = st.store->head_position();
    if (cp.low_water <= cp.position) {
      st.rescan_next = cp.low_water;
      st.rescan_through = cp.position;
    }
  }
}

/// The first retry loads the parked instances and starts reading: from the low-water
/// mark up to the checkpoint only to find the open instances (which are loaded, their
/// pending commands sent again), then on after the checkpoint.
void go(manager_t* self) {
  auto& st = self->state;
  st.restart_feed = true;
  st.retry_scheduled = true;
  self->send(self, again_atom::value);
}

/// Loads instances `keys` on a reader thread into `prefetched`, then calls `then`.
template <class Then>
void prefetch(manager_t* self, std::vector<std::string> keys, Then then) {
  auto& st = self->state;
  st.loading = true;
  st.prefetched.clear(); // what is still needed is among `keys`
  read_off_thread<loaded_instances>(
    self, st.reader,
    [store = st.store, model = st.model, keys = std::move(keys)] {
      loaded_instances out;
      for (auto& key : keys) out.emplace_back(key, saga_process::load(*store, model, key));
      return out;
    },
    [self, then](loaded_instances& loaded) mutable {
      auto& st = self->state;
      st.loading = false;
      for (auto& [key, p] : loaded)
        if (!st.live.count(key)) st.prefetched.insert_or_assign(key, std::move(p));
      then();
    });
}

/// The instance event `e` is routed to if that one must be loaded (handle_event()
/// would load it), else "".
std::string needs_load(const manager_state& st, const envelope& e) {
  if (e.stream.category == st.model->category())
    return e.position <= st.find_open_through && !st.live.count(e.stream.id) ? e.stream.id
                                                                              : std::string{};
  if (e.position <= st.processed || unrouted_known(st, e.position)) return {};
  auto key = saga_process::route(*st.model, e);
  if (!key || key->empty() || st.live.count(*key)) return {};
  return std::move(*key);
}

} // namespace

void start_manager(manager_t* self) {
  auto& st = self->state;
  if (!st.reader) {
    adopt_checkpoint(st, load_checkpoint(*st.store, st.model->name(), st.checkpoint_stream));
    return go(self);
  }
  st.busy = true; // no round and no delivery before the checkpoint is read
  st.retry_scheduled = true;
  read_off_thread<saga_start>(
    self, st.reader,
    [store = st.store, name = std::string{st.model->name()}, stream = st.checkpoint_stream] {
      saga_start s;
      s.checkpoint = load_checkpoint(*store, name, stream);
      s.unrouted = read_parked_saga_events(*store, name, &s.resolved);
      return s;
    },
    [self](saga_start& s) {
      auto& st = self->state;
      st.busy = false;
      adopt_checkpoint(st, std::move(s.checkpoint));
      st.unrouted.preread = std::move(s.unrouted);
      st.unrouted.preread_resolved = std::move(s.resolved);
      go(self);
    });
}

expected<std::unique_ptr<saga_process>> load_instance(manager_state& st, const std::string& key) {
  if (auto it = st.prefetched.find(key); it != st.prefetched.end()) {
    auto p = std::move(it->second);
    st.prefetched.erase(it);
    return p;
  }
  return saga_process::load(*st.store, st.model, key);
}

bool prefetch_for_events(manager_t* self, const std::vector<const envelope*>& events, size_t i) {
  auto& st = self->state;
  if (!st.reader) return false;
  auto first = needs_load(st, *events[i]);
  if (first.empty() || st.prefetched.count(first)) return false;
  std::vector<std::string> keys{first};
  std::unordered_set<std::string> seen{first};
  for (size_t j = i + 1; j < events.size(); ++j)
    if (auto key = needs_load(st, *events[j]); !key.empty() && seen.insert(key).second)
      keys.push_back(std::move(key));
  prefetch(self, std::move(keys), [self] { next_round(self); });
  return true;
}

bool prefetch_reloads(manager_t* self) {
  auto& st = self->state;
  if (!st.reader) return false;
  std::vector<std::string> keys;
  for (auto& kv : st.to_reload)
    if (!st.live.count(kv.first) && !st.prefetched.count(kv.first)) keys.push_back(kv.first);
  if (keys.empty()) return false;
  for (auto& kv : st.prefetched) keys.push_back(kv.first); // kept through the clear
  st.retry_scheduled = true; // holds deliveries; again_atom follows the load
  prefetch(self, std::move(keys), [self] { self->send(self, again_atom::value); });
  return true;
}

} // namespace cairn::saga_detail
