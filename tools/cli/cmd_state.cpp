// cairn state: an aggregate's state as of a stream version or a commit time, rebuilt by
// replaying its events with the aggregate type the program registered.
#include <iostream>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include <cairn/cli_tool.hpp>

#include "cli.hpp"

namespace cairn::cli {
namespace {

constexpr const char* state_help = R"(Usage: cairn [--data DIR] state STREAM [--version N | --at TIME]

Prints the state of one aggregate as a JSON line, rebuilt by replaying the stream's
events (upcasting old ones) up to event N, or up to the last event committed at or
before TIME; with neither, up to the latest event:

  {"stream":"account-42","version":3,"timestamp_ns":1714557600123456789,
   "time":"2024-05-01T10:00:00.123456789Z","state":{"balance":130,"is_open":true}}

"version" and "time" say which event the state is after (null for the initial
state). The tool must know the stream's aggregate type: the stock `cairn` knows none,
so `state` needs a program that registers its types and calls cairn::cli::run (the
bank sample's bank_cli). An unknown stream, or a version beyond the stream's, is an
error (exit 1). Opens the folder read-only.

Options:
  --version N   the state after the stream's event N (0: the initial state)
  --at TIME     the state as of TIME: UTC, e.g. 2024-05-01T10:00:00Z or with up to 9
                fractional digits, or nanoseconds since the Unix epoch (as
                `read --json` prints them); before the first event, the initial state
  --data DIR    the data folder (default ./data)
)";

std::string known_types(const registry& types) {
  std::string out;
  for (auto& category : types.categories()) out += (out.empty() ? "" : ", ") + category;
  return out;
}

} // namespace

int run_state(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << state_help << "\nAggregate types in this program: "
              << (ctx.types->empty() ? std::string{"none"} : known_types(*ctx.types)) << '\n';
    return exit_ok;
  }
  std::optional<uint64_t> version;
  std::optional<int64_t> at;
  std::vector<std::string> positional;
  std::string value;
  while (r.next()) {
    if (r.option("--version", value))
      version = parse_count(value, "--version");
    else if (r.option("--at", value))
      at = parse_time(value, "--at");
    else if (r.positional())
      positional.push_back(r.current());
  }
  if (positional.empty()) throw usage_error("which stream? give a STREAM name");
  if (positional.size() > 1)
    throw usage_error("unexpected argument \"" + printable(positional[1]) + "\"");
  if (version && at) throw usage_error("give --version or --at, not both");
  if (version == std::numeric_limits<uint64_t>::max())
    throw usage_error("--version value " + std::to_string(*version) + " is too large");
  auto stream = stream_id::parse(positional[0]);
  if (!stream) throw usage_error(stream.error().message());

  if (ctx.types->empty())
    return fail("state", "no aggregate types are registered in this program, so it cannot "
                         "rebuild a state; use a program that registers them with "
                         "cairn::cli::registry (like the bank sample's bank_cli)");
  auto replay = ctx.types->find(stream->category);
  if (!replay)
    return fail("state", "no aggregate type is registered for category \"" +
                           printable(stream->category) + "\" (this program knows: " +
                           known_types(*ctx.types) + ")");
  auto store = open_reader(ctx);
  if (!store) return fail("state", store.error().describe());
  auto past = (*replay)(**store, stream->id,
                        version.value_or(std::numeric_limits<uint64_t>::max()),
                        at.value_or(std::numeric_limits<int64_t>::max()));
  if (!past) return fail("state", past.error().describe());

  nlohmann::ordered_json out{{"stream", stream->str()},
                             {"version", past->version},
                             {"timestamp_ns", nullptr},
                             {"time", nullptr}};
  if (past->version > 0) {
    out["timestamp_ns"] = past->timestamp_ns;
    out["time"] = format_time(past->timestamp_ns);
  }
  out["state"] = nlohmann::ordered_json(past->state);
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  std::cout.flush();
  return std::cout ? exit_ok : fail("state", "cannot write the output");
}

} // namespace cairn::cli
