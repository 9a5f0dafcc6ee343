// saga_options and saga_status: how the node runs one saga type (node::register_saga),
// and where its manager has got to.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace cairn {

struct saga_options {
  /// A command the saga sent that has had no reply for this long goes to the saga's
  /// on_timeout (retry, or give up and compensate). The node's command_timeout
  /// also ends up there, whichever is shorter.
  std::chrono::nanoseconds step_timeout = std::chrono::seconds{10};
  /// After a store failure, or a command answered `unavailable`, try again after this.
  std::chrono::nanoseconds retry_delay = std::chrono::milliseconds{100};
  /// Store the manager's position after this many events (other than its own) ...
  uint64_t checkpoint_every = 4096;
  /// ... or this long after the first event not covered yet, whichever comes first.
  /// A restart re-reads the log from the last checkpoint; instances skip what they did.
  std::chrono::nanoseconds checkpoint_interval = std::chrono::seconds{1};
  /// At most this many events per processing round (one store write per instance
  /// touched in a round, all group-committed together).
  size_t batch_events = 1024;
};

/// A snapshot of one saga manager (node::saga_status).
struct saga_status {
  uint64_t processed = 0;    ///< every event up to this position is processed and its effects stored
  uint64_t checkpointed = 0; ///< the position stored in the last checkpoint
  size_t open = 0;           ///< instances not finished and not parked
  size_t parked = 0;         ///< parked instances (node::parked_sagas lists them)
  size_t pending_steps = 0;  ///< commands sent and not yet known applied or failed (of
                             ///< instances not parked: a parked one re-sends on retry)
  uint64_t rounds_failed = 0; ///< processing rounds whose store write failed (then retried)
  size_t parked_events = 0;   ///< input events no instance could take (routing threw, the
                              ///< event does not decode, its instance cannot be loaded),
                              ///< parked: node::parked_saga_events lists them
};

} // namespace cairn
