// produce_records: a short-lived idempotent producer.
#include "cairn/kafka_produce.hpp"

#include "rdkafka_util.hpp"

namespace cairn {

using namespace kafka_detail;

expected<void> produce_records(const kafka_settings& settings, const std::string& topic,
                               const std::vector<std::pair<std::string, std::string>>& records,
                               std::chrono::milliseconds timeout) {
  auto conf = make_conf(settings, {{"enable.idempotence", "true"},
                                   {"message.timeout.ms", std::to_string(timeout.count())}});
  if (!conf) return std::move(conf).error();
  struct outcome {
    size_t failed = 0;
    std::string why;
  } result;
  rd_kafka_conf_set_opaque(conf->get(), &result);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* o) {
    if (!m->err) return;
    auto* r = static_cast<outcome*>(o);
    if (r->failed++ == 0) r->why = describe(m->err);
  });
  auto h = make_handle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!h) return std::move(h).error();
  for (auto& [key, value] : records) {
    for (;;) {
      auto err = rd_kafka_producev(h->get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                   RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                   RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(h->get(), 10);
        continue;
      }
      if (err) return error{errc::unavailable, "producing to " + topic + ": " + describe(err)};
      break;
    }
    rd_kafka_poll(h->get(), 0);
  }
  if (rd_kafka_flush(h->get(), static_cast<int>(timeout.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return error{errc::unavailable, "producing to " + topic + ": not acknowledged in time"};
  if (result.failed)
    return error{errc::unavailable, std::to_string(result.failed) + " records to " + topic +
                                      " failed: " + result.why};
  return {};
}

} // namespace cairn
