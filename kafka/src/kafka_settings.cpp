// kafka_settings: [cairn.kafka] of the node config.
#include "cairn/kafka_settings.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/settings.hpp>

namespace cairn {

std::string kafka_settings::topic_for(const std::string& category) const {
  auto it = topics.find(category);
  return it == topics.end() ? category : it->second;
}

expected<void> parse_key_values(const std::vector<std::string>& items,
                                std::map<std::string, std::string>& out) {
  for (auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return error{errc::invalid_argument,
                   "\"" + item + "\": expected key=value with a non-empty key"};
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return {};
}

expected<kafka_settings> read_kafka_settings(const caf::actor_system_config& cfg) {
  kafka_settings out;
  auto bad = [](const char* key) {
    return error{errc::invalid_argument, std::string{"cairn.kafka."} + key +
                                           ": expected a list of \"key=value\" strings"};
  };
  if (auto b = caf::get_if<std::string>(&cfg.content, "cairn.kafka.brokers")) out.brokers = *b;
  for (auto key : {"topics", "properties"}) {
    auto path = std::string{"cairn.kafka."} + key;
    auto* value = caf::get_if(&cfg.content, path);
    if (!value) continue;
    auto list = caf::get_if<std::vector<std::string>>(&cfg.content, path);
    if (!list) return bad(key);
    auto ok = parse_key_values(*list, key == std::string{"topics"} ? out.topics : out.properties);
    if (!ok) return error{errc::invalid_argument, path + ": " + ok.error().message()};
  }
  return out;
}

} // namespace cairn
