// Shared pieces of the cairn command-line tool: exit codes, argument helpers, output helpers.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <cairn/envelope.hpp>
#include <cairn/expected.hpp>
#include <cairn/file_journal.hpp>
#include <cairn/journal.hpp>
#include <cairn/snapshot_store.hpp>

namespace cairn::cli {

/// The tool's exit codes.
enum exit_code : int {
  exit_ok = 0,     ///< success (and, for verify, a sound store)
  exit_failed = 1, ///< the operation failed, or verify found problems
  exit_usage = 2,  ///< bad command line
};

class registry; // cairn/cli_tool.hpp

/// What every subcommand gets: the global options, and the program's aggregate types.
struct context {
  std::string data_dir = "./data";   ///< the store folder (store_folder() of data_given)
  std::string data_given = "./data"; ///< the --data DIR as given
  /// --postgres-url: the store is in PostgreSQL (schema --postgres-schema), not data_dir.
  std::string postgres_url;
  std::string postgres_schema = "cairn";
  bool uses_postgres() const { return !postgres_url.empty(); }
  const registry* types = nullptr; ///< never null inside run()
};

/// A bad command line: main() prints it with a pointer to --help and exits with 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Walks a subcommand's arguments. Handles "--help"/"-h" (reported by help()), the
/// global "--data DIR" (so it may also follow the subcommand), "--" (everything after
/// it is positional), "--name VALUE" and "--name=VALUE".
class arg_reader {
public:
  arg_reader(context& ctx, std::vector<std::string> args);

  /// Advances to the next argument; false at the end.
  bool next();
  /// The current argument.
  const std::string& current() const { return args_[index_]; }
  /// True (and consumed) if the current argument is the flag `name`.
  bool flag(const char* name);
  /// True if the current argument is option `name` with a value (taken from
  /// "--name=VALUE" or the following argument), stored in `value`.
  bool option(const char* name, std::string& value);
  /// True if the current argument is positional (not an option); unknown options throw.
  bool positional();
  /// True if "--help" or "-h" appears (before any "--"): check it before reading.
  bool help() const { return help_; }

private:
  context& ctx_;
  std::vector<std::string> args_;
  size_t index_ = static_cast<size_t>(-1);
  bool help_ = false;
  bool only_positional_ = false;
};

/// Parses a non-negative decimal integer for option `what`, or throws usage_error.
uint64_t parse_count(const std::string& text, const std::string& what);

/// Parses a time for option `what`: ISO-8601 UTC ("2024-05-01T10:00:00Z", optionally
/// with up to 9 digits of fractional seconds, as format_time writes) or an integer
/// of nanoseconds since the Unix epoch. Returns nanoseconds; throws usage_error.
int64_t parse_time(const std::string& text, const std::string& what);

/// Prints "cairn <command>: <message>" to stderr and returns exit_failed.
int fail(const std::string& command, const std::string& message);

/// Options for opening the store: the store's log messages go to stderr.
file_journal_options store_options(bool read_only);

/// Checks that the data folder exists, then opens it read-only.
expected<std::shared_ptr<journal>> open_reader(const context& ctx);

/// The PostgreSQL store of --postgres-url (an error if there is no Cairn schema there),
/// and the PostgreSQL forms of `stats` and `verify` (tools/cli/postgres_store.cpp).
expected<std::shared_ptr<journal>> open_postgres_reader(const context& ctx);
/// The same store for one operator's append (`sagas retry|close`): no follower.
expected<std::shared_ptr<journal>> open_postgres_writer(const context& ctx);
/// Its snapshot store (subscriptions' parked events), and the snapshots whose stream
/// names start with `prefix`; both an error if there is no Cairn schema there.
expected<std::shared_ptr<snapshot_store>> open_postgres_snapshots(const context& ctx);
expected<std::vector<snapshot>> read_postgres_snapshot_list(const context& ctx,
                                                            const std::string& prefix);
int run_postgres_stats(const context& ctx, bool json);
int run_postgres_verify(const context& ctx, bool quiet);

/// The store folder for a --data DIR: a node's data folder (like the bank sample's
/// ./data) keeps its events in DIR/events, which is used when DIR itself holds no store.
std::string store_folder(const std::string& dir);

/// Where import writes for a --data DIR: DIR/events as a node keeps it (created if
/// missing), unless DIR already holds a store or is itself named "events".
std::string import_folder(const std::string& dir);

/// An error if `ctx.data_dir` is not an existing directory.
expected<void> require_data_dir(const context& ctx);

/// "2024-05-01T10:00:00.123456789Z" for nanoseconds since the Unix epoch.
std::string format_time(int64_t timestamp_ns);

/// One count of `cairn stats`: its label ("head position"; the JSON key is the label with
/// '_' for ' ') and value.
struct stats_count {
  const char* label;
  uint64_t value;
};

/// Prints `cairn stats` for any store: the counts in order, then the first and last commit
/// times (none when `events` is 0), as aligned text or one JSON object.
int print_stats(const std::vector<stats_count>& counts, uint64_t events, int64_t first_ns,
                int64_t last_ns, bool json);

/// Lower-case hex, a space between bytes.
std::string to_hex(const bytes& data);

/// `text` with control characters and backslashes escaped (\n, \t, \xNN, \\), safe for a terminal.
std::string printable(const std::string& text);

/// The human-readable rendering of one event (several lines, ending in a newline).
std::string format_event_text(const envelope& e);

/// Subcommands: each gets its arguments after the subcommand name and returns an exit code.
int run_streams(context& ctx, std::vector<std::string> args);
int run_stats(context& ctx, std::vector<std::string> args);
int run_read(context& ctx, std::vector<std::string> args);
int run_tail(context& ctx, std::vector<std::string> args);
int run_verify(context& ctx, std::vector<std::string> args);
int run_export(context& ctx, std::vector<std::string> args);
int run_import(context& ctx, std::vector<std::string> args);
int run_state(context& ctx, std::vector<std::string> args);
int run_sagas(context& ctx, std::vector<std::string> args);
int run_subscriptions(context& ctx, std::vector<std::string> args);
int run_cluster(context& ctx, std::vector<std::string> args);

} // namespace cairn::cli
