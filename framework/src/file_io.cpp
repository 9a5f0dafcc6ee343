// POSIX file helpers for the file journal (see file_io.hpp).
#include "file_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace cairn::detail {

namespace {
// The GNU strerror_r returns a pointer (maybe to a static string); the XSI one an int.
[[maybe_unused]] std::string strerror_result(const char* result, const char*) { return result; }
[[maybe_unused]] std::string strerror_result(int result, const char* buffer) {
  return result == 0 ? std::string(buffer) : std::string("unknown error");
}
} // namespace

std::string errno_text(int err) {
  if (err == 0) return "unexpected end of file";
  char buffer[256] = {};
  return strerror_result(strerror_r(err, buffer, sizeof buffer), buffer);
}

error io_error(const std::string& what, const std::string& path, int err) {
  return error{errc::unavailable, what + " " + path + ": " + errno_text(err)};
}

file_handle::~file_handle() {
  if (fd_ >= 0) ::close(fd_);
}

file_handle& file_handle::operator=(file_handle&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

expected<file_handle> open_file(const std::string& path, int flags, unsigned mode) {
  int fd;
  do fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return io_error("cannot open", path, errno);
  return file_handle(fd);
}

expected<void> read_exact(int fd, void* data, size_t size, uint64_t offset,
                          const std::string& path) {
  auto* p = static_cast<uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return io_error("cannot read", path, n < 0 ? errno : 0);
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

expected<void> write_exact(int fd, const void* data, size_t size, uint64_t offset,
                           const std::string& path) {
  auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot write", path, errno);
    if (n == 0) return io_error("cannot write", path, EIO);
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

namespace {
std::atomic<int> syncs_to_fail{0};
std::atomic<int> sync_failure_errno{0};
} // namespace

void fail_next_syncs_for_tests(int count, int err) {
  sync_failure_errno.store(err);
  syncs_to_fail.store(count);
}

expected<void> sync_data(int fd, const std::string& path) {
  for (int left = syncs_to_fail.load(std::memory_order_relaxed); left > 0;)
    if (syncs_to_fail.compare_exchange_weak(left, left - 1))
      return io_error("cannot fdatasync", path, sync_failure_errno.load());
  int rc;
  do rc = ::fdatasync(fd);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return io_error("cannot fdatasync", path, errno);
  return {};
}

expected<void> sync_directory(const std::string& dir) {
  auto handle = open_file(dir, O_RDONLY | O_DIRECTORY);
  if (!handle) return std::move(handle).error();
  int rc;
  do rc = ::fsync(handle->get());
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return io_error("cannot fsync directory", dir, errno);
  return {};
}

expected<uint64_t> file_size(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) < 0) return io_error("cannot stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

expected<void> truncate_file(int fd, uint64_t size, const std::string& path) {
  int rc;
  do rc = ::ftruncate(fd, static_cast<off_t>(size));
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return io_error("cannot truncate", path, errno);
  return {};
}

expected<std::vector<std::string>> list_directory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    int err = errno;
    if (err == ENOENT) return error{errc::not_found, "no such folder: " + dir};
    return io_error("cannot list", dir, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return io_error("cannot list", dir, err);
  return names;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

rw_lock::rw_lock() {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
  pthread_rwlock_init(&lock_, &attr);
  pthread_rwlockattr_destroy(&attr);
}

rw_lock::~rw_lock() { pthread_rwlock_destroy(&lock_); }
void rw_lock::lock() noexcept { pthread_rwlock_wrlock(&lock_); }
void rw_lock::unlock() noexcept { pthread_rwlock_unlock(&lock_); }
void rw_lock::lock_shared() noexcept { pthread_rwlock_rdlock(&lock_); }
void rw_lock::unlock_shared() noexcept { pthread_rwlock_unlock(&lock_); }

} // namespace cairn::detail
