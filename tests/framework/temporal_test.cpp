// Temporal queries: an aggregate's state as of a stream version or a commit time.
#include <catch2/catch.hpp>

#include <chrono>

#include <cairn/memory_journal.hpp>
#include <cairn/temporal.hpp>

#include "bank/account.hpp"
#include "framework/versioned_wallet.hpp"

using namespace cairn;
using std::chrono::nanoseconds;
using std::chrono::system_clock;

namespace {

/// Appends one event to account-42 in its own commit, with a commit time later than
/// every earlier one (the store's clock reading must advance first), and returns it.
envelope append_alone(journal& store, const bank::account::event_type& event) {
  auto last = store.read_all(1, 1'000'000);
  REQUIRE(last);
  int64_t previous = last->empty() ? 0 : last->back().timestamp_ns;
  while (now_ns() <= previous) {
  }
  auto r = store.append_one({stream_id{"account", "42"}, expected_version::any,
                             {variant_codec<bank::account::event_type>::encode(event)}});
  REQUIRE(r);
  auto back = store.read_stream(stream_id{"account", "42"}, r->last_version, 1);
  REQUIRE(back);
  REQUIRE(back->size() == 1);
  return back->front();
}

system_clock::time_point at(int64_t ns) {
  return system_clock::time_point{std::chrono::duration_cast<system_clock::duration>(nanoseconds{ns})};
}

/// An account with history: opened, +100, -30, +5 (balances 0, 100, 70, 75).
std::vector<envelope> account_history(journal& store) {
  return {append_alone(store, bank::opened{"ann"}), append_alone(store, bank::deposited{100}),
          append_alone(store, bank::withdrawn{30}), append_alone(store, bank::deposited{5})};
}

} // namespace

TEST_CASE("state_at folds exactly the events up to the version asked for") {
  auto store = make_memory_journal();
  account_history(*store);
  const int64_t balances[] = {0, 0, 100, 70, 75};
  for (uint64_t v = 0; v <= 4; ++v) {
    auto s = state_at<bank::account>(*store, "42", v);
    REQUIRE(s);
    CHECK(s->balance == balances[v]);
    CHECK(s->is_open == (v >= 1));
  }
}

TEST_CASE("state_at reports an unknown stream, a version beyond the head and a bad id") {
  auto store = make_memory_journal();
  account_history(*store);
  auto beyond = state_at<bank::account>(*store, "42", 5);
  REQUIRE(is_not_found(beyond.error()));
  REQUIRE(beyond.error().message() == "stream account-42 is at version 4, there is no version 5");
  auto unknown = state_at<bank::account>(*store, "43", 1);
  REQUIRE(is_not_found(unknown.error()));
  REQUIRE(unknown.error().message() == "stream account-43 has no events");
  auto bad = state_at<bank::account>(*store, "", 1);
  REQUIRE(is_invalid_argument(bad.error()));
}

TEST_CASE("state_as_of folds the events committed at or before the time") {
  auto store = make_memory_journal();
  auto history = account_history(*store);
  const int64_t balances[] = {0, 100, 70, 75};
  for (size_t i = 0; i < history.size(); ++i) {
    auto exactly = state_as_of<bank::account>(*store, "42", at(history[i].timestamp_ns));
    REQUIRE(exactly);
    CHECK(exactly->balance == balances[i]);
    auto just_before = replay_until<bank::account>(*store, "42", UINT64_MAX,
                                                   history[i].timestamp_ns - 1);
    REQUIRE(just_before);
    CHECK(just_before->version == i);
    if (i > 0) CHECK(just_before->timestamp_ns == history[i - 1].timestamp_ns);
  }
  auto before_opening = state_as_of<bank::account>(*store, "42", at(history[0].timestamp_ns - 1));
  REQUIRE(before_opening);
  CHECK_FALSE(before_opening->is_open);
  auto later = state_as_of<bank::account>(*store, "42", system_clock::now() + std::chrono::hours{1});
  REQUIRE(later);
  CHECK(later->balance == 75);
  REQUIRE(is_not_found(state_as_of<bank::account>(*store, "43", system_clock::now()).error()));
}

TEST_CASE("replay_until says which version and commit time the state is at") {
  auto store = make_memory_journal();
  auto history = account_history(*store);
  auto s = replay_until<bank::account>(*store, "42", 2);
  REQUIRE(s);
  REQUIRE(s->version == 2);
  REQUIRE(s->timestamp_ns == history[1].timestamp_ns);
  REQUIRE(s->state.balance == 100);
  auto none = replay_until<bank::account>(*store, "42", 0);
  REQUIRE(none);
  REQUIRE(none->version == 0);
  REQUIRE(none->timestamp_ns == 0);
}

TEST_CASE("temporal queries read old events through the upcasters") {
  auto store = make_memory_journal();
  REQUIRE(store->append_one({stream_id{"wallet", "w1"}, expected_version::no_stream,
                             versioned::old_history()}));
  auto v2 = state_at<versioned::wallet>(*store, "w1", 2);
  REQUIRE(v2);
  REQUIRE(v2->balance == 100);
  auto v5 = state_at<versioned::wallet>(*store, "w1", 5); // after the split transfer
  REQUIRE(v5);
  REQUIRE(v5->balance == 100 + 250 + 200 - 30 - 5);
  REQUIRE(v5->applied == 6);
  auto all = state_at<versioned::wallet>(*store, "w1", 8);
  REQUIRE(all);
  REQUIRE(all->balance == versioned::expected_balance);
}

TEST_CASE("a temporal query over an event with no upcaster is a corrupt error") {
  auto store = make_memory_journal();
  REQUIRE(store->append_one({stream_id{"wallet", "w1"}, expected_version::no_stream,
                             {versioned::stored(versioned::opened{"ann"}),
                              event_data{"deposited", 9, {}, {}}}}));
  REQUIRE(state_at<versioned::wallet>(*store, "w1", 1));
  auto r = state_at<versioned::wallet>(*store, "w1", 2);
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(r.error().message().find("replaying wallet-w1") != std::string::npos);
}
