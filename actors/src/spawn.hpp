// Factory functions for the node's actors. Each actor's code lives in its own .cpp
// so the heavy CAF templates compile once.
#pragma once

#include <chrono>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "cairn/aggregate_model.hpp"
#include "cairn/journal.hpp"
#include "cairn/node_options.hpp"
#include "cairn/snapshot_store.hpp"
#include "cairn/projection.hpp"

namespace cairn {

/// The journal actor: owns `store` for writes, group-commits concurrent appends,
/// then publishes committed events to subscribers in position order.
caf::actor spawn_journal(caf::actor_system& sys, std::shared_ptr<journal> store);

/// The router of one aggregate category: spawns one aggregate actor per entity
/// id on first command and forwards commands to it.
caf::actor spawn_router(caf::actor_system& sys, std::shared_ptr<const aggregate_model> model,
                        caf::actor journal_actor, std::shared_ptr<journal> store,
                        std::shared_ptr<snapshot_store> snapshots, aggregate_options opts);

/// A projection actor: catches up from `store`, then follows the journal actor's
/// live commits; applies events and answers queries.
caf::actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const projection_model> model,
                            std::shared_ptr<journal> store, caf::actor journal_actor,
                            std::chrono::nanoseconds query_timeout);

/// A dispatcher: turns the node's callback-style sends into CAF requests.
caf::actor spawn_dispatcher(caf::actor_system& sys, size_t index);

} // namespace cairn
