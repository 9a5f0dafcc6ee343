// saga_checkpoint_bench: the size of a saga manager's checkpoint with many instances
// open (a position and a low-water mark: it must not grow with them), against what
// the old format (every open key) would store, and how long a restart takes to find
// the open instances again from the low-water mark.
//
//   saga_checkpoint_bench [--instances 100000]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <cairn/codec.hpp>
#include <cairn/saga_process.hpp>
#include <cairn/test_node.hpp>

#include "actors/waiter_saga.hpp" // the test saga: one instance per account, open for ever
#include "bank/account.hpp"
#include "bench_support.hpp"

using namespace cairn;
using cairn::test::waiter_saga;
using cairn::testkit::test_node;

namespace {

template <class F>
bool wait_until(F done, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return true;
}

void start(node& n, const saga_options& opts) {
  if (!n.register_aggregate<bank::account>() || !n.register_saga<waiter_saga>(opts)) {
    std::fprintf(stderr, "cannot register\n");
    std::exit(1);
  }
}

} // namespace

int main(int argc, char** argv) {
  bench::arguments args(argc, argv);
  auto instances = args.get("instances", uint64_t{100000});
  if (!args.all_used("saga_checkpoint_bench [--instances N]")) return 2;
  auto store = make_memory_journal();
  saga_options opts;
  opts.checkpoint_interval = std::chrono::milliseconds{100};
  auto open_count = [](node& n) {
    auto s = n.saga_status_of<waiter_saga>();
    return s ? s->open : 0;
  };
  {
    test_node n{2, store};
    start(*n, opts);
    std::atomic<uint64_t> answered{0}, failed{0};
    constexpr uint64_t window = 2000;
    for (uint64_t i = 0; i < instances; ++i) {
      while (i - answered.load() >= window) std::this_thread::sleep_for(std::chrono::microseconds{200});
      n->send<bank::account>("acc-" + std::to_string(i), bank::open{"o"},
                             [&](expected<command_reply> r) {
                               if (!r) ++failed;
                               ++answered;
                             });
    }
    wait_until([&] { return answered.load() == instances; }, std::chrono::seconds{600});
    if (failed > 0) std::fprintf(stderr, "%llu opens failed\n", (unsigned long long)failed.load());
    auto head = store->head_position();
    if (!wait_until(
          [&] {
            auto s = n->saga_status_of<waiter_saga>();
            return s && s->open == instances && s->checkpointed >= head;
          },
          std::chrono::seconds{600})) {
      std::fprintf(stderr, "the saga did not catch up\n");
      return 1;
    }
  }
  auto cp_stream = saga_checkpoint_stream("waiter");
  auto last = store->read_stream(cp_stream, *store->stream_version(cp_stream), 1);
  auto cp_bytes = last->front().payload.size();
  // What version 1 stored: every open key.
  saga_checkpoint_v1 old{last->front().position, {}};
  for (uint64_t i = 0; i < instances; ++i) old.open.push_back("acc-" + std::to_string(i));
  auto old_bytes = encode(old).size();

  auto t0 = bench::clock_type::now();
  test_node n{2, store};
  start(*n, opts);
  wait_until([&] { return open_count(*n) == instances; }, std::chrono::seconds{600});
  double restart_s = bench::seconds_since(t0);
  std::printf("%llu open instances: checkpoint %zu bytes (version 1 would store %zu bytes); "
              "restart found them all in %.2f s\n",
              (unsigned long long)instances, cp_bytes, old_bytes, restart_s);
  nlohmann::json result{{"bench", "saga_checkpoint"},
                        {"open_instances", instances},
                        {"checkpoint_bytes", cp_bytes},
                        {"v1_checkpoint_bytes", old_bytes},
                        {"restart_find_open_s", restart_s}};
  std::printf("RESULT %s\n", result.dump().c_str());
  return 0;
}
