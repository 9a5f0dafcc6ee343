// cluster_router: a member's answer to "where does this command run?" (cluster_hooks).
// Commands for shards this member holds run here; the others go to their owner's
// peer_link; commands whose shard has no reachable owner yet (handoff, failover) wait,
// bounded by routing_wait, and are routed again as the membership changes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cairn/cluster_hooks.hpp"
#include "cairn/cluster_membership.hpp"
#include "cairn/node.hpp"

namespace cairn {

/// The way to another member: forwards a command to it and answers `reply` exactly
/// once (with unavailable if the member goes down first).
class peer_link {
public:
  virtual ~peer_link() = default;
  virtual void forward(command_message cmd, cluster_hooks::reply_handler reply) = 0;
  /// False once the connection is gone.
  virtual bool alive() const = 0;
};

struct routing_counters {
  std::atomic<uint64_t> forwarded{0}, received{0}, rerouted{0}, fenced_local{0},
    fenced_store{0};
};

class cluster_router final : public cluster_hooks,
                             public std::enable_shared_from_this<cluster_router> {
public:
  cluster_router(std::string self, uint32_t shards, std::chrono::nanoseconds routing_wait);
  ~cluster_router() override;

  /// Where commands go from now on (set once, before join() returns).
  void attach(node* local, cluster_membership* membership);

  bool take(command_message& cmd, reply_handler& on_reply) override;
  fence_token fence_for(const stream_id& stream) const override;
  void fenced(const stream_id& stream, bool by_store) override;
  void saga_registered(const std::string& name) override;
  fence_token saga_fence(const std::string& name) const override;

  /// A command another member forwarded here: runs it if this member holds its shard
  /// (and is not handing it off), else answers errc::fenced so the sender routes again.
  void take_forwarded(command_message cmd, reply_handler on_reply);

  /// The membership's before_release: stops running `shards`' commands here (new ones
  /// wait) and waits, at most `bound`, for those in flight.
  void drain(const std::vector<uint32_t>& shards, std::chrono::nanoseconds bound);

  void set_peer(const std::string& member, std::shared_ptr<peer_link> link);
  std::shared_ptr<peer_link> peer(const std::string& member) const;
  /// Routes the waiting commands again now (the membership changed).
  void wake();
  /// Answers every waiting command with unavailable; takes no more.
  void stop();

  const routing_counters& counters() const { return counters_; }
  const std::string& self_name() const { return self_; }

private:
  using steady = std::chrono::steady_clock;
  struct pending {
    command_message cmd;
    reply_handler reply;
    steady::time_point deadline;
    error last; // why it waits (for the answer at the deadline)
  };
  using pending_ptr = std::shared_ptr<pending>;

  void route(pending_ptr p);
  void wait(pending_ptr p, error why);
  void run_local(uint32_t shard, pending_ptr p);
  void done_local(uint32_t shard);
  void retry_loop();

  const std::string self_;
  const uint32_t shards_;
  const std::chrono::nanoseconds routing_wait_;
  std::atomic<node*> local_{nullptr};
  std::atomic<cluster_membership*> membership_{nullptr};
  routing_counters counters_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<uint64_t> draining_epoch_; // 0: not draining; else the epoch handed off
  std::vector<int64_t> in_flight_;       // commands running here, per shard
  std::unordered_map<std::string, std::shared_ptr<peer_link>> peers_;
  std::deque<std::pair<steady::time_point, pending_ptr>> waiting_; // (retry at, command)
  std::vector<std::string> sagas_before_join_;
  bool stopped_ = false;
  bool woken_ = false;
  std::thread retry_thread_;
};

} // namespace cairn
