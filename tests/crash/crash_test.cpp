// Crash safety with real processes: a child appends under load and records each
// acknowledged append; the test SIGKILLs it at random moments, 20 rounds, and after
// each one checks that the store reopens with every acknowledged event present,
// intact and in order, and with no holes in any version sequence.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cairn/file_journal.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct ack {
  int account;
  uint64_t version;
  uint64_t position;
  int64_t amount;
};

std::vector<ack> read_acks(const fs::path& file) {
  std::vector<ack> acks;
  std::ifstream in{file};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    ack a{};
    // A line cut by the kill has no newline and fails to parse fully: skip it.
    if (fields >> a.account >> a.version >> a.position >> a.amount) acks.push_back(a);
  }
  return acks;
}

/// Lines in the ack file (a line cut by a kill counts too).
size_t count_lines(const fs::path& file) {
  std::ifstream in{file};
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

/// Waits until the child has acknowledged `want` appends in this round, or has died,
/// or a minute is over: then false. Under load the child may take long to start.
bool wait_for_acks(pid_t pid, const fs::path& file, size_t want) {
  auto until = std::chrono::steady_clock::now() + 60s;
  while (count_lines(file) < want) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

pid_t start_child(const fs::path& data, const fs::path& acks, int round) {
  pid_t pid = fork();
  if (pid == 0) {
    execl(CAIRN_CRASH_CHILD, CAIRN_CRASH_CHILD, data.c_str(), acks.c_str(),
          std::to_string(round).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

} // namespace

TEST_CASE("acknowledged appends survive SIGKILL at random moments, 20 rounds") {
  auto dir = fs::temp_directory_path() / ("cairn-crash-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto data = dir / "data";
  std::mt19937 rng{std::random_device{}()};
  std::map<std::pair<int, uint64_t>, ack> acknowledged; // all rounds so far
  size_t last_ack_count = 0;
  // Most rounds kill the child while it appends: once it has acknowledged some appends
  // in the round (however long a loaded machine takes to get there), after a random
  // delay. Every fifth kills it at a random moment from its start (opening, recovery).
  constexpr size_t acks_per_round = 80;
  for (int round = 1; round <= 20; ++round) {
    auto ack_file = dir / ("acks-" + std::to_string(round));
    auto pid = start_child(data, ack_file, round);
    REQUIRE(pid > 0);
    INFO("round " << round);
    if (round % 5 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds{rng() % 400});
    } else {
      bool appending = wait_for_acks(pid, ack_file, acks_per_round);
      if (!appending) kill(pid, SIGKILL); // do not leave it running if it is stuck
      REQUIRE(appending);
      std::this_thread::sleep_for(std::chrono::milliseconds{rng() % 300});
    }
    REQUIRE(kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status)); // it was still running: it did not fail on its own

    for (auto& a : read_acks(ack_file)) acknowledged[{a.account, a.version}] = a;
    auto store = cairn::open_file_journal(data.string());
    REQUIRE(store);
    // Every acknowledged event is there, at its version and position, intact.
    for (auto& [key, a] : acknowledged) {
      INFO("account c" << a.account << " version " << a.version);
      auto events = (*store)->read_stream({"account", "c" + std::to_string(a.account)},
                                          a.version, 1);
      REQUIRE(events);
      REQUIRE(events->size() == 1);
      auto& e = events->front();
      REQUIRE(e.position == a.position);
      auto decoded = cairn::variant_codec<bank::account::event_type>::decode(e);
      REQUIRE(decoded);
      REQUIRE(std::get<bank::deposited>(*decoded).amount == a.amount);
    }
    store->reset(); // release the lock before verifying and the next round
    auto report = cairn::verify_file_journal(data.string());
    REQUIRE(report);
    INFO((report->problems.empty() ? std::string{} : report->problems.front()));
    REQUIRE(report->problems.empty());
    last_ack_count = acknowledged.size();
  }
  // The rounds did real work: the child acknowledged appends under load (16 rounds
  // of at least acks_per_round each).
  REQUIRE(last_ack_count >= 16 * acks_per_round);
  fs::remove_all(dir);
}
