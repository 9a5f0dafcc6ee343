// Encoding and parsing of file journal segment headers and records.
#include "file_format.hpp"

#include <cstdio>

#include "crc32c.hpp"

namespace cairn::detail {
namespace {

constexpr char segment_magic[8] = {'C', 'A', 'I', 'R', 'N', 'S', 'E', 'G'};
constexpr uint32_t format_version = 1;
constexpr std::string_view segment_prefix = "segment-";
constexpr size_t position_digits = 20;

uint8_t* put_bytes(uint8_t* p, std::string_view s) {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

uint8_t* put_string32(uint8_t* p, const std::string& s) {
  put_u32(p, static_cast<uint32_t>(s.size()));
  return put_bytes(p + 4, s);
}

/// Reads a u32-length-prefixed string from [p, end); false if it does not fit.
bool take_string32(const uint8_t*& p, const uint8_t* end, std::string_view& out) {
  if (end - p < 4) return false;
  uint32_t n = get_u32(p);
  p += 4;
  if (static_cast<uint64_t>(end - p) < n) return false;
  out = std::string_view(reinterpret_cast<const char*>(p), n);
  p += n;
  return true;
}

/// Walks the metadata block; fills `out` when given.
bool walk_metadata(std::string_view block, metadata* out) {
  if (block.empty()) return true;
  auto* p = reinterpret_cast<const uint8_t*>(block.data());
  auto* end = p + block.size();
  std::string_view corr, cause;
  if (!take_string32(p, end, corr) || !take_string32(p, end, cause) || end - p < 4)
    return false;
  uint32_t count = get_u32(p);
  p += 4;
  if (count > block.size() / 8) return false; // each entry takes at least 8 bytes
  if (out) {
    out->correlation_id.assign(corr);
    out->causation_id.assign(cause);
    out->entries.clear();
    out->entries.reserve(count);
  }
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view key, value;
    if (!take_string32(p, end, key) || !take_string32(p, end, value)) return false;
    if (out) out->entries.emplace_back(std::string(key), std::string(value));
  }
  return p == end;
}

} // namespace

std::string segment_file_name(uint64_t first_position) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "segment-%020llu.log",
                static_cast<unsigned long long>(first_position));
  return buffer;
}

std::string index_file_name(uint64_t first_position) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "segment-%020llu.idx",
                static_cast<unsigned long long>(first_position));
  return buffer;
}

