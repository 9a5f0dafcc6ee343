// kafka_mock_cluster over librdkafka's rd_kafka_mock_cluster_new.
#include "cairn/kafka_mock.hpp"

#include "rdkafka_util.hpp"

#include <librdkafka/rdkafka_mock.h> // after rdkafka.h

namespace cairn {

using namespace kafka_detail;

struct kafka_mock_cluster::impl {
  handle_ptr owner; // the mock cluster runs on this client's resources
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~impl() {
    if (cluster) rd_kafka_mock_cluster_destroy(cluster);
  }
};

kafka_mock_cluster::kafka_mock_cluster(std::unique_ptr<impl> p, int brokers)
    : impl_(std::move(p)), brokers_(brokers) {}

kafka_mock_cluster::~kafka_mock_cluster() = default;

expected<std::unique_ptr<kafka_mock_cluster>> kafka_mock_cluster::start(int brokers) {
  if (brokers < 1) return error{errc::invalid_argument, "mock cluster: at least one broker"};
  conf_ptr conf{rd_kafka_conf_new()};
  if (auto ok = set(conf.get(), "log_level", "3"); !ok) return std::move(ok).error();
  auto h = make_handle(RD_KAFKA_PRODUCER, std::move(conf));
  if (!h) return error{errc::unavailable, h.error().message()};
  auto p = std::make_unique<impl>();
  p->owner = std::move(*h);
  p->cluster = rd_kafka_mock_cluster_new(p->owner.get(), brokers);
  if (!p->cluster) return error{errc::unavailable, "mock cluster: could not start"};
  return std::unique_ptr<kafka_mock_cluster>{new kafka_mock_cluster{std::move(p), brokers}};
}

std::string kafka_mock_cluster::bootstrap() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

expected<void> kafka_mock_cluster::create_topic(const std::string& topic, int partitions,
                                                int replication) {
  auto err = rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, replication);
  if (err) return error{errc::invalid_argument, "mock topic " + topic + ": " + describe(err)};
  return {};
}

void kafka_mock_cluster::set_broker_down(int32_t id) {
  rd_kafka_mock_broker_set_down(impl_->cluster, id);
}

void kafka_mock_cluster::set_broker_up(int32_t id) {
  rd_kafka_mock_broker_set_up(impl_->cluster, id);
}

void kafka_mock_cluster::fail_requests(int16_t api_key, const std::vector<int>& kafka_errors) {
  std::vector<rd_kafka_resp_err_t> errs;
  for (int e : kafka_errors) errs.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, errs.size(), errs.data());
}

} // namespace cairn
