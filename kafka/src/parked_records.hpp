// The parked records of a consumer group, kept as one JSON document in the snapshot
// store under stream "kafka_parked-<group>".
#pragma once

#include <vector>

#include "cairn/kafka_consumer.hpp"

namespace cairn::kafka_detail {

stream_id parked_stream(const std::string& group);
expected<std::vector<parked_record>> load_parked(const snapshot_store& store,
                                                 const std::string& group);
expected<void> save_parked(snapshot_store& store, const std::string& group,
                           const std::vector<parked_record>& records);

} // namespace cairn::kafka_detail
