// file_journal: the offline tools behind `cairn stats`, `cairn verify` and the lock probe.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "cairn/file_journal.hpp"
#include "file_format.hpp"
#include "file_io.hpp"
#include "segment_index.hpp"
#include "segment_scan.hpp"

namespace cairn {
namespace {

struct segment_file {
  uint64_t first_position = 0;
  std::string path;
};

expected<std::vector<segment_file>> segment_files(const std::string& dir) {
  auto names = detail::list_directory(dir);
  if (!names) {
    if (is_not_found(names.error()))
      return error{errc::not_found, "no Cairn store in folder " + dir + ": it does not exist"};
    return std::move(names).error();
  }
  std::vector<segment_file> out;
  for (auto& name : *names) {
    uint64_t first = 0;
    if (detail::parse_segment_file_name(name, first))
      out.push_back({first, detail::join_path(dir, name)});
  }
  std::sort(out.begin(), out.end(), [](const segment_file& a, const segment_file& b) {
    return a.first_position < b.first_position;
  });
  return out;
}

/// Checks one segment's records; adds to `report` and advances the running state.
class verifier {
public:
  verifier(verify_report& report, std::function<void(uint64_t, uint64_t)> progress,
           uint64_t total)
      : report_(report), progress_(std::move(progress)), total_(total) {}

  expected<void> check(const segment_file& file, bool last);
  uint64_t streams() const { return versions_.size(); }

private:
  void problem(const std::string& path, uint64_t offset, const std::string& what) {
    report_.problems.push_back("file " + path + " offset " + std::to_string(offset) + ": " +
                               what);
  }
  void compare_index(const segment_file& file, uint64_t size, const detail::segment_index& built);

