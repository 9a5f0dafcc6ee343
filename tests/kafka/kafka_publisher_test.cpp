// The Kafka publisher against librdkafka's mock cluster (3 brokers): order per
// stream, headers and JSON values, the checkpoint across restarts, a broker outage,
// and injected delivery failures.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cairn/kafka_mock.hpp>
#include <cairn/kafka_publisher.hpp>
#include <cairn/memory_journal.hpp>

#include "kafka_test_support.hpp"

using namespace kafka_test;

namespace {

struct fixture {
  std::unique_ptr<cairn::kafka_mock_cluster> cluster;
  std::shared_ptr<cairn::journal> store = cairn::make_memory_journal();
  std::shared_ptr<cairn::snapshot_store> checkpoints = cairn::make_memory_snapshot_store();

  fixture() {
    auto c = cairn::kafka_mock_cluster::start(3);
    REQUIRE(c);
    cluster = std::move(*c);
    REQUIRE(cluster->create_topic("account", 4, 3));
  }

  cairn::kafka_publisher_options options() const {
    cairn::kafka_publisher_options o;
    o.name = "test";
    o.kafka = settings_for(cluster->bootstrap());
    o.filter = {"account", {}};
    o.retry_delay = std::chrono::milliseconds{20};
    o.retry_max_delay = std::chrono::milliseconds{500};
    return o;
  }

  std::unique_ptr<cairn::kafka_publisher> start(cairn::kafka_publisher_options o) {
    auto p = cairn::kafka_publisher::start(store, checkpoints, std::move(o),
                                           cairn::event_renderer{}.add_aggregate<bank::account>());
    REQUIRE(p);
    return std::move(*p);
  }
};

} // namespace

TEST_CASE("the publisher sends each stream's events in order, with headers and JSON") {
  fixture f;
  auto head = append_deposits(*f.store, 8, 25);
  // Events of another category are not published.
  REQUIRE(f.store->append_one({{"other", "x"}, cairn::expected_version::any,
                               {cairn::event_data{"noise", 1, {}, {1, 2, 3}}}}));
  auto p = f.start(f.options());
  REQUIRE(p->wait_until_acknowledged(head + 1, 20s));
  auto st = p->status();
  CHECK(st.acknowledged == head + 1);
  CHECK(st.lag == 0);
  CHECK(st.delivered == head);

  auto records = read_topic(f.cluster->bootstrap(), "account", head);
  REQUIRE(records.size() == head);
  size_t repeats = 99;
  CHECK(check_streams(records, stream_versions(*f.store)) == "");
  CHECK(check_streams(records, stream_versions(*f.store), &repeats).empty());
  CHECK(repeats == 0);
  auto& r = records.front();
  auto stored = f.store->read_all(header_number(r, "cairn.position"), 1);
  REQUIRE(stored);
  REQUIRE(stored->size() == 1);
  auto& e = stored->front();
  CHECK(r.key == e.stream.str());
  CHECK(*r.header("cairn.type") == "deposited");
  CHECK(*r.header("cairn.schema_version") == "1");
  CHECK(*r.header("cairn.stream") == e.stream.str());
  CHECK(header_number(r, "cairn.version") == e.version);
  CHECK(*r.header("cairn.correlation_id") == e.meta.correlation_id);
  CHECK(*r.header("cairn.causation_id") == e.meta.causation_id);
  CHECK(*r.header("content-type") == "application/json");
  CHECK(nlohmann::json::parse(r.value) == nlohmann::json{{"amount", e.version}});
}

