// cairn streams and cairn stats: what a data folder holds.
#include <algorithm>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include <cairn/file_journal.hpp>

#include "cli.hpp"

namespace cairn::cli {
namespace {

constexpr const char* streams_help = R"(Usage: cairn [--data DIR] streams [--json]

Lists every stream that has events, sorted by name, one per line: the name, a tab,
and the stream's version (its number of events). Opens the folder read-only.

Options:
  --json      one JSON object per line: {"stream":"account-1","version":3}
  --data DIR  the data folder (default ./data)
)";

constexpr const char* stats_help = R"(Usage: cairn [--data DIR] stats [--json]

Shows the number of events, streams and segment files, the bytes in segment files,
the head position and the times of the first and last event. Works beside a running
node (reads only).

Options:
  --json      one JSON object instead of text
  --data DIR  the data folder (default ./data)
)";

/// Reads the arguments of a subcommand whose only option is --json: the flag's
/// value, or nullopt once `help` was printed for --help.
std::optional<bool> read_json_flag(context& ctx, std::vector<std::string> args,
                                   const char* help) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << help;
    return std::nullopt;
  }
  bool json = false;
  while (r.next()) {
    if (r.flag("--json"))
      json = true;
    else if (r.positional())
      throw usage_error("unexpected argument \"" + printable(r.current()) + "\"");
  }
  return json;
}

} // namespace

int run_streams(context& ctx, std::vector<std::string> args) {
  auto json_flag = read_json_flag(ctx, std::move(args), streams_help);
  if (!json_flag) return exit_ok;
  bool json = *json_flag;
  auto store = open_reader(ctx);
  if (!store) return fail("streams", store.error().describe());
  auto streams = (*store)->list_streams();
  if (!streams) return fail("streams", streams.error().describe());
  std::vector<std::pair<std::string, uint64_t>> rows;
  rows.reserve(streams->size());
  for (auto& s : *streams) {
    auto version = (*store)->stream_version(s);
    if (!version) return fail("streams", version.error().describe());
    rows.emplace_back(s.str(), *version);
  }
  std::sort(rows.begin(), rows.end());
  for (auto& [name, version] : rows) {
    if (json)
      std::cout << nlohmann::ordered_json{{"stream", name}, {"version", version}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace)
                << '\n';
    else
      std::cout << printable(name) << '\t' << version << '\n';
  }
  std::cout.flush();
  return std::cout ? exit_ok : fail("streams", "cannot write the output");
}

int run_stats(context& ctx, std::vector<std::string> args) {
  auto json_flag = read_json_flag(ctx, std::move(args), stats_help);
  if (!json_flag) return exit_ok;
  bool json = *json_flag;
  if (ctx.uses_postgres()) return run_postgres_stats(ctx, json);
  if (auto ok = require_data_dir(ctx); !ok) return fail("stats", ok.error().describe());
  auto stats = file_journal_statistics(ctx.data_dir);
  if (!stats) return fail("stats", stats.error().describe());
  const auto& s = *stats;
  return print_stats({{"events", s.events},
                      {"streams", s.streams},
                      {"segments", s.segments},
                      {"bytes", s.bytes},
                      {"head position", s.head_position}},
                     s.events, s.first_timestamp_ns, s.last_timestamp_ns, json);
}

} // namespace cairn::cli
