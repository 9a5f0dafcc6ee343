// memory_journal: the in-process event store behind make_memory_journal().
#include "cairn/memory_journal.hpp"

#include <algorithm>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace cairn {
namespace {

/// Every event in position order, in chunks of fixed size: growing allocates one more
/// chunk and never moves what is stored. (One vector doubling under the write lock
/// moved the whole log: with a million events stored, tens of milliseconds in which
/// no command committed, and the store's worst latencies.)
class event_log {
public:
  size_t size() const { return size_; }
  const envelope& operator[](size_t i) const { return chunks_[i / chunk][i % chunk]; }

  /// Makes room for `n` more events, so that the next `n` push_back() cannot throw.
  void reserve_more(size_t n) {
    size_t capacity = chunks_.size() * chunk;
    if (capacity >= size_ + n) return;
    size_t more = (size_ + n - capacity + chunk - 1) / chunk;
    chunks_.reserve(chunks_.size() + more);
    for (size_t i = 0; i < more; ++i) {
      std::vector<envelope> c;
      c.reserve(chunk);
      chunks_.push_back(std::move(c));
    }
  }

  /// After reserve_more(): never throws.
  void push_back(envelope&& e) noexcept {
    chunks_[size_ / chunk].push_back(std::move(e));
    ++size_;
  }

private:
  static constexpr size_t chunk = 4096;
  std::vector<std::vector<envelope>> chunks_;
  size_t size_ = 0;
};

class memory_journal final : public journal {
public:
  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    std::vector<expected<append_result>> results;
    results.reserve(batch.size());
    std::vector<envelope> committed;
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      // One timestamp per batch, never earlier than anything already stored.
      last_timestamp_ = std::max(now_ns(), last_timestamp_);
      for (auto& request : batch) results.push_back(append_locked(request, committed));
    }
    if (!committed.empty()) publish(committed);
    return results;
  }

  expected<std::vector<envelope>> read_stream(const stream_id& stream, uint64_t from_version,
                                              size_t max_count) const override {
    std::vector<envelope> out;
    std::shared_lock<std::shared_mutex> lock(mutex_);
    auto it = streams_.find(stream);
    if (it == streams_.end() || max_count == 0) return out;
    const auto& indices = it->second;
    uint64_t from = std::max<uint64_t>(from_version, 1);
    if (from > indices.size()) return out;
    size_t first = static_cast<size_t>(from - 1);
    size_t count = std::min(max_count, indices.size() - first);
    out.reserve(count);
    for (size_t i = first; i < first + count; ++i) out.push_back(log_[indices[i]]);
    return expected<std::vector<envelope>>(std::move(out));
  }

  expected<std::vector<envelope>> read_all(uint64_t from_position,
                                           size_t max_count) const override {
    std::vector<envelope> out;
    std::shared_lock<std::shared_mutex> lock(mutex_);
    uint64_t from = std::max<uint64_t>(from_position, 1);
    if (max_count == 0 || from > log_.size()) return out;
    size_t first = static_cast<size_t>(from - 1);
    size_t count = std::min(max_count, log_.size() - first);
    out.reserve(count);
    for (size_t i = first; i < first + count; ++i) out.push_back(log_[i]);
    return expected<std::vector<envelope>>(std::move(out));
  }

  expected<uint64_t> stream_version(const stream_id& stream) const override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    auto it = streams_.find(stream);
    return it == streams_.end() ? uint64_t{0} : uint64_t{it->second.size()};
  }

  uint64_t head_position() const override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return log_.size();
  }

  expected<std::vector<stream_id>> list_streams() const override {
    std::vector<stream_id> out;
    std::shared_lock<std::shared_mutex> lock(mutex_);
    out.reserve(streams_.size());
    for (auto& [stream, indices] : streams_)
      if (!indices.empty()) out.push_back(stream);
    return expected<std::vector<stream_id>>(std::move(out));
  }

private:
  /// Checks and stores one request under the write lock; appends what it stored to
  /// `committed`. A request that fails changes nothing.
  expected<append_result> append_locked(append_request& request,
                                        std::vector<envelope>& committed) {
    if (auto valid = request.stream.validate(); !valid) return std::move(valid).error();
    if (request.events.empty())
      return error{errc::invalid_argument,
                   "append to stream " + request.stream.str() + " has no events"};
    if (request.fence.active())
      return error{errc::invalid_argument,
                   "append to stream " + request.stream.str() + " carries a fence (lease " +
                     std::to_string(request.fence.lease) +
                     "), but the memory store keeps no leases: a cluster needs PostgreSQL"};
    for (size_t i = 0; i < request.events.size(); ++i)
      if (request.events[i].type.empty())
        return error{errc::invalid_argument, "event " + std::to_string(i) +
                                               " of the append to stream " +
                                               request.stream.str() + " has no type name"};

    auto it = streams_.find(request.stream);
    uint64_t current = it == streams_.end() ? 0 : it->second.size();
    if (request.expected_version != expected_version::any &&
        request.expected_version != current)
      return error{errc::conflict, "expected version " +
                                     std::to_string(request.expected_version) + ", found " +
                                     std::to_string(current) + " in stream " +
                                     request.stream.str()};

    // Build everything that can throw before touching the store, so that a failure
    // (out of memory) cannot leave half a request behind. An empty index entry left
    // by a throwing reserve() is harmless: it reads as version 0 and is not listed.
    size_t n = request.events.size();
    std::vector<envelope> staged;
    staged.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      auto& event = request.events[i];
      envelope e;
      e.stream = request.stream;
      e.version = current + 1 + i;
      e.position = log_.size() + 1 + i;
      e.type = std::move(event.type);
      e.schema_version = event.schema_version;
      e.timestamp_ns = last_timestamp_;
      e.meta = std::move(event.meta);
      e.payload = std::move(event.payload);
      staged.push_back(std::move(e));
    }
    committed.insert(committed.end(), staged.begin(), staged.end());
    if (it == streams_.end()) it = streams_.try_emplace(request.stream).first;
    auto& indices = it->second;
    // Grow geometrically (an exact reserve here would copy the log on every append).
    if (indices.capacity() < indices.size() + n) indices.reserve(2 * (indices.size() + n));
    log_.reserve_more(n);

    append_result result{current + 1, current + n, log_.size() + 1, log_.size() + n};
    for (auto& e : staged) {
      indices.push_back(log_.size());
      log_.push_back(std::move(e));
    }
    return result;
  }

  mutable std::shared_mutex mutex_;
  event_log log_; ///< every event; log_[i].position == i + 1
  std::unordered_map<stream_id, std::vector<size_t>> streams_; ///< indices into log_
  int64_t last_timestamp_ = 0;
};

} // namespace

std::shared_ptr<journal> make_memory_journal() { return std::make_shared<memory_journal>(); }

} // namespace cairn
