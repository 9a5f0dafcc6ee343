// file_journal: opening a folder: the writer lock, segments, indexes, crash recovery, refresh.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "file_journal_impl.hpp"

namespace cairn::detail {
namespace {

error corrupt(const std::string& path, uint64_t offset, const std::string& what) {
  return error{errc::corrupt, "file " + path + " offset " + std::to_string(offset) + ": " +
                                what + "; the store refuses to open rather than skip events"};
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(),
                                                suffix.data(), suffix.size()) == 0;
}

} // namespace

file_journal_impl::file_journal_impl(std::string dir, file_journal_options options)
    : dir_(std::move(dir)), options_(std::move(options)) {}

void file_journal_impl::log(const std::string& message) const {
  if (options_.log) options_.log(message);
}

uint64_t file_journal_impl::committed_version(std::string_view stream_name) const {
  stream_id id;
  if (!split_stream_name(stream_name, id)) return 0;
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.size();
}

expected<void> file_journal_impl::open() {
  if (options_.read_only) {
    auto names = list_directory(dir_);
    if (!names) {
      if (is_not_found(names.error()))
        return error{errc::not_found, "no Cairn store in folder " + dir_ + ": it does not exist"};
      return std::move(names).error();
    }
    return load();
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return error{errc::unavailable, "cannot create folder " + dir_ + ": " + ec.message()};
  if (auto r = take_lock(); !r) return r;
  auto names = list_directory(dir_);
  if (!names) return std::move(names).error();
  remove_temporary_files(*names);
  if (auto r = load(); !r) return r;
  if (segments_.empty()) {
    auto first = create_segment(1);
    if (!first) return std::move(first).error();
    std::unique_lock<rw_lock> lock(index_lock_);
    segments_.push_back(std::move(*first));
  }
  if (last_timestamp_ == 0 && head_.load() > 0) {
    // The last segment is empty: the newest timestamp is in the one before it.
    auto newest = read_all(head_.load(), 1);
    if (!newest) return std::move(newest).error();
    if (!newest->empty()) last_timestamp_ = newest->front().timestamp_ns;
  }
  segment& active = *segments_.back();
  // Whatever the last segment holds is made durable now, so that every record written
  // from here on may truthfully claim it (see the durable offset in docs/file-format.md).
  if (syncs())
    if (auto r = sync_data(active.file->get(), active.path); !r) return r;
  {
    std::lock_guard<std::mutex> lock(sync_mutex_);
    sync_file_ = active.file;
    sync_path_ = active.path;
    written_ = active.size;
    durable_ = syncs() ? active.size : 0;
    write_end_ = active.size;
  }
  if (options_.sync == sync_policy::interval) flusher_ = std::thread([this] { flush_loop(); });
  return {};
}

expected<void> file_journal_impl::take_lock() {
  std::string path = join_path(dir_, "LOCK");
  auto file = open_file(path, O_RDWR | O_CREAT);
  if (!file) return std::move(file).error();
  int rc;
  do rc = ::flock(file->get(), LOCK_EX | LOCK_NB);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    if (err == EWOULDBLOCK)
      return error{errc::unavailable,
                   "the store in folder " + dir_ +
                     " is already open for writing (its LOCK file is held by another journal "
                     "in this or another process)"};
    return io_error("cannot lock", path, err);
  }
  // The holder's process id, for people wondering who holds the lock.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (truncate_file(file->get(), 0, path))
    (void)write_exact(file->get(), pid.data(), pid.size(), 0, path);
  lock_file_ = std::move(*file);
  return {};
}

void file_journal_impl::remove_temporary_files(const std::vector<std::string>& names) {
  for (auto& name : names) {
    if (name.rfind("segment-", 0) != 0 || !ends_with(name, ".tmp")) continue;
    std::string path = join_path(dir_, name);
    if (::unlink(path.c_str()) == 0) log("removed the unfinished file " + path);
  }
}

