// cluster_membership: the loop that keeps one member in a cluster (cluster_store.hpp):
// heartbeats, declares silent members dead, spreads the shards evenly over the live
// members that own aggregates, claims and renews this member's share and gives up the
// rest. It answers, at any moment, the fence this member may write a stream under.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/cluster_store.hpp"
#include "cairn/journal.hpp"

namespace cairn {

struct membership_options {
  member_row self;                                 ///< name, host, port, roles
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds member_timeout{3000}; ///< no heartbeat this long: dead
  std::chrono::milliseconds lease_ttl{3000};
  /// A held shard stops counting as held this long before its lease expires, timed on
  /// this process's steady clock from when the renewal was sent (pause-safe).
  std::chrono::milliseconds lease_margin{500};
  /// Called on the loop's thread before shards this member holds are released (placed
  /// elsewhere, or leave()), while still held: hand them off (stop taking their
  /// commands, let those in flight finish). Keep it well within lease_ttl.
  std::function<void(const std::vector<uint32_t>& shards)> before_release;
};

/// The shard of `stream` among `shards`: FNV-1a of "category-id", stable across
/// processes, builds and platforms.
uint32_t shard_of(const stream_id& stream, uint32_t shards);

/// The even placement every member computes from the same view: each live member with
/// the "aggregates" role gets floor or ceil(shards / members) shards; shards stay with a
/// live owner within its quota, the rest go in order to members with room. Returns the
/// target member per shard (empty names if no member can own shards).
std::vector<std::string> place_shards(const cluster_view& view,
                                      std::chrono::milliseconds member_timeout);

class cluster_membership {
public:
  /// Joins and starts the loop on a thread of its own. `on_change` (may be empty) is
  /// called on that thread after each round (without the membership's lock held).
  static expected<std::unique_ptr<cluster_membership>> start(std::unique_ptr<cluster_store> store,
                                                             membership_options options,
                                                             std::function<void()> on_change = {});
  /// leave()s unless halt() was called.
  ~cluster_membership();

  /// The fence for appends to `stream` now: its shard's lease and epoch if this member
  /// holds it (and its lease is not about to expire), else an inactive token.
  fence_token fence_for(const stream_id& stream) const;
  /// The fence of `shard` (as fence_for() of a stream in it).
  fence_token fence_of(uint32_t shard) const;
  /// The shards this member holds now.
  std::vector<uint32_t> held() const;
  /// The owner of `shard` in the last view read (empty if none).
  std::string owner_of(uint32_t shard) const;
  /// The members that were up in the last view read (this one included).
  std::vector<member_row> live_members() const;
  /// Whether every shard had a live owner in the last view read.
  bool all_shards_owned() const;

  /// Saga type `name` runs in this cluster: a member with the "sagas" role claims its
  /// lease when nobody holds it (one member runs each saga type). Any thread.
  void add_saga(const std::string& name);
  /// The fence of saga type `name`'s lease while this member holds it, else inactive.
  fence_token saga_fence(const std::string& name) const;
  /// The saga types added, each with saga_fence().
  std::vector<std::pair<std::string, fence_token>> sagas() const;
  uint32_t shards() const { return shards_; }
  /// Rounds run so far (tests wait on it).
  uint64_t rounds() const { return rounds_.load(); }

  /// Orderly leave: stops the loop, releases every held lease, marks this member "left".
  void leave();
  /// Stops the loop and keeps everything as it is (a crash, for tests): the leases
  /// expire and the others declare this member dead.
  void halt();

private:
  cluster_membership(std::unique_ptr<cluster_store> store, membership_options options,
                     std::function<void()> on_change);
  void run();
  void round();

  struct held_shard {
    uint64_t epoch = 0; ///< 0: not held
    std::chrono::steady_clock::time_point valid_until{};
  };

  std::unique_ptr<cluster_store> store_;
  membership_options options_;
  std::function<void()> on_change_;
  uint32_t shards_;
  mutable std::mutex mutex_;
  std::vector<held_shard> held_;
  std::vector<std::string> owners_;
  std::vector<member_row> live_;
  struct saga_hold {
    std::string name;
    int32_t lease = -1; ///< -1: id not known yet
    held_shard held;
  };
  std::vector<saga_hold> sagas_;
  std::map<std::string, uint64_t> seen_live_; // loop thread only: name -> incarnation
  std::atomic<uint64_t> rounds_{0};
  std::atomic<bool> stop_{false};
  bool stopped_ = false;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::thread thread_;
};

} // namespace cairn
