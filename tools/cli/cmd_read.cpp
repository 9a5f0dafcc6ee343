// cairn read and cairn tail: print the events of one stream, or the latest ones (and follow).
#include <signal.h>
#include <time.h>

#include <iostream>

#include <cairn/file_journal.hpp>

#include "cli.hpp"
#include "event_json.hpp"

namespace cairn::cli {
namespace {

constexpr const char* read_help = R"(Usage: cairn [--data DIR] read STREAM [--from VERSION] [--json]

Prints the events of one stream in version order: position, version, commit time
(ISO-8601, UTC), type, schema version, metadata and the payload as hex (payloads are
opaque bytes to this tool). An unknown stream is an error (exit 1). Opens the folder
read-only.

Options:
  --from VERSION  start at this version (default 1)
  --json          one JSON line per event, in the format `cairn export` writes
  --data DIR      the data folder (default ./data)
)";

constexpr const char* tail_help = R"(Usage: cairn [--data DIR] tail [--from POSITION | -n COUNT] [--follow] [--json]

Prints the latest events of the whole store in position order (by default the last
10), like `cairn read` prints a stream's. With --follow it keeps printing events a
running node appends (refreshing every 150 ms) until interrupted (Ctrl-C, SIGTERM),
then exits 0. Opens the folder read-only.

Options:
  --from POSITION  start at this global position instead
  -n, --lines N    how many of the latest events to start with (default 10)
  -f, --follow     keep printing new events
  --json           one JSON line per event, in the format `cairn export` writes
  --data DIR       the data folder (default ./data)
)";

constexpr size_t chunk = 1024;
constexpr int poll_interval_ms = 150;

volatile sig_atomic_t stop_requested = 0;
extern "C" void on_stop_signal(int) { stop_requested = 1; }

/// Prints one event in the chosen format.
void print_event(const envelope& e, bool json) {
  if (json)
    std::cout << *event_to_json_line(e, json_fidelity::lossy) << '\n';
  else
    std::cout << format_event_text(e);
}

/// Prints every event from position `next` on and advances `next` past them.
expected<void> print_from(const journal& store, uint64_t& next, bool json) {
  for (;;) {
    if (stop_requested) return {};
    auto events = store.read_all(next, chunk);
    if (!events) return std::move(events).error();
    for (auto& e : *events) {
      print_event(e, json);
      next = e.position + 1;
    }
    std::cout.flush();
    if (events->size() < chunk) return {};
  }
}

/// Sleeps for about `ms`, returning early once a stop signal arrives.
void nap(int ms) {
  for (int slept = 0; slept < ms && !stop_requested; slept += 10) {
    timespec ts{0, 10 * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
}

} // namespace

int run_read(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << read_help;
    return exit_ok;
  }
  bool json = false;
  uint64_t from = 1;
  std::vector<std::string> positional;
  std::string value;
  while (r.next()) {
    if (r.flag("--json"))
      json = true;
    else if (r.option("--from", value))
      from = parse_count(value, "--from");
    else if (r.positional())
      positional.push_back(r.current());
  }
  if (positional.empty()) throw usage_error("which stream? give a STREAM name");
  if (positional.size() > 1)
    throw usage_error("unexpected argument \"" + printable(positional[1]) + "\"");
  auto stream = stream_id::parse(positional[0]);
  if (!stream) throw usage_error(stream.error().message());

  auto store = open_reader(ctx);
  if (!store) return fail("read", store.error().describe());
  auto version = (*store)->stream_version(*stream);
  if (!version) return fail("read", version.error().describe());
  if (*version == 0)
    return fail("read", "stream " + printable(stream->str()) + " not found in " +
                          (ctx.uses_postgres() ? "PostgreSQL schema " + ctx.postgres_schema
                                               : ctx.data_dir));
  for (uint64_t next = std::max<uint64_t>(from, 1); next <= *version;) {
    auto events = (*store)->read_stream(*stream, next, chunk);
    if (!events) return fail("read", events.error().describe());
    if (events->empty()) break;
    for (auto& e : *events) print_event(e, json);
    next = events->back().version + 1;
  }
  std::cout.flush();
  return std::cout ? exit_ok : fail("read", "cannot write the output");
}

int run_tail(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << tail_help;
    return exit_ok;
  }
  bool json = false, follow = false, have_from = false, have_lines = false;
  uint64_t from = 1, lines = 10;
  std::string value;
  while (r.next()) {
    if (r.flag("--json")) {
      json = true;
    } else if (r.flag("--follow") || r.flag("-f")) {
      follow = true;
    } else if (r.option("--from", value)) {
      from = parse_count(value, "--from");
      have_from = true;
    } else if (r.option("--lines", value) || r.option("-n", value)) {
      lines = parse_count(value, "--lines");
      have_lines = true;
    } else if (r.positional()) {
      throw usage_error("unexpected argument \"" + printable(r.current()) + "\"");
    }
  }
  if (have_from && have_lines) throw usage_error("give --from or --lines, not both");

  auto store = open_reader(ctx);
  if (!store) return fail("tail", store.error().describe());
  uint64_t head = (*store)->head_position();
  uint64_t next = have_from ? std::max<uint64_t>(from, 1) : (head > lines ? head - lines + 1 : 1);
  if (!have_from && lines == 0) next = head + 1;

  if (follow) {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a signal cuts the nap short
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  }
  if (auto ok = print_from(**store, next, json); !ok) return fail("tail", ok.error().describe());
  if (!follow) return std::cout ? exit_ok : fail("tail", "cannot write the output");

  // A read-only store sees what was complete when it was opened or last refreshed.
  std::shared_ptr<journal> live = std::move(*store);
  bool warned = false;
  while (!stop_requested) {
    nap(poll_interval_ms);
    if (stop_requested) break;
    // A PostgreSQL store follows other writers' commits itself.
    expected<uint64_t> head_now =
      ctx.uses_postgres() ? expected<uint64_t>(live->head_position()) : refresh_file_journal(*live);
    if (!head_now) {
      // Start over with a fresh open: a node may have been restarting or recovering.
      auto fresh = open_reader(ctx);
      if (fresh) {
        live = std::move(*fresh);
        head_now = live->head_position();
      } else {
        head_now = fresh.error();
      }
    }
    expected<void> printed = head_now ? print_from(*live, next, json)
                                       : expected<void>(head_now.error());
    if (!printed) {
      // Keep trying until interrupted.
      if (!warned) std::cerr << "cairn tail: " << printed.error().describe() << " (retrying)\n";
      warned = true;
      continue;
    }
    if (warned) std::cerr << "cairn tail: the store is readable again\n";
    warned = false;
    if (!std::cout) return fail("tail", "cannot write the output");
  }
  std::cout.flush();
  return exit_ok;
}

} // namespace cairn::cli