expected<void> file_journal_impl::load() {
  auto names = list_directory(dir_);
  if (!names) return std::move(names).error();
  std::vector<uint64_t> firsts;
  for (auto& name : *names) {
    uint64_t first = 0;
    if (parse_segment_file_name(name, first)) firsts.push_back(first);
  }
  std::sort(firsts.begin(), firsts.end());
  size_t begin = 0;
  if (!segments_.empty()) {
    uint64_t known = segments_.back()->first_position;
    auto it = std::lower_bound(firsts.begin(), firsts.end(), known);
    if (it == firsts.end() || *it != known)
      return error{errc::unavailable, "segment " + segments_.back()->path +
                                        " disappeared; reopen the store"};
    begin = static_cast<size_t>(it - firsts.begin());
  }
  for (size_t i = begin; i < firsts.size(); ++i) {
    bool last = i + 1 == firsts.size();
    expected<void> r;
    if (!segments_.empty() && segments_.back()->first_position == firsts[i])
      r = continue_segment(*segments_.back(), !last);
    else
      r = add_segment(firsts[i], last);
    if (!r) return r;
  }
  return {};
}

expected<void> file_journal_impl::add_segment(uint64_t first_position, bool last) {
  auto seg = std::make_unique<segment>();
  seg->first_position = first_position;
  seg->path = join_path(dir_, segment_file_name(first_position));
  bool writable = last && !options_.read_only;
  auto file = open_file(seg->path, writable ? O_RDWR : O_RDONLY);
  if (!file) return std::move(file).error();
  seg->file = std::make_shared<file_handle>(std::move(*file));
  int fd = seg->file->get();
  auto size = file_size(fd, seg->path);
  if (!size) return std::move(size).error();
  uint64_t head = head_.load();
  if (first_position != head + 1)
    return corrupt(seg->path, 0,
                   "the segment starts at position " + std::to_string(first_position) +
                     " but the segments before it end at position " + std::to_string(head));

  uint8_t header[segment_header_size] = {};
  std::string why = "segment header cut short";
  uint64_t header_position = 0;
  bool header_ok = *size >= segment_header_size &&
                   read_exact(fd, header, segment_header_size, 0, seg->path) &&
                   decode_segment_header(header, header_position, why);
  if (!header_ok) {
    if (!last || *size > segment_header_size) return corrupt(seg->path, 0, why);
    // A segment whose creation was interrupted: nothing was ever written to it.
    if (options_.read_only) return {}; // not there yet as far as readers are concerned
    encode_segment_header(header, first_position);
    if (auto r = truncate_file(fd, 0, seg->path); !r) return r;
    if (auto r = write_exact(fd, header, segment_header_size, 0, seg->path); !r) return r;
    if (syncs())
      if (auto r = sync_data(fd, seg->path); !r) return r;
    log("rewrote the header of " + seg->path + " (its creation had been interrupted)");
    *size = segment_header_size;
    header_position = first_position;
  }
  if (header_position != first_position)
    return corrupt(seg->path, 0, "the header names first position " +
                                   std::to_string(header_position));
  seg->size = segment_header_size;

  segment_index index;
  bool indexed = !last && !options_.verify_on_open && load_index_file(*seg, *size, index);
  if (indexed) {
    if (auto ok = check_continuity(*seg, index); !ok) {
      log("index of " + seg->path + " does not fit the segments before it (" +
          ok.error().message() + "); rebuilding it");
      indexed = false;
    }
  }
  if (!indexed) {
    auto res = scan_segment(
      fd, seg->path, *size, segment_header_size, first_position,
      [this](std::string_view name) { return committed_version(name); }, !last);
    if (!res) return std::move(res).error();
    if (auto r = settle_scan(*seg, *size, *res, !last); !r) return r;
    index = std::move(res->index);
    if (auto ok = check_continuity(*seg, index); !ok) return ok;
    // A full check on open also repairs a sealed segment's missing or wrong index.
    bool index_file_ok = false;
    if (!last && !options_.read_only && options_.verify_on_open) {
      segment_index existing;
      index_file_ok = load_index_file(*seg, *size, existing) &&
                      encode_index(existing) == encode_index(index);
    }
    if (!last && !options_.read_only && !index_file_ok) {
      if (auto r = write_index_file(*seg, index); !r)
        log("could not write the index of " + seg->path + ": " + r.error().message());
      else
        log("rebuilt the index of " + seg->path);
    }
  }
  segment& added = *seg;
  {
    std::unique_lock<rw_lock> lock(index_lock_);
    segments_.push_back(std::move(seg));
  }
  apply(added, index);
  if (last && !options_.read_only) adopt_active(index);
  return {};
}

