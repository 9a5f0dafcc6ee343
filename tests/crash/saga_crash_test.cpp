// Saga crash safety with real processes: a child runs transfers through the transfer
// saga on a file store and is SIGKILLed at random moments. After each kill the test
// restarts it to let the sagas finish (sometimes killing that restart too), then
// checks in the store that every transfer completed or was compensated, that each
// account step of a transfer happened exactly once, and that no money was made or
// lost.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cairn/file_journal.hpp>
#include <cairn/saga.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "bank/transfer.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr int64_t initial_balance = 10'000;
constexpr int funded_accounts = 16; // c0..c15; c16 is opened empty

struct child {
  pid_t pid = -1;
  int out = -1; // its stdout
};

child start(const fs::path& data, const std::vector<std::string>& args) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<const char*> argv{CAIRN_SAGA_CRASH_CHILD, data.c_str()};
    for (auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    execv(CAIRN_SAGA_CRASH_CHILD, const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  close(fds[1]);
  c.out = fds[0];
  return c;
}

/// Reads the child's stdout until `line` appears; false on EOF or after `limit`.
bool wait_for_line(const child& c, const std::string& line, std::chrono::seconds limit) {
  std::string seen;
  auto until = std::chrono::steady_clock::now() + limit;
  while (seen.find(line + "\n") == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{c.out, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[256];
    auto n = read(c.out, buf, sizeof buf);
    if (n <= 0) return false;
    seen.append(buf, static_cast<size_t>(n));
  }
  return true;
}

/// SIGKILLs the child and reaps it; true if it was still running.
bool kill_child(child& c) {
  kill(c.pid, SIGKILL);
  int status = 0;
  waitpid(c.pid, &status, 0);
  close(c.out);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/// Waits for the child to exit on its own; its exit code, or -1 (then it is killed).
int wait_exit(child& c, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(c.pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      kill_child(c);
      return -1;
    }
    std::this_thread::sleep_for(10ms);
  }
  close(c.out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void seed_accounts(const fs::path& data) {
  auto store = cairn::open_file_journal(data.string());
  REQUIRE(store);
  using codec = cairn::variant_codec<bank::account::event_type>;
  for (int i = 0; i <= funded_accounts; ++i) {
    cairn::append_request req{{"account", "c" + std::to_string(i)}, cairn::expected_version::no_stream, {}};
    req.events.push_back(codec::encode(bank::opened{"owner"}));
    if (i < funded_accounts) req.events.push_back(codec::encode(bank::deposited{initial_balance}));
    REQUIRE((*store)->append_one(std::move(req)));
  }
}

struct transfer_seen {
  bank::transfer_requested request;
  std::string outcome; // "", "transfer_completed" or "transfer_failed"
  std::string reason;
  int outcomes = 0;
  std::multiset<std::string> steps; // "<type> <account> <amount>" of the account events it caused
};

struct totals {
  uint64_t completed = 0, refunded = 0, refused = 0;
};

/// Checks the store after a drained restart; returns what the transfers came to.
totals check_store(const fs::path& data) {
  auto store = cairn::open_file_journal(data.string());
  REQUIRE(store);
  std::map<std::string, transfer_seen> transfers;
  std::map<std::string, int64_t> balances;
  using account_codec = cairn::variant_codec<bank::account::event_type>;
  using transfer_codec = cairn::variant_codec<bank::transfer::event_type>;
  for (uint64_t pos = 1;;) {
    auto chunk = (*store)->read_all(pos, 4096);
    REQUIRE(chunk);
    if (chunk->empty()) break;
    for (auto& e : *chunk) {
      if (e.stream.category == "account") {
        auto ev = account_codec::decode(e);
        REQUIRE(ev);
        int64_t delta = 0;
        if (auto d = std::get_if<bank::deposited>(&*ev)) delta = d->amount;
        if (auto w = std::get_if<bank::withdrawn>(&*ev)) delta = -w->amount;
        balances[e.stream.id] += delta;
        if (e.meta.find(std::string{cairn::command_id_key}) && delta != 0)
          transfers[e.meta.correlation_id].steps.insert(
            e.type + " " + e.stream.id + " " + std::to_string(delta < 0 ? -delta : delta));
      } else if (e.stream.category == "transfer") {
        auto ev = transfer_codec::decode(e);
        REQUIRE(ev);
        auto& t = transfers[e.stream.id];
        if (auto r = std::get_if<bank::transfer_requested>(&*ev)) {
          t.request = *r;
        } else {
          t.outcome = e.type;
          ++t.outcomes;
          if (auto f = std::get_if<bank::transfer_failed>(&*ev)) t.reason = f->reason;
        }
      }
    }
    pos = chunk->back().position + 1;
  }
  int64_t money = 0;
  for (auto& [id, b] : balances) {
    INFO("account " << id);
    REQUIRE(b >= 0);
    money += b;
  }
  REQUIRE(money == initial_balance * funded_accounts);

  totals out;
  for (auto& [id, t] : transfers) {
    INFO("transfer " << id);
    REQUIRE_FALSE(t.request.from.empty()); // every saga-caused step belongs to a requested transfer
    REQUIRE(t.outcomes == 1);
    auto amount = std::to_string(t.request.amount);
    std::multiset<std::string> want;
    if (t.outcome == "transfer_completed") {
      want = {"withdrawn " + t.request.from + " " + amount, "deposited " + t.request.to + " " + amount};
      ++out.completed;
    } else if (t.reason.rfind("credit refused", 0) == 0) {
      want = {"withdrawn " + t.request.from + " " + amount,
              "deposited " + t.request.from + " " + amount};
      ++out.refunded;
    } else {
      ++out.refused; // the withdrawal was refused: nothing moved
    }
    REQUIRE(t.steps == want);
  }
  store->reset(); // release the writer lock before verifying and the next round
  auto report = cairn::verify_file_journal(data.string());
  REQUIRE(report);
  INFO((report->problems.empty() ? std::string{} : report->problems.front()));
  REQUIRE(report->problems.empty());
  return out;
}

/// Requested transfers that have no outcome yet (read right after a kill).
uint64_t unfinished_transfers(const fs::path& data) {
  auto store = cairn::open_file_journal(data.string());
  REQUIRE(store);
  auto streams = (*store)->list_streams();
  REQUIRE(streams);
  uint64_t open = 0;
  for (auto& s : *streams)
    if (s.category == "transfer") {
      auto v = (*store)->stream_version(s);
      REQUIRE(v);
      if (*v == 1) ++open; // requested, nothing after
    }
  return open;
}

} // namespace

TEST_CASE("transfers complete or are compensated, once, after SIGKILL mid-transfer, 8 rounds") {
  auto dir = fs::temp_directory_path() / ("cairn-saga-crash-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto data = dir / "data";
  seed_accounts(data);
  std::mt19937 rng{std::random_device{}()};
  totals last;
  uint64_t interrupted = 0; // transfers caught mid-way by the kills
  for (int round = 1; round <= 8; ++round) {
    INFO("round " << round);
    auto runner = start(data, {"run", std::to_string(round)});
    REQUIRE(wait_for_line(runner, "ready", 60s));
    std::this_thread::sleep_for(std::chrono::milliseconds{50 + rng() % 400});
    REQUIRE(kill_child(runner)); // it was still running: it did not fail on its own
    interrupted += unfinished_transfers(data);

    if (round % 2 == 0) {
      // Kill the restart too, while it is resuming the interrupted sagas.
      auto early = start(data, {"drain"});
      std::this_thread::sleep_for(std::chrono::milliseconds{rng() % 300});
      kill_child(early);
    }
    auto drain = start(data, {"drain"});
    REQUIRE(wait_exit(drain, 180s) == 0);
    last = check_store(data);
  }
  // The rounds did real work, down every path of the saga.
  INFO("completed " << last.completed << ", refunded " << last.refunded << ", refused "
                    << last.refused << ", interrupted by kills " << interrupted);
  REQUIRE(last.completed > 100);
  REQUIRE(last.refunded > 0);
  REQUIRE(last.refused > 0);
  REQUIRE(interrupted > 0);
  fs::remove_all(dir);
}
