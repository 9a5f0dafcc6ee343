// node_options: a node's settings, with their defaults. config/node.ini lists the
// same keys (section [cairn]).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cairn/store_config.hpp"

namespace cairn {

/// How the node hosts one aggregate type.
struct aggregate_options {
  /// Save a snapshot after every this many events of an instance (0: never).
  /// Needs a snapshot store on the node and `describe(cairn::type<A>)` for the state.
  uint64_t snapshot_every = 0;
  /// Stop an instance's actor after it has been idle this long, freeing its memory
  /// (0: never). Its next command recovers it transparently.
  std::chrono::nanoseconds passivate_after = std::chrono::minutes{2};
  /// Commands one instance holds while its previous command's events are being made
  /// durable (0: no bound). Beyond it a command is answered at once with unavailable
  /// ("overloaded"): each waiting command costs at least one store write, so a longer
  /// queue would mostly wait into its timeout.
  size_t max_queued_commands = 1024;
  /// Commands carrying an "idempotency-key" metadata entry that an instance
  /// remembers (its most recent ones, also across recovery): the same key again is
  /// answered with the original outcome and stores nothing. 0: no deduplication.
  size_t idempotency_window = 256;
};

/// How the node keeps one projection's checkpoint: its position plus its read model
/// (save()/load() or a schema: projection.hpp), in the node's snapshot store under
/// "projection-<name>". On start the projection loads it and replays only what
/// follows. A checkpoint is taken after applying a batch of events, when either
/// condition holds; both 0 (the default) means no checkpoints.
struct projection_options {
  /// ... at least this many store positions passed since the last one (0: ignore).
  uint64_t checkpoint_every = 0;
  /// ... at least this long passed since the last one (0: ignore).
  std::chrono::nanoseconds checkpoint_interval{0};
  /// Also save one when the node stops (if checkpoints are on and anything changed).
  bool checkpoint_on_stop = true;

  bool checkpoints() const { return checkpoint_every > 0 || checkpoint_interval.count() > 0; }
};

/// How handlers registered with node::subscribe_events() are driven.
struct notification_options {
  /// Where delivery starts when no position is stored for the subscription: true
  /// from the store's first event, false with the first commit after subscribe_events().
  bool from_beginning = true;
  /// Store the delivered position after every this many handled events (1: after
  /// every delivered batch that had any). A crash re-delivers at most what was
  /// handled since. It is also stored on stop.
  uint64_t checkpoint_every = 1;
  /// A handler that throws gets the same event again after this delay, doubling
  /// up to retry_max_delay.
  std::chrono::nanoseconds retry_delay = std::chrono::milliseconds{10};
  std::chrono::nanoseconds retry_max_delay = std::chrono::seconds{1};
  /// Give up on an event after this many failed attempts: park it (node::parked_events)
  /// and go on with the next (0: never give up; the subscription waits on that event).
  uint32_t max_attempts = 0;
};

/// The event feed that projections and notification handlers follow (one per node).
struct feed_options {
  /// Recent committed events kept in memory for followers that are live; a
  /// follower further behind reads the store instead.
  size_t ring_events = 16384;
  /// At most this many events per hand-over to a follower (and per store read).
  size_t batch_events = 4096;
};

struct node_options {
  /// spdlog level: trace, debug, info, warn, error, critical or off.
  std::string log_level = "info";
  /// How long a command may take before its sender gets errc::timeout.
  std::chrono::nanoseconds command_timeout = std::chrono::seconds{10};
  /// Commands the node holds at once: sent and neither answered nor dropped (0: no
  /// bound). Beyond it, send() answers at once with unavailable ("overloaded"), so a
  /// flood costs bounded memory and gets a fast, clear answer (docs/overload.md).
  size_t max_commands_in_flight = 65536;
  /// How long a query may wait for its projection to reach the asked position.
  std::chrono::nanoseconds query_timeout = std::chrono::seconds{5};
  /// Defaults for register_aggregate() without options.
  aggregate_options aggregates;
  /// Defaults for register_projection() without options.
  projection_options projections;
  feed_options feed;
  /// Count commands, latencies and batch sizes for node::metrics_text() (cheap:
  /// bench/RESULTS.md). Off, those counters stay at zero; the rest is still reported.
  bool metrics = true;
  /// The store the application opens with open_store(options.store) and hands the
  /// node ([cairn] store, data, file-sync, postgres-url, postgres-schema).
  store_config store;
  /// Threads that run the store reads of aggregate recovery and of the catch-up of
  /// projections, subscriptions and sagas, off the actors' scheduler threads, so a
  /// slow store answer never stalls other aggregates. 0: reads run on the actor's
  /// thread (fastest for a local store); -1 (default): 4 for a store whose reads wait
  /// on a server (PostgreSQL: journal::reads_wait_on_server), else 0.
  int store_read_threads = -1;
};

} // namespace cairn
