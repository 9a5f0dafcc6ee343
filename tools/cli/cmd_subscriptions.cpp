// cairn subscriptions: event subscriptions' dead letters in a node's data folder (the
// snapshot store beside its events) or in a PostgreSQL store's snapshots table. `failed`
// lists the parked events; `retry` asks for them to be retried when the node next starts
// the subscription; `discard` drops one (subscription_admin.hpp).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include <cairn/subscription_admin.hpp>

#include "cli.hpp"

namespace cairn::cli {
namespace {

constexpr const char* subscriptions_help = R"(Usage: cairn [--data DIR] subscriptions failed [--name NAME] [--json] [--snapshots DIR]
       cairn [--data DIR] subscriptions retry NAME [POSITION] [--snapshots DIR]
       cairn [--data DIR] subscriptions discard NAME POSITION [--snapshots DIR]

An event subscription (node::subscribe_events) whose handler keeps failing on an
event parks it after max_attempts, with what the handler threw, and goes on with the
next events. The node keeps the parked events in its snapshot store.

  failed   lists the parked events: subscription, position, stream, type, attempts
           and the handler's last error. Reads only; works beside a running node (a
           running node also answers node::parked_events).
  retry    asks for the parked event at POSITION (every parked event of NAME if no
           POSITION is given) to be retried once the handler is fixed: the node calls
           the handler again when it next starts the subscription; those that still
           fail stay parked. node::retry_parked_events does it on a running node.
  discard  drops the parked event at POSITION for good (node::discard_parked_event).

retry and discard need the data folder's writer lock: stop the node first (a running
node keeps its own copy of the list and would write it back).

With --postgres-url the parked events are read from and answered in the snapshots
table of the PostgreSQL schema. There is no lock there: stop every node that runs
the subscription on that schema yourself before retry or discard. A running node
writes its whole list back when it parks or retries an event, which brings a
discarded event back or loses one it parked while the tool wrote; it reads retry
requests only when it starts the subscription. To answer while nodes run, use the
node (node::retry_parked_events, discard_parked_event). `failed` is safe beside
running nodes.

Options:
  --name NAME      list only this subscription's events
  --json           one JSON object per line
  --snapshots DIR  the node's snapshot folder (default: snapshots/ beside the events/
                   folder of --data)
  --data DIR       the data folder (default ./data)
  --postgres-url URL  the PostgreSQL store instead (before the subcommand; see cairn --help)
)";

/// The snapshot folder of a node whose events are in `ctx.data_dir`.
std::string snapshot_folder(const context& ctx, const std::string& given) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  fs::path events{ctx.data_dir};
  if (events.filename().empty()) events = events.parent_path();
  if (ctx.data_dir != ctx.data_given || events.filename() == "events")
    return (events.parent_path() / "snapshots").string();
  return (events / "snapshots").string();
}

