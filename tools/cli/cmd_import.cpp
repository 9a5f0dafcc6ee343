// cairn import: appends events from JSON lines. The input is read twice, in bounded
// memory: every line is checked first (against the store too), and only then written.
#include <filesystem>
#include <iostream>

#include <cairn/file_journal.hpp>

#include "cli.hpp"
#include "event_json.hpp"
#include "import_input.hpp"
#include "import_plan.hpp"

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
  version         optional: the event's place in its stream (1, 2, ...)
  schema_version  optional, default 1
  metadata        optional {"correlation_id","causation_id","entries":{key: string}}
  timestamp_ns    optional: the store stamps its own commit time, so the original is
                  kept as metadata entry "imported_timestamp_ns" (unless that entry is
                  already there, or --no-imported-timestamp is given)
  position, time  optional and ignored: the store assigns them

A line with a version already in the store must be the stored event (same type,
schema, metadata and payload): it is skipped, so importing an export again, or one
that overlaps the store, adds only what is missing. A different event there is a
conflict. A stream's lines must have consecutive versions, and the first must not
leave a gap after the stored events. A line without a version is appended after
its stream's previous line; the first one of a stream that already has events needs
--append.

Blank lines are skipped; other keys are errors. The whole input is checked first:
any bad line is reported with its number and reason, nothing is appended, and the
exit code is 1. Then events are appended in input order, in batches. The input is
read twice and never held in memory (standard input is copied to a temporary file
in $TMPDIR).

A new store goes into DIR/events, where a node keeps it (DIR itself if it already
holds a store or is named events). Import needs the store's writer lock: it fails
while a node has it open, and --dry-run says so too.

Options:
  --append                  allow lines without a version to add to existing streams
  --no-imported-timestamp   do not keep timestamp_ns in metadata
  --dry-run                 check the input against the store but append nothing
  --data DIR                the data folder (default ./data)
)";

constexpr size_t max_batch_events = 1000;
constexpr size_t max_batch_bytes = 4u << 20;
constexpr size_t max_reported_errors = 20;

/// One line of the input, parsed and checked on its own (not against the store).
expected<import_event> read_line(import_input::status status, const std::string& line,
                                 bool keep_timestamp) {
  if (status == import_input::status::too_long)
    return error{errc::invalid_argument,
                 "longer than " + std::to_string(max_import_line_bytes >> 20) +
                   " MiB, more than any event within the store's 64 MiB limit needs"};
  if (line.find('\0') != std::string::npos) // the JSON parser would stop there
    return error{errc::invalid_argument, "contains a NUL byte"};
  auto parsed = parse_import_line(line, keep_timestamp);
  if (!parsed) return parsed;
  // The store's own limit (payload included), checked here so that nothing is
  // written if one is over it.
  auto bytes = file_journal_event_bytes(parsed->stream, parsed->data);
  if (bytes > file_journal_max_event_bytes)
    return error{errc::invalid_argument, "the event takes " + std::to_string(bytes) +
                                           " bytes in the store, over its limit of " +
                                           std::to_string(file_journal_max_event_bytes) +
                                           " (64 MiB)"};
  return parsed;
}

bool blank(const std::string& line) { return line.find_first_not_of(" \t") == std::string::npos; }

std::string plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

/// What the check found.
struct check_result {
  uint64_t events = 0, to_append = 0, to_skip = 0, errors = 0;
  size_t streams = 0;
  bool any_without_version = false;
};

