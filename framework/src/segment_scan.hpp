// Sequential scans of segment files: index rebuilding and the torn-tail-or-corrupt decision.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/expected.hpp"
#include "file_format.hpp"
#include "segment_index.hpp"

namespace cairn::detail {

/// Reads records one after another through a large buffer.
class record_reader {
public:
  record_reader(int fd, const std::string& path, uint64_t file_size, uint64_t offset);

  /// Parses the record at offset(). `status` is incomplete when the file ends inside it.
  /// I/O errors are returned as errors; damage is reported through `status` and `why`.
  expected<record_status> next(record_view& out, std::string& why);
  /// Moves past the record next() just returned.
  void advance(uint32_t size) { offset_ += size; }
  /// Continues at `offset` instead.
  void seek(uint64_t offset) { offset_ = offset; }
  uint64_t offset() const { return offset_; }
  bool at_end() const { return offset_ >= file_size_; }

private:
  int fd_;
  const std::string& path_;
  uint64_t file_size_;
  uint64_t offset_;
  std::vector<uint8_t> buffer_;
  uint64_t buffer_offset_ = 0; ///< file offset of buffer_[0]
  size_t buffer_length_ = 0;
};

/// Calls `found(offset, record)` for every intact record (checksum and fields fine)
/// in [from, file_size) whose position is plausible: at least `min_position` and at
/// most one more than the number of minimal records that fit between `from` and it.
/// Skips over each intact record it finds. Stops when `found` returns false.
expected<void> find_intact_records(int fd, const std::string& path, uint64_t file_size,
                                   uint64_t from, uint64_t min_position,
                                   const std::function<bool(uint64_t, const record_view&)>& found);

/// What scan_segment() found.
struct scan_result {
  enum class verdict { clean, torn, corrupt };
  segment_index index;          ///< every record of the complete batches from the scan start
  uint64_t end = 0;             ///< offset just after the last complete batch
  int64_t last_timestamp_ns = 0;
  verdict outcome = verdict::clean;
  uint64_t damage_offset = 0;   ///< first damaged or incomplete byte (torn or corrupt)
  std::string damage;           ///< what is wrong there
  uint64_t intact_after = 0;    ///< torn: intact records after the damage that are dropped
};

/// Current version of a stream before the scanned range (0 if unknown).
using version_lookup = std::function<uint64_t(std::string_view stream_name)>;

/// Scans segment `path` from `start` (a record boundary) to `file_size`, expecting
/// the record there to have `first_position`, and checking every stream's versions
/// continue from `base_version`. Records count only in complete batches (the last
/// record of each batch carries the commit flag).
/// Damage in a sealed segment is always corrupt. In the last segment, damage is a
/// torn tail unless it cannot come from an interrupted write: a checksum-valid record
/// with wrong fields, or an intact record further on written after the damaged bytes
/// had been made durable (its durable offset lies beyond the damage).
expected<scan_result> scan_segment(int fd, const std::string& path, uint64_t file_size,
                                   uint64_t start, uint64_t first_position,
                                   const version_lookup& base_version, bool sealed);

} // namespace cairn::detail
