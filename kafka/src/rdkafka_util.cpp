// Small helpers over librdkafka's C API shared by the publisher and the consumer.
#include "rdkafka_util.hpp"

namespace cairn::kafka_detail {

expected<void> set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    return error{errc::invalid_argument, "kafka property " + key + ": " + err};
  return {};
}

expected<conf_ptr> make_conf(const kafka_settings& settings,
                             const std::map<std::string, std::string>& fixed) {
  conf_ptr conf{rd_kafka_conf_new()};
  if (settings.brokers.empty())
    return error{errc::invalid_argument, "kafka: no brokers given (bootstrap servers)"};
  if (auto ok = set(conf.get(), "bootstrap.servers", settings.brokers); !ok)
    return std::move(ok).error();
  for (auto& [key, value] : settings.properties)
    if (auto ok = set(conf.get(), key, value); !ok) return std::move(ok).error();
  for (auto& [key, value] : fixed)
    if (auto ok = set(conf.get(), key, value); !ok) return std::move(ok).error();
  return conf;
}

expected<handle_ptr> make_handle(rd_kafka_type_t type, conf_ptr conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (!rk) return error{errc::invalid_argument, std::string{"kafka client: "} + err};
  conf.release(); // rd_kafka_new took it
  return handle_ptr{rk};
}

std::string describe(rd_kafka_resp_err_t err) {
  return std::string{rd_kafka_err2str(err)} + " (" + rd_kafka_err2name(err) + ")";
}

} // namespace cairn::kafka_detail