  verify_report& report_;
  std::function<void(uint64_t, uint64_t)> progress_;
  uint64_t total_;
  uint64_t done_ = 0;
  uint64_t next_position_ = 1;
  std::unordered_map<std::string, uint64_t> versions_;
};

expected<void> verifier::check(const segment_file& file, bool last) {
  using namespace detail;
  auto handle = open_file(file.path, O_RDONLY);
  if (!handle) return std::move(handle).error();
  int fd = handle->get();
  auto size = file_size(fd, file.path);
  if (!size) return std::move(size).error();
  uint64_t segment_start = done_;
  if (file.first_position != next_position_)
    problem(file.path, 0,
            "the segment starts at position " + std::to_string(file.first_position) +
              " but the records before it end at position " + std::to_string(next_position_ - 1));
  next_position_ = file.first_position;
  uint8_t header[segment_header_size];
  uint64_t header_position = 0;
  std::string why = "segment header cut short";
  if (*size < segment_header_size ||
      !read_exact(fd, header, segment_header_size, 0, file.path) ||
      !decode_segment_header(header, header_position, why)) {
    problem(file.path, 0, why + "; the segment was not checked");
    done_ += *size;
    return {};
  }
  if (header_position != file.first_position)
    problem(file.path, 0, "the header names first position " + std::to_string(header_position));

  segment_index built; // what the index file should say
  built.first_position = file.first_position;
  built.segment_bytes = *size;
  std::unordered_map<std::string, uint32_t> slots;
  bool sound = true, batch_open = false;
  uint64_t batch_start = 0, next_report = 0;
  record_reader reader(fd, file.path, *size, segment_header_size);
  record_view view;
  while (!reader.at_end()) {
    uint64_t offset = reader.offset();
    if (progress_ && offset >= next_report) {
      progress_(segment_start + offset, total_);
      next_report = offset + (uint64_t{64} << 20);
    }
    auto status = reader.next(view, why);
    if (!status) return std::move(status).error();
    if (*status != record_status::ok) {
      sound = false;
      uint64_t resume = *size, resume_position = 0;
      auto r = find_intact_records(fd, file.path, *size, offset + 1, next_position_,
                                   [&](uint64_t at, const record_view& found) {
                                     resume = at;
                                     resume_position = found.position;
                                     return false;
                                   });
      if (!r) return r;
      if (resume < *size)
        problem(file.path, offset, why + "; skipped " + std::to_string(resume - offset) +
                                     " bytes to the next intact record (position " +
                                     std::to_string(resume_position) + ") at offset " +
                                     std::to_string(resume));
      else
        problem(file.path, offset,
                why + "; nothing intact follows in the " + std::to_string(*size - offset) +
                  " bytes to the end of the file");
      if (batch_open)
        problem(file.path, batch_start,
                "the batch that starts here is incomplete: the damage at offset " +
                  std::to_string(offset) + " cuts it");
      batch_open = false;
      reader.seek(resume);
      continue;
    }
    ++report_.records;
    if (view.position != next_position_) {
      sound = false;
      problem(file.path, offset, "position " + std::to_string(view.position) + " where " +
                                   std::to_string(next_position_) + " was expected");
    }
    next_position_ = view.position + 1;
    std::string name(view.stream);
    uint64_t& version = versions_[name];
    if (view.version != version + 1) {
      sound = false;
      problem(file.path, offset, "stream " + name + " has version " +
                                   std::to_string(view.version) + " after version " +
                                   std::to_string(version) +
                                   (view.version <= version ? " (a repeat)" : " (a hole)"));
    }
    version = std::max(version, view.version);
    if (view.durable_offset > offset) {
      sound = false;
      problem(file.path, offset, "the record claims a durable offset beyond itself");
    }
    if (!batch_open) batch_start = offset;
    batch_open = !view.commit();
    auto [slot, added] = slots.try_emplace(name, static_cast<uint32_t>(built.streams.size()));
    if (added) built.streams.push_back({name, view.version, 0});
    ++built.streams[slot->second].count;
    built.offsets.push_back(static_cast<uint32_t>(offset));
    built.record_stream.push_back(slot->second);
    reader.advance(view.size);
  }
  if (batch_open) {
    sound = false;
    problem(file.path, batch_start,
            last ? "the last batch is incomplete (an interrupted append, or one in progress; "
                   "a writable open truncates it)"
                 : "the segment ends inside a batch");
  }
  if (!last && sound) compare_index(file, *size, built);
  done_ += *size;
  if (progress_) progress_(done_, total_);
  return {};
}

void verifier::compare_index(const segment_file& file, uint64_t size,
                             const detail::segment_index& built) {
  using namespace detail;
  std::string path = file.path.substr(0, file.path.size() - 4) + ".idx";
  auto handle = open_file(path, O_RDONLY);
  if (!handle) return; // missing: rebuilt on the next open
  auto bytes = file_size(handle->get(), path);
  if (!bytes || *bytes > (uint64_t{1} << 34)) return;
  std::vector<uint8_t> data(static_cast<size_t>(*bytes));
  segment_index stored;
  std::string why;
  if (!read_exact(handle->get(), data.data(), data.size(), 0, path) ||
      !decode_index(data.data(), data.size(), stored, why) || stored.segment_bytes != size)
    return; // unusable or stale: open ignores and rebuilds it
  bool same = stored.first_position == built.first_position && stored.offsets == built.offsets &&
              stored.record_stream == built.record_stream &&
              stored.streams.size() == built.streams.size();
  for (size_t i = 0; same && i < stored.streams.size(); ++i)
    same = stored.streams[i].name == built.streams[i].name &&
           stored.streams[i].first_version == built.streams[i].first_version &&
           stored.streams[i].count == built.streams[i].count;
  if (!same)
    report_.problems.push_back("file " + path +
                               ": the index disagrees with its segment; delete it and it is "
                               "rebuilt on the next writable open");
}

} // namespace

expected<file_journal_stats> file_journal_statistics(const std::string& dir) {
  try {
    auto files = segment_files(dir);
    if (!files) return std::move(files).error();
    file_journal_options options;
    options.read_only = true;
    auto opened = open_file_journal(dir, options);
    if (!opened) return std::move(opened).error();
    journal& j = **opened;
    file_journal_stats stats;
    stats.head_position = stats.events = j.head_position();
    auto streams = j.list_streams();
    if (!streams) return std::move(streams).error();
    stats.streams = streams->size();
    stats.segments = files->size();
    for (auto& file : *files) {
      std::error_code ec;
      auto size = std::filesystem::file_size(file.path, ec);
      if (!ec) stats.bytes += size;
    }
    if (stats.events > 0) {
      auto first = j.read_all(1, 1), last = j.read_all(stats.head_position, 1);
      if (!first) return std::move(first).error();
      if (!last) return std::move(last).error();
      if (!first->empty()) stats.first_timestamp_ns = first->front().timestamp_ns;
      if (!last->empty()) stats.last_timestamp_ns = last->front().timestamp_ns;
    }
    return stats;
  } catch (const std::bad_alloc&) {
    return error{errc::unavailable, "out of memory reading the store in folder " + dir};
  }
}

expected<verify_report> verify_file_journal(const std::string& dir,
                                            std::function<void(uint64_t, uint64_t)> progress) {
  try {
    auto files = segment_files(dir);
    if (!files) return std::move(files).error();
    verify_report report;
    for (auto& file : *files) {
      std::error_code ec;
      auto size = std::filesystem::file_size(file.path, ec);
      if (ec) return error{errc::unavailable, "cannot stat " + file.path + ": " + ec.message()};
      report.bytes += size;
    }
    verifier check(report, std::move(progress), report.bytes);
    for (size_t i = 0; i < files->size(); ++i)
      if (auto r = check.check((*files)[i], i + 1 == files->size()); !r)
        return std::move(r).error();
    report.streams = check.streams();
    return report;
  } catch (const std::bad_alloc&) {
    return error{errc::unavailable, "out of memory verifying the store in folder " + dir};
  }
}

expected<bool> file_journal_locked(const std::string& dir) {
  auto path = detail::join_path(dir, "LOCK");
  int fd;
  do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT) return false; // no store, or one never opened for writing
    return error{errc::unavailable, "cannot open " + path + ": " + std::strerror(errno)};
  }
  detail::file_handle file(fd);
  int rc;
  do rc = ::flock(file.get(), LOCK_SH | LOCK_NB);
  while (rc < 0 && errno == EINTR);
  if (rc == 0) {
    ::flock(file.get(), LOCK_UN);
    return false;
  }
  if (errno == EWOULDBLOCK) return true;
  return error{errc::unavailable, "cannot probe the lock " + path + ": " + std::strerror(errno)};
}

} // namespace cairn
