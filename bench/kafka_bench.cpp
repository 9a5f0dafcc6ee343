// kafka_bench: the Kafka publisher against librdkafka's in-process mock cluster
// (3 brokers, topic of 4 partitions): how many committed events per second it
// publishes (from a filled memory store, start to "all acknowledged"), and the lag
// from an event's commit to Kafka's acknowledgement of it while events are committed
// at a steady rate (p50/p99). The mock cluster runs in this process and keeps
// messages in memory, so these figures bound the publisher's own cost, not a real
// broker's network and disk.
//
//   kafka_bench [--events 200000] [--streams 1000] [--runs 3]
//               [--rate 5000] [--seconds 5] [--linger-ms 5]
// --linger-ms is librdkafka's linger.ms (how long it waits to fill a batch; its default 5).
#include <cstdio>
#include <mutex>
#include <thread>

#include <cairn/kafka_mock.hpp>
#include <cairn/kafka_publisher.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"
#include "bench_support.hpp"

using namespace cairn;
using namespace std::chrono_literals;

namespace {

cairn::event_data deposit(int64_t amount) {
  return variant_codec<bank::account::event_type>::encode(bank::deposited{amount});
}

void fill(journal& store, uint64_t events, uint64_t streams) {
  std::vector<append_request> batch;
  for (uint64_t i = 0; i < events; ++i) {
    batch.push_back({{"account", "acc-" + std::to_string(i % streams)},
                     expected_version::any,
                     {deposit(static_cast<int64_t>(i % 100 + 1))}});
    if (batch.size() == 1000 || i + 1 == events) {
      store.append(std::move(batch));
      batch.clear();
    }
  }
}

std::string linger_ms = "5";

kafka_publisher_options options(const kafka_mock_cluster& cluster) {
  kafka_publisher_options o;
  o.kafka.brokers = cluster.bootstrap();
  o.kafka.properties["log_level"] = "3";
  o.kafka.properties["linger.ms"] = linger_ms;
  o.filter = {"account", {}};
  return o;
}

} // namespace

int main(int argc, char** argv) {
  bench::arguments args{argc, argv};
  auto events = args.get("events", uint64_t{200000});
  auto streams = args.get("streams", uint64_t{1000});
  auto runs = args.get("runs", uint64_t{3});
  auto rate = args.get("rate", uint64_t{5000});
  auto seconds = args.get("seconds", 5.0);
  linger_ms = args.get("linger-ms", std::string{"5"});
  const char* usage = "kafka_bench [--events N] [--streams N] [--runs N] [--rate events/s] "
                      "[--seconds S] [--linger-ms MS]";
  if (!args.all_used(usage)) return 2;
  if (events == 0 || streams == 0 || runs == 0 || rate == 0) {
    std::fprintf(stderr, "usage: %s (all positive)\n", usage);
    return 2;
  }
  std::printf("machine: %u cores; linger.ms %s\n", std::thread::hardware_concurrency(),
              linger_ms.c_str());

  // 1. Throughput: publish a filled store.
  std::vector<double> per_second;
  for (uint64_t run = 0; run < runs; ++run) {
    auto cluster = kafka_mock_cluster::start(3);
    if (!cluster || !(*cluster)->create_topic("account", 4)) return 1;
    auto store = make_memory_journal();
    fill(*store, events, streams);
    auto t0 = bench::clock_type::now();
    auto p = kafka_publisher::start(store, nullptr, options(**cluster),
                                    event_renderer{}.add_aggregate<bank::account>());
    if (!p || !(*p)->wait_until_acknowledged(events, 300s)) {
      std::fprintf(stderr, "not all acknowledged\n");
      return 1;
    }
    auto s = bench::seconds_since(t0);
    per_second.push_back(static_cast<double>(events) / s);
    std::printf("run %llu: %llu events (JSON, %llu streams) published in %.3f s: %.0f events/s\n",
                static_cast<unsigned long long>(run + 1), static_cast<unsigned long long>(events),
                static_cast<unsigned long long>(streams), s, per_second.back());
  }
  std::printf("throughput: median %.0f events/s over %llu runs\n", bench::median(per_second),
              static_cast<unsigned long long>(runs));

  // 2. Lag: commit at a steady rate; the time from commit to acknowledged publish.
  auto cluster = kafka_mock_cluster::start(3);
  if (!cluster || !(*cluster)->create_topic("account", 4)) return 1;
  auto store = make_memory_journal();
  auto total = static_cast<uint64_t>(static_cast<double>(rate) * seconds);
  std::vector<int64_t> acked_at(total + 1, 0); // position -> system-clock ns
  auto o = options(**cluster);
  o.from_beginning = true;
  o.on_acknowledged = [&](uint64_t first, uint64_t last) {
    auto now = now_ns();
    for (auto pos = first; pos <= last && pos <= total; ++pos) acked_at[pos] = now;
  };
  auto p = kafka_publisher::start(store, nullptr, o, event_renderer{}.add_aggregate<bank::account>());
  if (!p) return 1;
  auto t0 = bench::clock_type::now();
  auto period = std::chrono::nanoseconds{1'000'000'000 / rate};
  for (uint64_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(t0 + period * i);
    store->append_one({{"account", "acc-" + std::to_string(i % streams)},
                       expected_version::any,
                       {deposit(1)}});
  }
  if (!(*p)->wait_until_acknowledged(total, 120s)) return 1;
  std::vector<int64_t> lag;
  for (uint64_t pos = 1; pos <= total;) {
    auto chunk = store->read_all(pos, 65536);
    if (!chunk || chunk->empty()) break;
    for (auto& e : *chunk) lag.push_back(acked_at[e.position] - e.timestamp_ns);
    pos = chunk->back().position + 1;
  }
  auto p50 = bench::percentile(lag, 0.50), p99 = bench::percentile(lag, 0.99);
  std::printf("lag commit -> acknowledged at %llu events/s for %.0f s (%zu events): p50 %.2f ms  "
              "p99 %.2f ms\n",
              static_cast<unsigned long long>(rate), seconds, lag.size(), p50 / 1e6, p99 / 1e6);
  std::printf("RESULT {\"kafka_publish_events_per_s\": %.0f, \"kafka_lag_p50_ms\": %.3f, "
              "\"kafka_lag_p99_ms\": %.3f}\n",
              bench::median(per_second), p50 / 1e6, p99 / 1e6);
  return 0;
}
