// POSIX file helpers for the file journal, and a writer-preferring reader/writer lock.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/expected.hpp"

namespace cairn::detail {

/// Text for an errno value ("No space left on device").
std::string errno_text(int err);

/// An `unavailable` error: "<what> <path>: <errno text>".
error io_error(const std::string& what, const std::string& path, int err);

/// An owned file descriptor, closed on destruction.
class file_handle {
public:
  file_handle() = default;
  explicit file_handle(int fd) : fd_(fd) {}
  ~file_handle();
  file_handle(file_handle&& other) noexcept : fd_(other.release()) {}
  file_handle& operator=(file_handle&& other) noexcept;
  file_handle(const file_handle&) = delete;
  file_handle& operator=(const file_handle&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

private:
  int fd_ = -1;
};

/// open(2) with O_CLOEXEC; errors name `path`.
expected<file_handle> open_file(const std::string& path, int flags, unsigned mode = 0644);

/// Reads exactly `size` bytes at `offset` (retrying short reads and EINTR). A read
/// that hits the end of the file first is an error (errno 0: "unexpected end of file").
expected<void> read_exact(int fd, void* data, size_t size, uint64_t offset,
                          const std::string& path);

/// Writes all `size` bytes at `offset` (retrying short writes and EINTR).
expected<void> write_exact(int fd, const void* data, size_t size, uint64_t offset,
                           const std::string& path);

/// fdatasync(2), retried on EINTR.
expected<void> sync_data(int fd, const std::string& path);

/// Fault injection for tests: the next `count` sync_data calls fail with `err` and
/// sync nothing, as a disk that lost the written pages would.
void fail_next_syncs_for_tests(int count, int err);

/// fsync(2) on the directory itself, so created, renamed or removed names are durable.
expected<void> sync_directory(const std::string& dir);

/// The size of the open file.
expected<uint64_t> file_size(int fd, const std::string& path);

/// ftruncate(2), retried on EINTR.
expected<void> truncate_file(int fd, uint64_t size, const std::string& path);

/// Names of the entries of `dir` (no "." or ".."). not_found if `dir` does not exist.
expected<std::vector<std::string>> list_directory(const std::string& dir);

/// `dir` + "/" + `name`.
std::string join_path(const std::string& dir, const std::string& name);

/// A reader/writer lock that lets a waiting writer in before new readers (glibc's
/// default rwlock, behind std::shared_mutex, prefers readers, so a stream of readers
/// could starve the appending thread). Not recursive: never take it twice on a thread.
/// Meets the Lockable and SharedLockable requirements.
class rw_lock {
public:
  rw_lock();
  ~rw_lock();
  rw_lock(const rw_lock&) = delete;
  rw_lock& operator=(const rw_lock&) = delete;

  void lock() noexcept;
  void unlock() noexcept;
  void lock_shared() noexcept;
  void unlock_shared() noexcept;

private:
  pthread_rwlock_t lock_;
};

} // namespace cairn::detail
