// pg_append_batch: a batch's checks, its append_batch() calls, their answers, and the
// errors of a failed transaction (pg_append_batch.hpp).
#include "pg_append_batch.hpp"

#include <algorithm>
#include <set>

#include "pg_rows.hpp"

namespace cairn::pg {
namespace {

int64_t clamp(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, uint64_t{INT64_MAX}));
}

/// The bytes an event takes in the batch's arrays (metadata as encode_meta writes it).
size_t event_bytes(const event_data& e) {
  size_t n = e.type.size() + e.payload.size() + 12;
  n += e.meta.correlation_id.size() + e.meta.causation_id.size() + 12;
  for (auto& [k, v] : e.meta.entries) n += k.size() + v.size() + 8;
  return n;
}

/// A unique violation: someone stored events without taking the head lock (an import
/// tool, a writer of another program), since with it versions and positions are free.
/// Nothing of the batch is stored. The appends to the stream whose version was taken
/// get `conflict`; the others are valid and get `unavailable` (retry them); a taken
/// position means the head row is behind the events: `corrupt`.
void unique_violation(const pipeline_outcome& out, const tables& t,
                      const std::vector<append_request>& batch,
                      std::vector<expected<append_result>>& results,
                      const std::vector<size_t>& valid) {
  std::string bypass = "a writer that did not take Cairn's head lock stored events in " + t.events;
  if (out.constraint.size() >= 5 && out.constraint.compare(out.constraint.size() - 5, 5, "_pkey") == 0) {
    for (size_t i : valid)
      results[i] = error{errc::corrupt, "nothing stored: " + bypass + " without moving the head "
                                        "row, so the next positions are taken (set the head "
                                        "row's position to the highest stored one): " + out.error};
    return;
  }
  // "... DETAIL:  Key (stream, version)=(<stream>, <version>) already exists."
  std::string taken;
  auto open = out.error.find("=(");
  auto close = out.error.rfind(") already exists");
  if (open != std::string::npos && close != std::string::npos && close > open + 2) {
    auto key = out.error.substr(open + 2, close - open - 2);
    if (auto comma = key.rfind(", "); comma != std::string::npos) taken = key.substr(0, comma);
  }
  for (size_t i : valid) {
    if (taken.empty() || batch[i].stream.str() == taken)
      results[i] = error{errc::conflict, "nothing stored: " + bypass + (taken.empty() ? "" : ", stream " + taken) +
                                           ", taking a version this append expected to write; "
                                           "reload the stream and retry: " + out.error};
    else
      results[i] = error{errc::unavailable, "nothing stored: this append was valid but its batch "
                                            "was refused because " + bypass + ", stream " + taken +
                                            "; retry it: " + out.error};
  }
}

} // namespace

size_t request_bytes(const append_request& request) {
  size_t n = request.stream.str().size();
  for (auto& e : request.events) n += event_bytes(e);
  return n;
}

expected<void> check_request(const append_request& request, size_t max_bytes) {
  if (auto valid = request.stream.validate(); !valid) return valid;
  if (!is_text(request.stream.str()))
    return error{errc::invalid_argument,
                 "stream name " + request.stream.str() + " is not UTF-8 text (PostgreSQL "
                 "stores stream names as text)"};
  if (request.events.empty())
    return error{errc::invalid_argument,
                 "append to stream " + request.stream.str() + " has no events"};
  for (size_t i = 0; i < request.events.size(); ++i) {
    const auto& type = request.events[i].type;
    if (type.empty() || !is_text(type))
      return error{errc::invalid_argument,
                   "event " + std::to_string(i) + " of the append to stream " +
                     request.stream.str() +
                     (type.empty() ? " has no type name" : " has a type name that is not UTF-8 text")};
  }
  if (auto bytes = request_bytes(request); bytes > max_bytes)
    return error{errc::invalid_argument,
                 "append to stream " + request.stream.str() + " holds " + std::to_string(bytes) +
                   " bytes of events; the limit is " + std::to_string(max_bytes) +
                   " bytes per append (postgres_options::max_append_bytes, at most 512 MiB: "
                   "PostgreSQL takes at most 1 GiB per value)"};
  return {};
}

std::string head_row_missing(const std::string& table) {
  return "the head row of " + table + " (id = 1) is missing: the store's "
         "global position is unknown; restore the row with the highest "
         "stored position (SELECT max(position) FROM the events table)";
}

expected<uint64_t> head_of(const PGresult* r, const std::string& table) {
  if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
    return error{errc::corrupt, head_row_missing(table)};
  return static_cast<uint64_t>(get_int8(r, 0, 0));
}

std::vector<std::vector<size_t>> segments_of(const std::vector<append_request>& batch,
                                             const std::vector<size_t>& valid) {
  std::vector<std::vector<size_t>> segments;
  std::set<std::string> in_segment;
  for (size_t i : valid) {
    std::string name = batch[i].stream.str();
    if (segments.empty() || !in_segment.insert(name).second) {
      segments.emplace_back();
      in_segment.clear();
      in_segment.insert(std::move(name));
    }
    segments.back().push_back(i);
  }
  return segments;
}

