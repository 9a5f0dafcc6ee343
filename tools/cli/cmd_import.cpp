// cairn import: appends events from JSON lines, validating the whole input before writing.
#include <fstream>
#include <iostream>
#include <map>

#include <cairn/file_journal.hpp>

#include "cli.hpp"
#include "event_json.hpp"

namespace cairn::cli {
namespace {

constexpr const char* import_help = R"(Usage: cairn [--data DIR] import FILE|- [--append] [--no-imported-timestamp] [--dry-run]

Appends the events of a JSON-lines file (or standard input, "-") to the store, in the
format `cairn export` writes: the migration path into Cairn. Per line:

  stream          required, "<category>-<id>"
  type            required, non-empty
  payload_base64  required: the payload's binary encoding (docs/encoding.md) in base64.
                  A JSON "payload" object is not accepted: encoding it needs the
                  event type's schema, which this generic tool does not have.
  schema_version  optional, default 1
  metadata        optional {"correlation_id","causation_id","entries":{key: string}}
  timestamp_ns    optional: the store stamps its own commit time, so the original is
                  kept as metadata entry "imported_timestamp_ns" (unless that entry is
                  already there, or --no-imported-timestamp is given)
  position, version, time
                  optional and ignored: the store assigns them

Blank lines are skipped; other keys are errors. The whole input is checked first: any
bad line is reported with its number and reason, nothing is appended, and the exit
code is 1. Events are then appended in input order, per stream with an expected-version
check, in batches. Streams must not exist in the store yet unless --append is given, so
importing the same file twice fails instead of duplicating events.

Import needs the folder's writer lock (created if missing): it fails while a node has
the folder open. The whole input is held in memory.

Options:
  --append                  allow adding to streams that already have events
  --no-imported-timestamp   do not keep timestamp_ns in metadata
  --dry-run                 check the input (and the target streams) but append nothing
  --data DIR                the data folder (default ./data)
)";

constexpr size_t max_batch_events = 1000;
constexpr size_t max_batch_bytes = 4u << 20;
constexpr size_t max_reported_errors = 20;

} // namespace

