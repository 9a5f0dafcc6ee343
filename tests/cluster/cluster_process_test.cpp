// Cluster members as real processes (samples/cluster/cluster_bank_node) on a throwaway
// PostgreSQL server: a member killed under load, a paused owner (a zombie that must be
// fenced), a member joining under load, and members with the wrong or no certificates.
// Each load test ends with cluster_bank_verify: no deposit stored twice, every
// acknowledged one stored once where it was acknowledged, every read model = the store.
// Figures are printed, never asserted (speed belongs in bench/).
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include <cairn/postgres_journal.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "cluster/balances_digest.hpp" // samples/cluster
#include "cluster/cluster_fixture.hpp"

using cairn::test::cluster_fixture;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> three{"node1", "node2", "node3"};

std::string ms(double v) { return std::to_string(static_cast<int64_t>(v)) + " ms"; }

double max_latency(cluster_fixture& c, const std::string& name) {
  auto s = c.status(name);
  return s.contains("drive") ? s["drive"].value("max_latency_ms", 0.0) : 0.0;
}

/// "node1 p50 .. p99 .. max .. ms, ..." for the named drivers.
std::string latencies(cluster_fixture& c, const std::vector<std::string>& names) {
  std::string out;
  for (auto& n : names) {
    auto d = c.status(n).value("drive", nlohmann::json::object());
    out += (out.empty() ? "" : "; ") + n + " p50 " + ms(d.value("p50_ms", 0.0)) + " p99 " +
           ms(d.value("p99_ms", 0.0)) + " max " + ms(d.value("max_latency_ms", 0.0));
  }
  return out;
}

/// Starts node1..3 one after the other, each driving `commands` deposits once all
/// three share the shards, and waits until all hold shards (their status files appear
/// once the drivers start).
void start_three(cluster_fixture& c, size_t commands) {
  for (auto& n : three) {
    c.start(n, commands);
    c.wait(n + " has joined", [&] {
      return c.member_up(n);
    }, 60s);
  }
  c.wait("node1..3 hold shards and drive", [&] {
    return c.owns_shards("node1") && c.owns_shards("node2") && c.owns_shards("node3");
  }, 60s);
}

/// Waits until the named members' drivers are done, and requires that none failed.
void wait_drivers(cluster_fixture& c, const std::vector<std::string>& names) {
  c.wait("the drivers of " + std::to_string(names.size()) + " members are done", [&] {
    return std::all_of(names.begin(), names.end(), [&](auto& n) { return c.drive_done(n); });
  }, 240s);
  for (auto& n : names) {
    auto d = c.status(n)["drive"];
    INFO(n << ": " << d.dump());
    CHECK(d.value("failed", 1) == 0);
    CHECK(d.value("acked", 0) == d.value("target", -1));
  }
}

size_t count_shards(cluster_fixture& c, const std::vector<std::string>& names) {
  std::set<uint32_t> all;
  for (auto& n : names)
    for (auto s : c.owned(n)) all.insert(s);
  return all.size();
}

bool lists(const std::vector<std::string>& members, const std::string& name) {
  return std::find(members.begin(), members.end(), name) != members.end();
}

} // namespace

TEST_CASE("cluster: a member killed under load loses no acknowledged deposit and stores none twice",
          "[cluster-process][kill]") {
  cluster_fixture c;
  const size_t per_node = 4000, total = 3 * per_node;
  start_three(c, per_node);
  c.wait("30% of the deposits are acknowledged", [&] { return c.acked_total(three) >= total * 3 / 10; }, 240s);
  double before = std::max(max_latency(c, "node1"), max_latency(c, "node3"));
  auto node2_acked = c.acked("node2");
  c.kill("node2");
  double killed_at = c.seconds();
  c.say("SIGKILL node2 (it had " + std::to_string(node2_acked) + " acknowledged); max latency so far " + ms(before));
  c.wait("node1 and node3 hold every shard", [&] {
    return count_shards(c, {"node1", "node3"}) == c.shards && !lists(c.live_members("node1"), "node2");
  }, 60s);
  c.say("takeover " + std::to_string(c.seconds() - killed_at) + " s after the kill");
  wait_drivers(c, {"node1", "node3"});
  double done_at = c.seconds();
  double after = std::max(max_latency(c, "node1"), max_latency(c, "node3"));
  c.start("node2", 0);
  c.wait("node2 holds shards again", [&] { return c.owns_shards("node2"); }, 60s);
  c.verify(three, three);
  std::cout << "kill: drivers done after " << done_at << " s; max latency " << ms(after)
            << (after > before ? " (after the kill)" : " (before the kill; after it less)")
            << ", before the kill " << ms(before) << "\n  " << latencies(c, {"node1", "node3"}) << "\n";
}

