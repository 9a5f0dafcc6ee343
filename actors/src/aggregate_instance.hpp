// aggregate_instance: the actor of one aggregate instance (aggregate_actor.cpp), as its
// category's router (aggregate_router.cpp) spawns it. Private to the actors library.
#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "cairn/aggregate_model.hpp"
#include "cairn/journal.hpp"
#include "cairn/node_options.hpp"
#include "cairn/snapshot_store.hpp"

namespace cairn {

class append_inbox;
class cluster_hooks;
struct command_metrics;

/// What every aggregate of one category shares.
struct aggregate_context {
  std::shared_ptr<const aggregate_model> model;
  std::shared_ptr<journal> store;
  std::shared_ptr<snapshot_store> snapshots; // may be null
  std::shared_ptr<append_inbox> inbox; // the journal's way in
  aggregate_options options;
  std::shared_ptr<const command_metrics> metrics; // null: metrics off
  caf::actor reader; // recovery reads run through it, off CAF's threads (null: inline)
  std::shared_ptr<cluster_hooks> cluster; // null: not a cluster member (no fences)
};

/// Spawns (from the router `router`) the actor of instance `stream`: it recovers from
/// the store, then runs its commands one at a time.
caf::actor spawn_aggregate_instance(caf::local_actor* router, stream_id stream,
                                    std::shared_ptr<const aggregate_context> ctx);

/// The answer to a command beyond an instance's queue bound.
error queue_full(const stream_id& stream, size_t limit);

} // namespace cairn
