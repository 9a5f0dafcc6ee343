// cluster_member: a node that is one member of a Cairn cluster. Members share one
// PostgreSQL store (events, membership, shard leases); each aggregate lives on the
// member that holds its shard's lease, and any member accepts any command, forwarding
// it over CAF's network layer (TLS with mutual authentication) to the owner.
// docs/cluster.md explains placement, handoff, failover and fencing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/cluster_settings.hpp"
#include "cairn/expected.hpp"
#include "cairn/node.hpp"
#include "cairn/node_config.hpp"

namespace cairn {

/// A member's actor-system config: node_config plus the [cluster] section, CAF's io
/// middleman (with heartbeats, so that a hung member is noticed) and its openssl
/// module (TLS files in CAF's [openssl] section: certificate, key, cafile).
class cluster_config : public node_config {
public:
  cluster_config();
  cluster_settings cluster;
};

/// What a member sees and has done (for status pages and tests).
struct cluster_status {
  std::string self;
  uint16_t port = 0;
  std::vector<std::string> live_members; ///< up, with the aggregates role, sorted
  std::vector<uint32_t> owned_shards;    ///< held by this member now
  bool all_shards_owned = false;         ///< every shard has a live owner (last view)
  /// ... and every live member with the aggregates role owns floor or ceil(shards /
  /// members) of them: no handoff is due (last view).
  bool balanced = false;
  uint64_t forwarded = 0;    ///< commands sent to other members
  uint64_t received = 0;     ///< commands other members sent here
  uint64_t rerouted = 0;     ///< commands routed again (owner moved or went down)
  /// Aggregates stopped because this member no longer holds their shard (handed off,
  /// or lost while paused or cut off), found at a round or before a command.
  uint64_t fenced_local = 0;
  uint64_t fenced_store = 0; ///< aggregates stopped: the store refused a stale epoch
};

class cluster_member {
public:
  /// Checks the settings and TLS files (a clear error, never an abort), opens the
  /// shared PostgreSQL store and starts a node on it. Register aggregates and
  /// projections on local(), then join(). Errors: invalid_argument (bad settings,
  /// missing or unreadable certificate files, no certificates without
  /// insecure = true), unavailable (PostgreSQL).
  static expected<std::unique_ptr<cluster_member>> start(cluster_config& cfg);

  /// Publishes the endpoint, checks that a live member accepts this one's TLS
  /// certificate, joins the membership and from then on claims its share of the
  /// shards. Errors: unavailable (port taken, PostgreSQL, no live member reachable:
  /// "cannot join ..."), invalid_argument.
  virtual expected<void> join() = 0;

  /// Orderly leave: hands every shard off, then leaves the membership. The
  /// destructor calls it.
  virtual void leave() = 0;

  /// Stops at once without handing anything off or leaving, as a crash would (for
  /// tests): the others declare this member dead and take its leases once they expire.
  virtual void halt() = 0;

  virtual node& local() = 0;
  virtual cluster_status status() const = 0;

  virtual ~cluster_member() = default;
};

} // namespace cairn