TEST_CASE("cluster: a paused owner is fenced when it resumes and no deposit is lost or stored twice",
          "[cluster-process][pause]") {
  cluster_fixture c;
  // Few accounts and many of node1's deposits at once, so that commands wait at node1's
  // aggregates when it is stopped: when it resumes they must find out that node1 no
  // longer holds their shards (before their command, or by the store's refusal), and
  // node1's first membership round stops the aggregates of the shards it lost.
  c.accounts = 24;
  c.extra_args["node1"] = {"--drive.window=256"};
  const size_t per_node = 3000;
  start_three(c, per_node);
  c.wait("10% of the deposits are acknowledged", [&] { return c.acked_total(three) >= 3 * per_node / 10; }, 240s);
  REQUIRE_FALSE(c.owned("node1").empty());
  c.process("node1").signal(SIGSTOP);
  double stopped_at = c.seconds();
  c.say("SIGSTOP node1, which holds " + std::to_string(c.owned("node1").size()) + " shards");
  c.wait("node2 and node3 hold every shard and node1 is not live", [&] {
    auto s = c.status("node2");
    return s.value("all_shards_owned", false) && !lists(c.live_members("node2"), "node1") &&
           count_shards(c, {"node2", "node3"}) == c.shards;
  }, 30s);
  auto others = c.acked_total({"node2", "node3"});
  c.wait("node2 and node3 keep writing", [&] { return c.acked_total({"node2", "node3"}) >= others + 100; }, 30s);
  auto pause = 3 * c.lease_ttl - std::chrono::milliseconds{static_cast<int64_t>((c.seconds() - stopped_at) * 1000)};
  if (pause.count() > 0) std::this_thread::sleep_for(pause);
  c.process("node1").signal(SIGCONT);
  c.say("SIGCONT node1 after " + std::to_string(c.seconds() - stopped_at) + " s");
  // node1's aggregates find out that it lost their shards: at its first round after the
  // pause or before their next command (fenced_local), or by the store's refusal of an
  // append under the old epoch (fenced_store).
  c.wait("node1 counts aggregates fenced", [&] {
    auto s = c.status("node1");
    return s.contains("cluster") &&
           s["cluster"].value("fenced_local", 0) + s["cluster"].value("fenced_store", 0) > 0;
  }, 30s);
  std::cout << "pause: node1 cluster counters " << c.status("node1")["cluster"].dump() << "\n";
  wait_drivers(c, three);
  c.wait("node1 holds shards again", [&] { return c.owns_shards("node1"); }, 60s);
  c.verify(three, three);
}

TEST_CASE("cluster: a member joining under load takes its share of the shards",
          "[cluster-process][join]") {
  cluster_fixture c;
  const size_t per_node = 3000;
  start_three(c, per_node);
  c.wait("30% of the deposits are acknowledged", [&] { return c.acked_total(three) >= 3 * per_node * 3 / 10; }, 240s);
  size_t before_max = 0;
  double stall_before = 0;
  for (auto& n : three) {
    before_max = std::max(before_max, c.owned(n).size());
    stall_before = std::max(stall_before, max_latency(c, n));
  }
  c.make_certs("certs", {"node4"});
  c.start("node4", 0);
  const size_t share = c.shards / 4;
  c.wait("node4 holds its share and the others hold fewer", [&] {
    if (!c.owns_shards("node4") || c.owned("node4").size() != share) return false;
    return std::all_of(three.begin(), three.end(), [&](auto& n) { return c.owned(n).size() == share; });
  }, 60s);
  CHECK(before_max > share);
  wait_drivers(c, three);
  double worst = 0;
  for (auto& n : three) worst = std::max(worst, max_latency(c, n));
  c.verify(three, {"node1", "node2", "node3", "node4"});
  std::cout << "join: max latency over the drivers " << ms(worst) << " at the end, " << ms(stall_before)
            << " before node4 joined" << (worst > stall_before ? " (so the handoff stall is the former)" : "")
            << "\n  " << latencies(c, three) << "\n";
}

