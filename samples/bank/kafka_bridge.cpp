// The bank sample's Kafka side: a publisher of account events, a consumer of payments.
#include "bank/kafka_bridge.hpp"

#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include <cairn/kafka_consumer.hpp>
#include <cairn/kafka_mock.hpp>
#include <cairn/kafka_produce.hpp>
#include <cairn/kafka_publisher.hpp>
#include <cairn/node.hpp>

#include "bank/account.hpp"
#include "bank/workload.hpp"

namespace bank {

namespace {

using namespace std::chrono_literals;

/// A payment from the payments topic: {"payment_id": "...", "account": "...", "amount": n}.
cairn::expected<std::pair<std::string, int64_t>> parse_payment(const std::string& value) {
  try {
    auto j = nlohmann::json::parse(value);
    return std::make_pair(j.at("account").get<std::string>(), j.at("amount").get<int64_t>());
  } catch (const std::exception& ex) {
    return cairn::error{cairn::errc::invalid_argument, std::string{"not a payment: "} + ex.what()};
  }
}

/// Events in `store` caused by payments records (correlation id "kafka:<payments>/...").
std::set<std::string> payment_deposits(const cairn::journal& store, const std::string& topic) {
  std::set<std::string> out;
  auto prefix = "kafka:" + topic + "/";
  for (uint64_t pos = 1;;) {
    auto chunk = store.read_all(pos, 65536);
    if (!chunk || chunk->empty()) return out;
    for (auto& e : *chunk)
      if (e.meta.correlation_id.rfind(prefix, 0) == 0) out.insert(e.meta.correlation_id);
    pos = chunk->back().position + 1;
  }
}

bool wait_for(const std::function<bool()>& done, std::chrono::seconds timeout) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

} // namespace

struct kafka_bridge::impl {
  cairn::node* node = nullptr;
  std::shared_ptr<cairn::journal> store;
  size_t accounts = 0;
  cairn::kafka_settings settings;
  const std::string payments_topic = "payments";
  std::unique_ptr<cairn::kafka_mock_cluster> mock; // declared first: destroyed last
  std::unique_ptr<cairn::kafka_publisher> publisher;
  std::unique_ptr<cairn::kafka_consumer> consumer;
  size_t deposits_before = 0;
};

kafka_bridge::~kafka_bridge() {
  if (!impl_) return;
  impl_->consumer.reset();
  impl_->publisher.reset();
}

std::unique_ptr<kafka_bridge> kafka_bridge::start(cairn::node& node,
                                                  std::shared_ptr<cairn::journal> store,
                                                  std::shared_ptr<cairn::snapshot_store> snapshots,
                                                  cairn::kafka_settings settings,
                                                  const std::string& brokers, size_t accounts,
                                                  std::string& why) {
  auto p = std::make_unique<impl>();
  p->node = &node;
  p->store = store;
  p->accounts = accounts;
  p->settings = std::move(settings);
  auto account_topic = p->settings.topic_for(std::string{account::category});
  if (brokers == "mock") {
    auto cluster = cairn::kafka_mock_cluster::start(3);
    if (!cluster) {
      why = cluster.error().describe();
      return nullptr;
    }
    p->mock = std::move(*cluster);
    if (auto ok = p->mock->create_topic(account_topic, 4); !ok) why = ok.error().describe();
    if (auto ok = p->mock->create_topic(p->payments_topic, 3); !ok) why = ok.error().describe();
    if (!why.empty()) return nullptr;
    p->settings.brokers = p->mock->bootstrap();
    p->settings.properties.emplace("log_level", "3");
    snapshots = nullptr; // nothing to resume: the cluster ends with the process
  } else {
    p->settings.brokers = brokers;
  }
  p->deposits_before = payment_deposits(*store, p->payments_topic).size();

  cairn::kafka_publisher_options po;
  po.name = "bank";
  po.kafka = p->settings;
  po.filter = {std::string{account::category}, {}};
  auto publisher = cairn::kafka_publisher::start(store, snapshots, po,
                                                 cairn::event_renderer{}.add_aggregate<account>());
  if (!publisher) {
    why = publisher.error().describe();
    return nullptr;
  }
  p->publisher = std::move(*publisher);

  cairn::kafka_consumer_options co;
  co.kafka = p->settings;
  co.group = "bank";
  co.topics = {p->payments_topic};
  auto* n = &node;
  auto consumer = cairn::kafka_consumer::start(
    co,
    [n](const cairn::kafka_record& r) -> cairn::expected<void> {
      auto payment = parse_payment(r.value);
      if (!payment) return std::move(payment).error();
      // The record's coordinates travel with the deposit as its correlation id.
      auto reply = n->execute<account>(payment->first, deposit{payment->second},
                                       r.command_metadata());
      if (!reply) return std::move(reply).error();
      return {};
    },
    snapshots);
  if (!consumer) {
    why = consumer.error().describe();
    return nullptr;
  }
  p->consumer = std::move(*consumer);
  auto bridge = std::unique_ptr<kafka_bridge>{new kafka_bridge};
  bridge->impl_ = std::move(p);
  return bridge;
}

bool kafka_bridge::run_and_verify(size_t payments) {
  auto& k = *impl_;
  std::vector<std::pair<std::string, std::string>> records;
  size_t to_missing = 0;
  for (size_t i = 0; i < payments; ++i) {
    bool missing = i % 10 == 9;
    to_missing += missing;
    auto target = missing ? "missing-" + std::to_string(i) : account_id((i * 7) % k.accounts);
    nlohmann::json value{{"payment_id", "pay-" + std::to_string(i)},
                         {"account", target},
                         {"amount", static_cast<int64_t>(1 + i % 50)}};
    records.emplace_back(target, value.dump());
  }
  auto start = std::chrono::steady_clock::now();
  if (auto ok = cairn::produce_records(k.settings, k.payments_topic, records); !ok) {
    std::fprintf(stderr, "kafka: sending payments failed: %s\n", ok.error().describe().c_str());
    return false;
  }
  bool all_in = wait_for(
    [&] {
      auto s = k.consumer->status();
      return s.handled + s.parked >= payments;
    },
    120s);
  auto cs = k.consumer->status();
  auto head = k.store->head_position();
  bool published = k.publisher->wait_until_acknowledged(head, 120s);
  auto ps = k.publisher->status();
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto deposits = payment_deposits(*k.store, k.payments_topic).size() - k.deposits_before;

  std::printf("kafka: brokers %s%s\n", k.settings.brokers.c_str(),
              k.mock ? " (in-process mock cluster, 3 brokers)" : "");
  std::printf("kafka: payments: %zu sent, %llu deposited (%zu stored), %llu parked (%zu to missing "
              "accounts) in %.3f s\n",
              payments, static_cast<unsigned long long>(cs.handled), deposits,
              static_cast<unsigned long long>(cs.parked), to_missing, seconds);
  std::printf("kafka: account events published to %s: acknowledged through position %llu of %llu "
              "(lag %llu), %llu messages, %llu restarts%s%s\n",
              k.settings.topic_for(std::string{account::category}).c_str(),
              static_cast<unsigned long long>(ps.acknowledged),
              static_cast<unsigned long long>(head), static_cast<unsigned long long>(ps.lag),
              static_cast<unsigned long long>(ps.delivered),
              static_cast<unsigned long long>(ps.restarts), ps.last_error.empty() ? "" : ", last error: ",
              ps.last_error.c_str());
  auto parked = k.consumer->parked();
  if (!parked.empty())
    std::printf("kafka: parked, e.g. %s: %s\n", parked.back().record.id().c_str(),
                parked.back().reason.c_str());
  return all_in && published && cs.handled == payments - to_missing && cs.parked == to_missing &&
         deposits == cs.handled;
}

} // namespace bank
