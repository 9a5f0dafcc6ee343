// The node's scheduler (actors/src/node_scheduler.hpp), and CAF's own that
// scheduler.policy can pick instead: messages between many actors all arrive,
// delayed messages and timeouts fire, blocking actors on other threads take part,
// and busy actors stop and the system shuts down cleanly.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <cairn/node_config.hpp>

using namespace std::chrono_literals;

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;
using done_atom = caf::atom_constant<caf::atom("done")>;

/// Bounces each ping back to its sender until the count runs out, then reports
/// to `sink`.
caf::behavior bouncer(caf::event_based_actor* self, caf::actor sink) {
  return {
    [=](ping_atom, int left) {
      if (left == 0) {
        self->send(sink, done_atom::value);
        return;
      }
      self->send(caf::actor_cast<caf::actor>(self->current_sender()), ping_atom::value,
                 left - 1);
    },
  };
}

/// Counts pings. (Its state comes as an argument: CAF 0.17's spawn of a function
/// with no arguments binds a null reference, which UBSan reports.)
caf::behavior counter(caf::event_based_actor*, std::atomic<int>* received) {
  return {[received](ping_atom, int) { ++*received; }};
}

/// Sets `*timed_out` and quits when no message came for 20 ms.
caf::behavior idler(caf::event_based_actor* self, std::atomic<bool>* timed_out) {
  return {[](ping_atom, int) {},
          caf::after(std::chrono::milliseconds{20}) >> [self, timed_out] {
            *timed_out = true;
            self->quit();
          }};
}

/// A bouncer whose state counts its own destruction in `*destroyed`.
struct tracked_state {
  std::atomic<int>* destroyed = nullptr;
  ~tracked_state() {
    if (destroyed) ++*destroyed;
  }
};

caf::behavior tracked_bouncer(caf::stateful_actor<tracked_state>* self,
                              std::atomic<int>* destroyed) {
  self->state.destroyed = destroyed;
  self->delayed_send(self, std::chrono::hours{1}, ping_atom::value, 0); // still pending at the end
  return {
    [=](ping_atom, int left) {
      if (left > 0)
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), ping_atom::value,
                   left - 1);
    },
  };
}

/// Sends `each` pings from each of `threads` non-actor threads to one counting
/// actor; returns how many it counted (waiting up to 10 s for the last ones).
int pings_counted(caf::actor_system& sys, int threads, int each) {
  std::atomic<int> received{0};
  auto target = sys.spawn(counter, &received);
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t)
    senders.emplace_back([&] {
      for (int i = 0; i < each; ++i) caf::anon_send(target, ping_atom::value, i);
    });
  for (auto& t : senders) t.join();
  for (int i = 0; i < 2000 && received < threads * each; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
  return received.load();
}

/// Destroys an actor system, with the given policy, while 2 x `pairs` actors ping
/// each other without end and each has a delayed message pending, without waiting
/// for the actors. Returns how many of their states were destroyed.
int states_destroyed_at_teardown(const std::string& policy, int pairs);

std::unique_ptr<cairn::node_config> config_for(const std::string& policy) {
  auto cfg = std::make_unique<cairn::node_config>();
  if (!policy.empty()) cfg->set("scheduler.policy", caf::atom_from_string(policy));
  cfg->set("scheduler.max-threads", size_t{2});
  return cfg;
}

} // namespace

TEST_CASE("node scheduler: ping-pong between many actor pairs completes",
          "[scheduler]") {
  auto policy = GENERATE(std::string{}, std::string{"cairn"}, std::string{"sharing"},
                         std::string{"stealing"});
  CAPTURE(policy);
  auto cfg = config_for(policy);
  caf::actor_system sys{*cfg};
  // The policy chose the scheduler: CAF's own for "sharing" and "stealing".
  using caf::scheduler::coordinator;
  auto* sched = &sys.scheduler();
  CHECK((dynamic_cast<coordinator<caf::policy::work_sharing>*>(sched) != nullptr) ==
        (policy == "sharing"));
  CHECK((dynamic_cast<coordinator<caf::policy::work_stealing>*>(sched) != nullptr) ==
        (policy == "stealing"));
  caf::scoped_actor self{sys};
  constexpr int pairs = 200;
  constexpr int rounds = 500;
  for (int i = 0; i < pairs; ++i) {
    auto a = sys.spawn(bouncer, caf::actor{self});
    auto b = sys.spawn(bouncer, caf::actor{self});
    caf::send_as(a, b, ping_atom::value, rounds); // b answers to a, a to b, ...
  }
  int done = 0;
  self->receive_for(done, pairs)([](done_atom) {});
  CHECK(done == pairs);
}

