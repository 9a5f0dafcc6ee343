// The process the crash test kills: it appends under load to a file store from many
// concurrent aggregates and records every acknowledged append in an ack file, until
// it is SIGKILLed.
//
//   crash_child DATA_DIR ACK_FILE ROUND
//
// Each ack line is "<account> <version> <position> <amount>", written with one
// write(2) after the node acknowledged the command (so it survives the kill).
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <cairn/file_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>

#include "bank/account.hpp"

namespace {

constexpr int accounts = 64;
constexpr int clients = 256;

struct child {
  cairn::node* node;
  int ack_fd;
  int64_t round;
  std::atomic<int64_t> next_amount{0};

  void send(int client) {
    auto account = client % accounts;
    // Unique amounts let the parent tell every acknowledged event apart.
    auto amount = round * 1'000'000'000 + (++next_amount);
    node->send<bank::account>("c" + std::to_string(account), bank::deposit{amount},
                              [this, client, account, amount](auto r) {
                                if (r) {
                                  char line[128];
                                  int n = std::snprintf(line, sizeof line, "%d %llu %llu %lld\n",
                                                        account,
                                                        static_cast<unsigned long long>(r->version),
                                                        static_cast<unsigned long long>(r->position),
                                                        static_cast<long long>(amount));
                                  if (::write(ack_fd, line, static_cast<size_t>(n)) != n) std::_Exit(3);
                                }
                                send(client);
                              });
  }
};

} // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: crash_child DATA_DIR ACK_FILE ROUND\n");
    return 2;
  }
  auto store = cairn::open_file_journal(argv[1]);
  if (!store) {
    std::fprintf(stderr, "open: %s\n", store.error().describe().c_str());
    return 1;
  }
  int ack_fd = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (ack_fd < 0) return 1;
  cairn::node_config cfg;
  cfg.options.log_level = "warn";
  cairn::node node{cfg, *store};
  if (!node.register_aggregate<bank::account>()) return 1;
  for (int a = 0; a < accounts; ++a) {
    auto r = node.execute<bank::account>("c" + std::to_string(a), bank::open{"o"});
    if (!r && !cairn::is_rejected(r.error())) return 1;
  }
  child c{&node, ack_fd, std::atoll(argv[3])};
  for (int k = 0; k < clients; ++k) c.send(k);
  std::fprintf(stdout, "ready\n");
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds{1}); // until SIGKILL
}
