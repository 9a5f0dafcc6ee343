// cairn export: writes the store's events as JSON lines, one event per line.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cli.hpp"
#include "event_json.hpp"

namespace cairn::cli {
namespace {

constexpr const char* export_help = R"(Usage: cairn [--data DIR] export [--from POSITION] [--output FILE]

Writes every event (from POSITION on, default 1) in position order as JSON lines,
one event per line:

  {"position":1,"stream":"account-1","version":1,"type":"opened","schema_version":1,
   "timestamp_ns":1714557600123456789,"time":"2024-05-01T10:00:00.123456789Z",
   "metadata":{"correlation_id":"...","causation_id":"...","entries":{"user":"ann"}},
   "payload_base64":"AQNhbm4="}

(one line each; wrapped here). Payloads are the events' binary encoding
(docs/encoding.md) in base64. `cairn import` reads this format back. Stream names,
types and metadata must be valid UTF-8 and metadata keys distinct, or the export
fails naming the event. Opens the folder read-only: it exports what was committed
when it started.

Options:
  --from POSITION  start at this global position (default 1)
  --output FILE    write to FILE (replaced only once the export succeeds) instead of stdout
  --data DIR       the data folder (default ./data)
)";

constexpr size_t chunk = 1024;

} // namespace

int run_export(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << export_help;
    return exit_ok;
  }
  uint64_t from = 1;
  std::string output, value;
  while (r.next()) {
    if (r.option("--from", value))
      from = parse_count(value, "--from");
    else if (r.option("--output", value) || r.option("-o", value))
      output = value;
    else if (r.positional())
      throw usage_error("unexpected argument \"" + printable(r.current()) + "\"");
  }

  auto store = open_reader(ctx);
  if (!store) return fail("export", store.error().describe());

  // To a file: write a temporary beside it and rename on success, so a failed export
  // never leaves a truncated file that looks complete.
  std::ofstream file;
  std::string temp;
  if (!output.empty() && output != "-") {
    temp = output + ".partial";
    file.open(temp, std::ios::binary | std::ios::trunc);
    if (!file) return fail("export", "cannot create " + temp + ": " + std::strerror(errno));
  }
  std::ostream& out = file.is_open() ? static_cast<std::ostream&>(file) : std::cout;
  auto abandon = [&](const std::string& message) {
    if (!temp.empty()) { // also after a failed close or rename
      if (file.is_open()) file.close();
      std::remove(temp.c_str());
    }
    return fail("export", message);
  };

  uint64_t head = (*store)->head_position();
  uint64_t next = std::max<uint64_t>(from, 1);
  uint64_t count = 0;
  while (next <= head) {
    auto events = (*store)->read_all(next, chunk);
    if (!events) return abandon(events.error().describe());
    if (events->empty()) break;
    for (auto& e : *events) {
      auto line = event_to_json_line(e, json_fidelity::exact);
      if (!line) return abandon(line.error().message());
      out << *line << '\n';
      ++count;
    }
    next = events->back().position + 1;
    if (!out) return abandon("cannot write the output");
  }
  out.flush();
  if (!out) return abandon("cannot write the output");
  if (file.is_open()) {
    file.close();
    if (!file) return abandon("cannot write " + temp);
    if (std::rename(temp.c_str(), output.c_str()) != 0)
      return abandon("cannot rename " + temp + " to " + output + ": " + std::strerror(errno));
    std::cerr << "cairn export: wrote " << count << (count == 1 ? " event" : " events") << " to "
              << output << '\n';
  }
  return exit_ok;
}

} // namespace cairn::cli
