// The saga manager on a node: the bank transfer saga end to end (completion,
// compensation of a refused deposit, correlation and causation on everything it
// causes, resuming after a restart), and compensation of a step that timed out.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <cairn/journal_wrapper.hpp>
#include <cairn/saga_process.hpp>
#include <cairn/test_node.hpp>

#include "actors/eventually.hpp"
#include "bank/account.hpp"
#include "bank/transfer.hpp"
#include "bank/transfer_saga.hpp"

using namespace cairn;
using cairn::test::eventually;
using cairn::testkit::test_node;

namespace {

void register_bank(node& n, saga_options opts = {}) {
  REQUIRE(n.register_aggregate<bank::account>());
  REQUIRE(n.register_aggregate<bank::transfer>());
  REQUIRE(n.register_saga<bank::transfer_saga>(opts));
}

void open_with(node& n, const std::string& id, int64_t amount) {
  REQUIRE(n.execute<bank::account>(id, bank::open{"owner"}));
  if (amount > 0) REQUIRE(n.execute<bank::account>(id, bank::deposit{amount}));
}

std::vector<envelope> stream(const journal& store, const std::string& category,
                             const std::string& id) {
  auto events = read_stream_all(store, {category, id});
  REQUIRE(events);
  return *events;
}

/// "transfer_completed" or "transfer_failed" once transfer `id` has an outcome.
std::string outcome(const journal& store, const std::string& id) {
  for (auto& e : stream(store, "transfer", id))
    if (e.type != "transfer_requested") return e.type;
  return {};
}

int64_t balance(const journal& store, const std::string& id) {
  int64_t total = 0;
  for (auto& e : stream(store, "account", id)) {
    auto ev = variant_codec<bank::account::event_type>::decode(e);
    REQUIRE(ev);
    if (auto d = std::get_if<bank::deposited>(&*ev)) total += d->amount;
    if (auto w = std::get_if<bank::withdrawn>(&*ev)) total -= w->amount;
  }
  return total;
}

/// Events of account `id` caused by saga commands, by type.
std::multiset<std::string> saga_caused(const journal& store, const std::string& id) {
  std::multiset<std::string> out;
  for (auto& e : stream(store, "account", id))
    if (e.meta.find(std::string{command_id_key})) out.insert(e.type);
  return out;
}

/// Requests transfer `id` and waits until it has an outcome and its saga is done.
std::string run_transfer(test_node& n, const std::string& id, const std::string& from,
                         const std::string& to, int64_t amount) {
  REQUIRE(n->execute<bank::transfer>(id, bank::request_transfer{from, to, amount}));
  std::string result;
  REQUIRE(eventually([&] { return !(result = outcome(n.store(), id)).empty(); }));
  REQUIRE(eventually([&] {
    auto s = load_saga_state<bank::transfer_saga>(n.store(), id);
    return s && s->done();
  }));
  return result;
}

} // namespace

TEST_CASE("a transfer saga moves the money and completes the transfer") {
  test_node n;
  register_bank(*n);
  open_with(*n, "a", 100);
  open_with(*n, "b", 0);
  REQUIRE(run_transfer(n, "t1", "a", "b", 30) == "transfer_completed");
  REQUIRE(balance(n.store(), "a") == 70);
  REQUIRE(balance(n.store(), "b") == 30);
  REQUIRE(saga_caused(n.store(), "a") == std::multiset<std::string>{"withdrawn"});
  REQUIRE(saga_caused(n.store(), "b") == std::multiset<std::string>{"deposited"});
  REQUIRE(eventually([&] {
    auto s = n->saga_status_of<bank::transfer_saga>();
    return s && s->open == 0 && s->pending_steps == 0;
  }));
}

TEST_CASE("a refused deposit is compensated: the payer gets the money back") {
  test_node n;
  register_bank(*n);
  open_with(*n, "a", 100);
  REQUIRE(run_transfer(n, "t2", "a", "nobody", 40) == "transfer_failed");
  REQUIRE(balance(n.store(), "a") == 100);
  REQUIRE(saga_caused(n.store(), "a") == std::multiset<std::string>{"withdrawn", "deposited"});
  REQUIRE(stream(n.store(), "account", "nobody").empty());
  auto failed = variant_codec<bank::transfer::event_type>::decode(stream(n.store(), "transfer", "t2").back());
  REQUIRE(failed);
  REQUIRE(std::get<bank::transfer_failed>(*failed).reason ==
          "credit refused, refunded: account not open");
}

