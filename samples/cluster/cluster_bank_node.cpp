// cluster_bank_node: one member of the cluster sample. It hosts the bank's account
// aggregate and a ledger read model, can drive deposits through the cluster, and
// writes what it sees to a status file. SIGTERM or SIGINT: hand off and leave.
// Exit codes: 0 after a graceful leave, 2 configuration refused, 3 could not join.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include <cairn/cluster_member.hpp>
#include <cairn/cluster_membership.hpp>

#include "balances_digest.hpp"
#include "deposit_driver.hpp"
#include "ledger.hpp"

namespace {

struct bank_node_config : cairn::cluster_config {
  cluster_sample::drive_settings drive;
  std::string status_file;
  caf::timespan status_interval{std::chrono::milliseconds{200}};

  bank_node_config() {
    caf::config_option_adder{custom_options_, "drive"}
      .add(drive.commands, "commands", "deposits this member sends (0: none)")
      .add(drive.accounts, "accounts", "accounts acct-0 .. acct-(N-1)")
      .add(drive.window, "window", "deposits outstanding at once")
      .add(drive.ack_file, "ack-file", "append one line per acknowledged deposit")
      .add(drive.only, "only", "any, or local/remote: only accounts whose shard is held here/elsewhere")
      .add(drive.wait_members, "wait-members", "start once this many members share the shards");
    caf::config_option_adder{custom_options_, "status"}
      .add(status_file, "file", "JSON status, rewritten every interval")
      .add(status_interval, "interval", "how often the status file is written");
  }
};

void write_status(const std::string& path, cairn::cluster_member& member, bool joined,
                  const cluster_sample::deposit_driver* driver, bool projections) {
  using nlohmann::json;
  auto s = member.status();
  json j;
  j["name"] = s.self;
  j["pid"] = ::getpid();
  j["port"] = s.port;
  j["joined"] = joined;
  j["members_live"] = s.live_members;
  j["owned_shards"] = s.owned_shards;
  j["all_shards_owned"] = s.all_shards_owned;
  j["balanced"] = s.balanced;
  j["cluster"] = {{"forwarded", s.forwarded}, {"received", s.received}, {"rerouted", s.rerouted},
                  {"fenced_local", s.fenced_local}, {"fenced_store", s.fenced_store}};
  if (projections) {
    auto view = member.local().query<cluster_sample::ledger>([](const cluster_sample::ledger& l) {
      return json{{"position", l.position}, {"events", l.events}, {"total", l.total},
                  {"accounts", l.by_account.size()},
                  {"digest", cluster_sample::balances_digest(l.by_account)}};
    });
    if (view) j["projection"] = *view;
  }
  if (driver) {
    auto d = driver->stats();
    j["drive"] = {{"target", d.target}, {"sent", d.sent}, {"acked", d.acked},
                  {"retries", d.retries}, {"failed", d.failed}, {"done", d.done},
                  {"max_latency_ms", d.max_latency_ms}, {"p50_ms", d.p50_ms}, {"p99_ms", d.p99_ms}};
  }
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << j.dump() << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

} // namespace

int main(int argc, char** argv) {
  // Signals are taken by sigtimedwait below: block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  bank_node_config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "cluster_bank_node: " << cfg.render(err) << "\n";
    return 2;
  }
  if (cfg.cli_helptext_printed) return 0;
  auto started = cairn::cluster_member::start(cfg);
  if (!started) {
    std::cerr << "cluster_bank_node: " << started.error().describe() << "\n";
    return 2;
  }
  auto& member = **started;
  auto& node = member.local();
  bool projections = cfg.cluster.has_role("projections");
  if (auto ok = node.register_aggregate<bank::account>(); !ok) {
    std::cerr << "cluster_bank_node: " << ok.error().describe() << "\n";
    return 2;
  }
  if (projections) node.register_projection<cluster_sample::ledger>();
  if (auto ok = member.join(); !ok) {
    std::cerr << "cluster_bank_node: cannot join: " << ok.error().describe() << "\n";
    return 3;
  }
  std::unique_ptr<cluster_sample::deposit_driver> driver;
  if (cfg.drive.commands > 0) {
    auto start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    auto shards = static_cast<uint32_t>(cfg.cluster.shards);
    for (auto s = member.status(); cfg.drive.wait_members > 0; s = member.status()) {
      auto members = s.live_members.size();
      if (members >= cfg.drive.wait_members && s.balanced) break;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    std::function<bool(const std::string&)> keep;
    if (cfg.drive.only != "any") {
      if (cfg.drive.only != "local" && cfg.drive.only != "remote") {
        std::cerr << "cluster_bank_node: [drive] only must be any, local or remote\n";
        return 2;
      }
      auto held = member.status().owned_shards; // use with wait-members: stable from then on
      bool local = cfg.drive.only == "local";
      keep = [held, shards, local](const std::string& id) {
        auto s = cairn::shard_of(cairn::stream_id{"account", id}, shards);
        return (std::find(held.begin(), held.end(), s) != held.end()) == local;
      };
    }
    driver = std::make_unique<cluster_sample::deposit_driver>(
      node, cfg.drive, cfg.cluster.name + "-" + std::to_string(start_ms), keep);
  }
  auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.status_interval);
  timespec wait{static_cast<time_t>(interval.count() / 1000),
                static_cast<long>(interval.count() % 1000) * 1000000};
  for (;;) {
    if (!cfg.status_file.empty())
      write_status(cfg.status_file, member, true, driver.get(), projections);
    if (sigtimedwait(&stop_signals, nullptr, &wait) > 0) break;
  }
  std::cerr << "cluster_bank_node: " << cfg.cluster.name << " leaving\n";
  driver.reset();
  member.leave();
  if (!cfg.status_file.empty()) write_status(cfg.status_file, member, false, nullptr, false);
  return 0;
}
