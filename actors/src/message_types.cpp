// Registration of every type that crosses actors, in one place, and the error
// conversions between Cairn and CAF.
#include "message_types.hpp"

#include <thread>

#include <caf/actor_system_config.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

#include "cairn/node_config.hpp"
#include "node_scheduler.hpp"

namespace cairn {

caf::error to_caf(const error& e) {
  return caf::error{static_cast<uint8_t>(e.code()), error_category,
                    caf::make_message(e.message())};
}

error from_caf(const caf::error& e) {
  if (!e) return {};
  if (e.category() == error_category) {
    std::string msg;
    if (e.context().match_elements<std::string>()) msg = e.context().get_as<std::string>(0);
    auto code = e.code();
    if (code == 0 || code > static_cast<uint8_t>(errc::fenced))
      return {errc::unavailable, "unknown cairn error code " + std::to_string(code)};
    return {static_cast<errc>(code), std::move(msg)};
  }
  if (e.category() == caf::atom("system")) {
    auto s = static_cast<caf::sec>(e.code());
    if (s == caf::sec::request_timeout) return {errc::timeout, "no reply in time"};
    return {errc::unavailable, "actor system: " + caf::to_string(s)};
  }
  return {errc::unavailable, "unexpected error category " + caf::to_string(e.category())};
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<stream_id>("cairn.stream_id");
  cfg.add_message_type<metadata>("cairn.metadata");
  cfg.add_message_type<event_data>("cairn.event_data");
  cfg.add_message_type<envelope>("cairn.envelope");
  cfg.add_message_type<std::vector<envelope>>("std::vector<cairn.envelope>");
  cfg.add_message_type<append_request>("cairn.append_request");
  cfg.add_message_type<append_result>("cairn.append_result");
  cfg.add_message_type<command_message>("cairn.command_message");
  cfg.add_message_type<command_reply>("cairn.command_reply");
  cfg.add_error_category(error_category, [](uint8_t code, caf::atom_value,
                                            const caf::message& ctx) -> std::string {
    std::string out = "cairn.";
    out += code <= static_cast<uint8_t>(errc::fenced)
             ? std::string{to_string(static_cast<errc>(code))}
             : std::to_string(code);
    if (ctx.match_elements<std::string>()) out += ": " + ctx.get_as<std::string>(0);
    return out;
  });
}

node_config::node_config() {
  cairn::add_message_types(*this);
  auto cores = std::max(1u, std::thread::hardware_concurrency());
  set("scheduler.max-threads", static_cast<size_t>(cores));
  // Work sharing (one queue, workers woken by a condition variable) beats CAF's work
  // stealing for Cairn's message pattern at every load measured on the bank
  // workload: +30-50% commands/s at 1, 16 and 4,096 clients, and p99/p999 far
  // lower, since idle stealing workers poll and sleep instead of being woken.
  // "cairn" is that design without CAF's per-job logging cost (node_scheduler.hpp);
  // --scheduler.policy=sharing or =stealing picks CAF's own (bench/RESULTS.md).
  set("scheduler.policy", caf::atom("cairn"));
  module_factories.push_back(make_node_scheduler);
  caf::config_option_adder{custom_options_, "cairn"}
    .add(options.log_level, "log-level", "trace|debug|info|warn|error|critical|off")
    .add(options.command_timeout, "command-timeout", "how long a command may take")
    .add(options.query_timeout, "query-timeout", "how long a query waits for its position")
    .add(options.max_commands_in_flight, "max-commands-in-flight",
         "commands the node holds at once; beyond, unavailable (\"overloaded\") (0: no bound)")
    .add(options.aggregates.max_queued_commands, "max-queued-commands",
         "commands one aggregate holds while busy; beyond, \"overloaded\" (0: no bound)")
    .add(options.aggregates.snapshot_every, "snapshot-every",
         "snapshot an aggregate every N events (0: never)")
    .add(options.aggregates.passivate_after, "passivate-after",
         "stop aggregates idle this long (0: never)")
    .add(options.projections.checkpoint_every, "checkpoint-every",
         "checkpoint a projection after N store positions (0: never)")
    .add(options.projections.checkpoint_interval, "checkpoint-interval",
         "checkpoint a projection after this long (0: never)")
    .add(options.feed.ring_events, "feed-ring-events",
         "recent committed events kept in memory for live projections")
    .add(options.feed.batch_events, "feed-batch-events",
         "most events handed to a projection at once")
    .add(options.metrics, "metrics", "count commands, latencies and batch sizes")
    .add(options.store.kind, "store", "event store: file, postgres or memory (open_store)")
    .add(options.store.data, "data", "folder of the file store")
    .add(options.store.file_sync, "file-sync", "file store sync policy: always, interval or never")
    .add(options.store.postgres_url, "postgres-url", "PostgreSQL URL of the postgres store")
    .add(options.store.postgres_schema, "postgres-schema", "schema of the postgres store")
    .add(options.store_read_threads, "store-read-threads",
         "threads for recovery and catch-up reads (0: inline; -1: 4 for a server store)");
}

} // namespace cairn
