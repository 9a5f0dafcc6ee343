// kafka_mock_cluster: an in-process Kafka cluster that speaks the Kafka protocol on
// loopback (librdkafka's mock cluster), for tests, the samples and the benchmarks.
// Not a real broker: no persistence beyond the process, no security.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/expected.hpp"

namespace cairn {

class kafka_mock_cluster {
public:
  /// Kafka API keys for fail_requests().
  static constexpr int16_t produce_api = 0, fetch_api = 1, offset_commit_api = 8;

  /// Starts `brokers` brokers (ids 1..brokers). Errors: unavailable.
  static expected<std::unique_ptr<kafka_mock_cluster>> start(int brokers = 3);
  ~kafka_mock_cluster();

  /// "127.0.0.1:port,..." for bootstrap.servers.
  std::string bootstrap() const;

  /// Creates a topic; topics used without it get the mock's default (4 partitions).
  expected<void> create_topic(const std::string& topic, int partitions, int replication = 3);

  /// Takes broker `id` down (connections close and are refused) or brings it back.
  void set_broker_down(int32_t id);
  void set_broker_up(int32_t id);
  int brokers() const { return brokers_; }

  /// The next requests of API `api_key` to any broker fail with these Kafka error
  /// codes, one each (e.g. 29 TOPIC_AUTHORIZATION_FAILED, 6 NOT_LEADER_FOR_PARTITION).
  void fail_requests(int16_t api_key, const std::vector<int>& kafka_errors);

  struct impl;

private:
  explicit kafka_mock_cluster(std::unique_ptr<impl> p, int brokers);
  std::unique_ptr<impl> impl_;
  int brokers_;
};

} // namespace cairn
