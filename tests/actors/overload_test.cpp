// A node under a flood of commands: it bounds what it holds (max_commands_in_flight,
// max_queued_commands), answers beyond those bounds at once with "overloaded", answers
// every command within its timeout, and keeps its memory bounded.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <cairn/journal_wrapper.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/node.hpp>
#include <cairn/node_config.hpp>

#include "bank/account.hpp"

using namespace cairn;
using steady = std::chrono::steady_clock;

namespace {

/// A store as slow as a disk that takes 100 µs per append, so that a flood outruns it.
class slow_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    std::this_thread::sleep_for(std::chrono::microseconds{100} * batch.size());
    return journal_wrapper::append(std::move(batch));
  }
  std::unique_ptr<pending_append> begin_append(std::vector<append_request> batch) override {
    std::this_thread::sleep_for(std::chrono::microseconds{100} * batch.size());
    return target().begin_append(std::move(batch));
  }
  std::vector<expected<append_result>> finish_append(
    std::unique_ptr<pending_append> pending) override {
    return target().finish_append(std::move(pending));
  }
};

/// The resident set now, from /proc/self/statm.
uint64_t rss_bytes() {
  unsigned long size = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? uint64_t{resident} * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

#if defined(__SANITIZE_ADDRESS__)
// ASan keeps freed memory in its quarantine (256 MiB by default) before reusing it.
constexpr uint64_t allocator_slack = uint64_t{320} << 20;
#else
constexpr uint64_t allocator_slack = 0;
#endif

/// Counts a flood's answers by kind.
struct tally {
  std::mutex m;
  std::condition_variable all_in;
  uint64_t answered = 0, accepted = 0, node_full = 0, aggregate_full = 0, other = 0;
  std::string first_other, node_full_text, aggregate_full_text;
  steady::duration slowest{0};

  void add(const expected<command_reply>& r, steady::time_point sent, uint64_t total) {
    auto took = steady::now() - sent;
    std::lock_guard<std::mutex> g{m};
    slowest = std::max(slowest, took);
    if (r) {
      ++accepted;
    } else if (is_unavailable(r.error()) &&
               r.error().message().find("overloaded: the node") != std::string::npos) {
      if (node_full++ == 0) node_full_text = r.error().message();
    } else if (is_unavailable(r.error()) &&
               r.error().message().find("overloaded: aggregate") != std::string::npos) {
      if (aggregate_full++ == 0) aggregate_full_text = r.error().message();
    } else if (other++ == 0) {
      first_other = r.error().describe();
    }
    if (++answered == total) all_in.notify_all();
  }
};

} // namespace

