// The runtime end to end on an in-memory node: aggregates, the journal actor's
// group commit, projections, queries, errors and shutdown.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <cairn/journal_wrapper.hpp>
#include <cairn/node_config.hpp>
#include <cairn/test_node.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "bank/balances.hpp"

using namespace cairn;
using cairn::testkit::test_node;

namespace {

/// Waits for a number of replies sent from CAF threads.
class reply_counter {
public:
  void add() {
    std::lock_guard<std::mutex> g{m_};
    ++n_;
    cv_.notify_all();
  }
  bool wait_for(size_t n, std::chrono::seconds limit = std::chrono::seconds{60}) {
    std::unique_lock<std::mutex> g{m_};
    return cv_.wait_for(g, limit, [&] { return n_ >= n; });
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  size_t n_ = 0;
};

/// Counts store writes, to observe group commit.
class counting_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    ++writes;
    requests += batch.size();
    return journal_wrapper::append(std::move(batch));
  }
  std::atomic<size_t> writes{0};
  std::atomic<size_t> requests{0};
};

void register_bank(node& n) {
  REQUIRE(n.register_aggregate<bank::account>());
  REQUIRE(n.register_projection<bank::balances>());
}

/// A projection type that is never registered.
struct no_such_projection {
  static constexpr std::string_view name = "nope";
  using event_type = bank::account::event_type;
  void apply(const bank::opened&) {}
  void apply(const bank::deposited&) {}
  void apply(const bank::withdrawn&) {}
};

int64_t fold_total(const journal& store) {
  int64_t total = 0;
  auto all = store.read_all(1, 1'000'000);
  REQUIRE(all);
  for (auto& e : *all) {
    auto ev = variant_codec<bank::account::event_type>::decode(e);
    REQUIRE(ev);
    if (auto d = std::get_if<bank::deposited>(&*ev)) total += d->amount;
    if (auto w = std::get_if<bank::withdrawn>(&*ev)) total -= w->amount;
  }
  return total;
}

} // namespace

TEST_CASE("a command reaches its aggregate and replies with version and position") {
  test_node n;
  register_bank(*n);
  auto r1 = n->execute<bank::account>("a1", bank::open{"ann"});
  REQUIRE(r1);
  REQUIRE(r1->version == 1);
  REQUIRE(r1->position == 1);
  REQUIRE(r1->events == 1);
  auto r2 = n->execute<bank::account>("a1", bank::deposit{50});
  REQUIRE(r2);
  REQUIRE(r2->version == 2);
  REQUIRE(r2->position == 2);
  auto stored = n.store().read_stream({"account", "a1"}, 1, 10);
  REQUIRE(stored);
  REQUIRE(stored->size() == 2);
  REQUIRE((*stored)[1].type == "deposited");
}

TEST_CASE("a rejected command appends nothing and says why") {
  test_node n;
  register_bank(*n);
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));
  auto head = n.store().head_position();
  auto r = n->execute<bank::account>("a1", bank::withdraw{1});
  REQUIRE_FALSE(r);
  REQUIRE(is_rejected(r.error()));
  REQUIRE(r.error().message() == "insufficient funds");
  REQUIRE(n.store().head_position() == head);
  auto never_opened = n->execute<bank::account>("nobody", bank::deposit{5});
  REQUIRE_FALSE(never_opened);
  REQUIRE(is_rejected(never_opened.error()));
  REQUIRE(n.store().head_position() == head);
}

TEST_CASE("an idempotent no-op stores nothing and replies with the current version") {
  test_node n;
  register_bank(*n);
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));
  auto again = n->execute<bank::account>("a1", bank::open{"ann"});
  REQUIRE(again);
  REQUIRE(again->events == 0);
  REQUIRE(again->version == 1);
  REQUIRE(n.store().head_position() == 1);
}

TEST_CASE("a stale expected version is reported as a conflict") {
  test_node n;
  register_bank(*n);
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));
  auto cmd = make_command<bank::account>("a1", bank::deposit{5});
  cmd.expected_version = 0;
  auto r = n->execute_command(cmd);
  REQUIRE_FALSE(r);
  REQUIRE(is_conflict(r.error()));
  REQUIRE(r.error().message().find("expected version 0, found 1") != std::string::npos);
  cmd.expected_version = 1;
  REQUIRE(n->execute_command(cmd));
}

