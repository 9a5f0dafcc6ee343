// The file journal's implementation class, shared by its load, append and read sources.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cairn/file_journal.hpp"
#include "cairn/metrics.hpp"
#include "file_io.hpp"
#include "segment_index.hpp"
#include "segment_scan.hpp"

namespace cairn::detail {

/// One segment file as the journal knows it.
struct segment {
  uint64_t first_position = 0;
  std::string path;
  std::shared_ptr<file_handle> file;
  // Guarded by index_lock_ (changed only by the appending or refreshing thread):
  std::vector<uint32_t> offsets; ///< record at position first_position + i starts here
  uint64_t size = 0;             ///< bytes of committed records (header included)
};

using stream_positions = std::vector<uint64_t>; ///< version v is at [v - 1]

/// A contiguous run of records of one segment, copied out of the index so that the
/// file can be read without holding the index lock. Records lie back to back, so its
/// start and end locate every one of them.
struct record_run {
  const segment* seg = nullptr;
  std::shared_ptr<file_handle> file;
  uint64_t first_position = 0;
  size_t count = 0;                ///< records in the run
  uint64_t start = 0;              ///< offset of the run's first record
  uint64_t end = 0;                ///< offset just after the run's last record
  const stream_id* stream = nullptr; ///< when set, records must be this stream's...
  uint64_t first_version = 0;        ///< ...versions first_version, first_version + 1, ...
};

class file_journal_impl final : public journal {
public:
  file_journal_impl(std::string dir, file_journal_options options);
  ~file_journal_impl() override;
  file_journal_impl(const file_journal_impl&) = delete;
  file_journal_impl& operator=(const file_journal_impl&) = delete;

  /// Locks (unless read-only), loads and recovers the folder; starts the flusher.
  expected<void> open();
  /// Read-only: loads what was committed since; returns the head position.
  expected<uint64_t> refresh();
  bool read_only() const { return options_.read_only; }

  std::vector<expected<append_result>> append(std::vector<append_request> batch) override;
  std::unique_ptr<pending_append> begin_append(std::vector<append_request> batch) override;
  std::vector<expected<append_result>> finish_append(
    std::unique_ptr<pending_append> pending) override;
  expected<std::vector<envelope>> read_stream(const stream_id& stream, uint64_t from_version,
                                              size_t max_count) const override;
  expected<std::vector<envelope>> read_all(uint64_t from_position,
                                           size_t max_count) const override;
  expected<uint64_t> stream_version(const stream_id& stream) const override;
  uint64_t head_position() const override;
  expected<std::vector<stream_id>> list_streams() const override;
  const metrics::registry* store_metrics() const override { return &metrics_; }

  /// Segment count and total committed bytes (for file_journal_statistics).
  std::pair<uint64_t, uint64_t> segment_totals() const;
  file_journal_counters counters() const {
    return {batches_counted_.load(), syncs_counted_.load(), bytes_counted_.load()};
  }

private:
  struct staged_batch;
  struct pending_batch;

  // Loading (file_journal_load.cpp).
  expected<void> take_lock();
  void remove_temporary_files(const std::vector<std::string>& names);
  expected<void> load();
  expected<void> add_segment(uint64_t first_position, bool last);
  expected<void> continue_segment(segment& seg, bool sealed);
  expected<void> settle_scan(segment& seg, uint64_t file_size, const scan_result& res,
                             bool sealed);
  bool load_index_file(const segment& seg, uint64_t file_size, segment_index& out);
  expected<void> write_index_file(const segment& seg, const segment_index& index);
  expected<void> check_continuity(const segment& seg, const segment_index& part) const;
  void apply(segment& seg, const segment_index& part);
  void adopt_active(const segment_index& index);
  uint64_t committed_version(std::string_view stream_name) const;
  void log(const std::string& message) const;