int run_import(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << import_help;
    return exit_ok;
  }
  bool allow_append = false, keep_timestamp = true, dry_run = false;
  std::vector<std::string> positional;
  while (r.next()) {
    if (r.flag("--append"))
      allow_append = true;
    else if (r.flag("--no-imported-timestamp"))
      keep_timestamp = false;
    else if (r.flag("--dry-run"))
      dry_run = true;
    else if (r.positional())
      positional.push_back(r.current());
  }
  if (positional.empty()) throw usage_error("which file? give FILE, or - for standard input");
  if (positional.size() > 1)
    throw usage_error("unexpected argument \"" + printable(positional[1]) + "\"");
  const std::string& source = positional[0];

  // 1. Read and check every line before touching the store.
  std::ifstream file;
  if (source != "-") {
    file.open(source, std::ios::binary);
    if (!file) return fail("import", "cannot open " + source);
  }
  std::istream& in = source == "-" ? std::cin : file;
  std::vector<import_event> events;
  size_t errors = 0, line_number = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto bad = [&](const std::string& why) {
      if (++errors <= max_reported_errors)
        std::cerr << "cairn import: line " << line_number << ": " << why << '\n';
    };
    if (line.find('\0') != std::string::npos) { // the JSON parser would stop there
      bad("contains a NUL byte");
      continue;
    }
    auto parsed = parse_import_line(line, keep_timestamp);
    if (!parsed) {
      bad(parsed.error().message());
      continue;
    }
    // The store's own limit (payload included), checked here so that nothing is
    // written if one is over it.
    auto bytes = file_journal_event_bytes(parsed->stream, parsed->data);
    if (bytes > file_journal_max_event_bytes) {
      bad("the event takes " + std::to_string(bytes) +
          " bytes in the store, over its limit of " +
          std::to_string(file_journal_max_event_bytes) + " (64 MiB)");
      continue;
    }
    parsed->line = line_number;
    if (errors == 0) events.push_back(std::move(*parsed));
  }
  if (in.bad()) return fail("import", "cannot read " + source);
  if (errors > 0) {
    if (errors > max_reported_errors)
      std::cerr << "cairn import: ... and " << errors - max_reported_errors << " more bad lines\n";
    return fail("import", std::to_string(errors) + (errors == 1 ? " bad line" : " bad lines") +
                            " in " + source + "; nothing was imported");
  }

  if (ctx.uses_postgres())
    return fail("import", "importing into a PostgreSQL store is not supported yet: "
                          "import into a file store (--data DIR)");

  // 2. Take the writer lock and check the target streams.
  if (dry_run) {
    if (auto ok = require_data_dir(ctx); !ok) {
      std::cout << "dry run: " << events.size() << " events are valid; " << ctx.data_dir
                << " does not exist yet and would be created\n";
      return exit_ok;
    }
  }
  auto opened = open_file_journal(ctx.data_dir, store_options(dry_run));
  if (!opened) {
    std::string hint = is_unavailable(opened.error())
                         ? " (import needs the folder's writer lock: stop any node using it)"
                         : "";
    return fail("import", "cannot open " + ctx.data_dir + " for writing: " +
                            opened.error().describe() + hint);
  }
  auto& store = **opened;
  std::map<std::string, uint64_t> versions; // stream name -> current version
  for (auto& e : events) {
    auto name = e.stream.str();
    if (versions.count(name)) continue;
    auto v = store.stream_version(e.stream);
    if (!v) return fail("import", v.error().describe());
    if (*v > 0 && !allow_append)
      return fail("import", "stream " + printable(name) + " already has " + std::to_string(*v) +
                              " events in " + ctx.data_dir +
                              "; nothing was imported (give --append to add to existing streams)");
    versions[name] = *v;
  }
  if (dry_run) {
    std::cout << "dry run: " << events.size() << " events for " << versions.size()
              << " streams are valid and can be imported\n";
    return exit_ok;
  }

  // 3. Append in input order: consecutive events of one stream form one request with
  // an expected-version check; a batch holds many requests (a later request in a batch
  // sees the earlier ones), so the store commits them with few durable writes.
  uint64_t imported = 0, first_position = 0, last_position = 0;
  size_t i = 0;
  while (i < events.size()) {
    size_t batch_first_line = events[i].line;
    std::vector<append_request> batch;
    size_t batch_events = 0, batch_bytes = 0;
    while (i < events.size() && batch_events < max_batch_events && batch_bytes < max_batch_bytes) {
      auto& e = events[i];
      auto name = e.stream.str();
      if (batch.empty() || batch.back().stream != e.stream) {
        uint64_t& v = versions[name];
        batch.push_back(append_request{e.stream, v, {}});
      }
      versions[name] += 1;
      batch_bytes += file_journal_event_bytes(e.stream, e.data);
      batch.back().events.push_back(std::move(e.data));
      ++batch_events;
      ++i;
    }
    std::vector<std::string> names;
    for (auto& request : batch) names.push_back(request.stream.str());
    auto results = store.append(std::move(batch));
    std::string failure;
    if (results.size() != names.size())
      failure = "the store answered " + std::to_string(results.size()) +
                " results for a batch of " + std::to_string(names.size());
    size_t stored_in_batch = 0;
    for (size_t k = 0; k < results.size(); ++k) {
      if (!results[k]) {
        if (failure.empty())
          failure = "appending to stream " + printable(names[k]) +
                    " failed: " + results[k].error().describe();
        continue;
      }
      ++stored_in_batch;
      auto& result = *results[k];
      imported += result.last_version - result.first_version + 1;
      if (first_position == 0) first_position = result.first_position;
      last_position = result.last_position;
    }
    if (!failure.empty()) {
      // A write that fails, fails its whole batch: what is stored is then exactly the
      // lines before it, and the rest can be imported from there with --append.
      std::string stored =
        stored_in_batch == 0
          ? "the events of the lines before line " + std::to_string(batch_first_line) +
              " are stored (" + std::to_string(imported) + " of " +
              std::to_string(events.size()) + "), none from there on"
          : std::to_string(imported) + " of " + std::to_string(events.size()) +
              " events were imported, some of them from line " +
              std::to_string(batch_first_line) + " on: compare with `cairn export`";
      return fail("import", failure + "; " + stored);
    }
  }
  std::cout << "imported " << imported << (imported == 1 ? " event" : " events") << " into "
            << versions.size() << (versions.size() == 1 ? " stream" : " streams");
  if (imported > 0) std::cout << " (positions " << first_position << " to " << last_position << ")";
  std::cout << '\n';
  return exit_ok;
}

} // namespace cairn::cli