TEST_CASE("a write behind an aggregate's back is a conflict, after which it recovers") {
  test_node n;
  register_bank(*n);
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));
  // Another writer appends to the same stream directly.
  auto outside = variant_codec<bank::account::event_type>::encode(bank::deposited{100});
  REQUIRE(n.store().append_one({{"account", "a1"}, 1, {outside}}));
  auto r = n->execute<bank::account>("a1", bank::deposit{10});
  REQUIRE_FALSE(r);
  REQUIRE(is_conflict(r.error()));
  REQUIRE(r.error().message().find("expected version 1, found 2") != std::string::npos);
  // The aggregate reloaded the stream, so it now knows about the outside deposit.
  auto retry = n->execute<bank::account>("a1", bank::withdraw{60});
  REQUIRE(retry);
  REQUIRE(retry->version == 3);
}

TEST_CASE("commands from one sender to one aggregate keep their order") {
  test_node n;
  register_bank(*n);
  REQUIRE(n->execute<bank::account>("a1", bank::open{"ann"}));
  constexpr int count = 500;
  std::vector<uint64_t> versions(count, 0);
  reply_counter replies;
  for (int i = 0; i < count; ++i)
    n->send<bank::account>("a1", bank::deposit{i + 1}, [&, i](expected<command_reply> r) {
      versions[i] = r ? r->version : 0;
      replies.add();
    });
  REQUIRE(replies.wait_for(count));
  for (int i = 0; i < count; ++i) REQUIRE(versions[i] == static_cast<uint64_t>(i + 2));
  // And the stored deposits are in send order.
  auto stored = read_stream_all(n.store(), {"account", "a1"});
  REQUIRE(stored);
  for (int i = 0; i < count; ++i) {
    auto ev = variant_codec<bank::account::event_type>::decode((*stored)[i + 1]);
    REQUIRE(std::get<bank::deposited>(*ev).amount == i + 1);
  }
}

TEST_CASE("1,000 aggregates hit concurrently end in exactly the state a serial model gives") {
  test_node n;
  register_bank(*n);
  constexpr int accounts = 1000, per_account = 20;
  // Each account gets its own command sequence, sent by its own sender; senders
  // run concurrently from 4 threads. The serial model folds each sequence alone.
  std::map<int, int64_t> model_balance;
  std::map<int, int> model_accepted;
  std::vector<std::vector<bank::account::command_type>> plans(accounts);
  std::mt19937_64 rng{7};
  for (int a = 0; a < accounts; ++a) {
    bank::account serial;
    plans[a].push_back(bank::open{"owner"});
    for (int i = 0; i < per_account; ++i) {
      int64_t amount = 1 + static_cast<int64_t>(rng() % 100);
      if (rng() % 2) plans[a].push_back(bank::deposit{amount});
      else plans[a].push_back(bank::withdraw{amount});
    }
    for (auto& c : plans[a]) {
      auto d = aggregate_traits<bank::account>::decide(serial, c);
      if (d.rejected()) continue;
      for (auto& e : d.events()) aggregate_traits<bank::account>::evolve(serial, e);
      model_accepted[a] += static_cast<int>(d.events().size());
    }
    model_balance[a] = serial.balance;
  }
  std::atomic<int> accepted{0}, failed{0};
  reply_counter replies;
  // Closed loop per account: the next command goes out when the previous replies.
  std::function<void(int, size_t)> send_from = [&](int a, size_t i) {
    if (i == plans[a].size()) return replies.add();
    n->send_command(make_command<bank::account>("c" + std::to_string(a), plans[a][i]),
                    [&, a, i](expected<command_reply> r) {
                      if (r) accepted += static_cast<int>(r->events);
                      else if (!is_rejected(r.error())) ++failed;
                      send_from(a, i + 1);
                    });
  };
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t)
    senders.emplace_back([&, t] {
      for (int a = t; a < accounts; a += 4) send_from(a, 0);
    });
  for (auto& s : senders) s.join();
  REQUIRE(replies.wait_for(accounts));
  REQUIRE(failed == 0);
  int expected_accepted = 0;
  for (auto& kv : model_accepted) expected_accepted += kv.second;
  REQUIRE(accepted == expected_accepted);
  auto balances = n->query<bank::balances>(
    [](const bank::balances& b) { return b.by_account; }, n.store().head_position());
  REQUIRE(balances);
  REQUIRE(balances->size() == static_cast<size_t>(accounts));
  for (int a = 0; a < accounts; ++a) {
    INFO("account " << a);
    REQUIRE(balances->at("c" + std::to_string(a)) == model_balance[a]);
    auto version = n.store().stream_version({"account", "c" + std::to_string(a)});
    REQUIRE(*version == static_cast<uint64_t>(model_accepted[a]));
  }
}

