// The scheduler a node's actor system runs its actors on (scheduler.policy "cairn",
// the default): CAF's work-sharing design, one shared queue and N workers woken by
// a condition variable, without the per-job logging hooks of Debian's CAF build.
//
// CAF 0.17's own workers set the logger's actor id around every job they resume,
// whatever the log level, through a dynamic_cast across the actor's many bases: about
// 1,300 instructions per job under callgrind. Without it the bank sample runs on 16%
// fewer instructions, and 1,000 actors appending through the journal on 24% fewer
// (bench/RESULTS.md).
#pragma once

#include <caf/actor_system.hpp>

namespace cairn {

/// For actor_system_config::module_factories: this scheduler when the config's
/// scheduler.policy is "cairn"; otherwise CAF's own ("sharing" or "stealing").
caf::actor_system::module* make_node_scheduler(caf::actor_system& sys);

} // namespace cairn