TEST_CASE("cluster: a member whose certificate another CA signed cannot join",
          "[cluster-process][security]") {
  cluster_fixture c;
  c.start("node1", 0);
  c.start("node2", 0);
  c.wait("node1 and node2 have joined", [&] {
    auto live = c.live_members("node1");
    return c.owns_shards("node1") && c.owns_shards("node2") && lists(live, "node2");
  }, 60s);
  c.make_certs("other-ca", {"node3"});
  auto intruder = c.start_unwatched(c.args("node3", 0, "other-ca"), "node3.log");
  double started = c.seconds();
  bool listed = false;
  auto code = intruder->wait_exit(0ms);
  cairn::test::wait_until([&] {
    listed = listed || lists(c.live_members("node1"), "node3");
    code = intruder->wait_exit(0ms);
    return code.has_value();
  }, 30s);
  if (code) c.say("node3 (another CA) exited with code " + std::to_string(*code) + " after " +
                  std::to_string(c.seconds() - started) + " s");
  // A little longer: it must not show up late either.
  cairn::test::wait_until([&] { return (listed = listed || lists(c.live_members("node1"), "node3")); }, 1s);
  INFO(intruder->log());
  REQUIRE(code.has_value());
  CHECK(*code == 3);
  CHECK_THAT(intruder->log(), Catch::Contains("cannot join"));
  CHECK_THAT(intruder->log(), Catch::Contains("TLS"));
  CHECK_FALSE(listed);
  CHECK(c.process("node1").running());
  CHECK(c.process("node2").running());
}

TEST_CASE("cluster: a member without certificates refuses to start unless insecure",
          "[cluster-process][security]") {
  cluster_fixture c;
  c.start("node1", 0);
  c.wait("node1 has joined", [&] { return c.owns_shards("node1"); }, 60s);
  auto bare = c.start_unwatched(c.args("node9", 0, ""), "node9.log");
  auto code = bare->wait_exit(30s);
  INFO(bare->log());
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  CHECK_THAT(bare->log(), Catch::Contains("insecure = true"));
  CHECK_FALSE(c.member_row_exists("node9"));
  CHECK_FALSE(lists(c.live_members("node1"), "node9"));
}

// The checker itself: a sound store passes; a deposit stored twice, an acknowledged one
// that is missing and a read model behind the store each fail it.
TEST_CASE("cluster: cluster_bank_verify finds a deposit stored twice and a lost one and a stale read model",
          "[cluster-process][verify]") {
  cluster_fixture c;
  cairn::postgres_options o;
  o.schema = c.schema;
  auto store = cairn::open_postgres_journal(c.url, o);
  REQUIRE(store.has_value());
  auto append = [&](const std::string& id, bank::account::event_type ev, const std::string& key) {
    cairn::metadata meta;
    if (!key.empty()) meta.entries.emplace_back("idempotency-key", key);
    cairn::append_request r{cairn::stream_id{"account", id}, cairn::expected_version::any,
                            {cairn::variant_codec<bank::account::event_type>::encode(ev, meta)}};
    auto done = (*store)->append_one(std::move(r));
    REQUIRE(done.has_value());
    return *done;
  };
  append("acct-0", bank::opened{"a"}, "");
  auto k1 = append("acct-0", bank::deposited{5}, "k1");
  append("acct-1", bank::opened{"b"}, "");
  auto k2 = append("acct-1", bank::deposited{3}, "k2");
  auto line = [](const char* key, const char* id, int amount, const cairn::append_result& r) {
    return std::string(key) + " " + id + " " + std::to_string(amount) + " " +
           std::to_string(r.last_version) + " " + std::to_string(r.last_position) + "\n";
  };
  std::ofstream{c.path("n.acks")} << line("k1", "acct-0", 5, k1) << line("k2", "acct-1", 3, k2);
  nlohmann::json status{{"name", "n"},
                        {"projection", {{"position", k2.last_position}, {"events", 4}, {"total", 8},
                                        {"accounts", 2},
                                        {"digest", cluster_sample::balances_digest({{"acct-0", 5}, {"acct-1", 3}})}}}};
  std::ofstream{c.path("n.json")} << status.dump();
  std::vector<std::string> args{"--postgres-url", c.url, "--postgres-schema", c.schema,
                                "--acks", c.path("n.acks"), "--status", c.path("n.json")};
  auto sound = cairn::test::run_to_end(CAIRN_CLUSTER_VERIFY, args, c.path("verify1.log"), 60s);
  INFO(sound.second);
  CHECK(sound.first == 0);
  CHECK_THAT(sound.second, Catch::Contains("verification: PASSED"));

  append("acct-1", bank::deposited{3}, "k2"); // the retry stored twice
  std::ofstream{c.path("n.acks"), std::ios::app} << "k3 acct-0 1 3 99\n"; // acknowledged, never stored
  auto broken = cairn::test::run_to_end(CAIRN_CLUSTER_VERIFY, args, c.path("verify2.log"), 60s);
  INFO(broken.second);
  CHECK(broken.first == 1);
  CHECK_THAT(broken.second, Catch::Contains("DUPLICATE: key k2"));
  CHECK_THAT(broken.second, Catch::Contains("k3 is not in the store"));
  CHECK_THAT(broken.second, Catch::Contains("FAIL: mismatch: n projection"));

  auto usage = cairn::test::run_to_end(CAIRN_CLUSTER_VERIFY, {"--acks"}, c.path("verify3.log"), 60s);
  CHECK(usage.first == 2);
}
