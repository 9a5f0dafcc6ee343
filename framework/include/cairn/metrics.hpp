// metrics: counters, gauges and histograms cheap enough for the command path, a
// registry that owns them, and their rendering as Prometheus text (format 0.0.4).
// Updates are relaxed atomic adds on per-thread shards (no lock, no shared cache
// line between threads); reading sums the shards, at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::metrics {

/// Shards per metric: threads spread over them round robin, so a few busy threads
/// (the scheduler's, the journal's) each update a cache line of their own.
inline constexpr size_t shard_count = 8;

/// The calling thread's shard (fixed per thread).
size_t this_thread_shard() noexcept;

/// Label name/value pairs, e.g. {{"category", "account"}}.
using labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing count.
class counter {
public:
  void add(uint64_t n = 1) noexcept {
    shards_[this_thread_shard()].value.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value() const noexcept;

private:
  struct alignas(64) shard {
    std::atomic<uint64_t> value{0};
  };
  std::array<shard, shard_count> shards_;
};

/// A value that goes up and down (set by one owner, or moved by add()).
class gauge {
public:
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<int64_t> value_{0};
};

/// Fixed log-scale buckets: bucket i counts observations <= 2^(first_exponent + i),
/// for i < count; a last bucket takes the rest (+Inf). Observations are integers
/// (nanoseconds, events); `unit` scales them for display (1e-9: nanoseconds shown as
/// seconds, as Prometheus names them).
struct buckets {
  unsigned first_exponent = 0;
  unsigned count = 17;
  double unit = 1;

  /// 1.024 us to about 17 s, observed in nanoseconds, shown in seconds.
  static buckets latency() { return {10, 25, 1e-9}; }
  /// 1 to 65,536 (events, appends).
  static buckets sizes() { return {0, 17, 1}; }
};

class histogram {
public:
  static constexpr unsigned max_buckets = 40;

  explicit histogram(buckets b = buckets::sizes());

  void observe(uint64_t v) noexcept {
    auto& s = shards_[this_thread_shard()];
    s.counts[index_of(v)].fetch_add(1, std::memory_order_relaxed);
    s.sum.fetch_add(v, std::memory_order_relaxed);
  }

  /// Which bucket `v` falls in (layout().count for +Inf).
  unsigned index_of(uint64_t v) const noexcept {
    // ceil(log2(v)): the smallest e with v <= 2^e (0 for v <= 1).
    unsigned e = v <= 1 ? 0u : 64u - static_cast<unsigned>(__builtin_clzll(v - 1));
    if (e <= buckets_.first_exponent) return 0;
    unsigned i = e - buckets_.first_exponent;
    return i < buckets_.count ? i : buckets_.count;
  }

  const buckets& layout() const { return buckets_; }

  struct snapshot {
    std::vector<uint64_t> counts; ///< per bucket (not cumulative), +Inf last
    uint64_t count = 0;
    uint64_t sum = 0; ///< in observed units
  };
  snapshot read() const;

private:
  struct alignas(64) shard {
    std::array<std::atomic<uint64_t>, max_buckets + 1> counts{};
    std::atomic<uint64_t> sum{0};
  };
  buckets buckets_;
  std::unique_ptr<shard[]> shards_;
};

enum class kind { counter, gauge, histogram };

/// Writes Prometheus text exposition format 0.0.4: one family (# HELP, # TYPE)
/// followed by its samples. Escapes help texts and label values as the format says.
class text_writer {
public:
  /// Starts family `name` (e.g. "cairn_commands_total").
  void family(std::string_view name, std::string_view help, kind k);
  /// A counter or gauge sample of the current family.
  void sample(const labels& l, double value);
  /// A histogram's _bucket, _sum and _count samples, for the current family.
  void sample(const labels& l, const histogram::snapshot& s, const buckets& b);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

private:
  void line(std::string_view suffix, const labels& l, const std::pair<std::string, std::string>* extra,
            double value);
  std::string out_;
  std::string name_;
};

/// Owns a set of metrics; hands out references that stay valid as long as it lives.
/// Adding takes a lock (do it at set-up, not per event); updating takes none.
/// Adding the same name and labels again returns the existing metric.
class registry {
public:
  counter& add_counter(std::string name, std::string help, labels l = {});
  gauge& add_gauge(std::string name, std::string help, labels l = {});
  histogram& add_histogram(std::string name, std::string help, buckets b, labels l = {});

  /// Renders every metric, one family per name in the order first added.
  void render(text_writer& out) const;
  std::string render() const;

private:
  struct entry {
    labels l;
    std::unique_ptr<counter> c;
    std::unique_ptr<gauge> g;
    std::unique_ptr<histogram> h;
  };
  struct family {
    std::string name, help;
    kind k;
    std::deque<entry> entries;
  };
  entry& find_or_add(std::string name, std::string help, kind k, labels l, bool& added);

  mutable std::mutex mutex_;
  std::deque<family> families_;
};

} // namespace cairn::metrics
