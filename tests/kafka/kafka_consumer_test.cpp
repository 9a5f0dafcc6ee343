// The Kafka consumer against librdkafka's mock cluster (3 brokers): every record
// handled, offsets committed only for handled records, and parking.
#include <catch2/catch.hpp>

#include <atomic>
#include <set>

#include <cairn/kafka_consumer.hpp>
#include <cairn/kafka_mock.hpp>

#include "kafka_test_support.hpp"

using namespace kafka_test;

namespace {

struct cluster_fixture {
  std::unique_ptr<cairn::kafka_mock_cluster> cluster;
  cluster_fixture() {
    auto c = cairn::kafka_mock_cluster::start(3);
    REQUIRE(c);
    cluster = std::move(*c);
    REQUIRE(cluster->create_topic("payments", 3, 3));
  }
  cairn::kafka_consumer_options options() const {
    cairn::kafka_consumer_options o;
    o.kafka = settings_for(cluster->bootstrap());
    o.group = "bank";
    o.topics = {"payments"};
    o.retry_delay = std::chrono::milliseconds{5};
    o.retry_max_delay = std::chrono::milliseconds{20};
    o.commit_interval = std::chrono::milliseconds{100};
    o.kafka.properties["session.timeout.ms"] = "6000";
    o.kafka.properties["heartbeat.interval.ms"] = "500";
    return o;
  }
};

std::vector<std::pair<std::string, std::string>> numbered(int from, int to) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = from; i < to; ++i) out.emplace_back("k" + std::to_string(i % 7), std::to_string(i));
  return out;
}

struct collector {
  std::mutex m;
  std::multiset<std::string> values;
  std::set<std::string> ids;
  size_t size() {
    std::lock_guard<std::mutex> g{m};
    return values.size();
  }
};

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

} // namespace

TEST_CASE("the consumer hands every record to the handler and commits what it handled") {
  cluster_fixture f;
  REQUIRE(produce(f.cluster->bootstrap(), "payments", numbered(0, 200)) == 0);
  auto seen = std::make_shared<collector>();
  auto handler = [seen](const cairn::kafka_record& r) -> cairn::expected<void> {
    std::lock_guard<std::mutex> g{seen->m};
    seen->values.insert(r.value);
    seen->ids.insert(r.id());
    CHECK(r.command_metadata().correlation_id == "kafka:" + r.id());
    return {};
  };
  {
    auto c = cairn::kafka_consumer::start(f.options(), handler, nullptr);
    REQUIRE(c);
    REQUIRE(wait_for([&] { return seen->size() >= 200; }, 30s));
    CHECK((*c)->status().handled == 200);
  } // stops: commits
  CHECK(seen->ids.size() == 200);
  std::set<std::string> distinct(seen->values.begin(), seen->values.end());
  CHECK(distinct.size() == 200);

  // The same group resumes after the committed offsets: only the new records come.
  REQUIRE(produce(f.cluster->bootstrap(), "payments", numbered(200, 230)) == 0);
  auto again = std::make_shared<collector>();
  auto o2 = f.options();
  auto c = cairn::kafka_consumer::start(
    o2,
    [again](const cairn::kafka_record& r) -> cairn::expected<void> {
      std::lock_guard<std::mutex> g{again->m};
      again->values.insert(r.value);
      return {};
    },
    nullptr);
  REQUIRE(c);
  bool all = wait_for([&] { return again->size() >= 30; }, 30s);
  INFO((*c)->status().last_error);
  REQUIRE(all);
  std::this_thread::sleep_for(300ms);
  CHECK(again->size() == 30);
  CHECK(*again->values.begin() == "200");
}

TEST_CASE("a record the handler keeps failing on is parked with its reason, and the rest go on") {
  cluster_fixture f;
  auto parking = cairn::make_memory_snapshot_store();
  std::vector<std::pair<std::string, std::string>> records = numbered(0, 50);
  records[10].second = "poison";   // always throws: retried, then parked
  records[20].second = "rejected"; // a permanent error: parked at once
  REQUIRE(produce(f.cluster->bootstrap(), "payments", records) == 0);
  auto seen = std::make_shared<collector>();
  auto attempts = std::make_shared<std::atomic<int>>(0);
  auto o = f.options();
  o.max_attempts = 4;
  auto c = cairn::kafka_consumer::start(
    o,
    [seen, attempts](const cairn::kafka_record& r) -> cairn::expected<void> {
      if (r.value == "poison") {
        ++*attempts;
        throw std::runtime_error("cannot handle poison");
      }
      if (r.value == "rejected") return cairn::error{cairn::errc::rejected, "account not open"};
      std::lock_guard<std::mutex> g{seen->m};
      seen->values.insert(r.value);
      return {};
    },
    parking);
  REQUIRE(c);
  REQUIRE(wait_for([&] { return seen->size() >= 48; }, 30s));
  REQUIRE(wait_for([&] { return (*c)->status().parked == 2; }, 10s));
  CHECK(*attempts == 4);
  auto parked = (*c)->parked();
  REQUIRE(parked.size() == 2);
  std::map<std::string, cairn::parked_record> by_value;
  for (auto& p : parked) by_value[p.record.value] = p;
  CHECK(by_value["poison"].attempts == 4);
  CHECK(by_value["poison"].reason == "the handler threw: cannot handle poison");
  CHECK(by_value["rejected"].attempts == 1);
  CHECK(by_value["rejected"].reason == "rejected: account not open");
  CHECK(by_value["poison"].record.topic == "payments");
  CHECK(by_value["poison"].record.key == records[10].first);

  // Parked records are kept in the store and survive the consumer.
  c->reset();
  auto stored = cairn::kafka_consumer::stored_parked(*parking, "bank");
  REQUIRE(stored);
  REQUIRE(stored->size() == 2);
  auto again = cairn::kafka_consumer::start(o, [](const cairn::kafka_record&) {
    return cairn::expected<void>{};
  }, parking);
  REQUIRE(again);
  CHECK((*again)->parked().size() == 2);
}

TEST_CASE("the consumer refuses options it cannot work with") {
  cluster_fixture f;
  auto ok = [](const cairn::kafka_record&) { return cairn::expected<void>{}; };
  auto o = f.options();
  o.group.clear();
  CHECK(cairn::kafka_consumer::start(o, ok, nullptr).error().code() ==
        cairn::errc::invalid_argument);
  o = f.options();
  o.topics.clear();
  CHECK(cairn::kafka_consumer::start(o, ok, nullptr).error().code() ==
        cairn::errc::invalid_argument);
  o = f.options();
  CHECK(cairn::kafka_consumer::start(o, nullptr, nullptr).error().code() ==
        cairn::errc::invalid_argument);
}
