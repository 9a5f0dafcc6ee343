// cairn cluster status: a cluster's members (heartbeats, states), who owns each shard
// and saga under which epoch, and the latest membership changes, read from the cluster
// tables of a PostgreSQL schema (cluster_store.hpp). Reads only; safe beside running
// members.
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli.hpp"

#ifdef CAIRN_WITH_POSTGRES
#include <cairn/cluster_store.hpp>
#include <cairn/postgres_tools.hpp>
#endif

namespace cairn::cli {
namespace {

constexpr const char* cluster_help = R"(Usage: cairn --postgres-url URL [--postgres-schema NAME] cluster status [--json] [--log N]

Prints the cluster whose members share the PostgreSQL store at URL:
  members  name, endpoint, roles, state (up, leaving, left, dead), incarnation (+1 at
           each rejoin) and the age of its last heartbeat, on the server's clock
  leases   each shard (and saga type) with its owner, its epoch (+1 at each change of
           owner: the fence every owner's append carries) and when the lease expires
  log      the last N membership changes (default 20), as the members logged them

Reads only; safe beside running members.

Options:
  --json   one JSON object with members, leases and log
  --log N  how many membership changes to print (0: none)
)";

#ifdef CAIRN_WITH_POSTGRES
std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs) out += (out.empty() ? "" : ",") + x;
  return out;
}

std::string expiry(const lease_row& l) {
  if (l.owner.empty()) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << (static_cast<double>(l.expires_in_ms) / 1000.0) << " s";
  return l.expires_in_ms < 0 ? "expired " + s.str().substr(1) + " ago" : "in " + s.str();
}

int print_status(const cluster_view& v, const std::vector<membership_change>& log, bool json) {
  if (json) {
    nlohmann::json out;
    out["shards"] = v.shards;
    out["members"] = nlohmann::json::array();
    for (auto& m : v.members)
      out["members"].push_back({{"name", m.name}, {"host", m.host}, {"port", m.port},
                                {"roles", m.roles}, {"state", m.state},
                                {"incarnation", m.incarnation},
                                {"heartbeat_age_ms", m.heartbeat_age_ms},
                                {"started_at", format_time(m.started_at_ns)}});
    out["leases"] = nlohmann::json::array();
    for (auto& l : v.leases)
      out["leases"].push_back({{"id", l.id}, {"name", l.name},
                               {"owner", l.owner.empty() ? nlohmann::json() : nlohmann::json(l.owner)},
                               {"epoch", l.epoch}, {"expires_in_ms", l.expires_in_ms}});
    out["log"] = nlohmann::json::array();
    for (auto& c : log)
      out["log"].push_back({{"at", format_time(c.at_ns)}, {"by", c.by}, {"member", c.member},
                            {"change", c.change}, {"detail", c.detail}});
    std::cout << out.dump() << "\n";
    return exit_ok;
  }
  std::cout << "members (" << v.members.size() << "):\n";
  for (auto& m : v.members)
    std::cout << "  " << std::left << std::setw(12) << m.name << " " << std::setw(21)
              << (m.host + ":" + std::to_string(m.port)) << " " << std::setw(8) << m.state
              << " incarnation " << m.incarnation << ", heartbeat " << m.heartbeat_age_ms
              << " ms ago, roles " << join(m.roles) << "\n";
  std::cout << "leases (" << v.shards << " shards):\n";
  for (auto& l : v.leases)
    std::cout << "  " << std::left << std::setw(16) << l.name << " owner " << std::setw(12)
              << (l.owner.empty() ? "-" : l.owner) << " epoch " << std::setw(6) << l.epoch
              << " expires " << expiry(l) << "\n";
  if (!log.empty()) {
    std::cout << "membership log (last " << log.size() << "):\n";
    for (auto& c : log)
      std::cout << "  " << format_time(c.at_ns) << "  " << c.by << ": " << c.member << " "
                << c.change << (c.detail.empty() ? "" : " (" + printable(c.detail) + ")") << "\n";
  }
  return exit_ok;
}
#endif

} // namespace

int run_cluster(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << cluster_help;
    return exit_ok;
  }
  std::vector<std::string> positional;
  std::string value;
  bool json = false;
  uint64_t log_lines = 20;
  while (r.next()) {
    if (r.flag("--json")) json = true;
    else if (r.option("--log", value)) log_lines = parse_count(value, "--log");
    else if (r.positional()) positional.push_back(r.current());
  }
  if (positional.size() != 1 || positional[0] != "status")
    throw usage_error("the cluster subcommand has one action: status");
  if (!ctx.uses_postgres())
    throw usage_error("a cluster lives in PostgreSQL: give --postgres-url URL");
#ifdef CAIRN_WITH_POSTGRES
  postgres_options o;
  o.schema = ctx.postgres_schema;
  o.read_connections = 1;
  // Never create a store where there is none: a typo in the URL or schema should say so.
  if (auto found = postgres_store_version(ctx.postgres_url, o); !found)
    return fail("cluster", found.error().describe());
  auto store = cluster_store::open_existing(ctx.postgres_url, o);
  if (!store) return fail("cluster", store.error().describe());
  auto v = (*store)->view();
  if (!v) return fail("cluster", v.error().describe());
  std::vector<membership_change> log;
  if (log_lines > 0) {
    auto changes = (*store)->recent_changes(log_lines);
    if (!changes) return fail("cluster", changes.error().describe());
    log = std::move(*changes);
  }
  return print_status(*v, log, json);
#else
  return fail("cluster", "this cairn was built without PostgreSQL support");
#endif
}

} // namespace cairn::cli
