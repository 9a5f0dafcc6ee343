// Event subscriptions (node::subscribe_events): plain handlers get matching events
// at least once, in order, resuming from the stored position after a restart; a
// throwing handler is retried and never stops the node.
#include <catch2/catch.hpp>

#include <mutex>
#include <set>

#include <cairn/file_journal.hpp>
#include <cairn/test_node.hpp>

#include "actors/feed_test_support.hpp"
#include "bank/account.hpp"
#include "conformance/journal_conformance_support.hpp"

using namespace cairn;
using namespace cairn::feed_test;
using cairn::testkit::test_node;
using namespace std::chrono_literals;

namespace {

/// What a handler saw, from the subscription's actor.
struct recorder {
  std::mutex m;
  std::vector<uint64_t> positions;
  counter seen;
  event_handler handler() {
    return [this](const envelope& e) {
      {
        std::lock_guard<std::mutex> g{m};
        positions.push_back(e.position);
      }
      seen.add();
    };
  }
  std::vector<uint64_t> all() {
    std::lock_guard<std::mutex> g{m};
    return positions;
  }
};

const event_filter deposits{"account", {"deposited"}};

/// Positions of the deposits in `store` from `from` on.
std::vector<uint64_t> deposit_positions(journal& store, uint64_t from = 1) {
  auto all = store.read_all(from, 1'000'000);
  REQUIRE(all);
  std::vector<uint64_t> out;
  for (auto& e : *all)
    if (deposits.matches(e)) out.push_back(e.position);
  return out;
}

struct file_node_parts {
  std::shared_ptr<journal> store;
  std::shared_ptr<snapshot_store> snapshots;
};

file_node_parts open_folder(const std::filesystem::path& dir) {
  file_journal_options o;
  o.sync = sync_policy::never;
  auto store = open_file_journal((dir / "events").string(), o);
  REQUIRE(store);
  auto snaps = open_file_snapshot_store((dir / "snapshots").string());
  REQUIRE(snaps);
  return {*store, *snaps};
}

} // namespace

TEST_CASE("an event subscription resumes after its stored position when the node restarts "
          "on a file store") {
  conformance::temp_dir dir;
  std::vector<uint64_t> first_run;
  {
    auto parts = open_folder(dir.path);
    recorder r; // declared before the node, which calls it until it stops
    test_node n{2, parts.store, test_node::quiet(), parts.snapshots};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->subscribe_events("audit", deposits, r.handler()));
    REQUIRE(n->execute<bank::account>("a", bank::open{"ann"}));
    for (int i = 0; i < 10; ++i) REQUIRE(n->execute<bank::account>("a", bank::deposit{i + 1}));
    REQUIRE(n->execute<bank::account>("a", bank::withdraw{1}));
    REQUIRE(r.seen.wait_for(10));
    first_run = r.all();
    REQUIRE(first_run == deposit_positions(n.store()));
  }
  {
    auto parts = open_folder(dir.path);
    // The stored position covers what the first run handled.
    auto stored = parts.snapshots->load({"notification", "audit"});
    REQUIRE(stored);
    REQUIRE(stored->has_value());
    CHECK((*stored)->version >= first_run.back());

    recorder r;
    test_node n{2, parts.store, test_node::quiet(), parts.snapshots};
    REQUIRE(n->register_aggregate<bank::account>());
    // Deposits while nobody is subscribed, then more once the subscription is back.
    for (int i = 0; i < 5; ++i) REQUIRE(n->execute<bank::account>("a", bank::deposit{100}));
    REQUIRE(n->subscribe_events("audit", deposits, r.handler()));
    REQUIRE(n->execute<bank::account>("b", bank::open{"bo"}));
    for (int i = 0; i < 4; ++i) REQUIRE(n->execute<bank::account>("b", bank::deposit{7}));
    REQUIRE(r.seen.wait_for(9));
    auto second_run = r.all();
    // Exactly the deposits after the first run: none again, none missed.
    CHECK(second_run == deposit_positions(n.store(), first_run.back() + 1));
    CHECK(second_run.size() == 9);
  }
}

