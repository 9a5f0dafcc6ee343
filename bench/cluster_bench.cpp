// cluster_bench: the cluster's figures (issue 13), from real cluster_bank_node processes
// on loopback sharing one PostgreSQL: commands/s of 3 members, the CPU cost of a forwarded
// command against a local one, and the failover time after a member is SIGKILLed.
//
//   with_pg_server cluster_bench --postgres-url @PG_URL@ [--mode all|throughput|forward-cost|failover]
//     [--runs 3] [--commands 20000] [--accounts 1000] [--window 64] [--kills 5]
//     [--failover-commands 1000000] [--failover-window 16] [--projections 1] [--tls DIR]
//     [--keep-logs 1]
//
// Each run uses a fresh schema (b<pid>_<n>, dropped afterwards). Members talk plain TCP
// unless --tls DIR holds certificates made by config/cluster/make-certs.sh (ca.pem,
// node1.pem/.key ...). Every member dies with the bench (cluster_processes.hpp).
#include <set>

#include <cairn/cluster_membership.hpp>

#include "cluster_processes.hpp"

namespace {

using namespace cairn::bench::cluster_run;

// --- 1. throughput: 3 members, each driving --commands deposits --------------------------

json throughput(const settings& s) {
  std::printf("\n== throughput: 3 members, each driving %llu deposits (window %llu, %llu accounts), default timings\n",
              (unsigned long long)s.commands, (unsigned long long)s.window, (unsigned long long)s.accounts);
  std::vector<double> rates;
  json runs = json::array();
  for (uint64_t r = 0; r < s.runs; ++r) {
    cluster c{s, "throughput"};
    auto extra = drive_args(s.commands, s.accounts, s.window, 3);
    // The status files tell when each driver is done. Each write sorts the driver's
    // latencies so far (deposit_driver::stats): not more often than this.
    extra.push_back("--status.interval=100ms");
    auto ms = start_in_turn(c, 3, extra);
    std::vector<double> started(3, -1), done(3, -1);
    std::vector<json> last(3);
    auto t0 = clock_type::now();
    c.wait("every driver is done", 900, [&] {
      auto t = cairn::bench::seconds_since(t0);
      bool all = true;
      for (size_t i = 0; i < 3; ++i) {
        if (done[i] >= 0) continue;
        auto st = ms[i]->status();
        if (st && started[i] < 0) started[i] = t;
        if (st && st->value("drive", json::object()).value("done", false)) done[i] = t, last[i] = *st;
        all = all && done[i] >= 0;
      }
      return all;
    });
    double acked = 0, forwarded = 0, failed = 0;
    for (auto& st : last) {
      acked += st["drive"]["acked"].get<double>();
      failed += st["drive"]["failed"].get<double>();
      forwarded += st["cluster"]["forwarded"].get<double>();
    }
    double first = *std::min_element(started.begin(), started.end());
    double spread = *std::max_element(started.begin(), started.end()) - first;
    double elapsed = *std::max_element(done.begin(), done.end()) - first;
    double commands = acked + 3.0 * double(s.accounts); // deposits + each driver's opens
    rates.push_back(acked / elapsed);
    runs.push_back({{"commands_per_s", acked / elapsed}, {"seconds", elapsed}, {"acked", acked},
                    {"failed", failed}, {"forwarded_fraction", forwarded / commands},
                    {"driver_start_spread_s", spread}});
    std::printf("  run %llu: %8.0f commands/s  (%.0f acked in %.2f s, %.0f failed; forwarded %.1f%% of "
                "commands; drivers started within %.0f ms)\n",
                (unsigned long long)r + 1, acked / elapsed, acked, elapsed, failed,
                100 * forwarded / commands, 1000 * spread);
  }
  auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
  std::printf("  median %.0f commands/s over %zu runs (min %.0f, max %.0f)\n", median(rates), rates.size(), *lo, *hi);
  return {{"mode", "throughput"}, {"median_commands_per_s", median(rates)}, {"min", *lo}, {"max", *hi}, {"runs", runs}};
}

// --- 2. forward-cost: CPU per command when every command is local, or forwarded ---------

struct cost_run {
  double cpu_a = 0, cpu_b = 0, acked = 0, seconds = 0, forwarded = 0;
};

cost_run forward_cost_run(const settings& s, const std::string& only) {
  cluster c{s, "forward-" + only};
  // aggregates only: no projection on either member, so the CPU is the command path's.
  // Status files every 200 ms (the default): each write sorts all of the driver's
  // latencies so far, CPU that is not the command path's.
  strings roles{"--cluster.roles=[\"aggregates\"]"};
  // B first, alone: it holds every shard, then hands half to A as A joins, so A's driver
  // (waiting for 2 members) starts on the final split.
  auto& b = c.start("node2", roles);
  c.wait("node2 holds every shard", 60, [&] {
    auto st = b.status();
    return st && (*st)["owned_shards"].size() == shard_count;
  });
  auto extra = drive_args(s.commands, s.accounts, s.window, 2);
  extra.push_back("--drive.only=" + only);
  extra.insert(extra.end(), roles.begin(), roles.end());
  auto& a = c.start("node1", extra);
  double before = a.cpu() + b.cpu();
  // CPU read before each look for A's status file, which appears once its driver started:
  // the last reading before it appeared was taken before the driver started.
  c.wait("node1's driver started", 60, [&] {
    double cpu = a.cpu() + b.cpu();
    if (a.status()) return true;
    before = cpu;
    return false;
  }, 5);
  double a0 = a.cpu(), b0 = b.cpu(); // for the split by member (includes <= 5 ms of start)
  auto t0 = clock_type::now();
  std::optional<json> st;
  c.wait("node1's driver is done", 900, [&] {
    st = a.status();
    return st && (*st)["drive"]["done"].get<bool>();
  });
  cost_run out;
  out.seconds = cairn::bench::seconds_since(t0);
  double ca = a.cpu(), cb = b.cpu();
  double total = ca + cb - before;
  // Split the total by each member's share since the driver started.
  double share_a = (ca - a0) / std::max(1e-9, (ca - a0) + (cb - b0));
  out.cpu_a = total * share_a;
  out.cpu_b = total - out.cpu_a;
  out.acked = (*st)["drive"]["acked"].get<double>();
  out.forwarded = (*st)["cluster"]["forwarded"].get<double>();
  return out;
}

json forward_cost(const settings& s) {
  std::printf("\n== forward-cost: 2 members (aggregates only), node1 drives %llu deposits (window %llu) to "
              "accounts held by node1 (local) or by node2 (remote); CPU of both members, PostgreSQL's "
              "excluded (the same work in both)\n",
              (unsigned long long)s.commands, (unsigned long long)s.window);
  std::vector<double> local, remote, ratios;
  json runs = json::array();
  for (uint64_t p = 0; p < s.runs; ++p) {
    cost_run got[2];
    // Interleaved, alternating which goes first: local remote, remote local, ...
    for (int k = 0; k < 2; ++k) {
      int which = (p % 2 == 0) ? k : 1 - k; // 0 local, 1 remote
      std::string only = which == 0 ? "local" : "remote";
      auto r = forward_cost_run(s, only);
      got[which] = r;
      double us = 1e6 * (r.cpu_a + r.cpu_b) / r.acked;
      std::printf("  pair %llu %-6s: %6.1f us CPU per command (node1 %.1f, node2 %.1f), %.0f acked in "
                  "%.2f s (%.0f/s), node1 forwarded %.0f\n",
                  (unsigned long long)p + 1, only.c_str(), us, 1e6 * r.cpu_a / r.acked, 1e6 * r.cpu_b / r.acked,
                  r.acked, r.seconds, r.acked / r.seconds, r.forwarded);
      runs.push_back({{"pair", p + 1}, {"only", only}, {"us_cpu_per_command", us},
                      {"node1_us", 1e6 * r.cpu_a / r.acked}, {"node2_us", 1e6 * r.cpu_b / r.acked},
                      {"acked", r.acked}, {"seconds", r.seconds}, {"forwarded", r.forwarded}});
    }
    double l = 1e6 * (got[0].cpu_a + got[0].cpu_b) / got[0].acked;
    double m = 1e6 * (got[1].cpu_a + got[1].cpu_b) / got[1].acked;
    local.push_back(l), remote.push_back(m), ratios.push_back(m / l);
  }
  auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
  std::printf("  median: local %.1f us, remote %.1f us CPU per command; remote/local %.2f (pairs %.2f-%.2f; "
              "target <= 2)\n", median(local), median(remote), median(ratios), *lo, *hi);
  return {{"mode", "forward-cost"}, {"local_us", median(local)}, {"remote_us", median(remote)},
          {"ratio", median(ratios)}, {"ratio_min", *lo}, {"ratio_max", *hi}, {"runs", runs}};
}

// --- 3. failover: SIGKILL a member under load; time until its shards serve again -------

std::vector<uint32_t> owned(const json& st) { return st["owned_shards"].get<std::vector<uint32_t>>(); }

json failover(const settings& s) {
  std::printf("\n== failover: 3 members with default timings (heartbeat 500ms, member-timeout 3s, lease-ttl 3s), "
              "all driving (window %llu, %llu accounts); %llu kills\n",
              (unsigned long long)s.failover_window, (unsigned long long)s.accounts, (unsigned long long)s.kills);
  cluster c{s, "failover"};
  const std::string names[3] = {"node1", "node2", "node3"};
  member* ms[3] = {};
  std::unique_ptr<ack_tail> acks[3];
  auto member_args = [&](int i, int incarnation) {
    auto a = drive_args(s.failover_commands, s.accounts, s.failover_window, 3);
    a.push_back("--drive.ack-file=" + c.dir() + "/" + names[i] + "-" + std::to_string(incarnation) + ".acks");
    acks[i] = std::make_unique<ack_tail>(c.dir() + "/" + names[i] + "-" + std::to_string(incarnation) + ".acks");
    return a;
  };
  for (int i = 0; i < 3; ++i) {
    ms[i] = &c.start(names[i], member_args(i, 1));
    c.wait(names[i] + " joined", 60, [&] { return ms[i]->log_has(" joined"); });
  }
  // Each member holds its share and its driver is past the opens (only deposits go to
  // the ack files that tell when the shards serve again).
  auto spread_evenly = [&] {
    size_t total = 0;
    for (auto* m : ms) {
      auto st = m->status();
      if (!st || (*st)["members_live"].size() != 3) return false;
      auto n = (*st)["owned_shards"].size();
      if (n < shard_count / 3 || n > shard_count / 3 + 1) return false;
      auto drive = st->value("drive", json::object());
      if (drive.value("done", false)) fail(m->name() + "'s driver finished: raise --failover-commands");
      if (drive.value("sent", 0) == 0) return false; // still opening its accounts
      total += n;
    }
    return total == shard_count;
  };
  std::vector<double> serving, owning;
  json kills = json::array();
  for (uint64_t k = 0; k < s.kills; ++k) {
    c.wait("the shards are spread over 3 members", 120, spread_evenly);
    sleep_ms(2000); // load at full speed again
    int v = static_cast<int>(k % 3);
    auto shards = owned(*ms[v]->status());
    std::map<uint32_t, double> owned_at, served_at;
    for (int i = 0; i < 3; ++i)
      if (i != v) acks[i]->read([](const std::string&) {}); // skip what was acked before
    auto t0 = clock_type::now();
    ms[v]->kill();
    std::set<uint32_t> victim_shards(shards.begin(), shards.end());
    c.remove(*ms[v]);
    ms[v] = nullptr;
    c.wait("the killed member's shards serve again", 120, [&] {
      double t = cairn::bench::seconds_since(t0);
      for (int i = 0; i < 3; ++i) {
        if (i == v) continue;
        if (auto st = ms[i]->status())
          for (auto sh : owned(*st))
            if (victim_shards.count(sh) && !owned_at.count(sh)) owned_at[sh] = t;
        // An ack of an account in a killed member's shard, 0.5 s or more after the kill:
        // a survivor now owns that shard and has served a command on it (a reply the
        // killed member sent just before it died arrives within milliseconds).
        acks[i]->read([&](const std::string& account) {
          auto sh = cairn::shard_of(cairn::stream_id{"account", account}, shard_count);
          if (t >= 0.5 && victim_shards.count(sh) && !served_at.count(sh)) served_at[sh] = t;
        });
      }
      return served_at.size() == victim_shards.size() && owned_at.size() == victim_shards.size();
    });
    double own = 0, serve = 0;
    for (auto& [sh, t] : owned_at) own = std::max(own, t);
    for (auto& [sh, t] : served_at) serve = std::max(serve, t);
    serving.push_back(serve), owning.push_back(own);
    // Back to three: the same name rejoins and takes its share again.
    auto t1 = clock_type::now();
    ms[v] = &c.start(names[v], member_args(v, static_cast<int>(k) + 2), static_cast<int>(k) + 2);
    c.wait(names[v] + " holds shards again", 120, spread_evenly);
    double rejoin = cairn::bench::seconds_since(t1);
    std::printf("  kill %llu: %s (%zu shards): owned by survivors after %.2f s, all serving after %.2f s; "
                "restarted, back to an even spread in %.2f s\n",
                (unsigned long long)k + 1, names[v].c_str(), shards.size(), own, serve, rejoin);
    kills.push_back({{"member", names[v]}, {"shards", shards.size()}, {"owned_s", own},
                     {"serving_s", serve}, {"rejoin_s", rejoin}});
  }
  double sent = 0, retries = 0, failed = 0;
  for (auto* m : ms)
    if (auto st = m->status()) {
      sent += (*st)["drive"]["sent"].get<double>();
      retries += (*st)["drive"]["retries"].get<double>();
      failed += (*st)["drive"]["failed"].get<double>();
    }
  auto [lo, hi] = std::minmax_element(serving.begin(), serving.end());
  std::printf("  failover (kill to all its shards serving on survivors): min %.2f s, median %.2f s, max %.2f s "
              "(target < 5 s); owned by survivors: median %.2f s\n  current members: %.0f deposits sent, %.0f "
              "retried, %.0f failed for good\n", *lo, median(serving), *hi, median(owning), sent, retries, failed);
  return {{"mode", "failover"}, {"min_s", *lo}, {"median_s", median(serving)}, {"max_s", *hi},
          {"owned_median_s", median(owning)}, {"failed", failed}, {"kills", kills}};
}

} // namespace

