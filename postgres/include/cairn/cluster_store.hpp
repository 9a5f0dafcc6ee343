// cluster_store: a cluster's membership, leases and membership log in PostgreSQL, next
// to its events (same schema), as Orleans' SQL clustering keeps them. Blocking calls
// on a connection of its own: use it from one thread (the cluster's membership loop,
// or the `cairn cluster` command).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/expected.hpp"
#include "cairn/postgres_journal.hpp"

namespace cairn {

/// A member as the table holds it.
struct member_row {
  std::string name;                ///< unique in the cluster, e.g. "node1"
  std::string host;                ///< where its cluster endpoint listens
  uint16_t port = 0;
  std::vector<std::string> roles;  ///< "aggregates", "projections", "sagas"
  uint64_t incarnation = 0;        ///< 1 at the first join, +1 at each rejoin
  std::string state;               ///< "up", "leaving", "left" or "dead"
  int64_t started_at_ns = 0;       ///< server clock, ns since the Unix epoch
  int64_t heartbeat_at_ns = 0;     ///< server clock
  int64_t heartbeat_age_ms = 0;    ///< server's now() - heartbeat_at, when read
};

/// A lease: a shard of streams (ids 0 .. shards-1, named "shard-<i>") or a saga type
/// (ids from `shards` up, named "saga-<name>").
struct lease_row {
  int32_t id = 0;
  std::string name;
  std::string owner;              ///< empty: released or never claimed
  uint64_t epoch = 0;             ///< +1 at each change of owner (fence_token::epoch)
  int64_t expires_at_ns = 0;      ///< server clock
  int64_t expires_in_ms = 0;      ///< expires_at - server's now(), when read (< 0: expired)
};

/// What claim() got: the lease is held by `me` under `epoch` until `ttl` after the call
/// was sent (measure it on the caller's steady clock), or was not granted.
struct lease_grant {
  int32_t id = 0;
  bool granted = false;
  uint64_t epoch = 0;
};

/// One line of the membership log.
struct membership_change {
  int64_t at_ns = 0;   ///< server clock
  std::string by;      ///< the member that saw it
  std::string member;  ///< the member it is about
  std::string change;  ///< "joined", "left", "dead", "claimed", "released", ...
  std::string detail;
};

/// Everything a member needs to place shards, read in one round trip.
struct cluster_view {
  uint32_t shards = 0;
  std::vector<member_row> members;   ///< by name
  std::vector<lease_row> leases;     ///< by id
};

class cluster_store {
public:
  /// Connects, creates or migrates the schema (the journal's tables too) and the cluster
  /// tables. The shard count is fixed when the cluster tables are created; `shards` must
  /// match it afterwards. Errors: invalid_argument (shards 0, or differing from the
  /// existing cluster's, naming both), unavailable (as open_postgres_journal).
  static expected<std::unique_ptr<cluster_store>> open(const std::string& conninfo,
                                                       uint32_t shards,
                                                       const postgres_options& options = {});
  /// For `cairn cluster status`: opens an existing cluster, whatever its shard count.
  /// Errors: not_found (no cluster tables in the schema), unavailable.
  static expected<std::unique_ptr<cluster_store>> open_existing(const std::string& conninfo,
                                                                const postgres_options& options = {});

  virtual ~cluster_store() = default;

  virtual uint32_t shards() const = 0;

  /// Adds `me` (or rejoins: incarnation + 1) as "up" with a fresh heartbeat, and logs
  /// it. Returns the incarnation. Errors: unavailable.
  virtual expected<uint64_t> join(const member_row& me) = 0;
  /// Refreshes `me`'s heartbeat. Errors: not_found (`me` was declared dead or left:
  /// rejoin), unavailable.
  virtual expected<void> heartbeat(const std::string& me) = 0;
  /// Sets member `member`'s state ("leaving", "left", "dead") and logs the change as
  /// seen by `by`. Declaring dead is a no-op returning false if its heartbeat is
  /// younger than `older_than` (it came back). Errors: unavailable.
  virtual expected<bool> set_state(const std::string& by, const std::string& member,
                                   const std::string& state,
                                   std::chrono::milliseconds older_than = {}) = 0;
  /// Members and leases (including the saga leases), on the server's clock.
  virtual expected<cluster_view> view() = 0;

  /// Claims or renews leases for `me`, in one statement on the server's clock: each
  /// is granted if it is free, expired or already `me`'s; its epoch goes up by one when
  /// its owner changes. Granted leases expire `ttl` from now. Errors: unavailable.
  virtual expected<std::vector<lease_grant>> claim(const std::string& me,
                                                   const std::vector<int32_t>& ids,
                                                   std::chrono::milliseconds ttl) = 0;
  /// Releases `me`'s leases `ids` (owner cleared, epoch kept: a later claim bumps it),
  /// so that appends fenced with them fail from now on. Errors: unavailable.
  virtual expected<void> release(const std::string& me, const std::vector<int32_t>& ids) = 0;
  /// The id of saga type `saga`'s lease, created (unowned) if missing. Errors: unavailable.
  virtual expected<int32_t> saga_lease(const std::string& saga) = 0;

  /// Appends a line to the membership log. Errors: unavailable.
  virtual expected<void> log_change(const membership_change& change) = 0;
  /// The last `count` lines of the log, oldest first. Errors: unavailable.
  virtual expected<std::vector<membership_change>> recent_changes(size_t count) = 0;
};

} // namespace cairn
