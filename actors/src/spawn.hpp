// Factory functions for the node's actors. Each actor's code lives in its own .cpp
// so the heavy CAF templates compile once.
#pragma once

#include <chrono>
#include <memory>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "cairn/aggregate_model.hpp"
#include "cairn/event_filter.hpp"
#include "cairn/journal.hpp"
#include "cairn/node.hpp"
#include "cairn/node_options.hpp"
#include "cairn/parked_event.hpp"
#include "cairn/snapshot_store.hpp"
#include "cairn/projection.hpp"

namespace cairn {

class append_inbox;
struct command_metrics;
class cluster_hooks;

/// The journal: the inbox through which aggregates append (group commit on its own
/// writer thread) and the actor that owns it and serves request-form appends.
struct journal_handle {
  caf::actor actor;
  std::shared_ptr<append_inbox> inbox;
};

/// Starts the journal over `store`. (Committed events reach followers through the
/// event feed: event_feed.hpp.)
journal_handle spawn_journal(caf::actor_system& sys, std::shared_ptr<journal> store);

/// The router of one aggregate category: spawns one aggregate actor per entity
/// id on first command and forwards commands to it.
caf::actor spawn_router(caf::actor_system& sys, std::shared_ptr<const aggregate_model> model,
                        std::shared_ptr<append_inbox> inbox, std::shared_ptr<journal> store,
                        std::shared_ptr<snapshot_store> snapshots, aggregate_options opts,
                        std::shared_ptr<const command_metrics> metrics = nullptr,
                        caf::actor reader = {},
                        std::shared_ptr<cluster_hooks> cluster = nullptr);

/// A projection actor: starts from its checkpoint in `checkpoints` (if given and
/// `options` ask for checkpoints), follows the event feed `feed` (event_feed.hpp)
/// from there, applies events, answers queries and rebuilds on rebuild_atom. Loads
/// and saves its checkpoints through `reader` (store_readers.hpp; null: inline).
caf::actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const projection_model> model,
                            std::shared_ptr<journal> store, caf::actor feed,
                            std::shared_ptr<snapshot_store> checkpoints,
                            projection_options options, feed_options feed_opts,
                            std::chrono::nanoseconds query_timeout, caf::actor reader = {});

/// An event subscription's dead letters: parked_events_atom lists them (a
/// std::vector<parked_event>); (retry_parked_atom) calls the handler again on each,
/// in order, and answers with those still parked; (discard_parked_atom, position)
/// drops one (answers true, or not_found).
using parked_events_atom = caf::atom_constant<caf::atom("parkedevts")>;
using retry_parked_atom = caf::atom_constant<caf::atom("retryparkd")>;
using discard_parked_atom = caf::atom_constant<caf::atom("dropparked")>;

/// An event subscription: calls `handler` for each event matching `filter`, at least
/// once, after the position stored in `checkpoints` under "notification-<subscription>",
/// or, with none stored (or no `checkpoints`), after position `start_after`. After
/// options.max_attempts failures on one event it parks the event (stored under
/// "notification_parked-<subscription>") and goes on. Its store reads and writes go
/// through `reader` (store_readers.hpp; null: inline).
caf::actor spawn_notification(caf::actor_system& sys, std::string subscription,
                              event_filter filter, event_handler handler,
                              notification_options options, uint64_t start_after,
                              std::shared_ptr<journal> store, caf::actor feed,
                              std::shared_ptr<snapshot_store> checkpoints, feed_options feed_opts,
                              caf::actor reader = {});


} // namespace cairn

// Local only: parked events are listed in-process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<cairn::parked_event>)
