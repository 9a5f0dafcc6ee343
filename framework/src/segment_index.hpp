// segment_index: each record's offset and stream in one segment; the sealed segment's .idx.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cairn::detail {

struct segment_index {
  struct stream_entry {
    std::string name;           ///< "<category>-<id>"
    uint64_t first_version = 0; ///< the stream's version at its first record in the segment
    uint32_t count = 0;         ///< its records in the segment (versions are contiguous)
  };

  uint64_t first_position = 0;
  uint64_t segment_bytes = 0;          ///< bytes of the segment file these records cover
  std::vector<uint32_t> offsets;       ///< record i (position first_position + i) starts here
  std::vector<uint32_t> record_stream; ///< record i's index into `streams`
  std::vector<stream_entry> streams;

  size_t records() const { return offsets.size(); }
};

/// The .idx file for `index` (format in docs/file-format.md), ending in a CRC-32C.
std::vector<uint8_t> encode_index(const segment_index& index);

/// Parses and checks an .idx file: checksum, magic and version, and internal
/// consistency (offsets increasing inside the segment, stream counts adding up).
/// On failure returns false with `why`.
bool decode_index(const uint8_t* data, size_t size, segment_index& out, std::string& why);

} // namespace cairn::detail