TEST_CASE("a refused withdrawal fails the transfer and moves nothing") {
  test_node n;
  register_bank(*n);
  open_with(*n, "a", 10);
  open_with(*n, "b", 0);
  REQUIRE(run_transfer(n, "t3", "a", "b", 50) == "transfer_failed");
  REQUIRE(balance(n.store(), "a") == 10);
  REQUIRE(balance(n.store(), "b") == 0);
  REQUIRE(saga_caused(n.store(), "a").empty());
}

TEST_CASE("correlation and causation ids flow to every command and event a saga causes") {
  test_node n;
  register_bank(*n);
  open_with(*n, "a", 100);
  open_with(*n, "b", 0);
  REQUIRE(run_transfer(n, "t4", "a", "b", 10) == "transfer_completed");
  REQUIRE(run_transfer(n, "t5", "a", "nobody", 10) == "transfer_failed");

  auto all = n.store().read_all(1, 100000);
  REQUIRE(all);
  std::map<std::string, const envelope*> by_id; // event id -> event
  std::map<std::string, std::string> commands;  // saga command id -> its causation
  for (auto& e : *all) {
    by_id[event_id(e)] = &e;
    if (e.type == "cairn.saga_sent") {
      auto sent = decode<saga_sent>(e.payload);
      REQUIRE(sent);
      commands[e.stream.str() + "#" + std::to_string(sent->step_id)] = sent->causation_id;
    }
  }
  // Follows causation ids back to the transfer request that started it all.
  auto leads_to_request = [&](std::string cause, const std::string& key) {
    for (int hops = 0; hops < 100; ++hops) {
      if (auto c = commands.find(cause); c != commands.end()) {
        cause = c->second;
        continue;
      }
      auto it = by_id.find(cause);
      if (it == by_id.end()) return false;
      if (it->second->type == "transfer_requested") return it->second->stream.id == key;
      if (it->second->meta.correlation_id != key) return false;
      cause = it->second->meta.causation_id;
    }
    return false;
  };
  size_t caused = 0;
  for (auto& e : *all) {
    auto command = e.meta.find(std::string{command_id_key});
    bool saga_event = e.stream.category == "saga_transfer";
    if (!command && !saga_event) continue;
    ++caused;
    INFO(event_id(e) << " " << e.type);
    auto key = saga_event ? e.stream.id : e.meta.correlation_id;
    REQUIRE((key == "t4" || key == "t5"));
    REQUIRE(e.meta.correlation_id == key);
    REQUIRE_FALSE(e.meta.causation_id.empty());
    REQUIRE(leads_to_request(e.meta.causation_id, key));
    if (command) {
      REQUIRE(command->rfind("saga_transfer-" + key + "#", 0) == 0);
      REQUIRE(commands.count(*command) == 1); // it names a command the saga recorded
    }
  }
  // t4: withdrawn, deposited, transfer_completed; t5: withdrawn, refund, transfer_failed;
  // plus both sagas' own events.
  REQUIRE(caused == 6 + stream(n.store(), "saga_transfer", "t4").size() +
                      stream(n.store(), "saga_transfer", "t5").size());
}

namespace {

/// Fails appends to one stream with `unavailable` while `failing` is set.
class failing_stream_journal : public journal_wrapper {
public:
  failing_stream_journal(std::shared_ptr<journal> target, stream_id broken)
    : journal_wrapper(std::move(target)), broken_(std::move(broken)) {}

  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    if (!failing) return journal_wrapper::append(std::move(batch));
    std::vector<append_request> pass;
    std::vector<size_t> where;
    for (size_t i = 0; i < batch.size(); ++i)
      if (batch[i].stream != broken_) {
        where.push_back(i);
        pass.push_back(std::move(batch[i]));
      }
    auto results = journal_wrapper::append(std::move(pass));
    std::vector<expected<append_result>> out(batch.size(),
                                             error{errc::unavailable, "disk unplugged"});
    for (size_t i = 0; i < where.size() && i < results.size(); ++i) out[where[i]] = results[i];
    return out;
  }

  std::atomic<bool> failing{false};

private:
  stream_id broken_;
};

} // namespace

