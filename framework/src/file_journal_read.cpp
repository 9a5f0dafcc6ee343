// file_journal: reads: locations copied under the shared index lock, then checked preads.
#include <algorithm>

#include "file_journal_impl.hpp"

namespace cairn::detail {
namespace {

constexpr uint64_t read_piece = uint64_t{1} << 20; // bytes per pread, unless one record is larger

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

uint64_t end_of_record(const segment& seg, size_t i) {
  return i + 1 < seg.offsets.size() ? seg.offsets[i + 1] : seg.size;
}

} // namespace

expected<void> file_journal_impl::read_run(const record_run& run,
                                           std::vector<envelope>& out) const {
  size_t n = run.offsets.size();
  auto end_of = [&](size_t k) -> uint64_t { return k + 1 < n ? run.offsets[k + 1] : run.end; };
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < n;) {
    uint64_t start = run.offsets[i];
    size_t j = i + 1;
    while (j < n && end_of(j) - start <= read_piece) ++j;
    uint64_t stop = end_of(j - 1);
    buffer.resize(static_cast<size_t>(stop - start));
    if (auto r = read_exact(run.file->get(), buffer.data(), buffer.size(), start, run.seg->path);
        !r)
      return r;
    for (size_t k = i; k < j; ++k) {
      uint64_t offset = run.offsets[k];
      size_t available = static_cast<size_t>(end_of(k) - offset);
      record_view view;
      size_t need = 0;
      std::string why;
      auto status = parse_record(buffer.data() + (offset - start), available, view, need, why);
      if (status != record_status::ok)
        return corrupt_read(run.seg->path, offset,
                            status == record_status::incomplete ? "record cut short" : why);
      uint64_t position = run.first_position + k;
      if (view.size != available || view.position != position)
        return corrupt_read(run.seg->path, offset,
                            "record does not match the index (position " +
                              std::to_string(view.position) + ", expected " +
                              std::to_string(position) + ")");
      envelope e;
      if (run.stream) {
        if (!names_stream(view.stream, *run.stream) || view.version != run.first_version + k)
          return corrupt_read(run.seg->path, offset,
                              "record does not match the index (stream or version)");
        e.stream = *run.stream;
        if (!decode_metadata(view.meta, e.meta))
          return corrupt_read(run.seg->path, offset, "malformed metadata");
        e.version = view.version;
        e.position = view.position;
        e.type.assign(view.type);
        e.schema_version = view.schema_version;
        e.timestamp_ns = view.timestamp_ns;
        e.payload.assign(view.payload.begin(), view.payload.end());
      } else {
        auto decoded = to_envelope(view);
        if (!decoded) return corrupt_read(run.seg->path, offset, decoded.error().message());
        e = std::move(*decoded);
      }
      out.push_back(std::move(e));
    }
    i = j;
  }
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
        run.offsets.assign(seg.offsets.begin() + static_cast<std::ptrdiff_t>(i),
                           seg.offsets.begin() + static_cast<std::ptrdiff_t>(i + k));
        run.end = end_of_record(seg, static_cast<size_t>(i + k - 1));
        runs.push_back(std::move(run));
        position += k;
        left -= k;
      }
    }
    out.reserve(static_cast<size_t>(count));
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
                       runs.back().first_position + runs.back().offsets.size() == p;
        if (!extends) {
          if (!runs.empty()) runs.back().end = end_of_record(*runs.back().seg, last_index);
          record_run run;
          run.seg = &seg;
          run.file = seg.file;
          run.first_position = p;
          run.stream = &stream;
          run.first_version = v + 1;
          runs.push_back(std::move(run));
        }
        runs.back().offsets.push_back(seg.offsets[i]);
        last_index = i;
      }
      runs.back().end = end_of_record(*runs.back().seg, last_index);
      out.reserve(count);
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