TEST_CASE("a throwing handler gets the same event again and the events after it in order") {
  std::mutex m; // what the handler uses is declared before the node that calls it
  std::vector<uint64_t> calls;
  counter done;
  int failures_left = 2;
  test_node n;
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("t", bank::open{"o"}));
  for (int i = 0; i < 6; ++i) REQUIRE(n->execute<bank::account>("t", bank::deposit{i + 1}));
  auto wanted = deposit_positions(n.store());
  const uint64_t flaky = wanted[2];

  notification_options o;
  o.retry_delay = 1ms;
  REQUIRE(n->subscribe_events(
    "flaky", deposits,
    [&, flaky](const envelope& e) {
      std::lock_guard<std::mutex> g{m};
      calls.push_back(e.position);
      if (e.position == flaky && failures_left > 0) {
        --failures_left;
        throw std::runtime_error("not now");
      }
      done.add();
    },
    o));
  REQUIRE(done.wait_for(wanted.size()));
  std::vector<uint64_t> expected_calls{wanted[0], wanted[1], flaky, flaky, flaky,
                                       wanted[3], wanted[4], wanted[5]};
  {
    std::lock_guard<std::mutex> g{m};
    CHECK(calls == expected_calls);
  }
  // The node is fine.
  REQUIRE(n->execute<bank::account>("t", bank::deposit{1}));
}

TEST_CASE("after max_attempts a failing event is parked and delivery goes on") {
  std::mutex m;
  std::vector<uint64_t> calls;
  counter handled;
  test_node n;
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("m", bank::open{"o"}));
  for (int i = 0; i < 3; ++i) REQUIRE(n->execute<bank::account>("m", bank::deposit{i + 1}));
  auto wanted = deposit_positions(n.store());

  notification_options o;
  o.retry_delay = 1ms;
  o.max_attempts = 3;
  REQUIRE(n->subscribe_events(
    "poison", deposits,
    [&, poison = wanted[0]](const envelope& e) {
      {
        std::lock_guard<std::mutex> g{m};
        calls.push_back(e.position);
      }
      if (e.position == poison) throw std::runtime_error("never");
      handled.add();
    },
    o));
  REQUIRE(handled.wait_for(2));
  std::lock_guard<std::mutex> g{m};
  CHECK(calls == std::vector<uint64_t>{wanted[0], wanted[0], wanted[0], wanted[1], wanted[2]});
}

TEST_CASE("a subscription can start at the head, and names are checked") {
  recorder r;
  test_node n;
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->execute<bank::account>("h", bank::open{"o"}));
  REQUIRE(n->execute<bank::account>("h", bank::deposit{1}));
  notification_options o;
  o.from_beginning = false;
  REQUIRE(n->subscribe_events("new_only", event_filter{}, r.handler(), o));
  auto later = n->execute<bank::account>("h", bank::deposit{2});
  REQUIRE(later);
  REQUIRE(r.seen.wait_for(1));
  CHECK(r.all() == std::vector<uint64_t>{later->position});

  auto twice = n->subscribe_events("new_only", event_filter{}, r.handler());
  REQUIRE_FALSE(twice);
  CHECK(is_invalid_argument(twice.error()));
  auto unnamed = n->subscribe_events("", event_filter{}, r.handler());
  REQUIRE_FALSE(unnamed);
  CHECK(is_invalid_argument(unnamed.error()));
  auto no_handler = n->subscribe_events("x", event_filter{}, nullptr);
  REQUIRE_FALSE(no_handler);
  CHECK(is_invalid_argument(no_handler.error()));

  REQUIRE(n->unsubscribe_events("new_only"));
  auto gone = n->unsubscribe_events("new_only");
  REQUIRE_FALSE(gone);
  CHECK(is_not_found(gone.error()));
  // The name is free again.
  REQUIRE(n->subscribe_events("new_only", event_filter{}, r.handler(), o));
}