TEST_CASE("node scheduler: delayed messages and receive timeouts fire", "[scheduler]") {
  auto cfg = config_for("cairn");
  caf::actor_system sys{*cfg};
  caf::scoped_actor self{sys};
  auto t0 = std::chrono::steady_clock::now();
  self->delayed_send(self, 50ms, ping_atom::value, 7);
  int got = -1;
  self->receive([&](ping_atom, int x) { got = x; }, caf::after(5s) >> [] {});
  CHECK(got == 7);
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);

  // An event-based actor's idle timeout runs on the scheduler's clock, too.
  std::atomic<bool> timed_out{false};
  sys.spawn(idler, &timed_out);
  for (int i = 0; i < 500 && !timed_out; ++i) std::this_thread::sleep_for(10ms);
  CHECK(timed_out);
}

TEST_CASE("node scheduler: messages from many non-actor threads all arrive",
          "[scheduler]") {
  auto cfg = config_for("cairn");
  caf::actor_system sys{*cfg};
  CHECK(pings_counted(sys, 4, 5'000) == 4 * 5'000);
}

TEST_CASE("node scheduler: busy actors are stopped and the system shuts down",
          "[scheduler]") {
  // Pairs ping each other without end, so that the queue is never empty; each is
  // stopped mid-flight, reports down, and the system's destructor then returns
  // (ASan checks that every queued job was released).
  auto cfg = config_for("cairn");
  caf::actor_system sys{*cfg};
  caf::scoped_actor self{sys};
  std::vector<caf::actor> actors;
  for (int i = 0; i < 50; ++i) {
    auto a = sys.spawn(bouncer, caf::actor{self});
    auto b = sys.spawn(bouncer, caf::actor{self});
    self->monitor(a);
    self->monitor(b);
    caf::send_as(a, b, ping_atom::value, 1'000'000'000);
    actors.push_back(a);
    actors.push_back(b);
  }
  std::this_thread::sleep_for(50ms);
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  size_t down = 0;
  self->receive_for(down, actors.size())(
    [](const caf::down_msg& d) { CHECK(d.reason == caf::exit_reason::user_shutdown); });
  CHECK(down == actors.size());
}

TEST_CASE("node scheduler: an actor that yields after each message gets every message",
          "[scheduler]") {
  // max-throughput 1: each resume handles one message, and a busy actor goes back to
  // the end of the queue (the scheduler's resume_later path).
  auto cfg = config_for("cairn");
  cfg->set("scheduler.max-throughput", size_t{1});
  caf::actor_system sys{*cfg};
  CHECK(pings_counted(sys, 4, 20'000) == 4 * 20'000);
}

namespace {

int states_destroyed_at_teardown(const std::string& policy, int pairs) {
  std::atomic<int> destroyed{0};
  {
    auto cfg = config_for(policy);
    caf::actor_system sys{*cfg};
    sys.await_actors_before_shutdown(false);
    for (int i = 0; i < pairs; ++i) {
      auto a = sys.spawn(tracked_bouncer, &destroyed);
      auto b = sys.spawn(tracked_bouncer, &destroyed);
      caf::send_as(a, b, ping_atom::value, 1'000'000'000);
    }
    std::this_thread::sleep_for(50ms);
  }
  return destroyed.load();
}

} // namespace

TEST_CASE("node scheduler: tearing down with a full queue releases what CAF's does",
          "[scheduler]") {
  // The system is destroyed while its queue is full, without waiting for the actors:
  // the jobs left behind are released (ASan checks for leaks), and as many actor
  // states are destroyed as under CAF's own sharing scheduler.
  constexpr int pairs = 50;
  int ours = states_destroyed_at_teardown("cairn", pairs);
  int cafs = states_destroyed_at_teardown("sharing", pairs);
  CHECK(ours == cafs);
  CHECK(ours > 0);
}
