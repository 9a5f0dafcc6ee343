// cluster_membership (cluster_membership.hpp): one round per heartbeat interval, on a
// thread of its own, against the cluster tables.
#include "cairn/cluster_membership.hpp"

#include <algorithm>
#include <map>

namespace cairn {
namespace {

using steady = std::chrono::steady_clock;

bool has_role(const member_row& m, const char* role) {
  return std::find(m.roles.begin(), m.roles.end(), role) != m.roles.end();
}

bool alive(const member_row& m, std::chrono::milliseconds timeout) {
  return m.state == "up" && m.heartbeat_age_ms <= timeout.count();
}

} // namespace

uint32_t shard_of(const stream_id& stream, uint32_t shards) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(stream.category);
  mix("-");
  mix(stream.id);
  return shards == 0 ? 0 : static_cast<uint32_t>(h % shards);
}

std::vector<std::string> place_shards(const cluster_view& view,
                                      std::chrono::milliseconds member_timeout) {
  std::vector<std::string> target(view.shards);
  std::vector<const member_row*> live;
  for (auto& m : view.members)
    if (alive(m, member_timeout) && has_role(m, "aggregates")) live.push_back(&m);
  if (live.empty()) return target;
  std::sort(live.begin(), live.end(),
            [](const member_row* a, const member_row* b) { return a->name < b->name; });
  size_t n = live.size();
  std::vector<size_t> quota(n, view.shards / n), count(n, 0);
  for (size_t i = 0; i < view.shards % n; ++i) ++quota[i];
  auto index_of = [&](const std::string& name) -> size_t {
    for (size_t i = 0; i < n; ++i)
      if (live[i]->name == name) return i;
    return n;
  };
  // Shards stay with a live owner while it is within its quota...
  for (auto& l : view.leases) {
    if (l.id < 0 || static_cast<uint32_t>(l.id) >= view.shards || l.owner.empty()) continue;
    size_t i = index_of(l.owner);
    if (i < n && count[i] < quota[i]) {
      target[static_cast<size_t>(l.id)] = l.owner;
      ++count[i];
    }
  }
  // ... and the others go, in order, to members with room.
  size_t next = 0;
  for (uint32_t s = 0; s < view.shards; ++s) {
    if (!target[s].empty()) continue;
    while (count[next] >= quota[next]) next = (next + 1) % n;
    target[s] = live[next]->name;
    ++count[next];
  }
  return target;
}

cluster_membership::cluster_membership(std::unique_ptr<cluster_store> store,
                                       membership_options options,
                                       std::function<void()> on_change)
    : store_(std::move(store)), options_(std::move(options)), on_change_(std::move(on_change)),
      shards_(store_->shards()), held_(shards_), owners_(shards_) {}

expected<std::unique_ptr<cluster_membership>> cluster_membership::start(
  std::unique_ptr<cluster_store> store, membership_options options,
  std::function<void()> on_change) {
  if (options.lease_margin >= options.lease_ttl)
    return error{errc::invalid_argument, "the lease margin must be shorter than the lease ttl"};
  if (auto joined = store->join(options.self); !joined) return std::move(joined).error();
  std::unique_ptr<cluster_membership> m{
    new cluster_membership(std::move(store), std::move(options), std::move(on_change))};
  m->thread_ = std::thread([raw = m.get()] { raw->run(); });
  return m;
}

cluster_membership::~cluster_membership() { leave(); }

void cluster_membership::run() {
  while (!stop_) {
    round();
    ++rounds_;
    if (on_change_) on_change_();
    std::unique_lock<std::mutex> guard{wake_mutex_};
    wake_.wait_for(guard, options_.heartbeat_interval, [this] { return stop_.load(); });
  }
}

