// Snapshots shorten recovery; passivation frees idle aggregates, and their next
// command recovers them transparently.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>

#include <cairn/journal_wrapper.hpp>
#include <cairn/test_node.hpp>

#include "bank/account.hpp"
#include "bank/balances.hpp"

using namespace cairn;
using cairn::testkit::test_node;
using namespace std::chrono_literals;

namespace {

/// Records the from_version of every stream read (what recovery replays).
class recording_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  expected<std::vector<envelope>> read_stream(const stream_id& s, uint64_t from,
                                              size_t max) const override {
    {
      std::lock_guard<std::mutex> g{m};
      reads.push_back(from);
    }
    return journal_wrapper::read_stream(s, from, max);
  }
  std::vector<uint64_t> reads_so_far() const {
    std::lock_guard<std::mutex> g{m};
    return reads;
  }
  mutable std::mutex m;
  mutable std::vector<uint64_t> reads;
};

node_options with(uint64_t snapshot_every, std::chrono::nanoseconds passivate_after) {
  auto o = test_node::quiet();
  o.aggregates.snapshot_every = snapshot_every;
  o.aggregates.passivate_after = passivate_after;
  return o;
}

/// On a node over `store` (snapshots in `snaps`, if any, every `snapshot_every`
/// events): opens account `id`, then deposits `amount` `deposits` times.
void open_and_deposit(std::shared_ptr<journal> store, uint64_t snapshot_every,
                      std::shared_ptr<snapshot_store> snaps, const std::string& id,
                      int deposits, int64_t amount) {
  test_node n{2, std::move(store), with(snapshot_every, 0s), std::move(snaps)};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>(id, bank::open{"ann"}));
  for (int i = 0; i < deposits; ++i)
    REQUIRE(n->execute<bank::account>(id, bank::deposit{amount}));
}

/// Now, as the stores stamp events: a snapshot made by hand is taken "now".
int64_t wall_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Waits until `pred` holds or two seconds pass.
template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

} // namespace

TEST_CASE("recovery starts from the latest snapshot and replays only the events after it") {
  auto store = make_memory_journal();
  auto snaps = make_memory_snapshot_store();
  open_and_deposit(store, 10, snaps, "s1", 24, 10);
  auto snap = snaps->load({"account", "s1"});
  REQUIRE(snap);
  REQUIRE(snap->has_value());
  REQUIRE((*snap)->version == 20); // taken at 10 and 20 of 25 events
  REQUIRE((*snap)->type == "account");

  auto recording = std::make_shared<recording_journal>(store);
  test_node n{2, recording, with(10, 0s), snaps};
  REQUIRE(n->register_aggregate<bank::account>());
  // 240 deposited: withdrawing all of it succeeds only if the state is right.
  auto r = n->execute<bank::account>("s1", bank::withdraw{240});
  REQUIRE(r);
  REQUIRE(r->version == 26);
  // One read checks that the snapshot's last event (20) is still there; the replay
  // then starts after it.
  auto reads = recording->reads_so_far();
  REQUIRE(reads.size() >= 2);
  CHECK(reads[0] == 20);
  CHECK(reads[1] == 21);
}

TEST_CASE("a snapshot of another schema version is ignored and the stream replayed in full") {
  auto store = make_memory_journal();
  auto snaps = make_memory_snapshot_store();
  open_and_deposit(store, 0, nullptr, "s2", 1, 70);
  // A snapshot from an older build that claims a huge balance.
  bank::account rich;
  rich.is_open = true;
  rich.balance = 1'000'000;
  REQUIRE(snaps->save(snapshot{{"account", "s2"}, 2, "account", 99, wall_now_ns(), encode(rich)}));
  auto recording = std::make_shared<recording_journal>(store);
  test_node n{2, recording, with(10, 0s), snaps};
  REQUIRE(n->register_aggregate<bank::account>());
  auto too_much = n->execute<bank::account>("s2", bank::withdraw{71});
  REQUIRE_FALSE(too_much);
  REQUIRE(is_rejected(too_much.error()));
  REQUIRE(n->execute<bank::account>("s2", bank::withdraw{70}));
  REQUIRE(recording->reads_so_far().back() == 1); // replayed from the start
}

