// The file journal's on-disk record and segment formats (specified in docs/file-format.md).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "cairn/envelope.hpp"
#include "cairn/expected.hpp"

namespace cairn::detail {

inline constexpr size_t segment_header_size = 32;
inline constexpr size_t record_fixed_size = 56;         ///< bytes before the stream name
inline constexpr size_t record_frame_size = 8;          ///< crc + length
inline constexpr uint64_t max_record_bytes = 64u << 20; ///< one event, framing included
inline constexpr uint64_t max_batch_bytes = 1u << 30;   ///< one group commit
inline constexpr uint64_t max_segment_bytes = 1u << 30; ///< largest segment_bytes option
inline constexpr uint8_t record_flag_commit = 1;        ///< last record of its batch
inline constexpr size_t max_stream_name_bytes = 1024;

// Little-endian fixed-width integers, whatever the host's byte order. On a
// little-endian host each is one plain load or store.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof v); }
inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
inline void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, sizeof v); }
inline uint16_t get_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint32_t get_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
#else
inline void put_u16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
inline void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline uint16_t get_u16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
inline uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint64_t get_u64(const uint8_t* p) {
  return uint64_t(get_u32(p)) | uint64_t(get_u32(p + 4)) << 32;
}
#endif

/// "segment-00000000000000000001.log" for a segment whose first position is 1.
std::string segment_file_name(uint64_t first_position);
/// "segment-00000000000000000001.idx": the index of that segment once it is sealed.
std::string index_file_name(uint64_t first_position);
/// Parses a segment file name; false for any other name.
bool parse_segment_file_name(std::string_view name, uint64_t& first_position);

/// Writes the 32-byte segment header.
void encode_segment_header(uint8_t* out, uint64_t first_position);
/// Checks a segment header; on failure `why` says what is wrong.
bool decode_segment_header(const uint8_t* in, uint64_t& first_position, std::string& why);

/// Bytes of the metadata block (0 for empty metadata).
uint64_t metadata_size(const metadata& meta);
/// Bytes of the whole record for this event in a stream named `stream_name_size` bytes.
uint64_t record_size(size_t stream_name_size, const event_data& event);

/// Writes a record at `out` (exactly record_size() bytes) with flags, durable offset and
/// CRC left zero: finish it with finish_record().
void encode_record(uint8_t* out, std::string_view stream_name, uint64_t position,
                   uint64_t version, int64_t timestamp_ns, const event_data& event);
/// Sets the durable offset and the commit flag, then computes the record's CRC.
void finish_record(uint8_t* record, uint32_t durable_offset, bool commit);

/// A record's fields, pointing into the buffer that holds it.
struct record_view {
  uint32_t size = 0; ///< whole record, framing included
  uint64_t position = 0;
  uint64_t version = 0;
  int64_t timestamp_ns = 0;
  uint32_t durable_offset = 0;
  uint32_t schema_version = 0;
  uint8_t flags = 0;
  std::string_view stream, type, meta, payload;
  bool commit() const { return (flags & record_flag_commit) != 0; }
};

enum class record_status {
  ok,
  incomplete, ///< fewer bytes available than the record needs (`need` says how many)
  bad_length, ///< the length field is impossible
  bad_crc,    ///< the checksum does not match
  bad_fields, ///< checksum fine, but the fields are inconsistent
};

/// Parses the record at `p` with `available` bytes readable from there. On ok fills
/// `out`; on incomplete sets `need`; otherwise `why` says what is wrong.
record_status parse_record(const uint8_t* p, size_t available, record_view& out, size_t& need,
                           std::string& why);

/// Decodes the metadata block; false if malformed.
bool decode_metadata(std::string_view block, metadata& out);

/// Splits a stored stream name at its first '-' (no further validation).
bool split_stream_name(std::string_view name, stream_id& out);

} // namespace cairn::detail
