// The publisher beside a running node: with every broker down, the node's commands
// still complete (the publisher is not on their path), and it catches up afterwards.
#include <catch2/catch.hpp>

#include <cairn/kafka_mock.hpp>
#include <cairn/kafka_publisher.hpp>
#include <cairn/test_node.hpp>

#include "kafka_test_support.hpp"

using namespace kafka_test;

TEST_CASE("commands complete while every broker is down, and the publisher catches up after") {
  auto cluster = cairn::kafka_mock_cluster::start(3);
  REQUIRE(cluster);
  REQUIRE((*cluster)->create_topic("account", 4, 3));
  cairn::testkit::test_node node;
  REQUIRE(node->register_aggregate<bank::account>());
  cairn::kafka_publisher_options o;
  o.name = "node";
  o.kafka = settings_for((*cluster)->bootstrap());
  o.filter = {"account", {}};
  auto p = cairn::kafka_publisher::start(node->store(), nullptr, o,
                                         cairn::event_renderer{}.add_aggregate<bank::account>());
  REQUIRE(p);
  for (int i = 0; i < 10; ++i)
    REQUIRE(node->execute<bank::account>("a" + std::to_string(i), bank::open{"o"}));
  REQUIRE((*p)->wait_until_acknowledged(10, 20s));

  for (int b = 1; b <= 3; ++b) (*cluster)->set_broker_down(b);
  uint64_t last = 0;
  for (int round = 0; round < 20; ++round)
    for (int i = 0; i < 10; ++i) {
      auto r = node->execute<bank::account>("a" + std::to_string(i), bank::deposit{1});
      REQUIRE(r);
      last = r->position;
    }
  auto st = (*p)->status();
  CHECK(last == 210);
  CHECK(st.acknowledged < last); // nothing could be published meanwhile
  CHECK(st.lag == last - st.acknowledged);

  for (int b = 1; b <= 3; ++b) (*cluster)->set_broker_up(b);
  REQUIRE((*p)->wait_until_acknowledged(last, 60s));
  auto records = read_topic((*cluster)->bootstrap(), "account", last);
  CHECK(check_streams(records, stream_versions(node.store())) == "");
}
