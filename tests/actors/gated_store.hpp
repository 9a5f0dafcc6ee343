// Stores whose calls wait at a gate (a latch) until the test opens it: they stand for a
// slow server (PostgreSQL) so tests can check that the node keeps serving meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <string>

#include <cairn/journal_wrapper.hpp>
#include <cairn/snapshot_store.hpp>

namespace cairn::test {

/// Closed until open(): wait() blocks the calling thread meanwhile.
class gate {
public:
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  void wait() const {
    ++waiting;
    std::unique_lock<std::mutex> lock(mutex_);
    opened_.wait(lock, [this] { return open_; });
    --waiting;
  }
  /// Threads waiting at the gate now.
  mutable std::atomic<int> waiting{0};

private:
  mutable std::mutex mutex_;
  mutable std::condition_variable opened_;
  bool open_ = false;
};

/// Which streams a gate holds.
using stream_pred = std::function<bool(const stream_id&)>;

inline stream_pred id_starts_with(std::string prefix) {
  return [prefix](const stream_id& s) { return s.id.rfind(prefix, 0) == 0; };
}
inline stream_pred category_is(std::string category) {
  return [category](const stream_id& s) { return s.category == category; };
}

/// A journal whose read_stream() of the streams `slow` names, and (when gate_read_all
/// is set) every read_all(), wait at `gate`. Says its reads wait on a server.
class gated_journal : public journal_wrapper {
public:
  gated_journal(std::shared_ptr<journal> target, stream_pred slow = id_starts_with("slow"))
    : journal_wrapper(std::move(target)), slow_(std::move(slow)) {}

  test::gate gate;
  std::atomic<bool> gate_read_all{false};

  void release() { gate.open(); }

  expected<std::vector<envelope>> read_stream(const stream_id& stream, uint64_t from,
                                              size_t max) const override {
    if (slow_(stream)) gate.wait();
    return journal_wrapper::read_stream(stream, from, max);
  }
  expected<std::vector<envelope>> read_all(uint64_t from, size_t max) const override {
    if (gate_read_all) gate.wait();
    return journal_wrapper::read_all(from, max);
  }
  bool reads_wait_on_server() const override { return true; }

  /// When set, stream_version() of the streams it names waits at `gate` too.
  stream_pred slow_versions;
  expected<uint64_t> stream_version(const stream_id& stream) const override {
    if (slow_versions && slow_versions(stream)) gate.wait();
    return journal_wrapper::stream_version(stream);
  }

  /// While set, commits are not published to listeners (as if their notices were lost).
  std::atomic<bool> mute_listeners{false};
  subscription subscribe(listener fn) override {
    return journal_wrapper::subscribe([this, fn = std::move(fn)](const std::vector<envelope>& e) {
      if (!mute_listeners) fn(e);
    });
  }

private:
  stream_pred slow_;
};

/// A snapshot store whose loads and saves of the streams `slow` names wait at
/// `load_gate` / `save_gate`. Records the versions saved (in order) and the most saves
/// that ran at once.
class gated_snapshots : public snapshot_store {
public:
  gated_snapshots(std::shared_ptr<snapshot_store> target, stream_pred slow)
    : target_(std::move(target)), slow_(std::move(slow)) {}

  test::gate load_gate;
  test::gate save_gate;
  std::atomic<bool> gate_loads{true};
  std::atomic<bool> gate_saves{true};
  std::atomic<int> max_concurrent_saves{0};

  expected<void> save(const snapshot& s) override {
    if (!slow_(s.stream)) return target_->save(s);
    auto now = ++concurrent_;
    for (auto seen = max_concurrent_saves.load(); now > seen;)
      if (max_concurrent_saves.compare_exchange_weak(seen, now)) break;
    if (gate_saves) save_gate.wait();
    auto ok = target_->save(s);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      saved_.push_back(s.version);
    }
    --concurrent_;
    return ok;
  }
  expected<std::optional<snapshot>> load(const stream_id& stream) const override {
    if (slow_(stream) && gate_loads) load_gate.wait();
    return target_->load(stream);
  }

  std::vector<uint64_t> saved_versions() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return saved_;
  }

private:
  std::shared_ptr<snapshot_store> target_;
  stream_pred slow_;
  std::atomic<int> concurrent_{0};
  mutable std::mutex mutex_;
  std::vector<uint64_t> saved_;
};

/// Runs `commands` (true if all succeeded) while something waits at a gate: true if
/// they all succeeded within 20 s. A node whose only scheduler thread waits at the gate
/// answers nothing: then `unblock` opens the gate so the test ends, and this is false.
template <class F, class Unblock>
bool serves_meanwhile(F commands, Unblock unblock) {
  using namespace std::chrono_literals;
  auto run = std::async(std::launch::async, commands);
  if (run.wait_for(20s) == std::future_status::ready) return run.get();
  unblock();
  run.wait();
  return false;
}

} // namespace cairn::test
