// bench_support: what the benchmark programs share: their command-line reading,
// medians and percentiles, the process's CPU time and memory, a journal wrapper that
// counts store writes, the disk's own write+fdatasync limit, and the one JSON line
// ("RESULT {...}") through which each program hands its figures to bench/run.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cairn/file_journal.hpp>
#include <cairn/journal_wrapper.hpp>
#include <cairn/memory_journal.hpp>

namespace cairn::bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// `--name value` pairs from the command line. Reading a name marks it used;
/// unused() lists the names nobody asked for, so typos fail loudly.
class arguments {
public:
  arguments(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0 || i + 1 >= argc) {
        bad_.push_back(k);
        continue;
      }
      values_[k.substr(2)] = argv[++i];
    }
  }
  std::string get(const std::string& name, std::string fallback) {
    used_.push_back(name);
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  double get(const std::string& name, double fallback) {
    auto v = get(name, std::string{});
    return v.empty() ? fallback : std::stod(v);
  }
  uint64_t get(const std::string& name, uint64_t fallback) {
    auto v = get(name, std::string{});
    return v.empty() ? fallback : std::stoull(v);
  }
  /// Prints what was not understood and returns false if anything was.
  bool all_used(const char* usage) const {
    auto bad = bad_;
    for (auto& [k, v] : values_)
      if (std::find(used_.begin(), used_.end(), k) == used_.end()) bad.push_back("--" + k);
    for (auto& b : bad) std::fprintf(stderr, "unknown or incomplete option: %s\n", b.c_str());
    if (!bad.empty()) std::fprintf(stderr, "usage: %s\n", usage);
    return bad.empty();
  }

private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
  std::vector<std::string> bad_;
};

/// The median (the upper one for an even count); 0 for no values.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// The index of the run whose `v` value is the median, so a run's other figures
/// can be reported alongside it.
inline size_t median_index(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  return idx.empty() ? 0 : idx[idx.size() / 2];
}

/// The p-quantile (0..1) of `v` by nearest rank; reorders `v`. 0 for no values.
inline int64_t percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  auto idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
  return v[idx];
}

/// CPU seconds (user + system) this process has used so far, all threads.
inline double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

/// The process's peak resident set so far (getrusage ru_maxrss), in bytes.
inline uint64_t peak_rss_bytes() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

/// Runs `part` in a child process, on a heap of its own. `part` writes its figures (one
/// trivially copyable T) to the file descriptor it is given and ends the process with
/// _exit(0) (tearing down what it measured is not what is measured). Returns the
/// figures, or nothing if the child failed; raises `peak_rss` to the child's peak RSS.
template <class T>
std::optional<T> in_child_process(const std::function<void(int)>& part, uint64_t& peak_rss) {
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::close(fds[0]);
    part(fds[1]);
    ::_exit(1); // `part` should not return
  }
  ::close(fds[1]);
  T out{};
  bool got = ::read(fds[0], &out, sizeof out) == static_cast<ssize_t>(sizeof out);
  ::close(fds[0]);
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  peak_rss = std::max(peak_rss, static_cast<uint64_t>(ru.ru_maxrss) * 1024);
  if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

/// The process's resident set now (/proc/self/statm), in bytes; 0 if unreadable.
inline uint64_t current_rss_bytes() {
  unsigned long size = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))
                : 0;
}

/// Counts store writes (append batches) and the events they carried, and the
/// durable writes (fdatasync calls) of a file store.
class counting_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    count(batch);
    return journal_wrapper::append(std::move(batch));
  }
  // Forwarded, so that the target keeps its pipelined group commit.
  std::unique_ptr<pending_append> begin_append(std::vector<append_request> batch) override {
    count(batch);
    return target().begin_append(std::move(batch));
  }
  std::vector<expected<append_result>> finish_append(
    std::unique_ptr<pending_append> pending) override {
    return target().finish_append(std::move(pending));
  }
  void count(const std::vector<append_request>& batch) {
    ++writes;
    for (auto& r : batch) events += r.events.size();
  }
  /// Durable writes so far: the file store's fdatasync calls (pipelined batches may
  /// share one), or, without any (memory store, sync never), append batches.
  uint64_t durable_writes() const {
    auto c = counters_of_file_journal(target());
    return c && c->syncs > 0 ? c->syncs : writes.load();
  }
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> events{0};
};

/// The disk's own limit: write + fdatasync of `bytes`-sized batches in a loop for
/// `seconds`, in a scratch file in `dir`. Returns syncs per second (0 on failure).
inline double disk_syncs_per_s(const std::filesystem::path& dir, size_t bytes, double seconds) {
  auto file = dir / "disk-probe.dat";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 0;
  std::vector<char> buf(std::max<size_t>(bytes, 1), 'x');
  size_t n = 0;
  auto t0 = clock_type::now();
  while (seconds_since(t0) < seconds) {
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) break;
    ::fdatasync(fd);
    ++n;
  }
  auto elapsed = seconds_since(t0);
  ::close(fd);
  std::error_code ec;
  std::filesystem::remove(file, ec);
  return elapsed > 0 ? double(n) / elapsed : 0;
}

/// Prints a program's figures as the one line bench/run collects: "RESULT " + JSON.
/// The store a bench run writes to: "memory", or a file store in `dir` with sync policy
/// `sync`. Exits with a message if the file store cannot be opened.
inline std::shared_ptr<journal> open_bench_store(const std::string& store,
                                                 const std::filesystem::path& dir,
                                                 sync_policy sync) {
  if (store == "memory") return make_memory_journal();
  file_journal_options opts;
  opts.sync = sync;
  auto opened = open_file_journal(dir.string(), opts);
  if (!opened) {
    std::fprintf(stderr, "cannot open the store in %s: %s\n", dir.string().c_str(),
                 opened.error().describe().c_str());
    std::exit(1);
  }
  return *opened;
}

/// The value of the sample `series` (name plus labels, as printed) in Prometheus text;
/// NaN if it is not there.
inline double metric_value(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return std::nan("");
  return std::strtod(text.c_str() + at + 1 + series.size() + 1, nullptr);
}

inline void print_result(const nlohmann::json& figures) {
  std::printf("RESULT %s\n", figures.dump().c_str());
  std::fflush(stdout);
}

} // namespace cairn::bench
