// metrics.hpp: counters, gauges and histograms under concurrent updates, bucket
// placement, and their Prometheus text (checked by a strict reader of the format).
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include <cairn/metrics.hpp>

#include "support/prometheus_text.hpp"

using namespace cairn;
using cairn::test::parse_prometheus;

TEST_CASE("counters and histograms add up updates from many threads") {
  metrics::registry r;
  auto& c = r.add_counter("things_total", "Things.");
  auto& h = r.add_histogram("sizes", "Sizes.", metrics::buckets::sizes());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100'000; ++i) {
        c.add();
        h.observe(3);
      }
    });
  for (auto& t : threads) t.join();
  REQUIRE(c.value() == 800'000);
  auto s = h.read();
  REQUIRE(s.count == 800'000);
  REQUIRE(s.sum == 2'400'000);
  REQUIRE(s.counts[2] == 800'000); // 3 <= 2^2
}

TEST_CASE("histogram buckets are upper bounds on powers of two") {
  metrics::histogram h{metrics::buckets{2, 4, 1}}; // <=4, <=8, <=16, <=32, +Inf
  CHECK(h.index_of(0) == 0);
  CHECK(h.index_of(1) == 0);
  CHECK(h.index_of(4) == 0);
  CHECK(h.index_of(5) == 1);
  CHECK(h.index_of(8) == 1);
  CHECK(h.index_of(9) == 2);
  CHECK(h.index_of(32) == 3);
  CHECK(h.index_of(33) == 4);
  CHECK(h.index_of(~uint64_t{0}) == 4);
}

TEST_CASE("a registry renders well-formed Prometheus text") {
  metrics::registry r;
  r.add_counter("cmds_total", "Commands.", {{"category", "account"}, {"outcome", "handled"}}).add(5);
  r.add_counter("cmds_total", "Commands.", {{"category", "account"}, {"outcome", "rejected"}}).add(2);
  // The same name and labels again is the same counter.
  r.add_counter("cmds_total", "Commands.", {{"category", "account"}, {"outcome", "handled"}}).add(1);
  r.add_gauge("live", "Live things.\nTwo lines, a \\ too.").set(-3);
  auto& lat = r.add_histogram("latency_seconds", "Latency.", metrics::buckets::latency(),
                              {{"category", "a\"b\\c\nd"}});
  lat.observe(500);           // first bucket (<= 1.024 us)
  lat.observe(1'000'000);     // 1 ms
  lat.observe(100'000'000'000); // 100 s: +Inf

  auto text = r.render();
  auto p = parse_prometheus(text);
  INFO(text);
  for (auto& problem : p.problems) FAIL_CHECK(problem);
  REQUIRE(p.problems.empty());
  CHECK(p.types["cmds_total"] == "counter");
  CHECK(p.types["live"] == "gauge");
  CHECK(p.types["latency_seconds"] == "histogram");
  CHECK(p.value("cmds_total", {{"category", "account"}, {"outcome", "handled"}}) == 6);
  CHECK(p.value("cmds_total", {{"category", "account"}, {"outcome", "rejected"}}) == 2);
  CHECK(p.value("live") == -3);
  CHECK(text.find("# HELP live Live things.\\nTwo lines, a \\\\ too.\n") != std::string::npos);
  std::map<std::string, std::string> odd{{"category", "a\"b\\c\nd"}};
  CHECK(p.value("latency_seconds_count", odd) == 3);
  CHECK(p.value("latency_seconds_sum", odd) == Approx(100.001000500).epsilon(1e-12));
  auto bucket = [&](const std::string& le) {
    auto l = odd;
    l["le"] = le;
    return p.value("latency_seconds_bucket", l);
  };
  CHECK(bucket("1.024e-06") == 1); // bounds print as short decimals
  CHECK(bucket("0.001048576") == 2); // 2^20 ns
  CHECK(bucket("17.179869184") == 2); // 2^34 ns, the last finite bucket
  CHECK(bucket("+Inf") == 3);
}

TEST_CASE("the test's reader of the format catches malformed text") {
  using cairn::test::parse_prometheus;
  CHECK_FALSE(parse_prometheus("x 1\n").problems.empty()); // no TYPE
  CHECK_FALSE(parse_prometheus("# TYPE x counter\nx -1\n").problems.empty());
  CHECK_FALSE(parse_prometheus("# TYPE x gauge\nx{a=\"1} 2\n").problems.empty());
  CHECK_FALSE(parse_prometheus("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                               "h_sum 1\nh_count 1\n")
                .problems.empty());
  CHECK(parse_prometheus("# TYPE x gauge\nx{a=\"1\"} 2\n").problems.empty());
}