query append_batch_call(const tables& t, const std::vector<append_request>& batch,
                        const std::vector<size_t>& segment, int64_t now) {
  array_builder streams(text_oid), expected(int8_oid), counts(int8_oid), request(int4_oid),
    index(int8_oid), type(text_oid), schema(int8_oid), meta(bytea_oid), payload(bytea_oid),
    fence_lease(int4_oid), fence_epoch(int8_oid);
  int32_t r = 0;
  for (size_t i : segment) {
    auto& req = batch[i];
    ++r;
    streams.add(req.stream.str());
    expected.add_int8(req.expected_version == expected_version::any ? -1 : clamp(req.expected_version));
    counts.add_int8(static_cast<int64_t>(req.events.size()));
    fence_lease.add_int4(req.fence.active() ? req.fence.lease : -1);
    fence_epoch.add_int8(clamp(req.fence.epoch));
    int64_t k = 0;
    for (auto& e : req.events) {
      request.add_int4(r);
      index.add_int8(k++);
      type.add(e.type);
      schema.add_int8(e.schema_version);
      meta.add(encode_meta(e.meta));
      payload.add(e.payload.data(), e.payload.size());
    }
  }
  return query{
    "SELECT " + t.append_batch + "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    {param{text_array_oid, streams.value()}, param{int8_array_oid, expected.value()},
     param{int8_array_oid, counts.value()}, param{int4_array_oid, request.value()},
     param{int8_array_oid, index.value()}, param{text_array_oid, type.value()},
     param{int8_array_oid, schema.value()}, param{bytea_array_oid, meta.value()},
     param{bytea_array_oid, payload.value()}, param{int8_oid, int8_value(now)},
     param{text_oid, t.channel, true}, param{int4_array_oid, fence_lease.value()},
     param{int8_array_oid, fence_epoch.value()}},
    true};
}

std::optional<uint64_t> read_segment_answer(const PGresult* answer,
                                            std::vector<append_request>& batch,
                                            const std::vector<size_t>& segment,
                                            std::vector<expected<append_result>>& results,
                                            std::vector<envelope>& committed) {
  // [timestamp, head after the segment, first versions..., first positions (0: conflict)...]
  auto v = get_int8_array(answer, 0, 0);
  if (v.size() != 2 + 2 * segment.size()) {
    for (size_t i : segment)
      results[i] = error{errc::corrupt, "append_batch answered " + std::to_string(v.size()) +
                                          " values for " + std::to_string(segment.size()) + " appends"};
    return std::nullopt;
  }
  int64_t ts = v[0];
  uint64_t head_after = static_cast<uint64_t>(v[1]);
  uint64_t taken = 0;
  for (size_t k = 0; k < segment.size(); ++k) {
    size_t i = segment[k];
    auto& req = batch[i];
    if (v[2 + k] < 0) {
      results[i] = error{errc::fenced, "nothing stored in stream " + req.stream.str() +
                                         ": this member no longer holds lease " +
                                         std::to_string(req.fence.lease) + " under epoch " +
                                         std::to_string(req.fence.epoch) +
                                         " (it was released or another member claimed it)"};
      continue;
    }
    uint64_t fv = static_cast<uint64_t>(v[2 + k]), fp = static_cast<uint64_t>(v[2 + segment.size() + k]);
    if (fp == 0) {
      results[i] = error{errc::conflict, "expected version " + std::to_string(req.expected_version) +
                                           ", found " + std::to_string(fv) + " in stream " +
                                           req.stream.str()};
      continue;
    }
    uint64_t n = req.events.size();
    taken += n;
    results[i] = append_result{fv, fv + n - 1, fp, fp + n - 1};
    for (auto& event : req.events) {
      envelope e;
      e.stream = req.stream;
      e.version = fv++;
      e.position = fp++;
      e.timestamp_ns = ts;
      e.type = std::move(event.type);
      e.schema_version = event.schema_version;
      e.meta = std::move(event.meta);
      e.payload = std::move(event.payload);
      committed.push_back(std::move(e));
    }
  }
  return head_after - taken;
}

void fail_transaction(const pipeline_outcome& out, const tables& t,
                      const std::vector<append_request>& batch,
                      std::vector<expected<append_result>>& results,
                      const std::vector<size_t>& valid, bool committing) {
  auto fail = [&](errc code, const std::string& why) {
    for (size_t i : valid) results[i] = error{code, why};
  };
  if (out.lost) {
    errc code = out.timed_out ? errc::timeout : errc::unavailable;
    if (committing)
      return fail(code, "the connection to PostgreSQL broke while committing; the batch may "
                        "or may not be stored (read the streams to know): " + out.error);
    return fail(code, "PostgreSQL is unavailable: " + out.error);
  }
  // The pipeline's sync rolled the transaction back.
  if (out.sqlstate == "P0002") return fail(errc::corrupt, "nothing stored: " + head_row_missing(t.head));
  if (out.sqlstate == "23505") return unique_violation(out, t, batch, results, valid);
  if (out.sqlstate == "55P03")
    return fail(errc::timeout, "nothing stored: the head row stayed locked longer than "
                               "postgres_options::lock_timeout (a stuck writer holds it?): " + out.error);
  if (out.sqlstate == "57014")
    return fail(errc::timeout, "nothing stored: the batch ran longer than "
                               "postgres_options::statement_timeout: " + out.error);
  fail(errc::unavailable, "PostgreSQL refused the batch; nothing of it was stored: " + out.error);
}

} // namespace cairn::pg
