// file_journal: making written batches durable (fdatasync), cutting off what a failed
// sync leaves behind, the interval flusher, and the store's stop after an I/O failure.
#include <chrono>
#include <string>

#include "file_journal_impl.hpp"

namespace cairn::detail {

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

error file_journal_impl::sync_failure_for_batch() {
  std::string cause;
  bool cut;
  {
    std::lock_guard<std::mutex> lock(sync_mutex_);
    cause = sync_failure_ && !sync_failure_->message().empty() ? sync_failure_->message()
                                                               : "the sync failed";
    cut = unsynced_cut_;
  }
  if (cut) return error{errc::unavailable, cause + "; the batch was not stored"};
  return error{errc::unavailable,
               cause + "; the batch may or may not be on disk (it could not be cut off): " +
                 "reopen the store and read the stream to know"};
}

expected<void> file_journal_impl::sync_written(std::unique_lock<std::mutex>& sync_lock) {
  auto file = sync_file_;
  std::string path = sync_path_;
  uint64_t target = written_;
  sync_lock.unlock();
  auto began = std::chrono::steady_clock::now();
  auto r = sync_data(file->get(), path);
  sync_latency_.observe(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                std::chrono::steady_clock::now() - began)
                                                .count()));
  syncs_counted_.fetch_add(1, std::memory_order_relaxed);
  sync_lock.lock();
  if (r) {
    if (file == sync_file_ && target > durable_) durable_ = target;
    return r;
  }
  // After a failed fdatasync the kernel may have dropped the dirty pages: what is on
  // disk past the durable end is unknown, so the store stops (the next append marks it
  // broken) and, under sync always, cuts that part off.
  sync_failure_ = r.error();
  sync_lock.unlock();
  cut_unsynced();
  sync_lock.lock();
  return r;
}

void file_journal_impl::cut_unsynced() noexcept {
  if (options_.sync != sync_policy::always) return; // interval: acknowledged, kept
  std::lock_guard<std::mutex> files(file_mutex_);   // no write is under way, none starts
  std::lock_guard<std::mutex> lock(sync_mutex_);
  if (!sync_file_ || unsynced_cut_) return;
  // Nothing past durable_ was acknowledged: every batch there fails with this sync.
  try {
    auto cut = truncate_file(sync_file_->get(), durable_, sync_path_);
    if (cut) cut = sync_data(sync_file_->get(), sync_path_);
    if (cut) {
      unsynced_cut_ = true;
      written_ = durable_;
      log("a sync failed; the store cut " + sync_path_ + " back to its durable " +
          std::to_string(durable_) + " bytes and stopped accepting appends");
    } else {
      log("a sync failed, and cutting off what it left failed too: " + cut.error().message());
    }
  } catch (...) {
    // Out of memory for a message: unsynced_cut_ stays false, the answer says "unknown".
  }
}

void file_journal_impl::mark_broken(const error& cause) {
  broken_ = error{errc::unavailable,
                  "the store in folder " + dir_ +
                    " stopped accepting appends after an I/O failure (" +
                    (cause.message().empty() ? "a sync failed" : cause.message()) +
                    "); reopen it to recover"};
  log(broken_->message());
}

void file_journal_impl::flush_loop() {
  std::unique_lock<std::mutex> lock(sync_mutex_);
  while (!stopping_) {
    sync_cv_.wait_for(lock, options_.sync_interval, [this] { return stopping_; });
    if (stopping_ || sync_failure_ || !sync_file_ || written_ <= durable_) continue;
    (void)sync_written(lock);
  }
}

} // namespace cairn::detail
