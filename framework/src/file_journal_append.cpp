// file_journal: pipelined group commit, segment rolling and failed-write rollback.
// Syncing, and what a failed sync leaves behind, are in file_journal_sync.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "file_journal_impl.hpp"
#include "pointer_index.hpp"

namespace cairn::detail {

/// One append() call's records, serialized into one buffer before anything is written.
struct file_journal_impl::staged_batch {
  struct touched_stream {
    stream_id new_id;                      ///< only for a stream this batch creates
    const stream_id* key = nullptr;        ///< the index's copy of the name, once it exists
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
  pointer_index touched_existing; // by index entry: every touched stream once written
  std::unordered_map<stream_id, size_t> touched_new;
  std::vector<envelope> envelopes;
};

/// A batch begun (written, when `written`) and not yet finished.
struct file_journal_impl::pending_batch final : journal::pending_append {
  staged_batch staged;
  std::vector<expected<append_result>> results;
  bool written = false;
  segment* seg = nullptr;
  uint64_t start = 0;          ///< offset of its first byte in seg
  uint64_t end = 0;            ///< offset just after its last byte
  uint64_t first_position = 0; ///< of its first record
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

std::vector<expected<append_result>> file_journal_impl::append(
  std::vector<append_request> batch) {
  return finish_append(begin_append(std::move(batch)));
}

std::unique_ptr<journal::pending_append> file_journal_impl::begin_append(
  std::vector<append_request> batch) {
  auto pending = std::make_unique<pending_batch>();
  auto& results = pending->results;
  std::unique_lock<std::mutex> guard(append_mutex_);
  if (options_.read_only) {
    results = all_failed(batch.size(), error{errc::unavailable, "the store in folder " + dir_ +
                                                                  " was opened read-only"});
    return pending;
  }
  if (!broken_) {
    std::optional<error> failure;
    {
      std::lock_guard<std::mutex> lock(sync_mutex_);
      failure = sync_failure_;
    }
    if (failure) mark_broken(*failure);
  }
  if (broken_) {
    results = all_failed(batch.size(), *broken_);
    return pending;
  }
  try {
    results.reserve(batch.size());
    staged_batch& staged = pending->staged;
    staged.buffer = std::move(write_buffer_); // keeps its capacity from earlier batches
    staged.buffer.clear();
    staged.records.reserve(batch.size());
    staged.envelopes.reserve(batch.size());
    staged.touched.reserve(batch.size());
    staged.touched_existing.reset(batch.size());
    int64_t timestamp = std::max(now_ns(), last_timestamp_);
    staged_head_ = std::max(staged_head_, head_.load());
    uint64_t next_position = staged_head_ + 1;
    pending->first_position = next_position;
    std::string name; // the stream's name, in one buffer reused for every request
    for (auto& request : batch) {
      const stream_id& stream = request.stream;
      // A stream in the index was valid when it was created.
      auto found = streams_.find(stream);
      if (found == streams_.end())
        if (auto valid = stream.validate(); !valid) {
          results.push_back(std::move(valid).error());
          continue;
        }
      size_t n = request.events.size();
      if (n == 0) {
        results.push_back(invalid("append to stream " + stream.str() + " has no events"));
        continue;
      }
      if (request.fence.active()) {
        results.push_back(invalid("append to stream " + stream.str() + " carries a fence "
                                  "(lease " + std::to_string(request.fence.lease) + "), but the "
                                  "file store keeps no leases: a cluster needs PostgreSQL"));
        continue;
      }
      name.assign(stream.category);
      name += '-';
      name += stream.id;
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
      stream_positions* existing = found == streams_.end() ? nullptr : &found->second;
      size_t touched = staged.touched.size(); // not touched yet
      if (existing) {
        if (auto found_slot = staged.touched_existing.find(existing)) touched = *found_slot;
      } else if (auto it = staged.touched_new.find(stream); it != staged.touched_new.end()) {
        touched = it->second;
      }
      uint64_t current = touched < staged.touched.size() ? staged.touched[touched].version
                         : existing                     ? pending_version(existing)
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
        auto& t = staged.touched.emplace_back();
        if (existing) t.key = &found->first;
        else t.new_id = stream;
        t.positions = existing;
        t.version = current;
        t.first_version = current + 1;
        if (existing) staged.touched_existing.insert(existing, static_cast<uint32_t>(touched));
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
        envelope& e = staged.envelopes.emplace_back(); // built in place: no moves
        if (i + 1 < n) e.stream = stream;
        else e.stream = std::move(request.stream); // its last use
        e.version = current + 1 + i;
        e.position = next_position + i;
        e.type = std::move(event.type);
        e.schema_version = event.schema_version;
        e.timestamp_ns = timestamp;
        e.meta = std::move(event.meta);
        e.payload = std::move(event.payload);
      }
      t.version += n;
      t.added += static_cast<uint32_t>(n);
      results.push_back(append_result{current + 1, current + n, next_position,
                                      next_position + n - 1});
      next_position += n;
    }
    if (staged.records.empty()) {
      write_buffer_ = std::move(staged.buffer);
      return pending;
    }
    auto r = write_staged(guard, *pending);
    if (staged.buffer.capacity() <= max_kept_buffer) write_buffer_ = std::move(staged.buffer);
    staged.buffer = {};
    if (!r) {
      results = all_failed(batch.size(), r.error());
      staged.envelopes.clear();
      return pending;
    }
    last_timestamp_ = timestamp;
  } catch (const std::bad_alloc&) {
    results = all_failed(batch.size(), error{errc::unavailable,
                                             "out of memory while appending; nothing was stored"});
    pending->written = false;
  }
  return pending;
}

std::vector<expected<append_result>> file_journal_impl::finish_append(
  std::unique_ptr<pending_append> base) {
  auto* pending = dynamic_cast<pending_batch*>(base.get());
  if (!pending) return {}; // not begun here: the caller fails the whole batch
  if (!pending->written) return std::move(pending->results);
  expected<void> durable;
  try {
    durable = make_durable(*pending);
  } catch (...) {
    // Whether the sync ran is unknown: treat it as failed. Recording that allocates
    // nothing, and the batch leaves the pending list whatever happens.
    {
      std::lock_guard<std::mutex> lock(sync_mutex_);
      if (!sync_failure_) sync_failure_.emplace(errc::unavailable, std::string{});
    }
    cut_unsynced();
    retire(*pending);
    throw;
  }
  if (!durable) {
    retire(*pending);
    return all_failed(pending->results.size(), sync_failure_for_batch());
  }
  commit(*pending);
  if (auto failed = publish(pending->staged.envelopes); failed > 0) {
    try {
      log(std::to_string(failed) + " listener(s) threw on a committed batch of " +
          std::to_string(pending->staged.envelopes.size()) + " events and missed it");
    } catch (...) {
    }
  }
  return std::move(pending->results);
}

uint64_t file_journal_impl::pending_version(const stream_positions* stream) const {
  std::lock_guard<std::mutex> lock(flight_mutex_);
  for (auto b = pending_batches_.rbegin(); b != pending_batches_.rend(); ++b)
    if (auto slot = (*b)->staged.touched_existing.find(stream))
      return (*b)->staged.touched[*slot].version;
  return stream->size();
}

void file_journal_impl::wait_for_pending_batches() {
  std::unique_lock<std::mutex> lock(flight_mutex_);
  flight_cv_.wait(lock, [this] { return pending_batches_.empty(); });
}

expected<void> file_journal_impl::write_staged(std::unique_lock<std::mutex>& /*append_lock*/,
                                               pending_batch& pending) {
  staged_batch& staged = pending.staged;
  if (write_end_ > segment_header_size &&
      write_end_ + staged.buffer.size() > options_.segment_bytes) {
    // Sealing a segment writes its index, which needs every record committed.
    wait_for_pending_batches();
    {
      std::lock_guard<std::mutex> lock(sync_mutex_);
      if (sync_failure_) {
        mark_broken(*sync_failure_);
        return *broken_;
      }
    }
    if (auto r = roll(); !r) return r;
  }
  segment& seg = *segments_.back();
  size_t n = staged.records.size();
  uint64_t records_after = pending.first_position + n - seg.first_position;

  // Everything that may throw happens before the write, so that a durable batch is
  // always fully indexed. An empty stream entry left behind is harmless (version 0).
  {
    std::unique_lock<rw_lock> lock(index_lock_);
    for (size_t i = 0; i < staged.touched.size(); ++i) {
      auto& t = staged.touched[i];
      if (!t.positions) {
        auto& entry = *streams_.try_emplace(t.new_id).first;
        t.key = &entry.first;
        t.positions = &entry.second;
        staged.touched_existing.insert(t.positions, static_cast<uint32_t>(i));
      }
      if (t.positions->capacity() < t.version) t.positions->reserve(2 * t.version);
    }
    if (seg.offsets.capacity() < records_after) seg.offsets.reserve(2 * records_after);
  }
  {
    std::lock_guard<std::mutex> lock(flight_mutex_);
    pending_batches_.reserve(pending_batches_.size() + 1);
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
      if (added) active_streams_.push_back({t.key->str(), t.first_version, 0});
      t.slot = it->second;
    }
  } catch (...) {
    forget_new_slots();
    throw;
  }

