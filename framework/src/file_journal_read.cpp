// file_journal: reads: where runs of contiguous records start and end, copied under the
// shared index lock, then checked preads of whole runs.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "file_journal_impl.hpp"

namespace cairn::detail {
namespace {

/// Bytes per pread, unless one record is larger. Small enough to stay in the cache
/// while its records are parsed.
constexpr size_t read_piece = size_t{256} << 10;

error corrupt_read(const std::string& path, uint64_t offset, const std::string& what) {
  return error{errc::corrupt, "file " + path + " offset " + std::to_string(offset) + ": " + what};
}

error out_of_memory() { return error{errc::unavailable, "out of memory while reading"}; }

bool names_stream(std::string_view name, const stream_id& s) {
  return name.size() == s.category.size() + 1 + s.id.size() &&
         name.compare(0, s.category.size(), s.category) == 0 && name[s.category.size()] == '-' &&
         name.compare(s.category.size() + 1, std::string_view::npos, s.id) == 0;
}

/// The segment holding `position` (segments are sorted by first position, none empty
/// but perhaps the last).
size_t segment_of(const std::vector<std::unique_ptr<segment>>& segments, uint64_t position) {
  auto it = std::upper_bound(
    segments.begin(), segments.end(), position,
    [](uint64_t p, const std::unique_ptr<segment>& s) { return p < s->first_position; });
  return static_cast<size_t>(it - segments.begin()) - 1;
}

/// The calling thread's read buffer (uninitialized bytes). Kept between reads, so that
/// a replay in chunks reads into the same, already mapped memory every time instead
/// of faulting in a fresh buffer per call: page faults, not copies, dominated reading.
struct read_buffer {
  std::unique_ptr<uint8_t[]> data;
  size_t capacity = 0;

