// cairn sagas: saga dead letters in a data folder or a PostgreSQL store. `failed` lists
// the parked instances and the parked input events; `retry` and `close` record an
// operator's answer, which the node carries out when it next starts (saga_admin.hpp).
#include <iostream>

#include <nlohmann/json.hpp>

#include <cairn/saga_admin.hpp>

#include "cli.hpp"

namespace cairn::cli {
namespace {

constexpr const char* sagas_help = R"(Usage: cairn [--data DIR] sagas failed [--saga NAME] [--json]
       cairn [--data DIR] sagas retry SAGA (KEY | --event POSITION)
       cairn [--data DIR] sagas close SAGA (KEY | --event POSITION) [--reason TEXT]

Saga instances whose decision could not be carried out (a handler or apply threw, a
compensation decided an invalid command, an event could not be stored) are parked:
they wait, durably, for an operator. So are input events the saga could hand to no
instance (its correlate threw, the event does not decode or upcast for it, the
instance it routes to cannot be loaded): the saga goes on with the others.

  failed   lists the parked instances: saga, key, error code, reason, the inputs
           held for the retry and the commands pending; then the parked events:
           saga, @position, error code, reason, and the event's stream and type.
           Reads only; works beside a running node (a running node also answers
           node::parked_sagas and node::parked_saga_events).
  retry    asks for instance KEY of saga SAGA to be tried again once the cause is
           fixed: the node retries it when it next starts (it processes the held
           inputs and re-sends its pending commands). A running node does this at
           once through node::retry_saga.
  close    closes the instance for good (it counts as finished; its pending commands
           and held inputs are abandoned); node::close_saga on a running node.
  --event POSITION  (with retry or close) the parked event at POSITION instead of an
           instance: a retry routes it again when the node starts and hands it to
           its instance; close discards it (node::retry_saga_event, close_saga_event).

retry and close need the folder's writer lock: stop the node first. On PostgreSQL
(--postgres-url) there is no lock: stop every node that runs the saga on that schema
yourself first. A running node keeps its parked instances in memory and sees the
answer only when it next starts; if it writes to the instance meanwhile (an input
arrives for it), it parks it again and the answer is undone. The tool's own write
cannot damage the store (it appends with the stream's expected version, and fails
with "conflict" if the stream changed). To answer while nodes run, use the node
(node::retry_saga, close_saga, retry_saga_event, close_saga_event).

Options:
  --saga NAME    list only this saga's instances
  --json         one JSON object per line
  --event POSITION  retry or close the parked event at POSITION (see above)
  --reason TEXT  why it was closed (stored with it; default "closed by an operator")
  --data DIR     the data folder (default ./data)
  --postgres-url URL  the PostgreSQL store instead (before the subcommand; see cairn --help)
)";

int list_failed(context& ctx, const std::string& saga, bool json) {
  auto store = open_reader(ctx);
  if (!store) return fail("sagas", store.error().describe());
  auto parked = find_parked_sagas(**store, saga);
  if (!parked) return fail("sagas", parked.error().describe());
  auto events = find_parked_saga_events(**store, saga);
  if (!events) return fail("sagas", events.error().describe());
  for (auto& p : *parked) {
    if (json) {
      nlohmann::ordered_json line{{"saga", p.saga},
                                  {"key", p.key},
                                  {"code", std::string{to_string(p.code)}},
                                  {"reason", p.reason},
                                  {"held", p.held},
                                  {"pending_steps", p.pending_steps},
                                  {"retry_requested", p.retry_requested},
                                  {"parked_at", format_time(p.parked_at_ns)}};
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else {
      std::cout << printable(p.saga) << '\t' << printable(p.key) << '\t' << to_string(p.code)
                << '\t' << printable(p.reason) << '\n';
      std::cout << "  parked at " << format_time(p.parked_at_ns) << ", " << p.held.size()
                << " held input(s), " << p.pending_steps << " pending step(s)"
                << (p.retry_requested ? ", retry requested" : "") << '\n';
    }
  }
  for (auto& p : *events) {
    if (json) {
      nlohmann::ordered_json line{{"saga", p.saga},
                                  {"event_position", p.position},
                                  {"stream", p.stream},
                                  {"type", p.type},
                                  {"code", std::string{to_string(p.code)}},
                                  {"reason", p.reason},
                                  {"retry_requested", p.retry_requested},
                                  {"parked_at", format_time(p.parked_at_ns)}};
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else {
      std::cout << printable(p.saga) << "\t@" << p.position << '\t' << to_string(p.code) << '\t'
                << printable(p.reason) << '\n';
      std::cout << "  event " << printable(p.stream) << ' ' << printable(p.type) << ", parked at "
                << format_time(p.parked_at_ns) << (p.retry_requested ? ", retry requested" : "")
                << '\n';
    }
  }
  if (!json) {
    std::cout << parked->size() << (parked->size() == 1 ? " parked instance" : " parked instances");
    if (!events->empty())
      std::cout << ", " << events->size() << (events->size() == 1 ? " parked event" : " parked events");
    std::cout << '\n';
  }
  std::cout.flush();
  return std::cout ? exit_ok : fail("sagas", "cannot write the output");
}

/// `key` names an instance; or, if `event` is set, the parked event at `position`.
int answer(context& ctx, bool close, const std::string& saga, const std::string& key,
           bool event, uint64_t position, const std::string& reason) {
  std::shared_ptr<journal> store;
  if (ctx.uses_postgres()) {
    auto opened = open_postgres_writer(ctx);
    if (!opened) return fail("sagas", opened.error().describe());
    store = std::move(*opened);
  } else {
    if (auto ok = require_data_dir(ctx); !ok) return fail("sagas", ok.error().describe());
    auto opened = open_file_journal(ctx.data_dir, store_options(false));
    if (!opened) {
      std::string hint = is_unavailable(opened.error())
                           ? " (sagas " + std::string{close ? "close" : "retry"} +
                               " needs the folder's writer lock: stop the node first)"
                           : "";
      return fail("sagas", "cannot open " + ctx.data_dir + " for writing: " +
                             opened.error().describe() + hint);
    }
    store = std::move(*opened);
  }
  expected<void> ok;
  if (event)
    ok = close ? close_parked_saga_event(*store, saga, position, reason)
               : request_saga_event_retry(*store, saga, position, "cairn sagas retry");
  else
    ok = close ? close_parked_saga(*store, saga, key, reason)
               : request_saga_retry(*store, saga, key, "cairn sagas retry");
  if (!ok)
    return fail("sagas", ok.error().describe() +
                           (is_conflict(ok.error())
                              ? " (it changed meanwhile: is a node running it? see --help)"
                              : ""));
  std::cout << (close ? "closed " : "retry requested for ") << printable(saga) << ' '
            << (event ? "event @" + std::to_string(position) : printable(key))
            << (close ? "\n" : "; the node retries it when it next starts\n");
  return exit_ok;
}

} // namespace

int run_sagas(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << sagas_help;
    return exit_ok;
  }
  std::vector<std::string> positional;
  std::string saga, value, reason = "closed by an operator";
  bool json = false, event = false;
  uint64_t position = 0;
  while (r.next()) {
    if (r.flag("--json")) json = true;
    else if (r.option("--event", value)) {
      event = true;
      position = parse_count(value, "--event");
    }
    else if (r.option("--saga", value)) saga = value;
    else if (r.option("--reason", value)) reason = value;
    else if (r.positional()) positional.push_back(r.current());
  }
  if (positional.empty()) throw usage_error("which action? failed, retry or close");
  auto& action = positional[0];
  if (action == "failed") {
    if (event) throw usage_error("--event goes with retry and close");
    if (positional.size() > 1)
      throw usage_error("unexpected argument \"" + printable(positional[1]) + "\"");
    return list_failed(ctx, saga, json);
  }
  if (action != "retry" && action != "close")
    throw usage_error("unknown action \"" + printable(action) + "\": failed, retry or close");
  if (positional.size() != (event ? 2u : 3u))
    throw usage_error(action + " needs SAGA and either KEY or --event POSITION");
  if (json || !saga.empty()) throw usage_error("--json and --saga go with `failed`");
  return answer(ctx, action == "close", positional[1], event ? std::string{} : positional[2],
                event, position, reason);
}

} // namespace cairn::cli