  // From here to the end of the write, a failed sync cannot cut the file (cut_unsynced).
  std::lock_guard<std::mutex> files(file_mutex_);
  uint32_t durable;
  {
    std::lock_guard<std::mutex> lock(sync_mutex_);
    if (sync_failure_) { // since begin_append looked: write nothing more
      forget_new_slots();
      mark_broken(*sync_failure_);
      return *broken_;
    }
    durable = static_cast<uint32_t>(std::min(durable_, write_end_));
  }
  for (size_t i = 0; i < n; ++i)
    finish_record(staged.buffer.data() + staged.records[i].offset, durable, i + 1 == n);

  int fd = seg.file->get();
  if (auto written = write_exact(fd, staged.buffer.data(), staged.buffer.size(), write_end_,
                                 seg.path);
      !written) {
    forget_new_slots();
    // Cut back to the batches before this one (written, perhaps not yet durable).
    if (auto cut = truncate_file(fd, write_end_, seg.path); cut)
      log("append failed and was rolled back: " + written.error().message());
    else
      mark_broken(cut.error());
    return error{errc::unavailable, written.error().message() + "; the batch was not stored"};
  }

  for (auto& r : staged.records) active_record_stream_.push_back(staged.touched[r.stream].slot);
  for (auto& t : staged.touched) active_streams_[t.slot].count += t.added;
  pending.seg = &seg;
  pending.start = write_end_;
  write_end_ += staged.buffer.size();
  pending.end = write_end_;
  staged_head_ = pending.first_position + n - 1;
  pending.written = true;
  batches_counted_.fetch_add(1, std::memory_order_relaxed);
  bytes_counted_.fetch_add(staged.buffer.size(), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(flight_mutex_);
    pending_batches_.push_back(&pending);
  }
  std::lock_guard<std::mutex> lock(sync_mutex_);
  written_ = write_end_;
  return {};
}

expected<void> file_journal_impl::make_durable(const pending_batch& pending) {
  if (options_.sync != sync_policy::always) return {};
  std::unique_lock<std::mutex> lock(sync_mutex_);
  if (sync_failure_) return *sync_failure_;
  if (durable_ >= pending.end) return {}; // an earlier batch's sync covered this one
  return sync_written(lock); // covers later batches written by now, too
}

void file_journal_impl::commit(pending_batch& pending) {
  auto& staged = pending.staged;
  size_t n = staged.records.size();
  {
    std::lock_guard<std::mutex> flight(flight_mutex_);
    {
      std::unique_lock<rw_lock> lock(index_lock_);
      segment& seg = *pending.seg;
      for (size_t i = 0; i < n; ++i) {
        auto& r = staged.records[i];
        seg.offsets.push_back(static_cast<uint32_t>(pending.start + r.offset));
        staged.touched[r.stream].positions->push_back(pending.first_position + i);
      }
      seg.size = pending.end;
      head_.store(pending.first_position + n - 1);
    }
    forget_in_flight(pending);
  }
  flight_cv_.notify_all();
}

void file_journal_impl::retire(pending_batch& pending) {
  {
    std::lock_guard<std::mutex> flight(flight_mutex_);
    forget_in_flight(pending);
  }
  flight_cv_.notify_all();
}

void file_journal_impl::forget_in_flight(const pending_batch& pending) {
  // Batches finish in the order they were begun, so this is the front one.
  auto it = std::find(pending_batches_.begin(), pending_batches_.end(), &pending);
  if (it != pending_batches_.end()) pending_batches_.erase(it);
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
  write_end_ = fresh.size;
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
  try {
    seg->file = std::make_shared<file_handle>(std::move(*file));
  } catch (...) { // else the file would block every later roll (O_EXCL)
    ::unlink(seg->path.c_str());
    throw;
  }
  seg->size = segment_header_size;
  return seg;
}

} // namespace cairn::detail
