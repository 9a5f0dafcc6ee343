// file_journal: group commit, segment rolling, failed-write rollback and the interval flusher.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "file_journal_impl.hpp"

namespace cairn::detail {

/// One append() call's records, serialized into one buffer before anything is written.
struct file_journal_impl::staged_batch {
  struct touched_stream {
    stream_id id;
    stream_positions* positions = nullptr; ///< null until the stream exists in the index
    uint64_t version = 0;                  ///< including this batch's earlier requests
    uint64_t first_version = 0;            ///< of its first record in this batch
    uint32_t added = 0;                    ///< its records in this batch
    uint32_t slot = 0;                     ///< in active_streams_
  };
  struct record {
    size_t offset; ///< in buffer
    size_t stream; ///< index into touched
  };
  std::vector<uint8_t> buffer;
  std::vector<record> records;
  std::vector<touched_stream> touched;
  // Index into touched: by the index entry for streams that exist (a cheap pointer
  // hash), by name only for streams this batch creates.
  std::unordered_map<const stream_positions*, size_t> touched_existing;
  std::unordered_map<stream_id, size_t> touched_new;
  std::vector<envelope> envelopes;
};

namespace {

/// Larger write buffers are given back after their batch instead of kept for the next.
constexpr size_t max_kept_buffer = size_t{16} << 20;
constexpr uint32_t no_slot = UINT32_MAX;

error invalid(std::string message) { return error{errc::invalid_argument, std::move(message)}; }

std::vector<expected<append_result>> all_failed(size_t n, const error& e) {
  return std::vector<expected<append_result>>(n, e);
}

} // namespace

file_journal_impl::~file_journal_impl() {
  {
    std::lock_guard<std::mutex> lock(sync_mutex_);
    stopping_ = true;
  }
  sync_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (options_.sync == sync_policy::interval && sync_file_ && written_ > durable_ &&
      !sync_failure_ && !broken_) {
    if (auto r = sync_data(sync_file_->get(), sync_path_); !r)
      log("final sync failed: " + r.error().message());
  }
}

std::vector<expected<append_result>> file_journal_impl::append(
  std::vector<append_request> batch) {
  std::vector<expected<append_result>> results;
  std::vector<envelope> committed;
  {
    std::lock_guard<std::mutex> guard(append_mutex_);
    if (options_.read_only)
      return all_failed(batch.size(), error{errc::unavailable, "the store in folder " + dir_ +
                                                                 " was opened read-only"});
    if (!broken_) {
      std::optional<error> failure;
      {
        std::lock_guard<std::mutex> lock(sync_mutex_);
        failure = sync_failure_;
      }
      if (failure) mark_broken(*failure);
    }
    if (broken_) return all_failed(batch.size(), *broken_);
    try {
      results.reserve(batch.size());
      staged_batch staged;
      staged.buffer = std::move(write_buffer_); // keeps its capacity from earlier batches
      staged.buffer.clear();
      staged.records.reserve(batch.size());
      staged.envelopes.reserve(batch.size());
      staged.touched.reserve(batch.size());
      staged.touched_existing.reserve(batch.size());
      int64_t timestamp = std::max(now_ns(), last_timestamp_);
      uint64_t next_position = head_.load() + 1;
      for (auto& request : batch) {
        const stream_id& stream = request.stream;
        if (auto valid = stream.validate(); !valid) {
          results.push_back(std::move(valid).error());
          continue;
        }
        size_t n = request.events.size();
        if (n == 0) {
          results.push_back(invalid("append to stream " + stream.str() + " has no events"));
          continue;
        }
        std::string name = stream.str();
        uint64_t bytes = 0;
        std::optional<error> problem;
        for (size_t i = 0; i < n && !problem; ++i) {
          auto& event = request.events[i];
          uint64_t size = record_size(name.size(), event);
          if (event.type.empty())
            problem = invalid("event " + std::to_string(i) + " of the append to stream " + name +
                              " has no type name");
          else if (size > max_record_bytes || event.payload.size() > max_record_bytes)
            problem = invalid("event " + std::to_string(i) + " of the append to stream " + name +
                              " takes " + std::to_string(size) +
                              " bytes; the file journal stores events of up to 64 MiB");
          bytes += size;
        }
        if (problem) {
          results.push_back(std::move(*problem));
          continue;
        }
        auto found = streams_.find(stream);
        stream_positions* existing = found == streams_.end() ? nullptr : &found->second;
        size_t touched = staged.touched.size(); // not touched yet
        if (existing) {
          if (auto it = staged.touched_existing.find(existing); it != staged.touched_existing.end())
            touched = it->second;
        } else if (auto it = staged.touched_new.find(stream); it != staged.touched_new.end()) {
          touched = it->second;
        }
        uint64_t current = touched < staged.touched.size() ? staged.touched[touched].version
                           : existing                     ? existing->size()
                                                          : 0;
        if (request.expected_version != expected_version::any &&
            request.expected_version != current) {
          results.push_back(error{errc::conflict,
                                  "expected version " + std::to_string(request.expected_version) +
                                    ", found " + std::to_string(current) + " in stream " + name});
          continue;
        }
        if (staged.buffer.size() + bytes > max_batch_bytes) {
          results.push_back(invalid("the append to stream " + name + " would grow the batch " +
                                    "past 1 GiB; append it in a smaller batch"));
          continue;
        }
        if (touched == staged.touched.size()) {
          staged_batch::touched_stream t;
          t.id = stream;
          t.positions = existing;
          t.version = current;
          t.first_version = current + 1;
          staged.touched.push_back(std::move(t));
          if (existing) staged.touched_existing.emplace(existing, touched);
          else staged.touched_new.emplace(stream, touched);
        }
        auto& t = staged.touched[touched];
        size_t at = staged.buffer.size();
        staged.buffer.resize(at + static_cast<size_t>(bytes));
        for (size_t i = 0; i < n; ++i) {
          auto& event = request.events[i];
          encode_record(staged.buffer.data() + at, name, next_position + i, current + 1 + i,
                        timestamp, event);
          staged.records.push_back({at, touched});
          at += static_cast<size_t>(record_size(name.size(), event));
          envelope e;
          e.stream = stream;
          e.version = current + 1 + i;
          e.position = next_position + i;
          e.type = std::move(event.type);
          e.schema_version = event.schema_version;
          e.timestamp_ns = timestamp;
          e.meta = std::move(event.meta);
          e.payload = std::move(event.payload);
          staged.envelopes.push_back(std::move(e));
        }
        t.version += n;
        t.added += static_cast<uint32_t>(n);
        results.push_back(append_result{current + 1, current + n, next_position,
                                        next_position + n - 1});
        next_position += n;
      }
      if (staged.records.empty()) {
        write_buffer_ = std::move(staged.buffer);
        return results;
      }
      auto r = commit(staged);
      if (staged.buffer.capacity() <= max_kept_buffer) write_buffer_ = std::move(staged.buffer);
      if (!r) return all_failed(batch.size(), r.error());
      last_timestamp_ = timestamp;
      committed = std::move(staged.envelopes);
    } catch (const std::bad_alloc&) {
      return all_failed(batch.size(), error{errc::unavailable,
                                            "out of memory while appending; nothing was stored"});
    }
  }
  publish(committed);
  return results;
}

expected<void> file_journal_impl::commit(staged_batch& staged) {
  if (!segments_.back()->offsets.empty() &&
      segments_.back()->size + staged.buffer.size() > options_.segment_bytes) {
    if (auto r = roll(); !r) return r;
  }
  segment& seg = *segments_.back();
  size_t n = staged.records.size();

  // Everything that may throw happens before the write, so that a durable batch is
  // always fully indexed. An empty stream entry left behind is harmless (version 0).
  {
    std::unique_lock<rw_lock> lock(index_lock_);
    for (auto& t : staged.touched) {
      if (!t.positions) t.positions = &streams_[t.id];
      if (t.positions->capacity() < t.positions->size() + t.added)
        t.positions->reserve(2 * (t.positions->size() + t.added));
    }
    if (seg.offsets.capacity() < seg.offsets.size() + n)
      seg.offsets.reserve(2 * (seg.offsets.size() + n));
  }
  if (active_record_stream_.capacity() < active_record_stream_.size() + n)
    active_record_stream_.reserve(2 * (active_record_stream_.size() + n));
  size_t slots_before = active_streams_.size();
  for (auto& t : staged.touched) t.slot = no_slot;
  auto forget_new_slots = [&] {
    for (auto& t : staged.touched)
      if (t.slot != no_slot && t.slot >= slots_before) active_slots_.erase(t.positions);
    active_streams_.resize(slots_before);
  };
  try {
    for (auto& t : staged.touched) {
      auto [it, added] = active_slots_.try_emplace(t.positions, active_streams_.size());
      if (added) active_streams_.push_back({t.id.str(), t.first_version, 0});
      t.slot = it->second;
    }
  } catch (...) {
    forget_new_slots();
    throw;
  }

  uint32_t durable;
  {
    std::lock_guard<std::mutex> lock(sync_mutex_);
    durable = static_cast<uint32_t>(std::min(durable_, seg.size));
  }
  for (size_t i = 0; i < n; ++i)
    finish_record(staged.buffer.data() + staged.records[i].offset, durable, i + 1 == n);

  int fd = seg.file->get();
  auto written = write_exact(fd, staged.buffer.data(), staged.buffer.size(), seg.size, seg.path);
  auto synced = written && options_.sync == sync_policy::always ? sync_data(fd, seg.path)
                                                                 : expected<void>{};
  if (!written || !synced) {
    forget_new_slots();
    error cause = !written ? written.error() : synced.error();
    auto cut = truncate_file(fd, seg.size, seg.path);
    // After a failed fdatasync the kernel may have dropped the dirty pages: what is
    // on disk is unknown, so the store stops rather than build on it.
    if (!written && cut) {
      log("append failed and was rolled back: " + cause.message());
    } else {
      mark_broken(!cut ? cut.error() : cause);
    }
    return error{errc::unavailable, cause.message() + "; the batch was not stored"};
  }

  {
    std::unique_lock<rw_lock> lock(index_lock_);
    uint64_t first_position = head_.load() + 1;
    for (size_t i = 0; i < n; ++i) {
      auto& r = staged.records[i];
      seg.offsets.push_back(static_cast<uint32_t>(seg.size + r.offset));
      staged.touched[r.stream].positions->push_back(first_position + i);
    }
    seg.size += staged.buffer.size();
    head_.store(first_position + n - 1);
  }
  for (auto& r : staged.records) active_record_stream_.push_back(staged.touched[r.stream].slot);
  for (auto& t : staged.touched) active_streams_[t.slot].count += t.added;
  std::lock_guard<std::mutex> lock(sync_mutex_);
  written_ = seg.size;
  if (options_.sync == sync_policy::always) durable_ = seg.size;
  return {};
}

expected<void> file_journal_impl::roll() {
  segment& old = *segments_.back();
  if (options_.sync == sync_policy::interval) {
    // A sealed segment is always durable, whatever the flusher has done so far.
    if (auto r = sync_data(old.file->get(), old.path); !r) {
      mark_broken(r.error());
      return r;
    }
  }
  segment_index index;
  index.first_position = old.first_position;
  index.segment_bytes = old.size;
  index.offsets = old.offsets;
  index.record_stream = active_record_stream_;
  index.streams = active_streams_;
  {
    std::unique_lock<rw_lock> lock(index_lock_);
    segments_.reserve(segments_.size() + 1);
  }
  auto created = create_segment(head_.load() + 1);
  if (!created) return std::move(created).error();
  try {
    if (auto r = write_index_file(old, index); !r)
      log("could not write the index of " + old.path + " (it is rebuilt on the next open): " +
          r.error().message());
  } catch (const std::bad_alloc&) {
    log("out of memory writing the index of " + old.path + " (it is rebuilt on the next open)");
  }
  segment& fresh = **created;
  {
    std::unique_lock<rw_lock> lock(index_lock_);
    segments_.push_back(std::move(*created));
  }
  active_record_stream_.clear();
  active_streams_.clear();
  active_slots_.clear();
  std::lock_guard<std::mutex> lock(sync_mutex_);
  sync_file_ = fresh.file;
  sync_path_ = fresh.path;
  written_ = fresh.size;
  durable_ = syncs() ? fresh.size : 0;
  return {};
}

expected<std::unique_ptr<segment>> file_journal_impl::create_segment(uint64_t first_position) {
  auto seg = std::make_unique<segment>();
  seg->first_position = first_position;
  seg->path = join_path(dir_, segment_file_name(first_position));
  auto file = open_file(seg->path, O_RDWR | O_CREAT | O_EXCL);
  if (!file) return std::move(file).error();
  uint8_t header[segment_header_size];
  encode_segment_header(header, first_position);
  auto r = write_exact(file->get(), header, segment_header_size, 0, seg->path);
  if (r && syncs()) r = sync_data(file->get(), seg->path);
  if (r && syncs()) r = sync_directory(dir_);
  if (!r) {
    ::unlink(seg->path.c_str());
    return std::move(r).error();
  }
  seg->file = std::make_shared<file_handle>(std::move(*file));
  seg->size = segment_header_size;
  return seg;
}

void file_journal_impl::mark_broken(const error& cause) {
  broken_ = error{errc::unavailable, "the store in folder " + dir_ +
                                       " stopped accepting appends after an I/O failure (" +
                                       cause.message() + "); reopen it to recover"};
  log(broken_->message());
}

void file_journal_impl::flush_loop() {
  std::unique_lock<std::mutex> lock(sync_mutex_);
  while (!stopping_) {
    sync_cv_.wait_for(lock, options_.sync_interval, [this] { return stopping_; });
    if (stopping_ || sync_failure_ || !sync_file_ || written_ <= durable_) continue;
    auto file = sync_file_;
    std::string path = sync_path_;
    uint64_t target = written_;
    lock.unlock();
    auto r = sync_data(file->get(), path);
    lock.lock();
    if (!r) sync_failure_ = r.error();
    else if (file == sync_file_ && target > durable_) durable_ = target;
  }
}

} // namespace cairn::detail
