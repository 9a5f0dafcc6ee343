// Rows of Cairn's PostgreSQL tables to and from envelopes.
#include "pg_rows.hpp"

namespace cairn::pg {
namespace {

void put_string(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

bool get_string(const std::string& b, size_t& at, std::string& s) {
  if (b.size() - at < 4) return false;
  auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
  size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
  at += 4;
  if (b.size() - at < n) return false;
  s.assign(b, at, n);
  at += n;
  return true;
}

} // namespace

std::string encode_meta(const metadata& m) {
  std::string out;
  if (m.correlation_id.empty() && m.causation_id.empty() && m.entries.empty()) return out;
  put_string(out, m.correlation_id);
  put_string(out, m.causation_id);
  put_u32(out, static_cast<uint32_t>(m.entries.size()));
  for (auto& [k, v] : m.entries) {
    put_string(out, k);
    put_string(out, v);
  }
  return out;
}

expected<metadata> decode_meta(const std::string& b) {
  metadata m;
  if (b.empty()) return m;
  size_t at = 0;
  std::string count;
  bool ok = get_string(b, at, m.correlation_id) && get_string(b, at, m.causation_id) &&
            b.size() - at >= 4;
  if (ok) {
    auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
    size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
    at += 4;
    for (size_t i = 0; ok && i < n; ++i) {
      std::pair<std::string, std::string> kv;
      ok = get_string(b, at, kv.first) && get_string(b, at, kv.second);
      if (ok) m.entries.push_back(std::move(kv));
    }
  }
  if (!ok || at != b.size()) return error{errc::corrupt, "damaged event metadata in PostgreSQL"};
  return m;
}

expected<void> decode_events(const PGresult* r, std::vector<envelope>& out) {
  int rows = PQntuples(r);
  out.reserve(out.size() + static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    envelope e;
    e.position = static_cast<uint64_t>(get_int8(r, i, 0));
    auto stream = stream_id::parse(std::string_view(PQgetvalue(r, i, 1),
                                                    static_cast<size_t>(PQgetlength(r, i, 1))));
    if (!stream)
      return error{errc::corrupt, "bad stream name at position " + std::to_string(e.position)};
    e.stream = std::move(*stream);
    e.version = static_cast<uint64_t>(get_int8(r, i, 2));
    e.type = get_bytes(r, i, 3);
    e.schema_version = static_cast<uint32_t>(get_int8(r, i, 4));
    e.timestamp_ns = get_int8(r, i, 5);
    if (PQgetlength(r, i, 6) > 0) { // most events carry no metadata
      auto meta = decode_meta(get_bytes(r, i, 6));
      if (!meta) return std::move(meta).error();
      e.meta = std::move(*meta);
    }
    auto* p = reinterpret_cast<const uint8_t*>(PQgetvalue(r, i, 7));
    e.payload.assign(p, p + PQgetlength(r, i, 7));
    out.push_back(std::move(e));
  }
  return {};
}

bool is_text(const std::string& s) {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (c == 0 || len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k)
      if ((p[i + k] & 0xc0) != 0x80) return false;
    if (len == 2 && c < 0xc2) return false;
    if (len == 3 && c == 0xe0 && p[i + 1] < 0xa0) return false;
    if (len == 3 && c == 0xed && p[i + 1] >= 0xa0) return false; // surrogates
    if (len == 4 && (c > 0xf4 || (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f)))
      return false;
    i += len;
  }
  return true;
}

snapshot decode_snapshot(const PGresult* r, int row, int first, stream_id stream) {
  snapshot s;
  s.stream = std::move(stream);
  s.version = static_cast<uint64_t>(get_int8(r, row, first));
  s.type = get_bytes(r, row, first + 1);
  s.schema_version = static_cast<uint32_t>(get_int8(r, row, first + 2));
  s.timestamp_ns = get_int8(r, row, first + 3);
  auto* p = reinterpret_cast<const uint8_t*>(PQgetvalue(r, row, first + 4));
  s.state.assign(p, p + PQgetlength(r, row, first + 4));
  return s;
}

} // namespace cairn::pg
