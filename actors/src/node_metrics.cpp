#include "node_metrics.hpp"

namespace cairn {

std::shared_ptr<const command_metrics> command_metrics::make(
  std::shared_ptr<metrics::registry> owner, const std::string& category) {
  auto& r = *owner;
  const char* total = "cairn_commands_total";
  const char* total_help = "Commands answered by aggregates, by category and outcome "
                           "(handled, rejected, conflict, failed).";
  auto outcome = [&](const char* o) -> metrics::counter& {
    return r.add_counter(total, total_help, {{"category", category}, {"outcome", o}});
  };
  return std::make_shared<const command_metrics>(command_metrics{
    outcome("handled"), outcome("rejected"), outcome("conflict"), outcome("failed"),
    r.add_histogram("cairn_command_duration_seconds",
                    "Time from the node taking a command to its aggregate's reply.",
                    metrics::buckets::latency(), {{"category", category}}),
    r.add_gauge("cairn_aggregates_live", "Aggregate instances in memory (actors alive).",
                {{"category", category}}),
    r.add_counter("cairn_aggregate_passivations_total",
                  "Aggregate instances stopped after being idle (node_options passivate_after).",
                  {{"category", category}}),
    std::move(owner),
  });
}

void command_metrics::record(const expected<command_reply>& outcome,
                             std::chrono::steady_clock::time_point started) const noexcept {
  if (outcome) handled.add();
  else if (is_rejected(outcome.error())) rejected.add();
  else if (is_conflict(outcome.error())) conflict.add();
  else failed.add();
  if (started != std::chrono::steady_clock::time_point{}) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - started).count();
    latency.observe(ns > 0 ? static_cast<uint64_t>(ns) : 0);
  }
}

std::shared_ptr<const journal_metrics> journal_metrics::make(
  std::shared_ptr<metrics::registry> owner) {
  auto& r = *owner;
  return std::make_shared<const journal_metrics>(journal_metrics{
    r.add_histogram("cairn_journal_batch_appends",
                    "Append requests group-committed per store write.", metrics::buckets::sizes()),
    r.add_histogram("cairn_journal_batch_events", "Events per store write.",
                    metrics::buckets::sizes()),
    std::move(owner),
  });
}

} // namespace cairn
