// cluster_config: a member's actor-system config (cluster_member.hpp).
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include "cairn/cluster_member.hpp"
#include "forwarding.hpp"

namespace cairn {

cluster_config::cluster_config() {
  load<caf::io::middleman>();
  load<caf::openssl::manager>();
  add_cluster_message_types(*this);
  // CAF 0.17 notices neither a hung peer nor (for pending requests) a dead one by
  // itself: every member sends heartbeats and drops a connection silent for 1 s.
  set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds{100}});
  set("middleman.connection-timeout", caf::timespan{std::chrono::seconds{1}});
  caf::config_option_adder{custom_options_, "cluster"}
    .add(cluster.name, "name", "this member's unique name (required)")
    .add(cluster.host, "host", "address the member's endpoint listens on")
    .add(cluster.port, "port", "port of the endpoint (0: any free one)")
    .add(cluster.postgres_url, "postgres-url", "the shared PostgreSQL store (required)")
    .add(cluster.postgres_schema, "postgres-schema", "schema of the shared store")
    .add(cluster.roles, "roles", "aggregates and/or projections")
    .add(cluster.shards, "shards", "shard count, fixed when the cluster's tables are created")
    .add(cluster.insecure, "insecure", "run without TLS (refused unless set)")
    .add(cluster.heartbeat_interval, "heartbeat-interval", "membership round interval")
    .add(cluster.member_timeout, "member-timeout", "no heartbeat this long: dead")
    .add(cluster.lease_ttl, "lease-ttl", "how long a claimed shard lease lasts")
    .add(cluster.lease_margin, "lease-margin", "stop using a lease this long before it expires")
    .add(cluster.routing_wait, "routing-wait", "longest a command waits for its shard's owner")
    .add(cluster.handoff_timeout, "handoff-timeout",
         "longest a handoff waits for the shard's commands in flight")
    .add(cluster.forward_batch, "forward-batch", "commands per forwarded message at most")
    .add(cluster.forward_delay, "forward-delay", "longest a forwarded command waits for its batch");
}

} // namespace cairn