int main(int argc, char** argv) {
  const char* usage =
    "cluster_bench --postgres-url URL [--mode all|throughput|forward-cost|failover] [--runs R] "
    "[--commands N] [--accounts A] [--window W] [--kills K] [--failover-commands N] "
    "[--failover-window W] [--projections 0|1] [--tls DIR] [--node PATH] [--keep-logs 1]";
  cairn::bench::arguments args{argc, argv};
  settings s;
  s.url = args.get("postgres-url", std::string{});
  auto mode = args.get("mode", std::string{"all"});
  s.runs = args.get("runs", s.runs);
  s.commands = args.get("commands", s.commands);
  s.accounts = args.get("accounts", s.accounts);
  s.window = args.get("window", s.window);
  s.kills = args.get("kills", s.kills);
  s.failover_commands = args.get("failover-commands", s.failover_commands);
  s.failover_window = args.get("failover-window", s.failover_window);
  s.tls = args.get("tls", std::string{});
  s.node = args.get("node", s.node);
  s.keep_logs = args.get("keep-logs", uint64_t{0}) != 0;
  s.projections = args.get("projections", uint64_t{1}) != 0;
  if (!args.all_used(usage)) return 2;
  if (s.url.empty() || (mode != "all" && mode != "throughput" && mode != "forward-cost" && mode != "failover")) {
    std::fprintf(stderr, "usage: %s\n", usage);
    return 2;
  }
  if (!s.tls.empty() && ::access((s.tls + "/ca.pem").c_str(), R_OK) != 0) {
    std::fprintf(stderr, "cluster_bench: no %s/ca.pem: make the certificates with "
                         "config/cluster/make-certs.sh %s\n", s.tls.c_str(), s.tls.c_str());
    return 2;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string{tmp && *tmp ? tmp : "/tmp"} + "/cluster_bench-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  s.work = buf.data();
  std::printf("cluster_bench: %s, members %s, %u hardware threads shared by the members and PostgreSQL\n",
              s.tls.empty() ? "plain TCP (--cluster.insecure)" : "TLS", s.node.c_str(),
              std::thread::hardware_concurrency());
  json results = json::array();
  int rc = 0;
  try {
    if (mode == "all" || mode == "throughput") results.push_back(throughput(s));
    if (mode == "all" || mode == "forward-cost") results.push_back(forward_cost(s));
    if (mode == "all" || mode == "failover") results.push_back(failover(s));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cluster_bench: %s\n", e.what());
    rc = 1;
  }
  if (rc == 0) cairn::bench::print_result({{"bench", "cluster"}, {"results", results}});
  if (s.keep_logs || rc != 0) {
    std::printf("logs kept in %s\n", s.work.c_str());
  } else {
    std::filesystem::remove_all(s.work);
  }
  return rc;
}
