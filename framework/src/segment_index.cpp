// Encoding and checking of the per-segment .idx files.
#include "segment_index.hpp"

#include <cstring>

#include "crc32c.hpp"
#include "file_format.hpp"

namespace cairn::detail {
namespace {

constexpr char index_magic[8] = {'C', 'A', 'I', 'R', 'N', 'I', 'D', 'X'};
constexpr uint32_t index_version = 1;
constexpr size_t index_header_size = 40;

} // namespace

std::vector<uint8_t> encode_index(const segment_index& index) {
  size_t n = index.records();
  size_t size = index_header_size + 8 * n + 4;
  for (auto& s : index.streams) size += 14 + s.name.size();
  std::vector<uint8_t> out(size);
  uint8_t* p = out.data();
  std::memcpy(p, index_magic, 8);
  put_u32(p + 8, index_version);
  put_u32(p + 12, static_cast<uint32_t>(index.streams.size()));
  put_u64(p + 16, index.first_position);
  put_u64(p + 24, n);
  put_u64(p + 32, index.segment_bytes);
  p += index_header_size;
  for (auto& s : index.streams) {
    put_u64(p, s.first_version);
    put_u32(p + 8, s.count);
    put_u16(p + 12, static_cast<uint16_t>(s.name.size()));
    std::memcpy(p + 14, s.name.data(), s.name.size());
    p += 14 + s.name.size();
  }
  for (uint32_t offset : index.offsets) {
    put_u32(p, offset);
    p += 4;
  }
  for (uint32_t stream : index.record_stream) {
    put_u32(p, stream);
    p += 4;
  }
  put_u32(p, crc32c(out.data(), size - 4));
  return out;
}

bool decode_index(const uint8_t* data, size_t size, segment_index& out, std::string& why) {
  auto fail = [&](const char* reason) {
    why = reason;
    return false;
  };
  if (size < index_header_size + 4) return fail("index file too short");
  if (std::memcmp(data, index_magic, 8) != 0) return fail("not a Cairn index (bad magic)");
  if (get_u32(data + size - 4) != crc32c(data, size - 4)) return fail("index checksum mismatch");
  if (get_u32(data + 8) != index_version) return fail("unsupported index version");
  uint64_t stream_count = get_u32(data + 12);
  uint64_t n = get_u64(data + 24);
  out = segment_index{};
  out.first_position = get_u64(data + 16);
  out.segment_bytes = get_u64(data + 32);
  if (n > size / 8 || stream_count > n) return fail("index counts are impossible");
  const uint8_t* p = data + index_header_size;
  const uint8_t* end = data + size - 4;
  out.streams.resize(static_cast<size_t>(stream_count));
  uint64_t counted = 0;
  for (auto& s : out.streams) {
    if (end - p < 14) return fail("index stream table is truncated");
    s.first_version = get_u64(p);
    s.count = get_u32(p + 8);
    size_t name_size = get_u16(p + 12);
    if (static_cast<size_t>(end - p) < 14 + name_size)
      return fail("index stream table is truncated");
    s.name.assign(reinterpret_cast<const char*>(p + 14), name_size);
    if (s.count == 0 || s.first_version == 0 || name_size == 0)
      return fail("index stream table has an empty entry");
    counted += s.count;
    p += 14 + name_size;
  }
  if (counted != n) return fail("index stream counts do not add up");
  if (static_cast<uint64_t>(end - p) != 8 * n) return fail("index file has the wrong size");
  out.offsets.resize(static_cast<size_t>(n));
  out.record_stream.resize(static_cast<size_t>(n));
  uint64_t previous = 0;
  for (auto& offset : out.offsets) {
    offset = get_u32(p);
    p += 4;
    if (offset < segment_header_size || offset <= previous || offset >= out.segment_bytes)
      return fail("index offsets are not increasing inside the segment");
    previous = offset;
  }
  if (n > 0 && out.offsets.front() != segment_header_size)
    return fail("index does not start at the first record");
  std::vector<uint32_t> seen(out.streams.size(), 0);
  for (auto& stream : out.record_stream) {
    stream = get_u32(p);
    p += 4;
    if (stream >= out.streams.size()) return fail("index names an unknown stream");
    ++seen[stream];
  }
  for (size_t i = 0; i < seen.size(); ++i)
    if (seen[i] != out.streams[i].count) return fail("index stream counts do not add up");
  return true;
}

} // namespace cairn::detail