expected<void> file_journal_impl::continue_segment(segment& seg, bool sealed) {
  auto size = file_size(seg.file->get(), seg.path);
  if (!size) return std::move(size).error();
  if (*size < seg.size)
    return error{errc::unavailable, "segment " + seg.path + " shrank from " +
                                      std::to_string(seg.size) + " to " + std::to_string(*size) +
                                      " bytes since it was read; reopen the store"};
  if (*size == seg.size) return {};
  auto res = scan_segment(
    seg.file->get(), seg.path, *size, seg.size, head_.load() + 1,
    [this](std::string_view name) { return committed_version(name); }, sealed);
  if (!res) return std::move(res).error();
  if (auto r = settle_scan(seg, *size, *res, sealed); !r) return r;
  if (auto ok = check_continuity(seg, res->index); !ok) return ok;
  apply(seg, res->index);
  return {};
}

expected<void> file_journal_impl::settle_scan(segment& seg, uint64_t file_size,
                                              const scan_result& res, bool sealed) {
  using verdict = scan_result::verdict;
  if (res.last_timestamp_ns > last_timestamp_) last_timestamp_ = res.last_timestamp_ns;
  if (res.outcome == verdict::clean) return {};
  if (res.outcome == verdict::corrupt || sealed)
    return corrupt(seg.path, res.damage_offset, res.damage);
  if (options_.read_only) return {}; // an append in progress, or a tail the writer will cut
  std::string what = "truncated the torn tail of " + seg.path + " at offset " +
                     std::to_string(res.end) + ", dropping " +
                     std::to_string(file_size - res.end) + " bytes never acknowledged as " +
                     "stored (at offset " + std::to_string(res.damage_offset) + ": " +
                     res.damage + ")";
  if (res.intact_after > 0)
    what += "; " + std::to_string(res.intact_after) +
            " intact records after the damage were dropped with it (unsynced writes)";
  if (auto r = truncate_file(seg.file->get(), res.end, seg.path); !r) return r;
  if (syncs())
    if (auto r = sync_data(seg.file->get(), seg.path); !r) return r;
  log(what);
  return {};
}

bool file_journal_impl::load_index_file(const segment& seg, uint64_t file_size,
                                        segment_index& out) {
  std::string path = join_path(dir_, index_file_name(seg.first_position));
  auto file = open_file(path, O_RDONLY);
  if (!file) {
    if (::access(path.c_str(), F_OK) == 0) log(file.error().message() + "; rebuilding it");
    return false;
  }
  std::string why;
  auto size = detail::file_size(file->get(), path);
  if (!size) {
    why = size.error().message();
  } else if (*size > (uint64_t{1} << 34)) {
    why = "index file is impossibly large";
  } else {
    size_t n = static_cast<size_t>(*size);
    std::unique_ptr<uint8_t[]> bytes(new uint8_t[n]); // no zero-filling: it is read over
    auto r = read_exact(file->get(), bytes.get(), n, 0, path);
    if (!r) why = r.error().message();
    else if (decode_index(bytes.get(), n, out, why)) {
      if (out.first_position != seg.first_position)
        why = "index names another segment";
      else if (out.segment_bytes != file_size)
        why = "index covers " + std::to_string(out.segment_bytes) + " bytes of a segment of " +
              std::to_string(file_size);
      else if (out.records() == 0)
        why = "index of a sealed segment lists no records";
    }
  }
  if (why.empty()) {
    // Spot check: the last record is where the index says, intact, and ends its batch.
    uint64_t offset = out.offsets.back();
    std::vector<uint8_t> last(static_cast<size_t>(file_size - offset));
    record_view view;
    size_t need = 0;
    if (!read_exact(seg.file->get(), last.data(), last.size(), offset, seg.path) ||
        parse_record(last.data(), last.size(), view, need, why) != record_status::ok ||
        view.size != last.size() || !view.commit() ||
        view.position != seg.first_position + out.records() - 1) {
      why = "the segment's last record does not match the index" +
            (why.empty() ? std::string() : " (" + why + ")");
    }
  }
  if (why.empty()) return true;
  log("index " + path + " is unusable (" + why + "); rebuilding it from the segment");
  return false;
}

