// The cairn tool's entry point as a library function: global options, dispatch to the
// subcommands, usage errors. The `cairn` binary and applications' own tools call run().
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <cairn/cli_tool.hpp>

#include "cli.hpp"

namespace cairn::cli {

namespace {

constexpr const char* main_help = R"(Usage: cairn [--data DIR] <subcommand> [options]

Inspects, checks, exports and imports the event store kept in a data folder by
Cairn's file journal. The readers open the folder read-only and work beside a
running node; import needs the folder's writer lock.

Subcommands:
  streams                 list stream names and their versions
  read STREAM             print the events of one stream
  tail                    print the latest events; --follow keeps printing new ones
  stats                   event, stream, segment and byte counts, head position, times
  verify                  check every record's CRC and every stream's version sequence
  export                  write events as JSON lines
  import FILE|-           append events from JSON lines (the format export writes)
  state STREAM            an aggregate's state as JSON, as of a version or a time
                          (in programs that register their aggregate types)
  sagas failed            parked saga instances; `sagas retry|close SAGA KEY` answers one
  subscriptions failed    events subscriptions parked; `subscriptions retry|discard NAME
                          POSITION` answers one
  cluster status          a cluster's members, shard and saga owners with their epochs,
                          and membership changes (PostgreSQL only)

Options:
  --data DIR              the data folder (default ./data; a node folder's events/ is
                          used when DIR holds no store); also accepted after the subcommand
  --postgres-url URL      use the PostgreSQL store at URL instead (libpq URL or key=value
                          string); streams, read, tail, stats, verify, export, sagas and
                          subscriptions work on it (answering dead letters there: stop
                          the nodes first, see `cairn sagas --help`)
  --postgres-schema NAME  its schema (default cairn)
  -h, --help              this help; `cairn <subcommand> --help` explains a subcommand

Exit codes: 0 ok, 1 operation failed or verify found problems, 2 usage error.
)";

struct subcommand {
  const char* name;
  int (*run)(context&, std::vector<std::string>);
};

constexpr subcommand subcommands[] = {
  {"streams", run_streams}, {"read", run_read},     {"tail", run_tail},     {"stats", run_stats},
  {"verify", run_verify},   {"export", run_export}, {"import", run_import},
  {"state", run_state},      {"sagas", run_sagas},   {"subscriptions", run_subscriptions},
  {"cluster", run_cluster},
};

int usage(const std::string& where, const std::string& message) {
  std::cout.flush();
  std::cerr << where << ": " << message << "\nTry '" << where << " --help'.\n";
  return exit_usage;
}

} // namespace

int run(int argc, char** argv, const registry& types) {
  std::ios::sync_with_stdio(false);
  context ctx;
  ctx.types = &types;
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  // Global options come before the subcommand.
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << main_help;
      if (!types.empty()) {
        std::cout << "\nAggregate types `state` knows:";
        for (auto& category : types.categories()) std::cout << ' ' << category;
        std::cout << '\n';
      }
      return exit_ok;
    }
    if (a == "--data" || a.rfind("--data=", 0) == 0) {
      std::string dir;
      if (a == "--data") {
        if (i + 1 >= args.size()) return usage("cairn", "--data needs a value");
        dir = args[++i];
      } else {
        dir = a.substr(std::strlen("--data="));
      }
      if (dir.empty()) return usage("cairn", "--data needs a non-empty folder name");
      ctx.data_dir = ctx.data_given = dir;
      continue;
    }
    if (a == "--postgres-url" || a == "--postgres-schema" || a.rfind("--postgres-url=", 0) == 0 ||
        a.rfind("--postgres-schema=", 0) == 0) {
      auto eq = a.find('=');
      std::string name = a.substr(0, eq), value;
      if (eq != std::string::npos) value = a.substr(eq + 1);
      else if (i + 1 < args.size()) value = args[++i];
      if (value.empty()) return usage("cairn", name + " needs a value");
      (name == "--postgres-url" ? ctx.postgres_url : ctx.postgres_schema) = value;
      continue;
    }
    if (!a.empty() && a[0] == '-') return usage("cairn", "unknown option " + a);
    break;
  }
  if (i >= args.size()) return usage("cairn", "no subcommand given");
  ctx.data_dir = store_folder(ctx.data_dir);

  const std::string& name = args[i];
  for (auto& sub : subcommands) {
    if (name != sub.name) continue;
    std::string where = std::string("cairn ") + sub.name;
    try {
      return sub.run(ctx, std::vector<std::string>(args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                                   args.end()));
    } catch (const usage_error& e) {
      return usage(where, e.what());
    } catch (const std::exception& e) {
      std::cout.flush();
      std::cerr << where << ": unexpected error: " << e.what() << '\n';
      return exit_failed;
    }
  }
  return usage("cairn", "unknown subcommand \"" + printable(name) + "\"");
}

} // namespace cairn::cli
