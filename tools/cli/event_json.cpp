// Conversion between envelopes and the CLI's JSON-lines event format.
#include "event_json.hpp"

#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "base64.hpp"
#include "cli.hpp"

namespace cairn::cli {
namespace {

using ordered = nlohmann::ordered_json;

error invalid(std::string message) { return error{errc::invalid_argument, std::move(message)}; }

/// nlohmann's exception text without its "[json.exception.parse_error.101] " prefix.
std::string without_prefix(const std::string& what) {
  if (!what.empty() && what[0] == '[') {
    auto end = what.find("] ");
    if (end != std::string::npos) return what.substr(end + 2);
  }
  return what;
}

expected<std::string> string_field(const ordered& obj, const char* key, bool required,
                                   const std::string& where = "") {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return invalid("missing " + where + key);
    return std::string();
  }
  if (!it->is_string())
    return invalid(where + key + " must be a string, not " + it->type_name());
  return it->get<std::string>();
}

} // namespace

expected<std::string> event_to_json_line(const envelope& e, json_fidelity fidelity) {
  ordered entries = ordered::object();
  for (auto& [key, value] : e.meta.entries) {
    if (entries.contains(key)) {
      if (fidelity == json_fidelity::exact)
        return error{errc::invalid_argument,
                     "position " + std::to_string(e.position) + ": metadata key \"" +
                       printable(key) + "\" appears more than once; a JSON object keeps only one"};
      continue; // keep the first, which is what metadata::find() sees
    }
    entries[key] = value;
  }
  ordered j;
  j["position"] = e.position;
  j["stream"] = e.stream.str();
  j["version"] = e.version;
  j["type"] = e.type;
  j["schema_version"] = e.schema_version;
  j["timestamp_ns"] = e.timestamp_ns;
  j["time"] = format_time(e.timestamp_ns);
  j["metadata"] = ordered{{"correlation_id", e.meta.correlation_id},
                          {"causation_id", e.meta.causation_id},
                          {"entries", std::move(entries)}};
  j["payload_base64"] = base64_encode(e.payload);
  try {
    return j.dump(-1, ' ', false,
                  fidelity == json_fidelity::exact ? ordered::error_handler_t::strict
                                                   : ordered::error_handler_t::replace);
  } catch (const nlohmann::json::exception& ex) {
    return error{errc::invalid_argument,
                 "position " + std::to_string(e.position) +
                   ": a stream name, type or metadata string is not valid UTF-8, which JSON "
                   "cannot hold (" + without_prefix(ex.what()) + ")"};
  }
}

expected<import_event> parse_import_line(std::string_view line, bool keep_timestamp) {
  // ordered_json keeps metadata entries in the line's order (export writes them in
  // the stored order); the callback rejects repeated keys, which would silently merge.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto check_keys = [&](int, ordered::parse_event_t event, ordered& parsed) {
    if (event == ordered::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == ordered::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == ordered::parse_event_t::key && !open_objects.empty()) {
      auto key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  ordered j;
  try {
    j = ordered::parse(line.begin(), line.end(), check_keys);
  } catch (const nlohmann::json::exception& ex) {
    return invalid("not valid JSON: " + without_prefix(ex.what()));
  }
  if (!duplicate.empty()) return invalid("key \"" + printable(duplicate) + "\" appears more than once");
  if (!j.is_object()) return invalid(std::string("expected a JSON object, got ") + j.type_name());

  static const std::set<std::string> known = {
    "position", "stream", "version", "type", "schema_version", "timestamp_ns", "time",
    "metadata", "payload_base64", "payload"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) return invalid("unknown key \"" + printable(it.key()) + "\"");

  import_event out;
  auto stream_name = string_field(j, "stream", true);
  if (!stream_name) return std::move(stream_name).error();
  auto stream = stream_id::parse(*stream_name);
  if (!stream) return invalid(stream.error().message());
  out.stream = std::move(*stream);

  auto type = string_field(j, "type", true);
  if (!type) return std::move(type).error();
  if (type->empty()) return invalid("type must not be empty");
  out.data.type = std::move(*type);

  if (auto it = j.find("schema_version"); it != j.end()) {
    if (!it->is_number_integer() || (it->is_number_integer() && !it->is_number_unsigned() &&
                                     it->get<int64_t>() < 0))
      return invalid("schema_version must be a non-negative integer");
    uint64_t v = it->get<uint64_t>();
    if (v > std::numeric_limits<uint32_t>::max())
      return invalid("schema_version " + std::to_string(v) + " does not fit in 32 bits");
    out.data.schema_version = static_cast<uint32_t>(v);
  }

  if (auto it = j.find("version"); it != j.end() && !it->is_null()) { // null: not given
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0)
      return invalid("version must be a positive integer (the event's place in its stream)");
    out.version = it->get<uint64_t>();
  }

  if (auto it = j.find("metadata"); it != j.end()) {
    const auto& m = *it;
    if (!m.is_object()) return invalid(std::string("metadata must be an object, not ") + m.type_name());
    for (auto k = m.begin(); k != m.end(); ++k)
      if (k.key() != "correlation_id" && k.key() != "causation_id" && k.key() != "entries")
        return invalid("unknown key \"metadata." + printable(k.key()) + "\"");
    auto correlation = string_field(m, "correlation_id", false, "metadata.");
    if (!correlation) return std::move(correlation).error();
    auto causation = string_field(m, "causation_id", false, "metadata.");
    if (!causation) return std::move(causation).error();
    out.data.meta.correlation_id = std::move(*correlation);
    out.data.meta.causation_id = std::move(*causation);
    if (auto e = m.find("entries"); e != m.end()) {
      if (!e->is_object())
        return invalid(std::string("metadata.entries must be an object, not ") + e->type_name());
      for (auto kv = e->begin(); kv != e->end(); ++kv) {
        if (!kv->is_string())
          return invalid("metadata.entries.\"" + printable(kv.key()) +
                         "\" must be a string, not " + kv->type_name());
        out.data.meta.entries.emplace_back(kv.key(), kv->get<std::string>());
      }
    }
  }

  if (auto it = j.find("timestamp_ns"); it != j.end()) {
    if (!it->is_number_integer()) return invalid("timestamp_ns must be an integer");
    if (it->is_number_unsigned() &&
        it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return invalid("timestamp_ns does not fit in 64 bits");
    if (keep_timestamp && !out.data.meta.find(imported_timestamp_key))
      out.data.meta.entries.emplace_back(imported_timestamp_key,
                                         std::to_string(it->get<int64_t>()));
  }

  auto payload = j.find("payload_base64");
  if (payload == j.end()) {
    if (j.contains("payload"))
      return invalid("missing payload_base64: a JSON \"payload\" cannot be imported, because "
                     "encoding it needs the event type's schema; give the binary payload "
                     "(docs/encoding.md) as payload_base64");
    return invalid("missing payload_base64");
  }
  if (j.contains("payload"))
    return invalid("both payload and payload_base64 given; only payload_base64 is imported");
  if (!payload->is_string())
    return invalid(std::string("payload_base64 must be a string, not ") + payload->type_name());
  auto decoded = base64_decode(payload->get_ref<const std::string&>());
  if (!decoded) return invalid("payload_base64: " + decoded.error().message());
  out.data.payload = std::move(*decoded);
  return out;
}

} // namespace cairn::cli
