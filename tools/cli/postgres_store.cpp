// The cairn tool on a PostgreSQL store (--postgres-url URL): opening it for the readers,
// the operator commands (sagas, subscriptions), and the PostgreSQL forms of stats and verify.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.hpp"

#ifdef CAIRN_WITH_POSTGRES
#include <cairn/postgres_journal.hpp>
#include <cairn/postgres_tools.hpp>
#endif

namespace cairn::cli {

#ifdef CAIRN_WITH_POSTGRES

namespace {
postgres_options options_of(const context& ctx) {
  postgres_options o;
  o.schema = ctx.postgres_schema;
  return o;
}
} // namespace

expected<std::shared_ptr<journal>> open_postgres_reader(const context& ctx) {
  auto o = options_of(ctx);
  // Never create a store where there is none: a typo in the URL or schema should say so.
  if (auto found = postgres_store_version(ctx.postgres_url, o); !found) return std::move(found).error();
  return open_postgres_journal(ctx.postgres_url, o);
}

expected<std::shared_ptr<journal>> open_postgres_writer(const context& ctx) {
  auto o = options_of(ctx);
  o.follow_external = false; // one append, then it closes: no one to wake
  o.read_connections = 1;
  o.read_ahead_chunks = 0;
  if (auto found = postgres_store_version(ctx.postgres_url, o); !found) return std::move(found).error();
  return open_postgres_journal(ctx.postgres_url, o);
}

expected<std::shared_ptr<snapshot_store>> open_postgres_snapshots(const context& ctx) {
  auto o = options_of(ctx);
  if (auto found = postgres_store_version(ctx.postgres_url, o); !found) return std::move(found).error();
  return open_postgres_snapshot_store(ctx.postgres_url, o);
}

expected<std::vector<snapshot>> read_postgres_snapshot_list(const context& ctx,
                                                            const std::string& prefix) {
  return read_postgres_snapshots(ctx.postgres_url, prefix, options_of(ctx));
}

int run_postgres_stats(const context& ctx, bool json) {
  auto stats = postgres_store_statistics(ctx.postgres_url, options_of(ctx));
  if (!stats) return fail("stats", stats.error().describe());
  const auto& s = *stats;
  return print_stats({{"events", s.events},
                      {"streams", s.streams},
                      {"snapshots", s.snapshots},
                      {"bytes", s.bytes},
                      {"head position", s.head_position},
                      {"schema version", uint64_t(s.schema_version)}},
                     s.events, s.first_timestamp_ns, s.last_timestamp_ns, json);
}

int run_postgres_verify(const context& ctx, bool quiet) {
  auto report = verify_postgres_store(ctx.postgres_url, options_of(ctx));
  if (!report) return fail("verify", report.error().describe());
  for (auto& problem : report->problems) std::cout << problem << '\n';
  std::string checked = std::to_string(report->events) + " events, " +
                        std::to_string(report->streams) + " streams in PostgreSQL schema " +
                        ctx.postgres_schema;
  if (!report->problems.empty()) {
    std::cout.flush();
    std::cerr << "cairn verify: " << report->problems.size()
              << (report->problems.size() == 1 ? " problem" : " problems") << " found (checked "
              << checked << ")\n";
    return exit_failed;
  }
  if (!quiet) std::cout << "ok: " << checked << '\n';
  std::cout.flush();
  return exit_ok;
}

#else

namespace {
error no_postgres() {
  return error{errc::unavailable, "this cairn was built without PostgreSQL support "
                                  "(CAIRN_BUILD_POSTGRES=OFF)"};
}
} // namespace

expected<std::shared_ptr<journal>> open_postgres_reader(const context&) { return no_postgres(); }
expected<std::shared_ptr<journal>> open_postgres_writer(const context&) { return no_postgres(); }
expected<std::shared_ptr<snapshot_store>> open_postgres_snapshots(const context&) {
  return no_postgres();
}
expected<std::vector<snapshot>> read_postgres_snapshot_list(const context&, const std::string&) {
  return no_postgres();
}
int run_postgres_stats(const context&, bool) { return fail("stats", no_postgres().describe()); }
int run_postgres_verify(const context&, bool) { return fail("verify", no_postgres().describe()); }

#endif

} // namespace cairn::cli