TEST_CASE("a category without a renderer goes out as its binary payload") {
  fixture f;
  REQUIRE(f.cluster->create_topic("raw", 2, 3));
  REQUIRE(f.store->append_one({{"raw", "x"}, cairn::expected_version::any,
                               {cairn::event_data{"blob", 3, {}, {0, 255, 7}}}}));
  auto o = f.options();
  o.filter = {};
  auto p = f.start(o);
  REQUIRE(p->wait_until_acknowledged(1, 20s));
  auto records = read_topic(f.cluster->bootstrap(), "raw", 1);
  REQUIRE(records.size() == 1);
  CHECK(records[0].value == std::string("\0\xff\x07", 3));
  CHECK(*records[0].header("content-type") == "application/octet-stream");
  CHECK(*records[0].header("cairn.schema_version") == "3");
}

TEST_CASE("a restarted publisher resumes from its checkpoint: no gap, no repeat") {
  fixture f;
  auto first = append_deposits(*f.store, 5, 20);
  {
    auto p = f.start(f.options());
    REQUIRE(p->wait_until_acknowledged(first, 20s));
  } // stops and stores the checkpoint
  auto saved = cairn::kafka_publisher::stored_checkpoint(*f.checkpoints, "test");
  REQUIRE(saved);
  CHECK(*saved == first);
  auto head = append_deposits(*f.store, 5, 20);
  auto p = f.start(f.options());
  REQUIRE(p->wait_until_acknowledged(head, 20s));
  CHECK(p->status().produced == head - first); // only what the first run had not sent
  auto records = read_topic(f.cluster->bootstrap(), "account", head);
  size_t repeats = 99;
  CHECK(check_streams(records, stream_versions(*f.store), &repeats) == "");
  CHECK(repeats == 0);
  CHECK(records.size() == head);
}

TEST_CASE("every broker down: the publisher lags and reports it, then catches up, nothing lost") {
  fixture f;
  auto o = f.options();
  auto p = f.start(o);
  auto before = append_deposits(*f.store, 4, 10);
  REQUIRE(p->wait_until_acknowledged(before, 20s));

  for (int b = 1; b <= 3; ++b) f.cluster->set_broker_down(b);
  // Appends go on while Kafka is unreachable (the publisher is not in their way).
  auto head = append_deposits(*f.store, 4, 30);
  std::this_thread::sleep_for(1500ms);
  auto st = p->status();
  CHECK(st.head == head);
  CHECK(st.lag > 0);
  CHECK(st.acknowledged < head);
  CHECK_FALSE(st.last_error.empty());

  for (int b = 1; b <= 3; ++b) f.cluster->set_broker_up(b);
  REQUIRE(p->wait_until_acknowledged(head, 60s));
  CHECK(p->status().lag == 0);
  auto records = read_topic(f.cluster->bootstrap(), "account", head);
  CHECK(check_streams(records, stream_versions(*f.store)) == "");
}

TEST_CASE("failed deliveries (injected errors) make the publisher back off and re-send in order") {
  fixture f;
  // TOPIC_AUTHORIZATION_FAILED (29) is not retriable: those messages fail for good.
  f.cluster->fail_requests(cairn::kafka_mock_cluster::produce_api, std::vector<int>(6, 29));
  auto head = append_deposits(*f.store, 6, 20);
  auto p = f.start(f.options());
  REQUIRE(p->wait_until_acknowledged(head, 60s));
  auto st = p->status();
  CHECK(st.failed > 0);
  CHECK(st.restarts > 0);
  CHECK(st.lag == 0);
  auto records = read_topic(f.cluster->bootstrap(), "account", head);
  CHECK(check_streams(records, stream_versions(*f.store)) == "");
}

TEST_CASE("the publisher rejects a name it cannot store a checkpoint under") {
  fixture f;
  auto o = f.options();
  o.name = "";
  auto p = cairn::kafka_publisher::start(f.store, f.checkpoints, o);
  REQUIRE_FALSE(p);
  CHECK(p.error().code() == cairn::errc::invalid_argument);
  o = f.options();
  o.kafka.properties["no.such.property"] = "1";
  auto q = cairn::kafka_publisher::start(f.store, f.checkpoints, o);
  REQUIRE_FALSE(q);
  CHECK(q.error().code() == cairn::errc::invalid_argument);
}
