// A child process for the Kafka crash tests and the kcat check, so that crashes are
// real SIGKILLs of a process that publishes or consumes:
//
//   kafka_agent publish DIR BOOTSTRAP EVENTS STREAMS
//       File store in DIR; a publisher (checkpoint in DIR/snapshots) follows it while
//       this process appends deposits to STREAMS accounts until the store holds EVENTS
//       events; then waits until all are acknowledged, prints "published N", exits 0.
//   kafka_agent consume DIR BOOTSTRAP TOPIC RECORDS
//       File store in DIR; a consumer of TOPIC (group "crash") whose handler appends
//       one event to stream "received-<record id>" per record; prints "handled N"
//       after each; exits 0 once RECORDS distinct records are in the store.
//   kafka_agent serve EVENTS
//       Starts a mock cluster, publishes EVENTS deposits (JSON) to topic "account",
//       prints "bootstrap ADDRESS", and keeps the cluster up until stdin closes.
// Diagnostics: KAFKA_AGENT_DEBUG=1 prints the publisher status every 200 events to
// stderr; KAFKA_AGENT_RDDEBUG=eos,msg,... turns on librdkafka debug contexts.
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <thread>

#include <cairn/file_journal.hpp>
#include <cairn/kafka_consumer.hpp>
#include <cairn/kafka_mock.hpp>
#include <cairn/kafka_publisher.hpp>
#include <cairn/memory_journal.hpp>

#include "kafka_test_support.hpp"

using namespace std::chrono_literals;

namespace {

std::shared_ptr<cairn::journal> open_store(const std::string& dir) {
  cairn::file_journal_options o;
  o.sync = cairn::sync_policy::interval; // a SIGKILL keeps the OS's page cache
  auto j = cairn::open_file_journal(dir + "/events", o);
  if (!j) {
    std::fprintf(stderr, "open: %s\n", j.error().describe().c_str());
    std::exit(3);
  }
  return *j;
}

int publish(const std::string& dir, const std::string& bootstrap, uint64_t events, int streams) {
  auto store = open_store(dir);
  auto snaps = cairn::open_file_snapshot_store(dir + "/snapshots");
  if (!snaps) return 3;
  cairn::kafka_publisher_options o;
  o.name = "crash";
  o.kafka = kafka_test::settings_for(bootstrap);
  o.checkpoint_interval = 20ms;
  if (auto d = std::getenv("KAFKA_AGENT_RDDEBUG")) o.kafka.properties["debug"] = d, o.kafka.properties["log_level"] = "7";
  o.retry_delay = 20ms;
  auto p = cairn::kafka_publisher::start(store, *snaps, o,
                                         cairn::event_renderer{}.add_aggregate<bank::account>());
  if (!p) {
    std::fprintf(stderr, "publisher: %s\n", p.error().describe().c_str());
    return 3;
  }
  std::printf("started\n");
  std::fflush(stdout);
  while (store->head_position() < events) {
    auto s = static_cast<int>(store->head_position() % static_cast<uint64_t>(streams));
    auto r = store->append_one(
      {{"account", "acc-" + std::to_string(s)},
       cairn::expected_version::any,
       {cairn::variant_codec<bank::account::event_type>::encode(bank::deposited{1})}});
    if (!r) return 3;
    if (r->last_position % 5 == 0) std::this_thread::sleep_for(1ms); // a kill finds it busy
    if (std::getenv("KAFKA_AGENT_DEBUG") && r->last_position % 200 == 0) {
      auto st = (*p)->status();
      std::fprintf(stderr, "head %llu acknowledged %llu checkpoint %llu produced %llu %s\n",
                   (unsigned long long)st.head, (unsigned long long)st.acknowledged,
                   (unsigned long long)st.checkpoint, (unsigned long long)st.produced,
                   st.last_error.c_str());
    }
  }
  if (!(*p)->wait_until_acknowledged(events, 60s)) {
    std::fprintf(stderr, "not acknowledged: %s\n", (*p)->status().last_error.c_str());
    return 4;
  }
  std::printf("published %llu\n", static_cast<unsigned long long>(events));
  std::fflush(stdout);
  return 0;
}

int consume(const std::string& dir, const std::string& bootstrap, const std::string& topic,
            size_t records) {
  auto store = open_store(dir);
  std::set<std::string> distinct;
  if (auto streams = store->list_streams())
    for (auto& s : *streams) distinct.insert(s.id);
  std::mutex m;
  std::condition_variable all_in;
  uint64_t handled = 0;
  cairn::kafka_consumer_options o;
  o.kafka = kafka_test::settings_for(bootstrap);
  o.kafka.properties["session.timeout.ms"] = "6000";
  o.kafka.properties["heartbeat.interval.ms"] = "500";
  o.group = "crash";
  o.topics = {topic};
  o.commit_interval = 50ms;
  auto c = cairn::kafka_consumer::start(
    o,
    [&](const cairn::kafka_record& r) -> cairn::expected<void> {
      auto amount = std::stoll(r.value);
      auto ok = store->append_one(
        {{"received", r.id()},
         cairn::expected_version::any,
         {cairn::variant_codec<bank::account::event_type>::encode(bank::deposited{amount},
                                                                  r.command_metadata())}});
      if (!ok) return std::move(ok).error();
      std::lock_guard<std::mutex> g{m};
      distinct.insert(r.id());
      std::printf("handled %llu\n", static_cast<unsigned long long>(++handled));
      std::fflush(stdout);
      if (distinct.size() >= records) all_in.notify_all();
      return {};
    },
    nullptr);
  if (!c) {
    std::fprintf(stderr, "consumer: %s\n", c.error().describe().c_str());
    return 3;
  }
  std::unique_lock<std::mutex> lk{m};
  if (!all_in.wait_for(lk, 120s, [&] { return distinct.size() >= records; })) return 4;
  lk.unlock();
  c->reset();
  return 0;
}

int serve(uint64_t events) {
  auto cluster = cairn::kafka_mock_cluster::start(3);
  if (!cluster || !(*cluster)->create_topic("account", 4, 3)) return 3;
  auto store = cairn::make_memory_journal();
  auto head = kafka_test::append_deposits(*store, 5, static_cast<int>(events / 5));
  cairn::kafka_publisher_options o;
  o.kafka = kafka_test::settings_for((*cluster)->bootstrap());
  auto p = cairn::kafka_publisher::start(store, nullptr, o,
                                         cairn::event_renderer{}.add_aggregate<bank::account>());
  if (!p || !(*p)->wait_until_acknowledged(head, 60s)) return 4;
  std::printf("bootstrap %s\n", (*cluster)->bootstrap().c_str());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "publish" && argc == 6)
    return publish(argv[2], argv[3], std::stoull(argv[4]), std::stoi(argv[5]));
  if (mode == "consume" && argc == 6) return consume(argv[2], argv[3], argv[4], std::stoull(argv[5]));
  if (mode == "serve" && argc == 3) return serve(std::stoull(argv[2]));
  std::fprintf(stderr, "usage: see the top of kafka_agent.cpp\n");
  return 2;
}