TEST_CASE("the journal actor group-commits concurrent appends into fewer store writes") {
  auto counting = std::make_shared<counting_journal>(make_memory_journal());
  test_node n{2, counting};
  register_bank(*n);
  constexpr int accounts = 2000;
  reply_counter replies;
  std::atomic<int> ok{0};
  for (int a = 0; a < accounts; ++a)
    n->send<bank::account>("g" + std::to_string(a), bank::open{"o"},
                           [&](expected<command_reply> r) {
                             if (r) ++ok;
                             replies.add();
                           });
  REQUIRE(replies.wait_for(accounts));
  REQUIRE(ok == accounts);
  REQUIRE(counting->requests == static_cast<size_t>(accounts));
  // 2,000 appends in flight at once cannot each have needed their own write.
  REQUIRE(counting->writes < counting->requests);
}

TEST_CASE("the projection equals the fold of every stored event") {
  test_node n;
  register_bank(*n);
  reply_counter replies;
  uint64_t sent = 0;
  for (int a = 0; a < 50; ++a) {
    REQUIRE(n->execute<bank::account>("p" + std::to_string(a), bank::open{"o"}));
    for (int i = 0; i < 40; ++i, ++sent)
      n->send<bank::account>("p" + std::to_string(a),
                             i % 3 == 2 ? bank::account::command_type{bank::withdraw{7}}
                                        : bank::account::command_type{bank::deposit{5}},
                             [&](expected<command_reply>) { replies.add(); });
  }
  REQUIRE(replies.wait_for(sent));
  auto total = n->query<bank::balances>([](const bank::balances& b) { return b.total; },
                                        n.store().head_position());
  REQUIRE(total);
  REQUIRE(*total == fold_total(n.store()));
}

TEST_CASE("a query waits for the position a command reply names (read your writes)") {
  test_node n;
  register_bank(*n);
  REQUIRE(n->execute<bank::account>("r1", bank::open{"ann"}));
  auto r = n->execute<bank::account>("r1", bank::deposit{42});
  REQUIRE(r);
  auto balance = n->query<bank::balances>(
    [](const bank::balances& b) { return b.by_account.at("r1"); }, r->position);
  REQUIRE(balance);
  REQUIRE(*balance == 42);
}

TEST_CASE("a query for a position never reached fails with timeout") {
  auto opts = test_node::quiet();
  opts.query_timeout = std::chrono::milliseconds{300};
  test_node n{2, make_memory_journal(), opts};
  register_bank(*n);
  auto start = std::chrono::steady_clock::now();
  std::promise<expected<int64_t>> p;
  n->query_async<bank::balances>([](const bank::balances& b) { return b.total; },
                                 [&](expected<int64_t> r) { p.set_value(std::move(r)); }, 1000);
  auto r = p.get_future().get();
  REQUIRE_FALSE(r);
  REQUIRE(is_timeout(r.error()));
  REQUIRE(std::chrono::steady_clock::now() - start >= n->options().query_timeout);
}

TEST_CASE("unknown aggregates, projections and malformed commands give typed errors") {
  test_node n;
  register_bank(*n);
  auto cmd = make_command<bank::account>("x", bank::deposit{1});
  cmd.target.category = "nothing";
  auto r = n->execute_command(cmd);
  REQUIRE_FALSE(r);
  REQUIRE(is_not_found(r.error()));

  auto missing = n->query<no_such_projection>([](const no_such_projection&) { return 0; });
  REQUIRE_FALSE(missing);
  REQUIRE(is_not_found(missing.error()));

  auto garbage = make_command<bank::account>("g", bank::deposit{1});
  garbage.payload = {0xff, 0xff, 0xff};
  auto g = n->execute_command(garbage);
  REQUIRE_FALSE(g);
  REQUIRE(is_invalid_argument(g.error()));

  auto unknown = make_command<bank::account>("g", bank::deposit{1});
  unknown.type = "transfer";
  auto u = n->execute_command(unknown);
  REQUIRE_FALSE(u);
  REQUIRE(is_not_found(u.error()));

  auto bad_id = make_command<bank::account>("", bank::open{"x"});
  auto b = n->execute_command(bad_id);
  REQUIRE_FALSE(b);
  REQUIRE(is_invalid_argument(b.error()));

  REQUIRE(n.store().head_position() == 0);
}

