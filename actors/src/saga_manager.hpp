// The saga manager: the actor that runs one saga type on a node (saga_manager.cpp).
#pragma once

#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "cairn/journal.hpp"
#include "cairn/node.hpp"
#include "cairn/node_options.hpp"
#include "cairn/saga_admin.hpp"
#include "cairn/saga_model.hpp"
#include "cairn/saga_options.hpp"

namespace cairn {

using saga_parked_atom = caf::atom_constant<caf::atom("sagaparked")>;
using saga_retry_atom = caf::atom_constant<caf::atom("sagaunpark")>;
using saga_close_atom = caf::atom_constant<caf::atom("sagaclose")>;
using saga_parked_events_atom = caf::atom_constant<caf::atom("sagaevlist")>;
using saga_retry_event_atom = caf::atom_constant<caf::atom("sagaevrtry")>;
using saga_close_event_atom = caf::atom_constant<caf::atom("sagaevclos")>;

/// How the manager sends a command: the node's command path (node::send_command).
using saga_command_sender = std::function<void(command_message, reply_handler)>;

/// On a cluster member: the saga type's lease, which every append of the manager
/// carries, and whether this member still holds it (asked before each command sent).
/// The manager stops once either says it lost the lease. Default: no cluster.
struct saga_lease_hold {
  fence_token fence;
  std::function<bool()> holds;
};

/// Spawns the manager of saga `model`: it resumes from its checkpoint in `store`
/// (appending through `journal_actor`), follows the event feed `feed`, routes
/// events to instances by correlation key, and sends their commands with `send`.
/// Answers get_atom with a saga_status, saga_parked_atom with its parked instances
/// (std::vector<parked_saga>), (saga_retry_atom, key) and (saga_close_atom, key,
/// reason) with true once done (or an error: not_found if no such instance is parked);
/// its parked input events likewise: saga_parked_events_atom (a
/// std::vector<parked_saga_event>), (saga_retry_event_atom, position) and
/// (saga_close_event_atom, position, reason). Its start and instance loads read the
/// store through `reader` (store_readers.hpp; null: inline).
caf::actor spawn_saga_manager(caf::actor_system& sys, std::shared_ptr<const saga_model> model,
                              saga_options opts, std::shared_ptr<journal> store,
                              caf::actor journal_actor, caf::actor feed, feed_options feed_opts,
                              saga_command_sender send, caf::actor reader = {},
                              saga_lease_hold lease = {});

} // namespace cairn

// Local only: the status answer never leaves the process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::saga_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<cairn::parked_saga>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<cairn::parked_saga_event>)
