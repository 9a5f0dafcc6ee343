// cluster_member: a node that is one member of a Cairn cluster. Members share one
// PostgreSQL store (events, membership, shard leases); each aggregate lives on the
// member that holds its shard's lease, and any member accepts any command, forwarding
// it over CAF's network layer (TLS with mutual authentication) to the owner.
// docs/cluster.md explains placement, handoff, failover and fencing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/expected.hpp"
#include "cairn/node.hpp"
#include "cairn/node_config.hpp"

namespace cairn {

/// The [cluster] section of a member's config file.
struct cluster_settings {
  std::string name;                    ///< unique member name (required)
  std::string host = "127.0.0.1";      ///< where this member's endpoint listens
  uint16_t port = 0;                   ///< its port (0: any free one, for tests)
  std::string postgres_url;            ///< the shared store (required)
  std::string postgres_schema = "cairn";
  /// What this member does: "aggregates" (owns shards), "projections" (runs the
  /// projections registered on it), "sagas" (may run saga managers).
  std::vector<std::string> roles = {"aggregates", "projections", "sagas"};
  uint32_t shards = 64;                ///< fixed when the cluster's tables are created
  /// Run without TLS. Refused unless set: a member without certificates does not start.
  bool insecure = false;
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds member_timeout{3000}; ///< no heartbeat this long: dead
  std::chrono::milliseconds lease_ttl{3000};
  /// Longest a command waits for its shard to get an owner (handoff, failover)
  /// before it fails with errc::unavailable.
  std::chrono::milliseconds routing_wait{5000};
  /// Longest an orderly handoff waits for the shard's commands in flight.
  std::chrono::milliseconds handoff_timeout{5000};
  /// Forwarded commands to one member are sent together once this many wait...
  uint32_t forward_batch = 256;
  /// ... or this long after the first one.
  std::chrono::microseconds forward_delay{200};
};

/// A member's actor-system config: node_config plus the [cluster] options, CAF's io
/// middleman and its openssl module (TLS files in CAF's [openssl] section:
/// certificate, key, cafile).
class cluster_config : public node_config {
public:
  cluster_config();
  cluster_settings cluster;
};

/// What `cairn cluster status` and tests read.
struct cluster_status {
  std::string self;
  std::vector<std::string> live_members;
  std::vector<uint32_t> owned_shards;  ///< held by this member now
  uint64_t forwarded = 0;              ///< commands sent to other members
  uint64_t received = 0;               ///< commands other members sent here
};

class cluster_member {
public:
  /// Checks the settings and TLS files (a clear error, never an abort), opens the shared
  /// PostgreSQL store and starts a node on it. Register aggregates, projections and
  /// sagas on node(), then join(). Errors: invalid_argument (bad settings, missing or
  /// unreadable certificate files, no certificates without insecure = true),
  /// unavailable (PostgreSQL).
  static expected<std::unique_ptr<cluster_member>> start(cluster_config& cfg);

  /// Publishes the endpoint, joins the membership, and from then on claims its share
  /// of the shards. Errors: unavailable (port taken, PostgreSQL).
  virtual expected<void> join() = 0;

  /// Orderly leave: hands every shard and saga off, then leaves the membership. The
  /// destructor calls it.
  virtual void leave() = 0;

  virtual node& local() = 0;
  virtual cluster_status status() = 0;
  /// The port the endpoint listens on (after join()).
  virtual uint16_t port() const = 0;

  virtual ~cluster_member() = default;
};

} // namespace cairn