TEST_CASE("a flooded node answers every command in time, overloaded at once beyond its bounds, "
          "within a memory bound") {
  node_config cfg;
  cfg.options.log_level = "warn";
  cfg.options.command_timeout = std::chrono::seconds{10};
  cfg.options.max_commands_in_flight = 1000;
  cfg.options.aggregates.max_queued_commands = 100;
  auto store = std::make_shared<slow_journal>(make_memory_journal());
  node n{cfg, store};
  REQUIRE(n.register_aggregate<bank::account>());
  constexpr int accounts = 20;
  for (int i = 0; i < accounts; ++i)
    REQUIRE(n.execute<bank::account>("acc-" + std::to_string(i), bank::open{"owner"}));

  // The flood: deposits (each an append) and 16 KiB re-opens (no-ops, yet queued behind
  // the deposits), in runs of 40 of each kind, half to one hot account and half round
  // robin over the others, sent as fast as one thread can. Held without bounds, they
  // would take up to 800 MiB.
  constexpr uint64_t total = 100'000;
  const std::string big_owner(16 * 1024, 'o');
  auto baseline = rss_bytes();
  std::atomic<uint64_t> peak{baseline};
  std::atomic<bool> sampling{true};
  std::thread sampler{[&] {
    while (sampling) {
      auto now = rss_bytes();
      if (now > peak) peak = now;
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
  }};
  tally t;
  for (uint64_t i = 0; i < total; ++i) {
    auto id = "acc-" + std::to_string(i % 2 == 0 ? 0 : 1 + (i / 2) % (accounts - 1));
    auto sent = steady::now();
    auto on_reply = [&t, sent](expected<command_reply> r) { t.add(r, sent, total); };
    if ((i / 40) % 2 == 0) n.send<bank::account>(id, bank::deposit{1}, on_reply);
    else n.send<bank::account>(id, bank::open{big_owner}, on_reply);
  }
  {
    std::unique_lock<std::mutex> g{t.m};
    t.all_in.wait_for(g, std::chrono::seconds{60}, [&] { return t.answered == total; });
  }
  sampling = false;
  sampler.join();

  std::lock_guard<std::mutex> g{t.m};
  // The figures docs/overload.md and bench/RESULTS.md quote (visible with -s or ctest -V).
  std::printf("flood of %llu commands: accepted %llu, node full %llu, aggregate full %llu; "
              "slowest answer %lld ms; RSS grew %llu MiB\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(t.accepted),
              static_cast<unsigned long long>(t.node_full),
              static_cast<unsigned long long>(t.aggregate_full),
              static_cast<long long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(t.slowest).count()),
              static_cast<unsigned long long>((peak - baseline) >> 20));
  INFO("accepted " << t.accepted << ", node full " << t.node_full << ", aggregate full "
                   << t.aggregate_full << ", other " << t.other << " (" << t.first_other
                   << "); slowest answer "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(t.slowest).count()
                   << " ms; RSS grew " << ((peak - baseline) >> 20) << " MiB");
  // Every command was answered, each within its timeout (plus the sweep's 50 ms and
  // slack for a busy machine), with a success or "overloaded".
  REQUIRE(t.answered == total);
  CHECK(t.slowest < cfg.options.command_timeout + std::chrono::seconds{2});
  CHECK(t.other == 0);
  CHECK(t.accepted > 0);
  // Both bounds were reached, and their answers name the limit.
  CHECK(t.node_full > 0);
  CHECK(t.node_full_text.find("1000 commands") != std::string::npos);
  CHECK(t.aggregate_full > 0);
  CHECK(t.aggregate_full_text.find("100 waiting") != std::string::npos);
  // The node held at most 1,000 commands of at most 16 KiB: a few dozen MiB. (With the
  // bounds off, this flood grew it by about 510 MiB.)
  CHECK(peak - baseline < (uint64_t{192} << 20) + allocator_slack);
  // Nothing acknowledged is missing: every accepted deposit is stored, and the node
  // still serves commands.
  auto stored = store->head_position();
  uint64_t deposits = 0;
  for (int i = 0; i < accounts; ++i) {
    auto version = store->stream_version({"account", "acc-" + std::to_string(i)});
    REQUIRE(version);
    deposits += *version - 1;
  }
  CHECK(stored == accounts + deposits);
  CHECK(deposits <= t.accepted);
  CHECK(n.execute<bank::account>("acc-0", bank::deposit{1}));
}

TEST_CASE("with the bounds off (0), a node still answers a burst") {
  node_config cfg;
  cfg.options.log_level = "warn";
  cfg.options.max_commands_in_flight = 0;
  cfg.options.aggregates.max_queued_commands = 0;
  node n{cfg, make_memory_journal()};
  REQUIRE(n.register_aggregate<bank::account>());
  REQUIRE(n.execute<bank::account>("acc-0", bank::open{"owner"}));
  constexpr uint64_t total = 5000;
  tally t;
  auto start = steady::now();
  for (uint64_t i = 0; i < total; ++i)
    n.send<bank::account>("acc-0", bank::deposit{1},
                          [&t, start](expected<command_reply> r) { t.add(r, start, total); });
  std::unique_lock<std::mutex> g{t.m};
  t.all_in.wait_for(g, std::chrono::seconds{60}, [&] { return t.answered == total; });
  CHECK(t.accepted == total);
  CHECK(t.node_full + t.aggregate_full + t.other == 0);
}

TEST_CASE("the bounds are read from the [cairn] section") {
  node_config cfg;
  const char* argv[] = {"test", "--cairn.max-commands-in-flight=77",
                        "--cairn.max-queued-commands=5"};
  REQUIRE(!cfg.parse(3, const_cast<char**>(argv)));
  CHECK(cfg.options.max_commands_in_flight == 77);
  CHECK(cfg.options.aggregates.max_queued_commands == 5);
  // The defaults.
  node_options defaults;
  CHECK(defaults.max_commands_in_flight == 65536);
  CHECK(defaults.aggregates.max_queued_commands == 1024);
}
