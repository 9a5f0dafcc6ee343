// Committed events as JSON for the event stream (docs/http.md).
#include <ctime>

#include <nlohmann/json.hpp>

#include "api.hpp"

namespace cairn::http {
namespace {

std::string base64(const bytes& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    for (int k = 3; k >= 0; --k) out.push_back(table[(v >> (6 * k)) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = uint32_t{in[i]} << 16;
    if (i + 1 < in.size()) v |= uint32_t{in[i + 1]} << 8;
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? table[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

/// "2024-05-01T10:00:00.123456789Z"
std::string iso_time(int64_t ns) {
  auto secs = static_cast<time_t>(ns >= 0 ? ns / 1'000'000'000 : (ns + 1) / 1'000'000'000 - 1);
  auto frac = ns - static_cast<int64_t>(secs) * 1'000'000'000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

} // namespace

std::string event_json(const http_server::impl& s, const envelope& e) {
  using json = nlohmann::ordered_json;
  json entries = json::object();
  for (auto& [k, v] : e.meta.entries)
    if (!entries.contains(k)) entries[k] = v;
  json j;
  j["position"] = e.position;
  j["stream"] = e.stream.str();
  j["category"] = e.stream.category;
  j["id"] = e.stream.id;
  j["version"] = e.version;
  j["type"] = e.type;
  j["schema_version"] = e.schema_version;
  j["time"] = iso_time(e.timestamp_ns);
  j["metadata"] = json{{"correlation_id", e.meta.correlation_id},
                       {"causation_id", e.meta.causation_id},
                       {"entries", std::move(entries)}};
  std::optional<nlohmann::json> data;
  if (auto r = s.renderers.find(e.stream.category); r != s.renderers.end()) {
    try {
      data = r->second(e);
    } catch (const std::exception&) {
      data.reset();
    }
  }
  if (data) j["data"] = json::parse(data->dump());
  else j["payload_base64"] = base64(e.payload);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace cairn::http
