// What the metrics cost per update, in CPU time (so a busy machine's waiting does
// not count): a counter add, a histogram observation, a steady_clock read, and all
// that one command costs with metrics on (two clock reads, one outcome count, one
// latency observation), from 1 and from 2 threads updating the same metrics.
// Prints one "RESULT {json}" line. bench/metrics_ab measures the whole command path.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

#include <cairn/metrics.hpp>

#include "bench_support.hpp"

using namespace cairn;

namespace {

/// CPU nanoseconds per iteration of `body` over `n` iterations on each of `threads`.
template <class F>
double cpu_ns_per_op(unsigned threads, uint64_t n, F body) {
  auto c0 = bench::cpu_seconds();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (uint64_t i = 0; i < n; ++i) body(i);
    });
  for (auto& t : ts) t.join();
  return (bench::cpu_seconds() - c0) * 1e9 / double(n * threads);
}

} // namespace

int main(int argc, char** argv) {
  bench::arguments args{argc, argv};
  uint64_t n = args.get("iterations", uint64_t{20'000'000});
  if (!args.all_used("metrics_bench [--iterations N]")) return 2;
  metrics::registry r;
  auto& c = r.add_counter("c_total", "c");
  auto& h = r.add_histogram("h_seconds", "h", metrics::buckets::latency());
  volatile uint64_t sink = 0;
  nlohmann::json out{{"bench", "metrics"}, {"iterations", n}};
  for (unsigned threads : {1u, 2u}) {
    auto suffix = "_" + std::to_string(threads) + "t_ns";
    out["loop" + suffix] = cpu_ns_per_op(threads, n, [&](uint64_t i) { sink = i; });
    out["counter_add" + suffix] = cpu_ns_per_op(threads, n, [&](uint64_t) { c.add(); });
    out["histogram_observe" + suffix] =
      cpu_ns_per_op(threads, n, [&](uint64_t i) { h.observe(i * 7919 % 50'000'000); });
    out["steady_clock_now" + suffix] = cpu_ns_per_op(threads, n, [&](uint64_t) {
      sink = std::chrono::steady_clock::now().time_since_epoch().count();
    });
    out["per_command" + suffix] = cpu_ns_per_op(threads, n, [&](uint64_t) {
      auto started = std::chrono::steady_clock::now();
      c.add();
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - started).count();
      h.observe(static_cast<uint64_t>(ns));
    });
  }
  std::printf("metrics_bench: CPU ns per operation (1 thread / 2 threads)\n");
  for (const char* k : {"loop", "counter_add", "histogram_observe", "steady_clock_now", "per_command"})
    std::printf("  %-18s %6.1f / %6.1f\n", k, out[std::string{k} + "_1t_ns"].get<double>(),
                out[std::string{k} + "_2t_ns"].get<double>());
  bench::print_result(out);
  return 0;
}
