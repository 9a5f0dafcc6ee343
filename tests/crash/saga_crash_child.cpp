// The process the saga crash test kills: a node on a file store running the bank's
// transfer saga.
//
//   saga_crash_child DATA_DIR run ROUND   request transfers from many closed-loop
//                                         clients until SIGKILLed (prints "ready")
//   saga_crash_child DATA_DIR drain       request nothing; let the saga finish every
//                                         transfer already requested, then exit 0
//
// The accounts c0..c16 are set up by the test before the first round.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include <cairn/file_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>

#include "bank/account.hpp"
#include "bank/transfer.hpp"
#include "bank/transfer_saga.hpp"
#include "bank/transfers.hpp"

namespace {

constexpr int accounts = 17; // c16 holds no money: its transfers are refused
constexpr int clients = 32;

struct requester {
  cairn::node* node;
  std::string round;
  std::mutex m; // reply handlers run on several threads
  std::mt19937 rng{std::random_device{}()};
  uint64_t next = 0;

  void send(int client) {
    std::unique_lock<std::mutex> g{m};
    auto n = ++next;
    auto from = static_cast<int>(rng() % accounts);
    auto to = static_cast<int>(rng() % accounts);
    if (to == from) to = (from + 1) % accounts;
    // One in ten goes to an account that does not exist: refused deposit, refund.
    auto payee = rng() % 10 == 0 ? "ghost-" + std::to_string(n) : "c" + std::to_string(to);
    auto amount = static_cast<int64_t>(1 + rng() % 200);
    g.unlock();
    node->send<bank::transfer>("r" + round + "-" + std::to_string(n),
                               bank::request_transfer{"c" + std::to_string(from), payee, amount},
                               [this, client](auto) { send(client); });
  }
};

} // namespace

int main(int argc, char** argv) {
  if (argc < 3 || (std::strcmp(argv[2], "run") == 0 && argc != 4)) {
    std::fprintf(stderr, "usage: saga_crash_child DATA_DIR run ROUND | DATA_DIR drain\n");
    return 2;
  }
  auto store = cairn::open_file_journal(argv[1]);
  if (!store) {
    std::fprintf(stderr, "open: %s\n", store.error().describe().c_str());
    return 1;
  }
  cairn::node_config cfg;
  cfg.options.log_level = "warn";
  cairn::node node{cfg, *store};
  cairn::saga_options opts;
  opts.checkpoint_every = 32; // checkpoint often, so restarts resume from checkpoints too
  if (!node.register_aggregate<bank::account>() || !node.register_aggregate<bank::transfer>() ||
      !node.register_projection<bank::transfers>() || !node.register_saga<bank::transfer_saga>(opts))
    return 1;

  if (std::strcmp(argv[2], "run") == 0) {
    // Allocated for the process's lifetime: reply handlers use it until the kill.
    auto* r = new requester{&node, argv[3]};
    for (int k = 0; k < clients; ++k) r->send(k);
    std::fprintf(stdout, "ready\n");
    std::fflush(stdout);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds{1}); // until SIGKILL
  }

  // Drain: wait until every requested transfer has an outcome.
  auto head = (*store)->head_position();
  auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes{2};
  for (;;) {
    auto left = node.query<bank::transfers>([](const bank::transfers& t) { return t.in_flight(); },
                                            head);
    if (left && *left == 0) break;
    if (std::chrono::steady_clock::now() > give_up) {
      std::fprintf(stderr, "drain: transfers still in flight: %s\n",
                   left ? std::to_string(*left).c_str() : left.error().describe().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  std::fprintf(stdout, "drained\n");
  return 0;
}