TEST_CASE("a saga stopped mid-transfer resumes after a restart and finishes it once") {
  auto store = make_memory_journal();
  auto faulty = std::make_shared<failing_stream_journal>(store, stream_id{"account", "b"});
  saga_options opts;
  opts.retry_delay = std::chrono::milliseconds{20};
  opts.checkpoint_every = 1;
  {
    test_node n{2, faulty};
    register_bank(*n, opts);
    open_with(*n, "a", 100);
    open_with(*n, "b", 0);
    faulty->failing = true; // the deposit to b cannot be stored
    REQUIRE(n->execute<bank::transfer>("t6", bank::request_transfer{"a", "b", 30}));
    REQUIRE(eventually([&] {
      auto s = load_saga_state<bank::transfer_saga>(*store, "t6");
      return s && s->at == bank::transfer_saga::phase::crediting;
    }));
  } // the node stops with the credit still pending
  REQUIRE(outcome(*store, "t6").empty());
  REQUIRE(balance(*store, "a") == 70);
  REQUIRE(balance(*store, "b") == 0);

  test_node n{2, store};
  register_bank(*n, opts);
  REQUIRE(eventually([&] { return !outcome(*store, "t6").empty(); }));
  REQUIRE(outcome(*store, "t6") == "transfer_completed");
  REQUIRE(balance(*store, "a") == 70);
  REQUIRE(balance(*store, "b") == 30);
  REQUIRE(saga_caused(*store, "a") == std::multiset<std::string>{"withdrawn"});
  REQUIRE(saga_caused(*store, "b") == std::multiset<std::string>{"deposited"});
  REQUIRE(eventually([&] {
    auto s = n->saga_status_of<bank::transfer_saga>();
    return s && s->open == 0 && s->checkpointed > 0;
  }));
}

TEST_CASE("a saga name is registered once") {
  test_node n;
  register_bank(*n);
  auto again = n->register_saga<bank::transfer_saga>();
  REQUIRE_FALSE(again);
  REQUIRE(is_invalid_argument(again.error()));
}

namespace {

struct fragile_seen {};
inline auto describe(type<fragile_seen>) { return schema<fragile_seen>("fragile_seen", 1); }

/// A saga with a bug: its react throws for the account "bad".
struct fragile_saga {
  static constexpr std::string_view name = "fragile";
  using event_type = std::variant<fragile_seen>;
  using input_type = std::variant<bank::opened>;
  using decision = saga_decision<event_type>;
  bool seen = false;

  static std::string correlate(const envelope& e, const bank::opened&) { return e.stream.id; }
  decision react(const envelope& e, const bank::opened&) const {
    if (e.stream.id == "bad") throw std::runtime_error("a bug in the saga");
    return fragile_seen{};
  }
  bool done() const { return seen; }
  void apply(const fragile_seen&) { seen = true; }
};

} // namespace

TEST_CASE("a saga that throws on one event parks that instance and goes on with the others") {
  test_node n;
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_saga<fragile_saga>());
  REQUIRE(n->execute<bank::account>("bad", bank::open{"o"}));
  REQUIRE(n->execute<bank::account>("good", bank::open{"o"}));
  REQUIRE(eventually([&] {
    auto s = load_saga_state<fragile_saga>(n.store(), "good");
    return s && s->seen;
  }));
  REQUIRE(eventually([&] {
    auto s = n->saga_status_of<fragile_saga>();
    return s && s->open == 0 && s->parked == 1;
  }));
  auto bad = stream(n.store(), "saga_fragile", "bad");
  REQUIRE(bad.size() == 1);
  REQUIRE(bad.front().type == "cairn.saga_parked");
  auto parked = n->parked_sagas("fragile");
  REQUIRE(parked);
  REQUIRE(parked->size() == 1);
  REQUIRE(parked->front().reason == "fragile saga react threw: a bug in the saga");
}

// --- A step that times out --------------------------------------------------------

namespace {

/// Holds the slow service's decisions until the test opens it.
struct gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> g{m};
    cv.wait(g, [&] { return open; });
  }
  void set(bool o) {
    std::lock_guard<std::mutex> g{m};
    open = o;
    cv.notify_all();
  }
};
gate slow_gate;

struct reserve {};
struct reserved {};
inline auto describe(type<reserve>) { return schema<reserve>("reserve", 1); }
inline auto describe(type<reserved>) { return schema<reserved>("reserved", 1); }

/// A service that answers only once the gate is open.
struct slow_service {
  using command_type = std::variant<reserve>;
  using event_type = std::variant<reserved>;
  static constexpr std::string_view category = "slow";
  decision<event_type> decide(const reserve&) const {
    slow_gate.wait();
    return reserved{};
  }
  void apply(const reserved&) {}
};

struct book {};
struct cancel_booking {};
struct booked {};
struct booking_cancelled {};
inline auto describe(type<book>) { return schema<book>("book", 1); }
inline auto describe(type<cancel_booking>) { return schema<cancel_booking>("cancel_booking", 1); }
inline auto describe(type<booked>) { return schema<booked>("booked", 1); }
inline auto describe(type<booking_cancelled>) {
  return schema<booking_cancelled>("booking_cancelled", 1);
}