  static read_buffer& of_this_thread() {
    thread_local read_buffer buffer;
    return buffer;
  }
  /// Room for `size` bytes, keeping the first `keep`.
  void reserve(size_t size, size_t keep) {
    if (size <= capacity) return;
    size = std::max(size, read_piece);
    std::unique_ptr<uint8_t[]> bigger(new uint8_t[size]);
    if (keep > 0) std::memcpy(bigger.get(), data.get(), keep);
    data = std::move(bigger);
    capacity = size;
  }
  /// Lets go of a buffer grown for a huge record.
  void trim() {
    if (capacity > read_piece) {
      data.reset();
      capacity = 0;
    }
  }
};

/// Reserves room for `count` envelopes. A large result is fresh memory whose 4 KiB page
/// faults cost more than reading the events (about 12 us each on a virtual machine, 60
/// per 1,000 events); asking for transparent huge pages takes one fault per 2 MiB
/// where the system allows them (the default "madvise" mode), and is harmless where not.
void reserve_result(std::vector<envelope>& out, size_t count) {
  out.reserve(count);
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t huge = uintptr_t{2} << 20;
  auto begin = reinterpret_cast<uintptr_t>(out.data());
  auto end = begin + count * sizeof(envelope);
  uintptr_t first = (begin + huge - 1) & ~(huge - 1), last = end & ~(huge - 1);
  if (count * sizeof(envelope) >= 2 * huge && first < last)
    (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

uint64_t end_of_record(const segment& seg, size_t i) {
  return i + 1 < seg.offsets.size() ? seg.offsets[i + 1] : seg.size;
}

} // namespace

expected<void> file_journal_impl::read_run(const record_run& run,
                                           std::vector<envelope>& out) const {
  // The run's records lie back to back in [run.start, run.end): they are read with one
  // pread per piece of up to read_piece bytes (a record cut by a piece's end is moved
  // to the front and completed by the next pread), then each is checked (CRC, position,
  // and for read_stream the stream and version) and decoded straight into `out`. The
  // last record must end exactly at run.end, where the index says.
  auto& buffer = read_buffer::of_this_thread();
  struct trim_guard {
    read_buffer& b;
    ~trim_guard() { b.trim(); }
  } trim{buffer};
  uint64_t offset = run.start; // of the next record
  uint64_t loaded = run.start; // file offset of buffer.data[0]
  size_t length = 0;           // bytes in the buffer
  record_view view;            // outside the loop: parse_record sets every field on success
  size_t need = 0;
  std::string why;
  for (size_t k = 0; k < run.count; ++k) {
    record_status status;
    for (;;) {
      auto at = static_cast<size_t>(offset - loaded);
      status = parse_record(buffer.data.get() + at, length - at, view, need, why);
      if (status != record_status::incomplete) break;
      uint64_t left = run.end - offset;
      if (need > left) return corrupt_read(run.seg->path, offset, "record cut short");
      auto want = static_cast<size_t>(std::min<uint64_t>(std::max(need, read_piece), left));
      size_t keep = length - at;
      if (keep > 0 && at > 0) std::memmove(buffer.data.get(), buffer.data.get() + at, keep);
      buffer.reserve(want, keep);
      if (auto r = read_exact(run.file->get(), buffer.data.get() + keep, want - keep,
                              offset + keep, run.seg->path);
          !r)
        return r;
      loaded = offset;
      length = want;
    }
    if (status != record_status::ok) return corrupt_read(run.seg->path, offset, why);
    uint64_t position = run.first_position + k;
    if (view.position != position)
      return corrupt_read(run.seg->path, offset,
                          "record does not match the index (position " +
                            std::to_string(view.position) + ", expected " +
                            std::to_string(position) + ")");
    if (run.stream &&
        (!names_stream(view.stream, *run.stream) || view.version != run.first_version + k))
      return corrupt_read(run.seg->path, offset,
                          "record does not match the index (stream or version)");
    envelope e; // default-initialized: emplace_back() would zero it first
    if (run.stream) e.stream = *run.stream;
    else if (!split_stream_name(view.stream, e.stream))
      return corrupt_read(run.seg->path, offset, "malformed record");
    if (!decode_metadata(view.meta, e.meta))
      return corrupt_read(run.seg->path, offset, "malformed metadata");
    e.version = view.version;
    e.position = view.position;
    e.type.assign(view.type);
    e.schema_version = view.schema_version;
    e.timestamp_ns = view.timestamp_ns;
    e.payload.assign(view.payload.begin(), view.payload.end());
    out.push_back(std::move(e));
    offset += view.size;
  }
  if (offset != run.end)
    return corrupt_read(run.seg->path, offset,
                        "record does not match the index (the run ends at " +
                          std::to_string(run.end) + ")");
  return {};
}

expected<std::vector<envelope>> file_journal_impl::read_all(uint64_t from_position,
                                                            size_t max_count) const {
  try {
    std::vector<envelope> out;
    std::vector<record_run> runs;
    uint64_t count = 0;
    {
      std::shared_lock<rw_lock> lock(index_lock_);
      uint64_t head = head_.load();
      uint64_t from = std::max<uint64_t>(from_position, 1);
      if (max_count == 0 || from > head) return out;
      count = std::min<uint64_t>(max_count, head - from + 1);
      uint64_t position = from, left = count;
      for (size_t s = segment_of(segments_, from); left > 0 && s < segments_.size(); ++s) {
        const segment& seg = *segments_[s];
        uint64_t i = position - seg.first_position;
        if (i >= seg.offsets.size()) continue;
        uint64_t k = std::min<uint64_t>(left, seg.offsets.size() - i);
        record_run run;
        run.seg = &seg;
        run.file = seg.file;
        run.first_position = position;
        run.count = static_cast<size_t>(k);
        run.start = seg.offsets[static_cast<size_t>(i)];
        run.end = end_of_record(seg, static_cast<size_t>(i + k - 1));
        runs.push_back(std::move(run));
        position += k;
        left -= k;
      }
    }
    reserve_result(out, static_cast<size_t>(count));
    for (auto& run : runs)
      if (auto r = read_run(run, out); !r) return std::move(r).error();
    return out;
  } catch (const std::bad_alloc&) {
    return out_of_memory();
  }
}

expected<std::vector<envelope>> file_journal_impl::read_stream(const stream_id& stream,
                                                               uint64_t from_version,
                                                               size_t max_count) const {
  try {
    std::vector<envelope> out;
    std::vector<record_run> runs;
    {
      std::shared_lock<rw_lock> lock(index_lock_);
      auto it = streams_.find(stream);
      uint64_t from = std::max<uint64_t>(from_version, 1);
      if (it == streams_.end() || max_count == 0 || from > it->second.size()) return out;
      const auto& positions = it->second;
      size_t first = static_cast<size_t>(from - 1);
      size_t count = std::min<size_t>(max_count, positions.size() - first);
      size_t s = segment_of(segments_, positions[first]);
      size_t last_index = 0; // of the current run's last record in its segment
      for (size_t v = first; v < first + count; ++v) {
        uint64_t p = positions[v];
        while (s + 1 < segments_.size() && segments_[s + 1]->first_position <= p) ++s;
        const segment& seg = *segments_[s];
        size_t i = static_cast<size_t>(p - seg.first_position);
        bool extends = !runs.empty() && runs.back().seg == &seg &&
                       runs.back().first_position + runs.back().count == p;
        if (!extends) {
          if (!runs.empty()) runs.back().end = end_of_record(*runs.back().seg, last_index);
          record_run run;
          run.seg = &seg;
          run.file = seg.file;
          run.first_position = p;
          run.start = seg.offsets[i];
          run.stream = &stream;
          run.first_version = v + 1;
          runs.push_back(std::move(run));
        }
        ++runs.back().count;
        last_index = i;
      }
      runs.back().end = end_of_record(*runs.back().seg, last_index);
      reserve_result(out, count);
    }
    for (auto& run : runs)
      if (auto r = read_run(run, out); !r) return std::move(r).error();
    return out;
  } catch (const std::bad_alloc&) {
    return out_of_memory();
  }
}

expected<uint64_t> file_journal_impl::stream_version(const stream_id& stream) const {
  std::shared_lock<rw_lock> lock(index_lock_);
  auto it = streams_.find(stream);
  return it == streams_.end() ? uint64_t{0} : uint64_t{it->second.size()};
}

uint64_t file_journal_impl::head_position() const { return head_.load(); }

expected<std::vector<stream_id>> file_journal_impl::list_streams() const {
  try {
    std::vector<stream_id> out;
    std::shared_lock<rw_lock> lock(index_lock_);
    out.reserve(streams_.size());
    for (auto& [stream, positions] : streams_)
      if (!positions.empty()) out.push_back(stream);
    return out;
  } catch (const std::bad_alloc&) {
    return out_of_memory();
  }
}

} // namespace cairn::detail