/// The first reading: every line, checked against `store` (null: none yet).
expected<check_result> check_input(import_input& in, const journal* store, bool allow_append,
                                   bool keep_timestamp, const std::string& folder) {
  check_result r;
  import_plan plan(store, allow_append, folder);
  std::string line;
  for (;;) {
    auto status = in.next(line);
    if (!status) return std::move(status).error();
    if (*status == import_input::status::end) break;
    if (*status == import_input::status::line && blank(line)) continue;
    auto bad = [&](const std::string& why) {
      if (++r.errors <= max_reported_errors)
        std::cerr << "cairn import: line " << in.line_number() << ": " << why << '\n';
    };
    auto parsed = read_line(*status, line, keep_timestamp);
    if (!parsed) {
      bad(parsed.error().message());
      continue;
    }
    ++r.events;
    if (parsed->version == 0) r.any_without_version = true;
    auto decided = plan.decide(*parsed);
    if (!decided) {
      if (!is_conflict(decided.error()) && !is_invalid_argument(decided.error()))
        return std::move(decided).error(); // the store failed: not the line's fault
      bad(decided.error().message());
      continue;
    }
    (decided->what == import_plan::action::skip ? r.to_skip : r.to_append) += 1;
  }
  r.streams = plan.streams();
  return r;
}

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
  if (ctx.uses_postgres())
    return fail("import", "importing into a PostgreSQL store is not supported yet: "
                          "import into a file store (--data DIR)");
  const std::string folder = import_folder(ctx.data_given);

  auto input = import_input::open(source);
  if (!input) return fail("import", input.error().message());

  // An existing store is opened before the input is read: for writing (its lock, so
  // the check sees what the write will see), or read-only with a probe of the lock
  // for a dry run. A store that does not exist yet is created after the check.
  std::shared_ptr<journal> store;
  bool locked = false;
  std::error_code ec;
  if (std::filesystem::exists(folder, ec)) {
    if (dry_run) {
      auto held = file_journal_locked(folder);
      if (!held) return fail("import", held.error().describe());
      locked = *held;
    }
    auto opened = open_file_journal(folder, store_options(dry_run));
    if (!opened) {
      std::string hint = is_unavailable(opened.error()) && !dry_run
                           ? " (import needs the store's writer lock: stop any node using it)"
                           : "";
      return fail("import", "cannot open " + folder + (dry_run ? "" : " for writing") + ": " +
                              opened.error().describe() + hint);
    }
    store = *opened;
  }

  // 1. Check every line before touching the store.
  auto checked = check_input(*input, store.get(), allow_append, keep_timestamp, folder);
  if (!checked) return fail("import", checked.error().describe() + "; nothing was imported");
  const check_result& c = *checked;
  if (c.errors > 0) {
    if (c.errors > max_reported_errors)
      std::cerr << "cairn import: ... and " << c.errors - max_reported_errors
                << " more bad lines\n";
    return fail("import", plural(c.errors, "bad line", "bad lines") + " in " + input->name() +
                            "; nothing was imported");
  }
  std::string counts = plural(c.events, "event", "events") + " for " +
                       plural(c.streams, "stream", "streams") + ": " +
                       std::to_string(c.to_append) + " to append, " +
                       std::to_string(c.to_skip) + " already stored";
  if (dry_run) {
    std::cout << "dry run: " << counts << " in " << folder;
    if (!store) std::cout << " (which does not exist yet and would be created)";
    std::cout << '\n';
    if (locked)
      return fail("import", "the store in " + folder +
                              " is open for writing by another process (a node?): the import "
                              "would fail until it closes the store");
    return exit_ok;
  }
  if (c.events > 0 && c.to_append == 0) {
    std::cout << "nothing to import: all " << plural(c.events, "event is", "events are")
              << " already stored in " << folder << '\n';
    return exit_ok;
  }
  if (!store) {
    auto opened = open_file_journal(folder, store_options(false));
    if (!opened)
      return fail("import", "cannot create the store in " + folder + ": " +
                              opened.error().describe());
    store = *opened;
  }

  // 2. Read again and append in input order: consecutive events of one stream form one
  // request with an expected-version check; a batch holds many requests, so the store
  // commits them with few durable writes.
  if (auto again = input->rewind(); !again) return fail("import", again.error().message());
  import_plan plan(store.get(), allow_append, folder);
  uint64_t imported = 0, skipped = 0, first_position = 0, last_position = 0;
  std::vector<append_request> batch;
  size_t batch_events = 0, batch_bytes = 0, batch_first_line = 0;
  std::string line;

  auto stored_so_far = [&](size_t from_line) {
    std::string advice = c.any_without_version
                           ? "; import the rest from there with --append"
                           : "; importing the same input again adds only what is missing";
    return "the events of the lines before line " + std::to_string(from_line) + " are stored (" +
           std::to_string(imported) + " of " + std::to_string(c.to_append) +
           " to append), none from there on" + advice;
  };
  auto flush = [&]() -> std::string {
    if (batch.empty()) return {};
    std::vector<std::string> names;
    for (auto& request : batch) names.push_back(request.stream.str());
    auto results = store->append(std::move(batch));
    batch.clear();
    batch_events = batch_bytes = 0;
    if (results.size() != names.size())
      return "the store answered " + std::to_string(results.size()) + " results for a batch of " +
             std::to_string(names.size()) + "; compare with `cairn export`";
    for (size_t k = 0; k < results.size(); ++k)
      if (!results[k]) // a write that fails, fails its whole batch
        return "appending to stream " + printable(names[k]) +
               " failed: " + results[k].error().describe() + "; " + stored_so_far(batch_first_line);
    for (auto& result : results) {
      imported += result->last_version - result->first_version + 1;
      if (first_position == 0) first_position = result->first_position;
      last_position = result->last_position;
    }
    return {};
  };

  for (;;) {
    auto status = input->next(line);
    if (!status) return fail("import", status.error().message() + "; " + stored_so_far(input->line_number()));
    if (*status == import_input::status::end) break;
    if (*status == import_input::status::line && blank(line)) continue;
    auto parsed = read_line(*status, line, keep_timestamp);
    expected<import_plan::decision> decided =
      parsed ? plan.decide(*parsed) : expected<import_plan::decision>{parsed.error()};
    if (!decided) // the input or the store changed since the check
      return fail("import", "line " + std::to_string(input->line_number()) + ": " +
                              decided.error().describe() + " (changed since it was checked); " +
                              stored_so_far(batch.empty() ? input->line_number() : batch_first_line));
    if (decided->what == import_plan::action::skip) {
      ++skipped;
      continue;
    }
    auto& e = *parsed;
    if (batch.empty()) batch_first_line = input->line_number();
    if (batch.empty() || batch.back().stream != e.stream)
      batch.push_back(append_request{e.stream, decided->version - 1, {}});
    batch_bytes += file_journal_event_bytes(e.stream, e.data);
    batch.back().events.push_back(std::move(e.data));
    ++batch_events;
    if (batch_events >= max_batch_events || batch_bytes >= max_batch_bytes)
      if (auto failure = flush(); !failure.empty()) return fail("import", failure);
  }
  if (auto failure = flush(); !failure.empty()) return fail("import", failure);
  std::cout << "imported " << plural(imported, "event", "events") << " into "
            << plural(plan.streams(), "stream", "streams");
  if (imported > 0) std::cout << " (positions " << first_position << " to " << last_position << ")";
  if (skipped > 0) std::cout << "; " << skipped << " already stored";
  std::cout << '\n';
  return exit_ok;
}

} // namespace cairn::cli
