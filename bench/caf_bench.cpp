// Benchmarks CAF itself on this machine, the runtime's ceiling under Cairn: K
// event-based client actors each ping-pong with one server actor, closed-loop like the
// workload's clients, (1) with one-way messages (ping, then the server sends pong back)
// and (2) with request/response (request(...).then). Same actor-system settings as a
// Cairn node (node_config). Prints round trips/s, medians of --runs windows, as one
// "RESULT {json}" line.
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <cairn/node_config.hpp>

#include "bench_support.hpp"

using namespace cairn::bench;

namespace {

constexpr const char* usage = "caf_bench [--clients K] [--seconds S] [--runs R]";

using ping_atom = caf::atom_constant<caf::atom("bench_ping")>;
using pong_atom = caf::atom_constant<caf::atom("bench_pong")>;

/// What the clients of one window share with main.
struct window {
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> round_trips{0}; ///< added by each client as it stops
  std::atomic<size_t> stopped{0};
  std::atomic<size_t> warm{0};         ///< clients that completed a round trip
  std::atomic<bool> counted_any{false}; ///< a round trip was counted in the window
};

caf::behavior server(caf::event_based_actor* self, int /*unused: spawn needs an argument*/) {
  return {
    [self](ping_atom, uint64_t n) {
      // One-way: answer with a message of our own, not a response.
      self->send(caf::actor_cast<caf::actor>(self->current_sender()), pong_atom::value, n);
    },
    [](ping_atom, uint64_t n, caf::ok_atom) { return n; }, // request/response
  };
}

struct client_state {
  caf::actor server;
  std::shared_ptr<window> w;
  uint64_t counted = 0;
  bool warm = false;
};

using client_t = caf::stateful_actor<client_state>;

/// Counts one round trip; returns false (after stopping) when the window is over.
bool count_and_go_on(client_t* self) {
  auto& st = self->state;
  if (!st.warm) {
    st.warm = true;
    ++st.w->warm;
  }
  if (st.w->measuring.load(std::memory_order_relaxed) && ++st.counted == 1)
    st.w->counted_any.store(true, std::memory_order_relaxed);
  if (!st.w->stop.load(std::memory_order_relaxed)) return true;
  st.w->round_trips += st.counted;
  ++st.w->stopped;
  self->quit();
  return false;
}

caf::behavior oneway_client(client_t* self, caf::actor srv, std::shared_ptr<window> w) {
  self->state.server = std::move(srv);
  self->state.w = std::move(w);
  self->send(self->state.server, ping_atom::value, uint64_t{0});
  return {
    [self](pong_atom, uint64_t n) {
      if (count_and_go_on(self)) self->send(self->state.server, ping_atom::value, n + 1);
    },
  };
}

void request_next(client_t* self, uint64_t n) {
  self->request(self->state.server, caf::infinite, ping_atom::value, n, caf::ok_atom::value)
    .then([self](uint64_t m) {
      if (count_and_go_on(self)) request_next(self, m + 1);
    });
}

caf::behavior request_client(client_t* self, caf::actor srv, std::shared_ptr<window> w) {
  self->state.server = std::move(srv);
  self->state.w = std::move(w);
  request_next(self, 0);
  return {[](pong_atom, uint64_t) {}};
}

/// Waits (up to a minute) until `done()`: on a loaded machine the clients may not run
/// at all for a while, and a window in which nothing ran measures nothing.
template <class F>
void wait_for(F done) {
  auto until = clock_type::now() + std::chrono::seconds{60};
  while (!done() && clock_type::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
}

/// Round trips per second of one window of `seconds` (after a short warm-up in which
/// every client completes a round trip); the window lasts until a round trip is counted.
double run_window(caf::actor_system& sys, size_t clients, bool oneway, double seconds) {
  auto w = std::make_shared<window>();
  auto srv = sys.spawn(server, 0);
  for (size_t i = 0; i < clients; ++i) {
    if (oneway) sys.spawn(oneway_client, srv, w);
    else sys.spawn(request_client, srv, w);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{200}); // warm-up
  wait_for([&] { return w->warm.load() >= clients; });
  w->measuring = true;
  auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  wait_for([&] { return w->counted_any.load(); });
  w->measuring = false;
  auto elapsed = seconds_since(t0);
  w->stop = true;
  while (w->stopped < clients) std::this_thread::sleep_for(std::chrono::milliseconds{2});
  caf::anon_send_exit(srv, caf::exit_reason::user_shutdown);
  return double(w->round_trips.load()) / elapsed;
}

} // namespace

int main(int argc, char** argv) {
  arguments args{argc, argv};
  auto clients = args.get("clients", uint64_t{256});
  auto seconds = args.get("seconds", 1.0);
  auto runs = args.get("runs", uint64_t{3});
  if (!args.all_used(usage)) return 2;
  if (clients == 0 || runs == 0 || seconds <= 0) {
    std::fprintf(stderr, "bad option value\nusage: %s\n", usage);
    return 2;
  }
  std::vector<double> oneway, request;
  {
    cairn::node_config cfg; // the scheduler settings a Cairn node runs with
    caf::actor_system sys{cfg};
    for (uint64_t r = 0; r < runs; ++r) {
      oneway.push_back(run_window(sys, clients, true, seconds));
      request.push_back(run_window(sys, clients, false, seconds));
      std::printf("  run %llu: one-way %.0f round trips/s, request/response %.0f round trips/s\n",
                  static_cast<unsigned long long>(r + 1), oneway.back(), request.back());
      std::fflush(stdout);
    }
  }
  std::printf("caf_bench: %u cores, K=%llu clients with one server: median one-way %.0f, "
              "request/response %.0f round trips/s\n",
              std::thread::hardware_concurrency(), static_cast<unsigned long long>(clients),
              median(oneway), median(request));
  print_result({
    {"bench", "caf"},
    {"clients", clients},
    {"runs", runs},
    {"seconds", seconds},
    {"oneway_round_trips_per_s", median(oneway)},
    {"oneway_round_trips_per_s_runs", oneway},
    {"request_round_trips_per_s", median(request)},
    {"request_round_trips_per_s_runs", request},
    {"peak_rss_bytes", peak_rss_bytes()},
  });
  return 0;
}
