// produce_records: sends a batch of plain records to a topic and waits until Kafka
// acknowledged them (idempotent producer). For tools, samples and one-off feeds;
// committed events go out through kafka_publisher instead.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "cairn/expected.hpp"
#include "cairn/kafka_settings.hpp"

namespace cairn {

/// (key, value) pairs, produced in order (one key's records stay in order).
/// Errors: invalid_argument (bad property), unavailable (not all acknowledged within
/// `timeout`; some may have been written).
expected<void> produce_records(const kafka_settings& settings, const std::string& topic,
                               const std::vector<std::pair<std::string, std::string>>& records,
                               std::chrono::milliseconds timeout = std::chrono::seconds{30});

} // namespace cairn