void cluster_membership::round() {
  const auto& me = options_.self.name;
  if (auto beat = store_->heartbeat(me); !beat) {
    if (beat.error().code() != errc::not_found) return; // the server: try next round
    // Declared dead while silent (paused, cut off): rejoin as a new incarnation. Its
    // leases were taken over meanwhile, and fences stop its old writes.
    if (!store_->join(options_.self)) return;
  }
  auto view = store_->view();
  if (!view) return;
  // One lease row per shard, ids 0 .. shards-1 first (cluster_store::open makes them); a
  // table someone edited by hand is skipped, not trusted.
  if (view->leases.size() < shards_) return;
  for (uint32_t s = 0; s < shards_; ++s)
    if (view->leases[s].id != static_cast<int32_t>(s)) return;
  for (auto& m : view->members)
    if (m.name != me && m.state == "up" && m.heartbeat_age_ms > options_.member_timeout.count()) {
      auto declared = store_->set_state(me, m.name, "dead", options_.member_timeout);
      if (declared && *declared) m.state = "dead";
    }
  auto target = place_shards(*view, options_.member_timeout);
  std::vector<int32_t> claim, release;
  for (uint32_t s = 0; s < shards_; ++s) {
    const auto& lease = view->leases[s];
    if (target[s] == me) claim.push_back(static_cast<int32_t>(s));
    else if (lease.owner == me) release.push_back(static_cast<int32_t>(s));
  }
  bool changed = false;
  if (!release.empty()) {
    if (options_.before_release) {
      std::vector<uint32_t> shards(release.begin(), release.end());
      options_.before_release(shards);
    }
    {
      // Stop writing under them before they go.
      std::lock_guard<std::mutex> guard{mutex_};
      for (auto s : release) {
        changed = changed || held_[static_cast<size_t>(s)].epoch != 0;
        held_[static_cast<size_t>(s)] = held_shard{};
      }
    }
    if (store_->release(me, release))
      store_->log_change({0, me, me, "released", std::to_string(release.size()) + " shards"});
  }
  // Saga leases: ids after the shards, claimed by any member with the sagas role when
  // free or expired (first come), kept by renewing.
  bool runs_sagas = std::find(options_.self.roles.begin(), options_.self.roles.end(), "sagas") !=
                    options_.self.roles.end();
  std::vector<std::pair<std::string, int32_t>> saga_ids;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& sg : sagas_) saga_ids.emplace_back(sg.name, sg.lease);
  }
  for (auto& [name, id] : saga_ids) {
    if (id < 0) {
      auto made = store_->saga_lease(name);
      if (!made) continue;
      id = *made;
    }
    if (!runs_sagas) continue;
    const lease_row* row = nullptr;
    for (auto& l : view->leases)
      if (l.id == id) row = &l;
    if (!row || row->owner == me || row->owner.empty() || row->expires_in_ms < 0) claim.push_back(id);
  }
  std::vector<lease_grant> grants;
  auto sent = steady::now();
  if (!claim.empty()) {
    auto granted = store_->claim(me, claim, options_.lease_ttl);
    if (granted) grants = std::move(*granted);
  }
  // Every member logs the changes of membership it sees (the members it finds up or
  // gone since its last round), so the log shows who knew what, and when.
  std::map<std::string, uint64_t> seen;
  for (auto& m : view->members)
    if (m.state == "up" && (m.name == me || m.heartbeat_age_ms <= options_.member_timeout.count()))
      seen.emplace(m.name, m.incarnation);
  for (auto& [name, incarnation] : seen) {
    auto before = seen_live_.find(name);
    if (before == seen_live_.end() || before->second != incarnation)
      store_->log_change({0, me, name, "seen up", "incarnation " + std::to_string(incarnation)});
  }
  for (auto& [name, incarnation] : seen_live_)
    if (!seen.count(name)) store_->log_change({0, me, name, "seen gone", ""});
  seen_live_ = std::move(seen);
  std::lock_guard<std::mutex> guard{mutex_};
  auto owners_before = owners_;
  for (uint32_t s = 0; s < shards_; ++s) owners_[s] = view->leases[s].owner;
  live_.clear();
  for (auto& m : view->members)
    if (m.state == "up" && (m.name == me || m.heartbeat_age_ms <= options_.member_timeout.count()))
      live_.push_back(m);
  for (uint32_t s = 0; s < shards_; ++s) {
    auto& owner = owners_[s];
    if (!owner.empty() && owner != me && view->leases[s].expires_in_ms < 0) owner.clear();
  }
  size_t newly = 0;
  for (auto& sg : sagas_)
    for (auto& [name, id] : saga_ids)
      if (sg.name == name) sg.lease = id;
  for (auto& g : grants) {
    if (g.id >= static_cast<int32_t>(shards_)) { // a saga's lease
      for (auto& sg : sagas_)
        if (sg.lease == g.id) {
          if (g.granted && sg.held.epoch != g.epoch)
            store_->log_change({0, me, me, "claimed", "saga " + sg.name});
          sg.held = g.granted ? held_shard{g.epoch, sent + options_.lease_ttl - options_.lease_margin}
                              : held_shard{};
        }
      continue;
    }
    auto& h = held_[static_cast<size_t>(g.id)];
    if (g.granted) {
      if (h.epoch != g.epoch) {
        changed = true;
        ++newly;
      }
      h = held_shard{g.epoch, sent + options_.lease_ttl - options_.lease_margin};
      owners_[static_cast<size_t>(g.id)] = me;
    } else if (h.epoch != 0) {
      changed = true;
      h = held_shard{};
    }
  }
  if (newly > 0)
    store_->log_change({0, me, me, "claimed", std::to_string(newly) + " shards"});
  (void)changed; // on_change_ runs after every round: saga leases lapse with time too
}