TEST_CASE("an aggregate whose stored events do not decode reports corrupt, and the node lives") {
  auto store = make_memory_journal();
  event_data bad{"deposited", 1, {}, {0x07}};
  REQUIRE(store->append_one({{"account", "broken"}, expected_version::any, {bad}}));
  test_node n{2, store};
  register_bank(*n);
  auto r = n->execute<bank::account>("broken", bank::deposit{1});
  REQUIRE_FALSE(r);
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(n->execute<bank::account>("healthy", bank::open{"ann"}));
}

TEST_CASE("registering the same aggregate or projection twice is an error") {
  test_node n;
  register_bank(*n);
  auto again = n->register_aggregate<bank::account>();
  REQUIRE_FALSE(again);
  REQUIRE(is_invalid_argument(again.error()));
  REQUIRE_FALSE(n->register_projection<bank::balances>());
}

TEST_CASE("a node shuts down promptly and refuses commands afterwards") {
  test_node n;
  register_bank(*n);
  reply_counter replies;
  for (int i = 0; i < 200; ++i)
    n->send<bank::account>("s" + std::to_string(i), bank::open{"o"},
                           [&](expected<command_reply>) { replies.add(); });
  auto start = std::chrono::steady_clock::now();
  n->shutdown();
  REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::seconds{5});
  // Every command sent before the shutdown got an answer, one way or the other.
  REQUIRE(replies.wait_for(200, std::chrono::seconds{5}));
  auto after = n->execute<bank::account>("late", bank::open{"o"});
  REQUIRE_FALSE(after);
  REQUIRE(is_unavailable(after.error()));
}

TEST_CASE("a node attached to an application's actor system stops only its own actors") {
  caf::actor_system_config cfg;
  cairn::add_message_types(cfg);
  cfg.set("scheduler.max-threads", size_t{2});
  caf::actor_system sys{cfg};
  auto before = sys.registry().running();
  {
    node n{sys, make_memory_journal(), node_options{"warn"}};
    register_bank(n);
    auto r = n.execute<bank::account>("att", bank::open{"ann"});
    REQUIRE(r);
    REQUIRE(sys.registry().running() > before);
  }
  // The node's journal, router, aggregate, projection and dispatchers are gone (CAF
  // updates its count just after each actor's final message); the system keeps running.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{2};
  while (sys.registry().running() != before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  REQUIRE(sys.registry().running() == before);
}

TEST_CASE("a projection started on a full store catches up and goes live without gap or duplicate") {
  auto store = make_memory_journal();
  // 20,000 events already stored before the node starts.
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<event_data> events;
    for (int i = 0; i < 1000; ++i)
      events.push_back(variant_codec<bank::account::event_type>::encode(
        batch == 0 && i == 0 ? bank::account::event_type{bank::opened{"o"}}
                             : bank::account::event_type{bank::deposited{1}}));
    REQUIRE(store->append_one({{"account", "old"}, expected_version::any, std::move(events)}));
  }
  test_node n{2, store};
  REQUIRE(n->register_aggregate<bank::account>());
  // Writes keep coming while the projection starts and catches up.
  reply_counter replies;
  constexpr int live = 2000;
  std::thread writer{[&] {
    for (int i = 0; i < live; ++i)
      n->send<bank::account>("new" + std::to_string(i % 20),
                             i < 20 ? bank::account::command_type{bank::open{"o"}}
                                    : bank::account::command_type{bank::deposit{2}},
                             [&](expected<command_reply>) { replies.add(); });
  }};
  REQUIRE(n->register_projection<bank::balances>());
  writer.join();
  REQUIRE(replies.wait_for(live));
  auto seen = n->query<bank::balances>(
    [](const bank::balances& b) { return std::make_pair(b.events, b.total); },
    n.store().head_position());
  REQUIRE(seen);
  REQUIRE(seen->first == n.store().head_position()); // every event exactly once
  REQUIRE(seen->second == fold_total(n.store()));
}

TEST_CASE("a query that throws reports an error and the projection keeps serving") {
  test_node n;
  register_bank(*n);
  auto opened = n->execute<bank::account>("q1", bank::open{"ann"});
  REQUIRE(opened);
  auto bad = n->query<bank::balances>(
    [](const bank::balances& b) { return b.by_account.at("no such account"); }, opened->position);
  REQUIRE_FALSE(bad);
  REQUIRE(is_invalid_argument(bad.error()));
  REQUIRE(bad.error().message().find("the query threw") != std::string::npos);
  auto good = n->query<bank::balances>([](const bank::balances& b) { return b.by_account.size(); });
  REQUIRE(good);
  REQUIRE(*good == 1);
}
