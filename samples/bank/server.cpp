// bank_server: the bank sample as a service. It hosts the account aggregate and the
// balances and top-accounts read models on a node (file store by default) and serves
// them over HTTP (cairn::http, docs/http.md) with a live page (web/), until SIGINT or
// SIGTERM.
//
//   bank_server --data=./data --accounts=10 --cairn.http.port=8080
//   open http://127.0.0.1:8080/
#include <csignal>
#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include <caf/config_option_adder.hpp>

#include <cairn/file_journal.hpp>
#include <cairn/http_server.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>

#include "bank/http_api.hpp"
#include "bank/latch.hpp"

namespace {

struct server_config : cairn::node_config {
  size_t accounts = 10;
  std::string store = "file";
  std::string data = "./data";
  std::string sync = "always";
  bool fresh = false;
  cairn::http_options http;
  server_config() {
    caf::config_option_adder{custom_options_, "global"}
      .add(accounts, "accounts,a", "open accounts acct-0 .. acct-(N-1) at start")
      .add(store, "store", "event store: file (default) or memory")
      .add(data, "data", "data folder of the file store")
      .add(sync, "sync", "file store sync policy: always, interval or never")
      .add(fresh, "fresh", "delete the data folder's events first");
    http.enabled = true; // the point of this program
    cairn::bind_http_options(custom_options_, http);
  }
};

/// The web/ folder next to the executable (the build copies it there).
std::string default_web_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string{"web"} : (exe.parent_path() / "web").string();
}

} // namespace

int main(int argc, char** argv) {
  server_config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::fprintf(stderr, "bad options: %s\n", caf::to_string(err).c_str());
    return 2;
  }
  if (cfg.cli_helptext_printed) return 0;
  if (!cfg.http.enabled) {
    std::fprintf(stderr, "cairn.http.enabled is false: nothing to serve\n");
    return 2;
  }
  if (cfg.http.static_dir.empty()) cfg.http.static_dir = default_web_dir();

  std::shared_ptr<cairn::journal> store;
  std::shared_ptr<cairn::snapshot_store> snapshots;
  if (cfg.store == "memory") {
    store = cairn::make_memory_journal();
  } else {
    auto sync = cairn::parse_sync_policy(cfg.sync);
    if (!sync) {
      std::fprintf(stderr, "%s\n", sync.error().describe().c_str());
      return 2;
    }
    std::error_code ec;
    if (cfg.fresh) std::filesystem::remove_all(cfg.data, ec);
    cairn::file_journal_options opts;
    opts.sync = *sync;
    auto opened = cairn::open_file_journal(cfg.data + "/events", opts);
    auto snaps = cairn::open_file_snapshot_store(cfg.data + "/snapshots");
    if (!opened || !snaps) {
      std::fprintf(stderr, "cannot open the store in %s\n", cfg.data.c_str());
      return 1;
    }
    store = *opened;
    snapshots = *snaps;
  }

  // Signals are taken by sigwait() below, so block them before any thread starts
  // (and un-ignore them: a shell starts background jobs with SIGINT ignored).
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  cairn::node node{cfg, store, snapshots};
  if (!node.register_aggregate<bank::account>() || !node.register_projection<bank::balances>() ||
      !node.register_projection<bank::top_accounts>())
    return 1;
  // Open the accounts (a no-op for those already open).
  bank::latch opened{cfg.accounts};
  std::atomic<size_t> failures{0};
  for (size_t i = 0; i < cfg.accounts; ++i)
    node.send<bank::account>("acct-" + std::to_string(i), bank::open{"owner-" + std::to_string(i)},
                             [&](cairn::expected<cairn::command_reply> r) {
                               if (!r) ++failures;
                               opened.count_down();
                             });
  opened.wait();
  if (failures > 0) {
    std::fprintf(stderr, "%zu accounts failed to open\n", failures.load());
    return 1;
  }

  cairn::http_server http{node, cfg.http};
  bank::expose_over_http(http);
  if (auto ok = http.start(); !ok) {
    std::fprintf(stderr, "%s\n", ok.error().describe().c_str());
    return 1;
  }
  std::printf("bank_server: serving http://%s:%u/\n", cfg.http.address.c_str(), http.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  http.stop();
  return 0;
}