fence_token cluster_membership::fence_for(const stream_id& stream) const {
  return fence_of(shard_of(stream, shards_));
}

fence_token cluster_membership::fence_of(uint32_t s) const {
  if (s >= shards_) return {};
  std::lock_guard<std::mutex> guard{mutex_};
  const auto& h = held_[s];
  if (h.epoch == 0 || steady::now() >= h.valid_until) return {};
  return fence_token{static_cast<int32_t>(s), h.epoch};
}

std::vector<uint32_t> cluster_membership::held() const {
  std::vector<uint32_t> out;
  auto now = steady::now();
  std::lock_guard<std::mutex> guard{mutex_};
  for (uint32_t s = 0; s < shards_; ++s)
    if (held_[s].epoch != 0 && now < held_[s].valid_until) out.push_back(s);
  return out;
}

std::string cluster_membership::owner_of(uint32_t shard) const {
  std::lock_guard<std::mutex> guard{mutex_};
  return shard < shards_ ? owners_[shard] : std::string{};
}

void cluster_membership::add_saga(const std::string& name) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& sg : sagas_)
      if (sg.name == name) return;
    sagas_.push_back(saga_hold{name, -1, {}});
  }
  wake_.notify_all();
}

fence_token cluster_membership::saga_fence(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& sg : sagas_)
    if (sg.name == name && sg.held.epoch != 0 && steady::now() < sg.held.valid_until)
      return fence_token{sg.lease, sg.held.epoch};
  return {};
}

std::vector<std::pair<std::string, fence_token>> cluster_membership::sagas() const {
  std::vector<std::pair<std::string, fence_token>> out;
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& sg : sagas_) names.push_back(sg.name);
  }
  for (auto& n : names) out.emplace_back(n, saga_fence(n));
  return out;
}

std::vector<member_row> cluster_membership::live_members() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return live_;
}

bool cluster_membership::all_shards_owned() const {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& owner : owners_) {
    if (owner.empty()) return false;
    bool live = false;
    for (auto& m : live_) live = live || m.name == owner;
    if (!live) return false;
  }
  return true;
}

void cluster_membership::halt() {
  {
    std::lock_guard<std::mutex> guard{wake_mutex_};
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void cluster_membership::leave() {
  {
    std::lock_guard<std::mutex> guard{wake_mutex_};
    if (stopped_) return;
  }
  halt();
  std::vector<int32_t> mine;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (uint32_t s = 0; s < shards_; ++s)
      if (held_[s].epoch != 0) mine.push_back(static_cast<int32_t>(s));
  }
  std::vector<int32_t> saga_leases;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& sg : sagas_)
      if (sg.held.epoch != 0) {
        saga_leases.push_back(sg.lease);
        sg.held = held_shard{};
      }
  }
  if (!mine.empty() && options_.before_release)
    options_.before_release(std::vector<uint32_t>(mine.begin(), mine.end()));
  {
    std::lock_guard<std::mutex> guard{mutex_};
    std::fill(held_.begin(), held_.end(), held_shard{});
  }
  const auto& me = options_.self.name;
  mine.insert(mine.end(), saga_leases.begin(), saga_leases.end());
  if (!mine.empty()) store_->release(me, mine);
  store_->set_state(me, me, "left");
}

} // namespace cairn