expected<void> file_journal_impl::write_index_file(const segment& seg,
                                                   const segment_index& index) {
  auto bytes = encode_index(index);
  std::string path = join_path(dir_, index_file_name(seg.first_position));
  std::string temporary = path + ".tmp";
  {
    auto file = open_file(temporary, O_WRONLY | O_CREAT | O_TRUNC);
    if (!file) return std::move(file).error();
    auto r = write_exact(file->get(), bytes.data(), bytes.size(), 0, temporary);
    if (r && syncs()) r = sync_data(file->get(), temporary);
    if (!r) {
      ::unlink(temporary.c_str());
      return r;
    }
  }
  if (::rename(temporary.c_str(), path.c_str()) < 0) {
    int err = errno;
    ::unlink(temporary.c_str());
    return io_error("cannot rename", temporary, err);
  }
  if (syncs()) return sync_directory(dir_);
  return {};
}

expected<void> file_journal_impl::check_continuity(const segment& seg,
                                                   const segment_index& part) const {
  if (part.first_position != head_.load() + 1)
    return corrupt(seg.path, 0, "records start at position " +
                                  std::to_string(part.first_position) + " after position " +
                                  std::to_string(head_.load()));
  for (auto& entry : part.streams) {
    uint64_t have = committed_version(entry.name);
    if (have + 1 != entry.first_version)
      return corrupt(seg.path, 0, "stream " + entry.name + " continues at version " +
                                    std::to_string(entry.first_version) + " after version " +
                                    std::to_string(have));
  }
  return {};
}

void file_journal_impl::apply(segment& seg, const segment_index& part) {
  std::vector<stream_positions*> targets(part.streams.size());
  std::unique_lock<rw_lock> lock(index_lock_);
  for (size_t i = 0; i < part.streams.size(); ++i) {
    stream_id id;
    split_stream_name(part.streams[i].name, id);
    auto& positions = streams_[std::move(id)];
    size_t need = positions.size() + part.streams[i].count;
    if (positions.capacity() < need) positions.reserve(std::max(need, 2 * positions.capacity()));
    targets[i] = &positions;
  }
  if (seg.offsets.empty()) seg.offsets.reserve(part.offsets.size());
  seg.offsets.insert(seg.offsets.end(), part.offsets.begin(), part.offsets.end());
  for (size_t r = 0; r < part.records(); ++r)
    targets[part.record_stream[r]]->push_back(part.first_position + r);
  if (part.segment_bytes > seg.size) seg.size = part.segment_bytes;
  head_.store(head_.load() + part.records());
}

void file_journal_impl::adopt_active(const segment_index& index) {
  active_record_stream_ = index.record_stream;
  active_streams_ = index.streams;
  active_slots_.clear();
  for (size_t i = 0; i < index.streams.size(); ++i) {
    stream_id id;
    split_stream_name(index.streams[i].name, id);
    active_slots_[&streams_.at(id)] = static_cast<uint32_t>(i);
  }
}

expected<uint64_t> file_journal_impl::refresh() {
  std::lock_guard<std::mutex> guard(append_mutex_);
  if (options_.read_only)
    if (auto r = load(); !r) return std::move(r).error();
  return head_.load();
}

std::pair<uint64_t, uint64_t> file_journal_impl::segment_totals() const {
  std::shared_lock<rw_lock> lock(index_lock_);
  uint64_t bytes = 0;
  for (auto& seg : segments_) bytes += seg->size;
  return {segments_.size(), bytes};
}

} // namespace cairn::detail