bool parse_segment_file_name(std::string_view name, uint64_t& first_position) {
  if (name.size() != segment_prefix.size() + position_digits + 4) return false;
  if (name.substr(0, segment_prefix.size()) != segment_prefix) return false;
  if (name.substr(name.size() - 4) != ".log") return false;
  uint64_t value = 0;
  for (char c : name.substr(segment_prefix.size(), position_digits)) {
    if (c < '0' || c > '9') return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  if (value == 0) return false;
  first_position = value;
  return true;
}

void encode_segment_header(uint8_t* out, uint64_t first_position) {
  std::memset(out, 0, segment_header_size);
  std::memcpy(out, segment_magic, 8);
  put_u32(out + 8, format_version);
  put_u32(out + 12, segment_header_size);
  put_u64(out + 16, first_position);
  put_u32(out + 24, crc32c(out, 24));
}

bool decode_segment_header(const uint8_t* in, uint64_t& first_position, std::string& why) {
  if (std::memcmp(in, segment_magic, 8) != 0) {
    why = "not a Cairn segment (bad magic)";
    return false;
  }
  if (get_u32(in + 24) != crc32c(in, 24)) {
    why = "segment header checksum mismatch";
    return false;
  }
  if (get_u32(in + 8) != format_version || get_u32(in + 12) != segment_header_size) {
    why = "unsupported segment format version " + std::to_string(get_u32(in + 8));
    return false;
  }
  first_position = get_u64(in + 16);
  return true;
}

uint64_t metadata_size(const metadata& meta) {
  if (meta.correlation_id.empty() && meta.causation_id.empty() && meta.entries.empty())
    return 0;
  uint64_t n = 12 + meta.correlation_id.size() + meta.causation_id.size();
  for (auto& [key, value] : meta.entries) n += 8 + key.size() + value.size();
  return n;
}

uint64_t record_size(size_t stream_name_size, const event_data& event) {
  return record_fixed_size + stream_name_size + event.type.size() + metadata_size(event.meta) +
         event.payload.size();
}

void encode_record(uint8_t* out, std::string_view stream_name, uint64_t position,
                   uint64_t version, int64_t timestamp_ns, const event_data& event) {
  uint64_t meta_size = metadata_size(event.meta);
  uint64_t size = record_fixed_size + stream_name.size() + event.type.size() + meta_size +
                  event.payload.size();
  put_u32(out, 0); // crc: finish_record()
  put_u32(out + 4, static_cast<uint32_t>(size - record_frame_size));
  put_u64(out + 8, position);
  put_u64(out + 16, version);
  put_u64(out + 24, static_cast<uint64_t>(timestamp_ns));
  put_u32(out + 32, 0); // durable offset: finish_record()
  put_u32(out + 36, event.schema_version);
  out[40] = 0; // flags: finish_record()
  out[41] = 0;
  put_u16(out + 42, static_cast<uint16_t>(stream_name.size()));
  put_u32(out + 44, static_cast<uint32_t>(event.type.size()));
  put_u32(out + 48, static_cast<uint32_t>(meta_size));
  put_u32(out + 52, static_cast<uint32_t>(event.payload.size()));
  uint8_t* p = put_bytes(out + record_fixed_size, stream_name);
  p = put_bytes(p, event.type);
  if (meta_size > 0) {
    p = put_string32(p, event.meta.correlation_id);
    p = put_string32(p, event.meta.causation_id);
    put_u32(p, static_cast<uint32_t>(event.meta.entries.size()));
    p += 4;
    for (auto& [key, value] : event.meta.entries) {
      p = put_string32(p, key);
      p = put_string32(p, value);
    }
  }
  if (!event.payload.empty()) std::memcpy(p, event.payload.data(), event.payload.size());
}

void finish_record(uint8_t* record, uint32_t durable_offset, bool commit) {
  put_u32(record + 32, durable_offset);
  record[40] = commit ? record_flag_commit : 0;
  uint32_t length = get_u32(record + 4);
  put_u32(record, crc32c(record + 4, size_t{4} + length));
}

record_status parse_record(const uint8_t* p, size_t available, record_view& out, size_t& need,
                           std::string& why) {
  if (available < record_frame_size) {
    need = record_frame_size;
    return record_status::incomplete;
  }
  uint64_t length = get_u32(p + 4);
  if (length < record_fixed_size - record_frame_size + 4 ||
      length > max_record_bytes - record_frame_size) {
    why = "impossible record length " + std::to_string(length);
    return record_status::bad_length;
  }
  size_t size = static_cast<size_t>(length + record_frame_size);
  if (available < size) {
    need = size;
    return record_status::incomplete;
  }
  if (get_u32(p) != crc32c(p + 4, size_t{4} + static_cast<size_t>(length))) {
    why = "record checksum mismatch";
    return record_status::bad_crc;
  }
  out.size = static_cast<uint32_t>(size);
  out.position = get_u64(p + 8);
  out.version = get_u64(p + 16);
  out.timestamp_ns = static_cast<int64_t>(get_u64(p + 24));
  out.durable_offset = get_u32(p + 32);
  out.schema_version = get_u32(p + 36);
  out.flags = p[40];
  uint64_t name = get_u16(p + 42), type = get_u32(p + 44), meta = get_u32(p + 48),
           payload = get_u32(p + 52);
  if ((out.flags & ~record_flag_commit) != 0 || p[41] != 0) {
    why = "unknown record flags";
    return record_status::bad_fields;
  }
  if (record_fixed_size + name + type + meta + payload != size || name < 3 ||
      name > max_stream_name_bytes || type == 0) {
    why = "record field lengths do not add up";
    return record_status::bad_fields;
  }
  auto text = [&](size_t offset, uint64_t n) {
    return std::string_view(reinterpret_cast<const char*>(p + offset), static_cast<size_t>(n));
  };
  out.stream = text(record_fixed_size, name);
  out.type = text(record_fixed_size + name, type);
  out.meta = text(record_fixed_size + name + type, meta);
  out.payload = text(record_fixed_size + name + type + meta, payload);
  if (out.position == 0 || out.version == 0) {
    why = "record has position or version 0";
    return record_status::bad_fields;
  }
  auto dash = out.stream.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash + 1 == out.stream.size()) {
    why = "record has a malformed stream name";
    return record_status::bad_fields;
  }
  if (!walk_metadata(out.meta, nullptr)) {
    why = "record has malformed metadata";
    return record_status::bad_fields;
  }
  return record_status::ok;
}

bool decode_metadata(std::string_view block, metadata& out) { return walk_metadata(block, &out); }

bool split_stream_name(std::string_view name, stream_id& out) {
  auto dash = name.find('-');
  if (dash == std::string_view::npos) return false;
  out.category.assign(name.substr(0, dash));
  out.id.assign(name.substr(dash + 1));
  return true;
}

} // namespace cairn::detail
