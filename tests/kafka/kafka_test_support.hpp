// Helpers for the Kafka tests: read a topic back, produce plain records, append bank
// events to a store, and check per-stream order of published events.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cairn/journal.hpp>
#include <cairn/kafka_consumer.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"

namespace kafka_test {

using namespace std::chrono_literals;

/// A settings object for `bootstrap` that keeps librdkafka's log quiet.
inline cairn::kafka_settings settings_for(const std::string& bootstrap) {
  cairn::kafka_settings s;
  s.brokers = bootstrap;
  s.properties["log_level"] = "2";
  return s;
}

/// Reads `topic` from the start with a fresh group until at least `count` records came
/// (or `timeout`), then `grace` longer to catch repeats. Records are in offset order
/// per partition.
inline std::vector<cairn::kafka_record> read_topic(const std::string& bootstrap,
                                                   const std::string& topic, size_t count,
                                                   std::chrono::milliseconds timeout = 30s,
                                                   std::chrono::milliseconds grace = 500ms) {
  static int reader = 0;
  auto records = std::make_shared<std::pair<std::mutex, std::vector<cairn::kafka_record>>>();
  cairn::kafka_consumer_options o;
  o.kafka = settings_for(bootstrap);
  o.group = "reader-" + std::to_string(++reader) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  o.topics = {topic};
  auto c = cairn::kafka_consumer::start(
    o,
    [records](const cairn::kafka_record& r) -> cairn::expected<void> {
      std::lock_guard<std::mutex> g{records->first};
      records->second.push_back(r);
      return {};
    },
    nullptr);
  if (!c) return {};
  auto size = [&] {
    std::lock_guard<std::mutex> g{records->first};
    return records->second.size();
  };
  auto give_up = std::chrono::steady_clock::now() + timeout;
  while (size() < count && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(grace);
  c->reset();
  std::lock_guard<std::mutex> g{records->first};
  return records->second;
}

/// Appends `per_stream` deposits to each of `streams` accounts ("acc-0".."acc-N"),
/// interleaved, one append per event. Returns the last position.
inline uint64_t append_deposits(cairn::journal& store, int streams, int per_stream,
                                const std::string& prefix = "acc-") {
  uint64_t last = 0;
  for (int v = 0; v < per_stream; ++v)
    for (int s = 0; s < streams; ++s) {
      cairn::metadata meta;
      meta.correlation_id = "corr-" + std::to_string(s);
      meta.causation_id = "cause-" + std::to_string(v);
      auto r = store.append_one(
        {{"account", prefix + std::to_string(s)},
         cairn::expected_version::any,
         {cairn::variant_codec<bank::account::event_type>::encode(bank::deposited{v + 1}, meta)}});
      if (r) last = r->last_position;
    }
  return last;
}

inline uint64_t header_number(const cairn::kafka_record& r, const char* name) {
  auto h = r.header(name);
  return h ? std::stoull(*h) : 0;
}

/// Checks the per-stream property of published events: in each stream's messages (in
/// consumption order) no version comes before all earlier ones did, and every version
/// 1..expected_versions[stream] appears. Returns "" or the first problem. Counts repeats.
inline std::string check_streams(const std::vector<cairn::kafka_record>& records,
                                 const std::map<std::string, uint64_t>& expected_versions,
                                 size_t* repeats = nullptr) {
  std::map<std::string, uint64_t> highest;
  size_t rep = 0;
  for (auto& r : records) {
    auto v = header_number(r, "cairn.version");
    auto& top = highest[r.key];
    if (v > top + 1)
      return r.key + ": version " + std::to_string(v) + " arrived after only " +
             std::to_string(top) + " (a gap)";
    if (v <= top) ++rep;
    else top = v;
  }
  for (auto& [stream, n] : expected_versions)
    if (highest[stream] != n)
      return stream + ": published up to version " + std::to_string(highest[stream]) +
             ", expected " + std::to_string(n);
  if (highest.size() != expected_versions.size())
    return "messages of " + std::to_string(highest.size()) + " streams, expected " +
           std::to_string(expected_versions.size());
  if (repeats) *repeats = rep;
  return {};
}

/// Every stream's version in `store`, of streams of `category`.
inline std::map<std::string, uint64_t> stream_versions(const cairn::journal& store,
                                                       const std::string& category = "account") {
  std::map<std::string, uint64_t> out;
  for (uint64_t pos = 1;;) {
    auto chunk = store.read_all(pos, 65536);
    if (!chunk || chunk->empty()) return out;
    for (auto& e : *chunk)
      if (e.stream.category == category) out[e.stream.str()] = e.version;
    pos = chunk->back().position + 1;
  }
}

/// Produces (key, value) records to `topic` and waits until all are acknowledged.
/// Returns how many failed.
size_t produce(const std::string& bootstrap, const std::string& topic,
               const std::vector<std::pair<std::string, std::string>>& records);

} // namespace kafka_test
