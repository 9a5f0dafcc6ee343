// cluster_router: routes each command to the member holding its shard (cluster_router.hpp).
#include "cluster_router.hpp"

#include <algorithm>

#include "idempotency_memory.hpp"
#include "log.hpp"

namespace cairn {

namespace {

constexpr auto retry_tick = std::chrono::milliseconds{10};
constexpr auto max_backoff = std::chrono::milliseconds{100};

bool has_idempotency_key(const command_message& cmd) {
  return cmd.meta.find(idempotency_key_entry) != nullptr;
}

} // namespace

cluster_router::cluster_router(std::string self, uint32_t shards,
                               std::chrono::nanoseconds routing_wait)
    : self_(std::move(self)), shards_(shards), routing_wait_(routing_wait),
      draining_epoch_(shards, 0), in_flight_(shards, 0) {
  retry_thread_ = std::thread([this] { retry_loop(); });
}

cluster_router::~cluster_router() { stop(); }

void cluster_router::attach(node* local, cluster_membership* membership) {
  local_ = local;
  membership_ = membership;
  std::vector<std::string> sagas;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    sagas.swap(sagas_before_join_);
  }
  if (membership)
    for (auto& name : sagas) membership->add_saga(name);
  wake();
}

void cluster_router::saga_registered(const std::string& name) {
  if (auto membership = membership_.load()) return membership->add_saga(name);
  std::lock_guard<std::mutex> guard{mutex_};
  sagas_before_join_.push_back(name);
}

fence_token cluster_router::saga_fence(const std::string& name) const {
  auto membership = membership_.load();
  return membership ? membership->saga_fence(name) : fence_token{};
}

bool cluster_router::take(command_message& cmd, reply_handler& on_reply) {
  auto p = std::make_shared<pending>();
  p->cmd = std::move(cmd);
  p->reply = std::move(on_reply);
  p->deadline = steady::now() + routing_wait_;
  route(std::move(p));
  return true;
}

// The membership is never called with mutex_ held: it calls wake() with its own held.
fence_token cluster_router::fence_for(const stream_id& stream) const {
  auto membership = membership_.load();
  return membership ? membership->fence_for(stream) : fence_token{};
}

void cluster_router::fenced(const stream_id&, bool by_store) {
  (by_store ? counters_.fenced_store : counters_.fenced_local).fetch_add(1);
}

void cluster_router::route(pending_ptr p) {
  auto membership = membership_.load();
  if (!membership) return wait(std::move(p), error{errc::unavailable, "not joined yet"});
  auto shard = shard_of(p->cmd.target, shards_);
  auto fence = membership->fence_of(shard);
  bool local = false;
  {
    std::unique_lock<std::mutex> guard{mutex_};
    if (stopped_) {
      guard.unlock();
      return p->reply(error{errc::unavailable, "member " + self_ + " is leaving"});
    }
    if (fence.active()) {
      if (draining_epoch_[shard] == fence.epoch) {
        guard.unlock();
        return wait(std::move(p), error{errc::unavailable, "shard " + std::to_string(shard) +
                                                            " is being handed off"});
      }
      ++in_flight_[shard];
      local = true;
    }
  }
  if (local) return run_local(shard, std::move(p));
  auto owner = membership->owner_of(shard);
  if (owner.empty() || owner == self_)
    return wait(std::move(p), error{errc::unavailable, "shard " + std::to_string(shard) +
                                                        " has no owner now"});
  auto link = peer(owner);
  if (!link || !link->alive())
    return wait(std::move(p), error{errc::unavailable, "member " + owner + ", owner of shard " +
                                                        std::to_string(shard) +
                                                        ", is not reachable"});
  counters_.forwarded.fetch_add(1, std::memory_order_relaxed);
  auto self = shared_from_this();
  link->forward(p->cmd, [self, p](expected<command_reply> r) {
    if (!r) {
      auto code = r.error().code();
      // Nothing of a fenced command was stored; an unavailable one may have been,
      // so it goes again only with an idempotency key (the owner answers a repeat
      // with the first outcome).
      if (code == errc::fenced || (code == errc::unavailable && has_idempotency_key(p->cmd))) {
        self->counters_.rerouted.fetch_add(1, std::memory_order_relaxed);
        return self->wait(p, std::move(r).error());
      }
    }
    p->reply(std::move(r));
  });
}

