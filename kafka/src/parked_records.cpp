// Parked records as JSON in the snapshot store. Keys and values are arbitrary bytes,
// so they are stored as arrays of byte values when they are not valid UTF-8.
#include "parked_records.hpp"

#include <nlohmann/json.hpp>

namespace cairn::kafka_detail {

namespace {

using json = nlohmann::json;

json text(const std::string& s) {
  try {
    json j = s;
    (void)j.dump(); // throws on invalid UTF-8
    return j;
  } catch (const json::exception&) {
    json bytes = json::array();
    for (unsigned char c : s) bytes.push_back(static_cast<int>(c));
    return bytes;
  }
}

std::string from_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  std::string out;
  for (auto& b : j) out.push_back(static_cast<char>(b.get<int>()));
  return out;
}

} // namespace

stream_id parked_stream(const std::string& group) { return {"kafka_parked", group}; }

expected<std::vector<parked_record>> load_parked(const snapshot_store& store,
                                                 const std::string& group) {
  auto s = store.load(parked_stream(group));
  if (!s) return error{errc::unavailable, "parked records of " + group + ": " + s.error().describe()};
  std::vector<parked_record> out;
  if (!*s) return out;
  try {
    auto j = json::parse((*s)->state.begin(), (*s)->state.end());
    for (auto& p : j) {
      parked_record r;
      r.record.topic = p.at("topic").get<std::string>();
      r.record.partition = p.at("partition").get<int32_t>();
      r.record.offset = p.at("offset").get<int64_t>();
      r.record.key = from_text(p.at("key"));
      r.record.value = from_text(p.at("value"));
      for (auto& h : p.at("headers"))
        r.record.headers.emplace_back(from_text(h.at(0)), from_text(h.at(1)));
      r.record.timestamp_ms = p.at("timestamp_ms").get<int64_t>();
      r.reason = p.at("reason").get<std::string>();
      r.attempts = p.at("attempts").get<uint32_t>();
      r.parked_at_ns = p.at("parked_at_ns").get<int64_t>();
      out.push_back(std::move(r));
    }
  } catch (const json::exception& ex) {
    return error{errc::corrupt, "parked records of " + group + ": " + ex.what()};
  }
  return out;
}

expected<void> save_parked(snapshot_store& store, const std::string& group,
                           const std::vector<parked_record>& records) {
  json j = json::array();
  for (auto& r : records) {
    json headers = json::array();
    for (auto& [k, v] : r.record.headers) headers.push_back(json::array({text(k), text(v)}));
    j.push_back({{"topic", r.record.topic},
                 {"partition", r.record.partition},
                 {"offset", r.record.offset},
                 {"key", text(r.record.key)},
                 {"value", text(r.record.value)},
                 {"headers", std::move(headers)},
                 {"timestamp_ms", r.record.timestamp_ms},
                 {"reason", r.reason},
                 {"attempts", r.attempts},
                 {"parked_at_ns", r.parked_at_ns}});
  }
  auto doc = j.dump(-1, ' ', false, json::error_handler_t::replace);
  snapshot s{parked_stream(group), records.size(), "kafka_parked", 1, now_ns(),
             bytes(doc.begin(), doc.end())};
  return store.save(s);
}

} // namespace cairn::kafka_detail
