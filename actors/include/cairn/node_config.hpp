// node_config: the actor-system configuration of a Cairn node. It registers every
// type that crosses actors, binds the [cairn] options, and sets the scheduler to
// one thread per core. Applications derive from it to add their own options.
#pragma once

#include <caf/actor_system_config.hpp>

#include "cairn/node_options.hpp"

namespace cairn {

/// Registers Cairn's message types and error category on any actor system config.
/// node_config calls it; call it yourself when attaching a node to your own system.
void add_message_types(caf::actor_system_config& cfg);

class node_config : public caf::actor_system_config {
public:
  node_config();

  /// Bound to the [cairn] section: log-level, command-timeout, query-timeout, ...,
  /// and the store keys (open the store with cairn::open_store(options.store)).
  node_options options;
};

} // namespace cairn