  // Appending (file_journal_append.cpp). A batch is staged and written under
  // append_mutex_ (begin_append), then made durable and committed (finish_append),
  // while the next batch may already be written.
  expected<void> write_staged(std::unique_lock<std::mutex>& append_lock, pending_batch& batch);
  expected<void> make_durable(const pending_batch& batch);
  /// fdatasync of what is written to the active segment, sync_lock (on sync_mutex_)
  /// released meanwhile; records the outcome in durable_ or sync_failure_, and after a
  /// failure cuts what was not yet durable (cut_unsynced).
  expected<void> sync_written(std::unique_lock<std::mutex>& sync_lock);
  /// Under sync always, after a failed sync: truncates the active segment to its durable
  /// end and syncs that, so that no batch answered "not stored" comes back on reopen.
  /// Records in unsynced_cut_ whether it worked. No lock held on entry.
  void cut_unsynced() noexcept;
  /// The error for the appenders of a batch that a failed sync did not make durable.
  error sync_failure_for_batch();
  void commit(pending_batch& batch);
  void retire(pending_batch& batch);
  void forget_in_flight(const pending_batch& batch);
  uint64_t pending_version(const stream_positions* stream) const;
  void wait_for_pending_batches();
  expected<void> roll();
  expected<std::unique_ptr<segment>> create_segment(uint64_t first_position);
  void mark_broken(const error& cause);
  void flush_loop();
  bool syncs() const { return options_.sync != sync_policy::never; }

  // Reading (file_journal_read.cpp).
  expected<void> read_run(const record_run& run, std::vector<envelope>& out) const;

  std::string dir_;
  file_journal_options options_;
  file_handle lock_file_;

  mutable rw_lock index_lock_; ///< guards what readers see: the members below
  std::vector<std::unique_ptr<segment>> segments_;
  std::unordered_map<stream_id, stream_positions> streams_;
  std::atomic<uint64_t> head_{0};

  // Owned by the appending (or refreshing) thread.
  std::mutex append_mutex_;
  std::vector<uint32_t> active_record_stream_; ///< per record of the active segment
  std::vector<segment_index::stream_entry> active_streams_;
  std::unordered_map<const stream_positions*, uint32_t> active_slots_;
  int64_t last_timestamp_ = 0;
  std::vector<uint8_t> write_buffer_; ///< reused by append() (no page faults per batch)
  std::optional<error> broken_;
  uint64_t write_end_ = 0;   ///< bytes of the active segment written (committed or pending)
  uint64_t staged_head_ = 0; ///< position of the last record written (committed or pending)

  // Batches written but not yet committed, oldest first, shared by begin_append
  // (which assigns versions after theirs) and finish_append.
  mutable std::mutex flight_mutex_;
  std::condition_variable flight_cv_;
  std::vector<const pending_batch*> pending_batches_; // a few at most

  std::atomic<uint64_t> batches_counted_{0}, syncs_counted_{0}, bytes_counted_{0};
  metrics::registry metrics_;
  metrics::histogram& sync_latency_ = metrics_.add_histogram(
    "cairn_store_fdatasync_seconds",
    "Time the file store's fdatasync of written batches took (group commit).",
    metrics::buckets::latency());

  /// Held around each write to the active segment and around cut_unsynced, so that no
  /// write overlaps the cut (taken after append_mutex_, before sync_mutex_).
  std::mutex file_mutex_;

  // Durability of the active segment, shared with the interval flusher.
  std::mutex sync_mutex_;
  std::condition_variable sync_cv_;
  std::thread flusher_;
  bool stopping_ = false;
  std::shared_ptr<file_handle> sync_file_;
  std::string sync_path_;
  uint64_t written_ = 0; ///< bytes of sync_file_ written
  uint64_t durable_ = 0; ///< bytes of sync_file_ known to be on disk
  std::optional<error> sync_failure_; ///< its message may be empty (out of memory)
  bool unsynced_cut_ = false;         ///< cut_unsynced removed what the failure left
};

} // namespace cairn::detail
