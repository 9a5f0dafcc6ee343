// The bank sample's Kafka side (--kafka-brokers): account events go out to a topic,
// and a `payments` topic, fed by "another service", comes in as deposits.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <cairn/kafka_settings.hpp>

namespace cairn {
class journal;
class node;
class snapshot_store;
} // namespace cairn

namespace bank {

class kafka_bridge {
public:
  /// Starts publishing the store's account events and consuming `payments` into
  /// deposits. `brokers` "mock" starts an in-process mock cluster of 3 brokers (then
  /// nothing is checkpointed: the cluster lives only as long as the process).
  /// `settings` come from [cairn.kafka] (topics, properties; brokers is replaced by
  /// `brokers`). Null and `why` on error.
  static std::unique_ptr<kafka_bridge> start(cairn::node& node,
                                             std::shared_ptr<cairn::journal> store,
                                             std::shared_ptr<cairn::snapshot_store> snapshots,
                                             cairn::kafka_settings settings,
                                             const std::string& brokers, size_t accounts,
                                             std::string& why);
  ~kafka_bridge();

  /// Sends `payments` payments to the payments topic (one in ten to an account that
  /// does not exist, which the handler's command is refused for, so it is parked),
  /// waits until each was deposited or parked and every account event was published,
  /// prints a report, and returns whether it all checks out.
  bool run_and_verify(size_t payments);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace bank