struct booking {
  using command_type = std::variant<book, cancel_booking>;
  using event_type = std::variant<booked, booking_cancelled>;
  static constexpr std::string_view category = "booking";
  bool cancelled = false;
  decision<event_type> decide(const book&) const { return booked{}; }
  decision<event_type> decide(const cancel_booking&) const {
    if (cancelled) return nothing;
    return booking_cancelled{};
  }
  void apply(const booked&) {}
  void apply(const booking_cancelled&) { cancelled = true; }
};

struct booking_started {
  std::string id;
};
struct booking_given_up {};
struct late_reservation_seen {};
inline auto describe(type<booking_started>) {
  return schema<booking_started>("booking_started", 1, field("id", &booking_started::id));
}
inline auto describe(type<booking_given_up>) {
  return schema<booking_given_up>("booking_given_up", 1);
}
inline auto describe(type<late_reservation_seen>) {
  return schema<late_reservation_seen>("late_reservation_seen", 1);
}

/// Reserves at the slow service; gives up (cancelling the booking) when that times
/// out, and notes the reservation if it lands afterwards.
struct booking_saga {
  static constexpr std::string_view name = "booking";
  using event_type = std::variant<booking_started, booking_given_up, late_reservation_seen>;
  using input_type = std::variant<booked, reserved>;
  using decision = saga_decision<event_type>;
  std::string id;
  bool gave_up = false;
  bool late_seen = false;

  static std::string correlate(const envelope& e, const booked&) { return e.stream.id; }
  decision react(const envelope& e, const booked&) const {
    if (!id.empty()) return nothing;
    return decision{booking_started{e.stream.id}}.send<slow_service>("reserve", "s-" + e.stream.id,
                                                                     reserve{});
  }
  decision react(const reserved&) const {
    if (gave_up && !late_seen) return late_reservation_seen{};
    return nothing;
  }
  decision on_timeout(const saga_failure&) const {
    return decision{booking_given_up{}}.send<booking>("cancel", id, cancel_booking{});
  }
  bool done() const { return late_seen; }
  void apply(const booking_started& e) { id = e.id; }
  void apply(const booking_given_up&) { gave_up = true; }
  void apply(const late_reservation_seen&) { late_seen = true; }
};

/// Opens the gate however the test ends, so the blocked service thread is released.
struct gate_guard {
  gate_guard() { slow_gate.set(false); }
  ~gate_guard() { slow_gate.set(true); }
};

} // namespace

TEST_CASE("a step that times out is compensated, and its late result still reaches the saga") {
  gate_guard guard;
  saga_options opts;
  opts.step_timeout = std::chrono::milliseconds{100};
  test_node n{4}; // one scheduler thread waits in the slow service
  REQUIRE(n->register_aggregate<slow_service>());
  REQUIRE(n->register_aggregate<booking>());
  REQUIRE(n->register_saga<booking_saga>(opts));
  REQUIRE(n->execute<booking>("b1", book{}));

  // The reservation gets no answer in time: the saga cancels the booking.
  REQUIRE(eventually([&] { return stream(n.store(), "booking", "b1").size() == 2; }));
  auto cancelled = stream(n.store(), "booking", "b1").back();
  REQUIRE(cancelled.type == "booking_cancelled");
  REQUIRE(cancelled.meta.correlation_id == "b1");
  REQUIRE(cancelled.meta.causation_id == "saga_booking-b1#1"); // the timed-out command
  bool failure_recorded = false;
  for (auto& e : stream(n.store(), "saga_booking", "b1"))
    if (e.type == "cairn.saga_failed") {
      auto f = decode<saga_failed>(e.payload);
      REQUIRE(f);
      failure_recorded = f->step_id == 1 && f->code == static_cast<uint8_t>(errc::timeout);
    }
  REQUIRE(failure_recorded);
  REQUIRE(stream(n.store(), "slow", "s-b1").empty());

  // The service answers after all: its event still reaches the saga.
  slow_gate.set(true);
  REQUIRE(eventually([&] {
    auto s = load_saga_state<booking_saga>(n.store(), "b1");
    return s && s->late_seen;
  }));
  auto late = stream(n.store(), "slow", "s-b1");
  REQUIRE(late.size() == 1);
  REQUIRE(late.front().meta.correlation_id == "b1");
  REQUIRE(*late.front().meta.find(std::string{command_id_key}) == "saga_booking-b1#1");
}
