// Small helpers over librdkafka's C API shared by the publisher and the consumer.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <librdkafka/rdkafka.h>

#include "cairn/expected.hpp"
#include "cairn/kafka_settings.hpp"

namespace cairn::kafka_detail {

struct handle_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
using handle_ptr = std::unique_ptr<rd_kafka_t, handle_deleter>;

struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

/// A configuration with bootstrap.servers and the pass-through properties of
/// `settings`, then `fixed` (which win). Errors: invalid_argument naming the property.
expected<conf_ptr> make_conf(const kafka_settings& settings,
                             const std::map<std::string, std::string>& fixed);

/// Sets one property. Errors: invalid_argument.
expected<void> set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);

/// Creates a client from `conf` (taking it). Errors: invalid_argument.
expected<handle_ptr> make_handle(rd_kafka_type_t type, conf_ptr conf);

/// "Broker: Topic authorization failed (TOPIC_AUTHORIZATION_FAILED)"
std::string describe(rd_kafka_resp_err_t err);

} // namespace cairn::kafka_detail
