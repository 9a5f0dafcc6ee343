// node_metrics: the handles through which the node's actors count what they do (one
// metrics::registry per node; node::metrics_text renders it). Private to the actors
// library. A null handle means metrics are off (node_options::metrics): no counting
// and no clock reads on the command path.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "cairn/command.hpp"
#include "cairn/expected.hpp"
#include "cairn/metrics.hpp"

namespace cairn {

/// One aggregate category's commands and instances.
struct command_metrics {
  metrics::counter& handled;   ///< succeeded (events stored, or none needed)
  metrics::counter& rejected;  ///< the aggregate's decide said no (errc::rejected)
  metrics::counter& conflict;  ///< expected-version mismatch or concurrent writer
  metrics::counter& failed;    ///< any other error (store unavailable, corrupt, ...)
  metrics::histogram& latency; ///< from node::send to the reply, nanoseconds
  metrics::gauge& live;        ///< instances (actors) alive now
  metrics::counter& passivations;
  std::shared_ptr<metrics::registry> owner; // keeps the metrics above alive

  static std::shared_ptr<const command_metrics> make(std::shared_ptr<metrics::registry> r,
                                                     const std::string& category);

  /// Counts one command's outcome; `started` (if set) is when the node took it.
  void record(const expected<command_reply>& outcome,
              std::chrono::steady_clock::time_point started) const noexcept;
};

/// The journal's group commit (append_inbox).
struct journal_metrics {
  metrics::histogram& batch_appends; ///< append requests per store write
  metrics::histogram& batch_events;  ///< events per store write
  std::shared_ptr<metrics::registry> owner;

  static std::shared_ptr<const journal_metrics> make(std::shared_ptr<metrics::registry> r);
};

/// What node::metrics_text() reads: the node's registry, its store, and the actors it
/// asks for their state at scrape time.
struct metrics_sources {
  const metrics::registry& registry;
  const journal& store;
  caf::actor feed; // null once the node is stopped
  std::vector<std::pair<std::string, caf::actor>> projections;
  std::vector<std::pair<std::string, caf::actor>> sagas;
};

/// Renders everything in `from` as Prometheus text (node_metrics_text.cpp).
std::string render_node_metrics(caf::actor_system& sys, const metrics_sources& from);

} // namespace cairn
