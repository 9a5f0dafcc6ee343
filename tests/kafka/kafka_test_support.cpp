// The raw producer the Kafka tests use to feed topics (independent of Cairn's code).
#include "kafka_test_support.hpp"

#include <librdkafka/rdkafka.h>

namespace kafka_test {

size_t produce(const std::string& bootstrap, const std::string& topic,
               const std::vector<std::pair<std::string, std::string>>& records) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
  static size_t failures;
  failures = 0;
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err) ++failures;
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) return records.size();
  for (auto& [k, v] : records) {
    for (;;) {
      auto e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                                 RD_KAFKA_V_KEY(const_cast<char*>(k.data()), k.size()),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        if (e) ++failures;
        break;
      }
      rd_kafka_poll(rk, 10);
    }
  }
  if (rd_kafka_flush(rk, 30000)) failures = records.size();
  rd_kafka_destroy(rk);
  return failures;
}

} // namespace kafka_test
