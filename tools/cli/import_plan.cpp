// The per-line decisions of `cairn import` (import_plan.hpp).
#include "import_plan.hpp"

#include "cli.hpp"

namespace cairn::cli {
namespace {

/// The metadata without the entry where import keeps the original commit time.
metadata without_import_time(const metadata& m) {
  metadata out{m.correlation_id, m.causation_id, {}};
  for (auto& kv : m.entries)
    if (kv.first != imported_timestamp_key) out.entries.push_back(kv);
  return out;
}

} // namespace

std::string difference(const event_data& line, const envelope& stored) {
  if (line.type != stored.type)
    return "type \"" + printable(stored.type) + "\" is stored, the line has \"" +
           printable(line.type) + "\"";
  if (line.schema_version != stored.schema_version)
    return "schema_version " + std::to_string(stored.schema_version) +
           " is stored, the line has " + std::to_string(line.schema_version);
  if (line.payload != stored.payload)
    return "the payloads differ (" + std::to_string(stored.payload.size()) +
           " bytes stored, " + std::to_string(line.payload.size()) + " in the line)";
  if (!(without_import_time(line.meta) == without_import_time(stored.meta)))
    return "the metadata differ";
  return {};
}

import_plan::import_plan(const journal* store, bool allow_append, std::string where)
    : store_(store), allow_append_(allow_append), where_(std::move(where)) {}

expected<import_plan::decision> import_plan::decide(const import_event& e) {
  auto name = e.stream.str();
  auto found = streams_.find(name);
  if (found == streams_.end()) {
    stream_state fresh;
    if (store_) {
      auto v = store_->stream_version(e.stream);
      if (!v) return std::move(v).error();
      fresh.stored = *v;
    }
    found = streams_.emplace(name, fresh).first;
  }
  stream_state& s = found->second;
  const bool first = s.last == 0;
  uint64_t version = e.version;
  if (version == 0) { // no version given: after the previous line, or the stored events
    version = first ? s.stored + 1 : s.last + 1;
    if (first && s.stored > 0 && !allow_append_) {
      s.last = version;
      return error{errc::conflict,
                   "stream " + printable(name) + " already has " + std::to_string(s.stored) +
                     (s.stored == 1 ? " event in " : " events in ") + where_ +
                     " and the line gives no version (give --append to add after them)"};
    }
  }
  const uint64_t previous = s.last;
  s.last = version; // the next line of the stream follows this one, even after an error
  if (!first && version != previous + 1)
    return error{errc::invalid_argument,
                 "stream " + printable(name) + " version " + std::to_string(version) +
                   " does not follow its previous line's version " + std::to_string(previous)};
  if (first && version > s.stored + 1)
    return error{errc::invalid_argument,
                 "stream " + printable(name) + " version " + std::to_string(version) +
                   " would leave a gap: " + where_ + " has " + std::to_string(s.stored) +
                   (s.stored == 1 ? " event" : " events") + " in it"};
  if (version > s.stored) return decision{action::append, version};

  // At or below the stored version: the same event is already there, or a conflict.
  auto stored = store_->read_stream(e.stream, version, 1);
  if (!stored) return std::move(stored).error();
  if (stored->empty() || stored->front().version != version)
    return error{errc::unavailable, "stream " + printable(name) + " version " +
                                      std::to_string(version) + " could not be read from " +
                                      where_};
  auto why = difference(e.data, stored->front());
  if (!why.empty())
    return error{errc::conflict, "stream " + printable(name) + " version " +
                                   std::to_string(version) + " conflicts with the event stored in " +
                                   where_ + ": " + why};
  return decision{action::skip, version};
}

} // namespace cairn::cli
