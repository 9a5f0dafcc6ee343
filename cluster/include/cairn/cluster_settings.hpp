// cluster_settings: the [cluster] section of a member's config file (cluster_member.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cairn {

struct cluster_settings {
  std::string name;               ///< unique member name (required)
  std::string host = "127.0.0.1"; ///< where this member's endpoint listens
  size_t port = 0;                ///< its port (0: any free one)
  std::string postgres_url;       ///< the shared store (required)
  std::string postgres_schema = "cairn";
  /// "aggregates" (owns shards), "projections" (runs the projections registered on
  /// it), "sagas" (may run saga managers: each saga type runs on one member).
  std::vector<std::string> roles = {"aggregates", "projections", "sagas"};
  size_t shards = 64; ///< fixed when the cluster's tables are created
  /// Run without TLS (a warning is logged). Without it, a member without certificate,
  /// key and CA file refuses to start.
  bool insecure = false;
  std::chrono::nanoseconds heartbeat_interval{std::chrono::milliseconds{500}};
  std::chrono::nanoseconds member_timeout{std::chrono::seconds{3}}; ///< no heartbeat this long: dead
  std::chrono::nanoseconds lease_ttl{std::chrono::seconds{3}};
  std::chrono::nanoseconds lease_margin{std::chrono::milliseconds{500}};
  /// Longest a command waits for its shard to get a reachable owner (handoff,
  /// failover) before it fails with errc::unavailable.
  std::chrono::nanoseconds routing_wait{std::chrono::seconds{5}};
  /// Longest an orderly handoff waits for the shard's commands in flight (at most
  /// half the lease ttl is used).
  std::chrono::nanoseconds handoff_timeout{std::chrono::seconds{1}};
  /// Forwarded commands to one member go in one message once this many wait...
  size_t forward_batch = 256;
  /// ... or this long after the first one.
  std::chrono::nanoseconds forward_delay{std::chrono::microseconds{200}};

  bool has_role(const std::string& role) const {
    for (auto& r : roles)
      if (r == role) return true;
    return false;
  }
};

} // namespace cairn