/// The parked events in the snapshot folder `dir`, or in the PostgreSQL store.
expected<std::vector<parked_subscription>> find_parked(const context& ctx, const std::string& dir) {
  if (ctx.uses_postgres()) {
    auto snaps = read_postgres_snapshot_list(ctx, subscription_admin_prefix());
    if (!snaps) return std::move(snaps).error();
    return find_parked_subscriptions(*snaps);
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return error{errc::unavailable,
                 "no snapshot folder " + dir + " (choose it with --snapshots DIR)"};
  return find_parked_subscriptions(dir);
}

int list_failed(const context& ctx, const std::string& dir, const std::string& name, bool json) {
  auto subs = find_parked(ctx, dir);
  if (!subs) return fail("subscriptions", subs.error().describe());
  size_t count = 0;
  for (auto& sub : *subs) {
    if (!name.empty() && sub.name != name) continue;
    for (auto& p : sub.parked) {
      ++count;
      bool requested = std::find(sub.retry_requested.begin(), sub.retry_requested.end(),
                                 p.position) != sub.retry_requested.end();
      if (json) {
        nlohmann::ordered_json line{{"subscription", sub.name}, {"position", p.position},
                                    {"stream", p.stream},       {"type", p.type},
                                    {"attempts", p.attempts},   {"reason", p.reason},
                                    {"retry_requested", requested}};
        std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      } else {
        std::cout << printable(sub.name) << '\t' << p.position << '\t' << printable(p.stream)
                  << '\t' << printable(p.type) << '\t' << printable(p.reason) << '\n';
        std::cout << "  " << p.attempts << " attempt(s)" << (requested ? ", retry requested" : "")
                  << '\n';
      }
    }
  }
  if (!json) std::cout << count << (count == 1 ? " parked event\n" : " parked events\n");
  std::cout.flush();
  return std::cout ? exit_ok : fail("subscriptions", "cannot write the output");
}

/// The snapshot store to answer in: the PostgreSQL store's, or the folder `dir` while
/// `lock` holds the events folder's writer lock (so no node runs there meanwhile).
expected<std::shared_ptr<snapshot_store>> open_for_answer(const context& ctx,
                                                          const std::string& dir, bool discard,
                                                          std::shared_ptr<journal>& lock) {
  if (ctx.uses_postgres()) return open_postgres_snapshots(ctx);
  if (auto ok = require_data_dir(ctx); !ok) return std::move(ok).error();
  // The events folder's writer lock is the node's: holding it, no node runs here.
  auto opened = open_file_journal(ctx.data_dir, store_options(false));
  if (!opened) {
    std::string hint = is_unavailable(opened.error())
                         ? " (subscriptions " + std::string{discard ? "discard" : "retry"} +
                             " needs the folder's writer lock: stop the node first)"
                         : "";
    return error{opened.error().code(), "cannot open " + ctx.data_dir + " for writing: " +
                                          opened.error().message() + hint};
  }
  lock = std::move(*opened);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return error{errc::unavailable,
                 "no snapshot folder " + dir + " (choose it with --snapshots DIR)"};
  return open_file_snapshot_store(dir);
}

int answer(context& ctx, const std::string& dir, bool discard, const std::string& name,
           std::optional<uint64_t> position) {
  std::shared_ptr<journal> lock;
  auto store = open_for_answer(ctx, dir, discard, lock);
  if (!store) return fail("subscriptions", store.error().describe());
  auto ok = discard ? discard_parked_event(**store, name, *position)
                    : request_parked_event_retry(**store, name, position);
  if (!ok) return fail("subscriptions", ok.error().describe());
  std::string which = position ? "the parked event at position " + std::to_string(*position)
                               : "every parked event";
  if (discard) std::cout << "discarded " << which << " of " << printable(name) << '\n';
  else
    std::cout << "retry requested for " << which << " of " << printable(name)
              << "; the node retries when it next starts the subscription\n";
  return exit_ok;
}

} // namespace

int run_subscriptions(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << subscriptions_help;
    return exit_ok;
  }
  std::vector<std::string> positional;
  std::string name, value, snapshots;
  bool json = false;
  while (r.next()) {
    if (r.flag("--json")) json = true;
    else if (r.option("--name", value)) name = value;
    else if (r.option("--snapshots", value)) snapshots = value;
    else if (r.positional()) positional.push_back(r.current());
  }
  if (positional.empty()) throw usage_error("which action? failed, retry or discard");
  auto& action = positional[0];
  if (ctx.uses_postgres() && !snapshots.empty())
    throw usage_error("--snapshots names a folder: with --postgres-url the parked events are in "
                      "the PostgreSQL schema");
  auto dir = snapshot_folder(ctx, snapshots);
  if (action == "failed") {
    if (positional.size() > 1)
      throw usage_error("unexpected argument \"" + printable(positional[1]) + "\"");
    return list_failed(ctx, dir, name, json);
  }
  if (action != "retry" && action != "discard")
    throw usage_error("unknown action \"" + printable(action) + "\": failed, retry or discard");
  if (json || !name.empty()) throw usage_error("--json and --name go with `failed`");
  bool discard = action == "discard";
  if (positional.size() < 2 || positional.size() > 3 || (discard && positional.size() != 3))
    throw usage_error(action + (discard ? " needs NAME and POSITION" : " needs NAME [POSITION]"));
  std::optional<uint64_t> position;
  if (positional.size() == 3) position = parse_count(positional[2], "POSITION");
  return answer(ctx, dir, discard, positional[1], position);
}

} // namespace cairn::cli
