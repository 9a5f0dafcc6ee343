// kafka_settings: how a node reaches Kafka: brokers, the topic of each event category,
// and librdkafka properties passed through unchanged (security: SASL, TLS).
// config/node.ini lists them in section [cairn.kafka].
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cairn/expected.hpp"

namespace caf {
class actor_system_config;
}

namespace cairn {

struct kafka_settings {
  /// Bootstrap servers, "host:port,host:port" (librdkafka's bootstrap.servers).
  std::string brokers;
  /// The topic of each stream category, e.g. {"account", "bank.accounts"}. A category
  /// not listed goes to the topic named like the category.
  std::map<std::string, std::string> topics;
  /// Any librdkafka property, passed through as is, e.g. {"security.protocol",
  /// "SASL_SSL"}, {"sasl.mechanism", "PLAIN"}, {"ssl.ca.location", "ca.pem"}.
  std::map<std::string, std::string> properties;

  /// The topic for events of `category`.
  std::string topic_for(const std::string& category) const;
};

/// Parses "key=value" items (the topics and properties lists of [cairn.kafka]) into
/// `out`. Errors: invalid_argument naming the item without '=' or with an empty key.
expected<void> parse_key_values(const std::vector<std::string>& items,
                                std::map<std::string, std::string>& out);

/// Reads section [cairn.kafka] of a parsed actor-system config (an .ini file or
/// --cairn.kafka.* options): brokers (string), topics and properties (lists of
/// "key=value" strings). Missing keys keep their defaults. Errors: invalid_argument.
expected<kafka_settings> read_kafka_settings(const caf::actor_system_config& cfg);

} // namespace cairn