void cluster_router::run_local(uint32_t shard, pending_ptr p) {
  auto self = shared_from_this();
  local_.load()->send_here(p->cmd, [self, shard, p](expected<command_reply> r) {
    self->done_local(shard);
    if (!r && r.error().code() == errc::fenced) { // the lease moved meanwhile
      self->counters_.rerouted.fetch_add(1, std::memory_order_relaxed);
      return self->wait(p, std::move(r).error());
    }
    p->reply(std::move(r));
  });
}

void cluster_router::take_forwarded(command_message cmd, reply_handler on_reply) {
  counters_.received.fetch_add(1, std::memory_order_relaxed);
  auto membership = membership_.load();
  auto shard = shard_of(cmd.target, shards_);
  auto fence = membership ? membership->fence_of(shard) : fence_token{};
  {
    std::unique_lock<std::mutex> guard{mutex_};
    if (stopped_ || !fence.active() || draining_epoch_[shard] == fence.epoch) {
      guard.unlock();
      return on_reply(error{errc::fenced, "member " + self_ + " does not hold shard " +
                                            std::to_string(shard) + " now"});
    }
    ++in_flight_[shard];
  }
  auto self = shared_from_this();
  local_.load()->send_here(std::move(cmd), [self, shard, reply = std::move(on_reply)](
                                      expected<command_reply> r) {
    self->done_local(shard);
    reply(std::move(r));
  });
}

void cluster_router::done_local(uint32_t shard) {
  std::lock_guard<std::mutex> guard{mutex_};
  --in_flight_[shard];
  if (draining_epoch_[shard] != 0) changed_.notify_all();
}

void cluster_router::wait(pending_ptr p, error why) {
  auto now = steady::now();
  if (now >= p->deadline) return p->reply(std::move(why));
  p->last = std::move(why);
  std::unique_lock<std::mutex> guard{mutex_};
  if (stopped_) {
    guard.unlock();
    return p->reply(error{errc::unavailable, "member " + self_ + " is leaving"});
  }
  waiting_.emplace_back(now + retry_tick, std::move(p));
}

void cluster_router::drain(const std::vector<uint32_t>& shards, std::chrono::nanoseconds bound) {
  auto membership = membership_.load();
  if (!membership) return;
  std::vector<fence_token> fences;
  for (auto s : shards) fences.push_back(membership->fence_of(s));
  auto deadline = steady::now() + bound;
  std::unique_lock<std::mutex> guard{mutex_};
  for (size_t i = 0; i < shards.size(); ++i)
    draining_epoch_[shards[i]] = fences[i].active() ? fences[i].epoch : ~uint64_t{0};
  auto idle = [&] {
    return std::all_of(shards.begin(), shards.end(), [&](uint32_t s) { return in_flight_[s] <= 0; });
  };
  if (!changed_.wait_until(guard, deadline, idle))
    log().warn("cluster: handing off {} shards with commands still in flight after {} ms; "
               "their appends will be refused (fenced) and routed again",
               shards.size(), std::chrono::duration_cast<std::chrono::milliseconds>(bound).count());
}

void cluster_router::set_peer(const std::string& member, std::shared_ptr<peer_link> link) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    peers_[member] = std::move(link);
  }
  wake();
}

std::shared_ptr<peer_link> cluster_router::peer(const std::string& member) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = peers_.find(member);
  return it == peers_.end() ? nullptr : it->second;
}

void cluster_router::wake() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    woken_ = true;
  }
  changed_.notify_all();
}

void cluster_router::retry_loop() {
  std::unique_lock<std::mutex> guard{mutex_};
  while (!stopped_) {
    changed_.wait_for(guard, retry_tick, [this] { return stopped_ || woken_; });
    if (stopped_) break;
    auto now = steady::now();
    bool all = woken_;
    woken_ = false;
    std::vector<pending_ptr> due;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (all || it->first <= now) {
        due.push_back(std::move(it->second));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    if (due.empty()) continue;
    guard.unlock();
    for (auto& p : due) {
      if (steady::now() >= p->deadline) p->reply(std::move(p->last));
      else route(std::move(p));
    }
    guard.lock();
  }
}

void cluster_router::stop() {
  std::deque<std::pair<steady::time_point, pending_ptr>> left;
  std::unordered_map<std::string, std::shared_ptr<peer_link>> peers; // their forwarders stop
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (stopped_ && !retry_thread_.joinable()) return;
    stopped_ = true;
    left.swap(waiting_);
    peers.swap(peers_);
  }
  changed_.notify_all();
  if (retry_thread_.joinable() && retry_thread_.get_id() != std::this_thread::get_id())
    retry_thread_.join();
  for (auto& w : left) w.second->reply(error{errc::unavailable, "member " + self_ + " is leaving"});
}

} // namespace cairn