TEST_CASE("a snapshot whose bytes do not decode is ignored, never misread") {
  auto store = make_memory_journal();
  auto snaps = make_memory_snapshot_store();
  open_and_deposit(store, 0, nullptr, "s3", 1, 5);
  REQUIRE(snaps->save(snapshot{{"account", "s3"}, 2, "account", 1, wall_now_ns(), {0x02, 0x07}}));
  test_node n{2, store, with(10, 0s), snaps};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("s3", bank::withdraw{5}));
}

TEST_CASE("a snapshot beyond the stream, or of events since cut and rewritten, is ignored") {
  // The snapshot store outlives the events: a repair cut the stream back to 3 events,
  // and in one case the stream then grew again past the snapshot's version.
  auto snaps = make_memory_snapshot_store();
  open_and_deposit(make_memory_journal(), 5, snaps, "s4", 5, 1000);
  auto snap = snaps->load({"account", "s4"});
  REQUIRE(snap);
  REQUIRE(snap->has_value());
  REQUIRE((*snap)->version == 5); // balance 4,000 at version 5
  for (bool regrown : {false, true}) {
    INFO((regrown ? "cut back, then regrown" : "cut back"));
    auto store = make_memory_journal();
    {
      test_node n{2, store, with(0, 0s)};
      REQUIRE(n->register_aggregate<bank::account>());
      REQUIRE(n->execute<bank::account>("s4", bank::open{"ann"}));
      REQUIRE(n->execute<bank::account>("s4", bank::deposit{7}));
      REQUIRE(n->execute<bank::account>("s4", bank::deposit{3}));
      if (regrown)
        for (int i = 0; i < 4; ++i) REQUIRE(n->execute<bank::account>("s4", bank::deposit{1}));
    }
    uint64_t version = regrown ? 7 : 3;
    int64_t balance = regrown ? 14 : 10;
    auto recording = std::make_shared<recording_journal>(store);
    test_node n{2, recording, with(100, 0s), snaps};
    REQUIRE(n->register_aggregate<bank::account>());
    auto too_much = n->execute<bank::account>("s4", bank::withdraw{balance + 1});
    REQUIRE_FALSE(too_much);
    REQUIRE(is_rejected(too_much.error()));
    auto all = n->execute<bank::account>("s4", bank::withdraw{balance});
    REQUIRE(all);
    CHECK(all->version == version + 1);
    auto reads = recording->reads_so_far();
    REQUIRE_FALSE(reads.empty());
    CHECK(reads.back() == 1); // replayed from the start
  }
}

TEST_CASE("idle aggregates passivate and free their actors, the next command recovers them") {
  test_node n{2, make_memory_journal(), with(0, 50ms)};
  REQUIRE(n->register_aggregate<bank::account>());
  auto& reg = n->system().registry();
  auto base = reg.running();
  for (int i = 0; i < 100; ++i) {
    REQUIRE(n->execute<bank::account>("p" + std::to_string(i), bank::open{"o"}));
    REQUIRE(n->execute<bank::account>("p" + std::to_string(i), bank::deposit{i + 1}));
  }
  // (Whether all 100 were alive at once depends on the machine's speed against
  // the 50 ms timeout, so only their going is checked.)
  REQUIRE(eventually([&] { return reg.running() == base; }));
  for (int i = 0; i < 100; ++i) {
    auto r = n->execute<bank::account>("p" + std::to_string(i), bank::withdraw{i + 1});
    REQUIRE(r);
    REQUIRE(r->version == 3);
  }
}

TEST_CASE("commands racing a passivation are neither lost nor reordered") {
  // Passivate after 1 ms of idleness while one sender keeps a single aggregate
  // busy with short pauses, so stop requests and commands cross all the time.
  test_node n{2, make_memory_journal(), with(0, 1ms)};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("race", bank::open{"o"}));
  uint64_t expected_version = 1;
  for (int i = 0; i < 300; ++i) {
    auto r = n->execute<bank::account>("race", bank::deposit{1});
    INFO("command " << i << ": " << (r ? std::string{"ok"} : r.error().describe()));
    REQUIRE(r);
    REQUIRE(r->version == ++expected_version);
    if (i % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds{500 * (i % 7)});
  }
  auto stored = n.store().stream_version({"account", "race"});
  REQUIRE(*stored == expected_version);
}
