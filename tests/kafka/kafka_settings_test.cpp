// [cairn.kafka] in a node config: brokers, topics per category, pass-through properties.
#include <catch2/catch.hpp>

#include <sstream>

#include <caf/actor_system_config.hpp>

#include <cairn/kafka_settings.hpp>

TEST_CASE("[cairn.kafka] is read from the node's config file") {
  caf::actor_system_config cfg;
  std::istringstream ini{R"([cairn.kafka]
brokers="k1:9092,k2:9092"
topics=["account=bank.accounts", "transfer=bank.transfers"]
properties=["security.protocol=SASL_SSL", "sasl.mechanism=PLAIN", "sasl.username=bank"]
)"};
  REQUIRE_FALSE(cfg.parse(caf::actor_system_config::string_list{}, ini));
  auto s = cairn::read_kafka_settings(cfg);
  REQUIRE(s);
  CHECK(s->brokers == "k1:9092,k2:9092");
  CHECK(s->topic_for("account") == "bank.accounts");
  CHECK(s->topic_for("transfer") == "bank.transfers");
  CHECK(s->topic_for("payment") == "payment");
  CHECK(s->properties.at("security.protocol") == "SASL_SSL");
  CHECK(s->properties.at("sasl.mechanism") == "PLAIN");
  CHECK(s->properties.at("sasl.username") == "bank");
}

TEST_CASE("a malformed [cairn.kafka] entry is a clear error") {
  caf::actor_system_config cfg;
  std::istringstream ini{"[cairn.kafka]\ntopics=[\"account\"]\n"};
  REQUIRE_FALSE(cfg.parse(caf::actor_system_config::string_list{}, ini));
  auto s = cairn::read_kafka_settings(cfg);
  REQUIRE_FALSE(s);
  CHECK(s.error().code() == cairn::errc::invalid_argument);
  CHECK(s.error().message().find("cairn.kafka.topics") != std::string::npos);

  caf::actor_system_config empty;
  std::istringstream none{""};
  REQUIRE_FALSE(empty.parse(caf::actor_system_config::string_list{}, none));
  auto defaults = cairn::read_kafka_settings(empty);
  REQUIRE(defaults);
  CHECK(defaults->brokers.empty());
}
