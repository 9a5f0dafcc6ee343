// Sequential scanning of segment files and the torn-tail versus corruption decision.
#include "segment_scan.hpp"

#include <algorithm>
#include <unordered_map>

#include "file_io.hpp"

namespace cairn::detail {
namespace {

constexpr size_t read_chunk = size_t{1} << 20;
constexpr uint64_t min_record_size = record_fixed_size + 4;

} // namespace

record_reader::record_reader(int fd, const std::string& path, uint64_t file_size,
                             uint64_t offset)
    : fd_(fd), path_(path), file_size_(file_size), offset_(offset) {}

expected<record_status> record_reader::next(record_view& out, std::string& why) {
  for (int attempt = 0;; ++attempt) {
    size_t available = 0;
    const uint8_t* p = nullptr;
    if (offset_ >= buffer_offset_ && offset_ < buffer_offset_ + buffer_length_) {
      available = static_cast<size_t>(buffer_offset_ + buffer_length_ - offset_);
      p = buffer_.data() + (offset_ - buffer_offset_);
    }
    size_t need = 0;
    auto status = p ? parse_record(p, available, out, need, why) : record_status::incomplete;
    if (!p) need = record_frame_size;
    if (status != record_status::incomplete) return status;
    uint64_t left = file_size_ - offset_;
    if (need > left || attempt == 3) {
      why = "record cut short by the end of the file";
      return record_status::incomplete;
    }
    size_t length = static_cast<size_t>(std::min<uint64_t>(std::max(need, read_chunk), left));
    if (buffer_.size() < length) buffer_.resize(length);
    if (auto r = read_exact(fd_, buffer_.data(), length, offset_, path_); !r)
      return std::move(r).error();
    buffer_offset_ = offset_;
    buffer_length_ = length;
  }
}

expected<void> find_intact_records(
  int fd, const std::string& path, uint64_t file_size, uint64_t from, uint64_t min_position,
  const std::function<bool(uint64_t, const record_view&)>& found) {
  std::vector<uint8_t> window, single;
  uint64_t y = from;
  while (y + min_record_size <= file_size) {
    size_t length = static_cast<size_t>(std::min<uint64_t>(read_chunk, file_size - y));
    window.resize(length);
    if (auto r = read_exact(fd, window.data(), length, y, path); !r) return r;
    uint64_t base = y, window_end = y + length;
    // Look at every offset whose length and position fields lie in the window.
    while (y + 16 <= window_end && y + min_record_size <= file_size) {
      const uint8_t* p = window.data() + (y - base);
      uint64_t body = get_u32(p + 4), position = get_u64(p + 8);
      uint64_t max_position = min_position + (y - from) / min_record_size + 1;
      uint64_t size = body + record_frame_size;
      if (size < min_record_size || size > max_record_bytes || y + size > file_size ||
          position < min_position || position > max_position) {
        ++y;
        continue;
      }
      const uint8_t* record = p;
      if (y + size > window_end) { // a plausible candidate running past the window
        single.resize(static_cast<size_t>(size));
        if (auto r = read_exact(fd, single.data(), single.size(), y, path); !r) return r;
        record = single.data();
      }
      record_view view;
      size_t need = 0;
      std::string why;
      if (parse_record(record, static_cast<size_t>(size), view, need, why) != record_status::ok) {
        ++y;
        continue;
      }
      if (!found(y, view)) return {};
      y += size;
      if (y > window_end) break;
    }
  }
  return {};
}

expected<scan_result> scan_segment(int fd, const std::string& path, uint64_t file_size,
                                   uint64_t start, uint64_t first_position,
                                   const version_lookup& base_version, bool sealed) {
  struct pending_record {
    uint32_t offset;
    std::string stream;
    uint64_t version;
  };
  scan_result res;
  res.index.first_position = first_position;
  res.end = start;
  std::unordered_map<std::string, uint32_t> slots; // stream name -> res.index.streams
  std::unordered_map<std::string, uint64_t> pending_versions;
  std::vector<pending_record> pending;
  uint64_t expected_position = first_position;
  bool logical = false; // damage in a checksum-valid record: never a torn write

  auto current_version = [&](const std::string& name) -> uint64_t {
    if (auto it = pending_versions.find(name); it != pending_versions.end()) return it->second;
    if (auto it = slots.find(name); it != slots.end()) {
      auto& s = res.index.streams[it->second];
      return s.first_version + s.count - 1;
    }
    return base_version(name);
  };

  record_reader reader(fd, path, file_size, start);
  record_view view;
  std::string why;
  bool damaged = false;
  while (!reader.at_end()) {
    auto status = reader.next(view, why);
    if (!status) return std::move(status).error();
    if (*status != record_status::ok) {
      damaged = true;
      logical = *status == record_status::bad_fields;
      break;
    }
    std::string name(view.stream);
    uint64_t current = current_version(name);
    if (view.position != expected_position) {
      why = "record has position " + std::to_string(view.position) + " where " +
            std::to_string(expected_position) + " was expected";
    } else if (view.version != current + 1) {
      why = "record of stream " + name + " has version " + std::to_string(view.version) +
            " after version " + std::to_string(current);
    } else if (view.durable_offset > reader.offset()) {
      why = "record claims a durable offset beyond itself";
    } else {
      pending_versions[name] = view.version;
      pending.push_back({static_cast<uint32_t>(reader.offset()), std::move(name), view.version});
      ++expected_position;
      reader.advance(view.size);
      if (view.commit()) {
        for (auto& r : pending) {
          auto [it, added] = slots.try_emplace(r.stream, res.index.streams.size());
          if (added) res.index.streams.push_back({r.stream, r.version, 0});
          ++res.index.streams[it->second].count;
          res.index.offsets.push_back(r.offset);
          res.index.record_stream.push_back(it->second);
        }
        pending.clear();
        pending_versions.clear();
        res.end = reader.offset();
        res.last_timestamp_ns = view.timestamp_ns;
      }
      continue;
    }
    damaged = logical = true;
    break;
  }
  res.index.segment_bytes = res.end;
  if (!damaged && pending.empty()) return res;

  if (damaged) {
    res.damage_offset = reader.offset();
    res.damage = why;
  } else {
    res.damage_offset = res.end;
    res.damage = "the last batch (" + std::to_string(pending.size()) +
                 " records) has no commit record";
  }
  res.outcome = scan_result::verdict::corrupt;
  if (sealed) {
    res.damage += " in a sealed segment";
    return res;
  }
  if (logical || !damaged) {
    if (!logical) res.outcome = scan_result::verdict::torn; // nothing after the end of file
    return res;
  }
  // The damage looks like an interrupted write. It is one only if nothing after it was
  // written once it had been made durable.
  std::string late;
  auto r = find_intact_records(
    fd, path, file_size, res.damage_offset + 1, expected_position + 1,
    [&](uint64_t offset, const record_view& found) {
      if (found.durable_offset > res.damage_offset) {
        late = "; the intact record at offset " + std::to_string(offset) + " (position " +
               std::to_string(found.position) +
               ") was written after these bytes had been made durable";
        return false;
      }
      ++res.intact_after;
      return true;
    });
  if (!r) return std::move(r).error();
  if (!late.empty()) {
    res.damage += late;
    return res;
  }
  res.outcome = scan_result::verdict::torn;
  return res;
}

} // namespace cairn::detail
