// Helpers for the event feed, projection and event subscription tests: waiting for
// replies, gating a projection, recording projections, filling a store directly.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <cairn/journal.hpp>
#include <cairn/node.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"

namespace cairn::feed_test {

/// Counts events signalled from other threads and waits for a number of them.
class counter {
public:
  void add(size_t n = 1) {
    std::lock_guard<std::mutex> g{m_};
    n_ += n;
    cv_.notify_all();
  }
  bool wait_for(size_t n, std::chrono::seconds limit = std::chrono::seconds{60}) {
    std::unique_lock<std::mutex> g{m_};
    return cv_.wait_for(g, limit, [&] { return n_ >= n; });
  }
  size_t count() {
    std::lock_guard<std::mutex> g{m_};
    return n_;
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  size_t n_ = 0;
};

/// Holds whoever calls pass() until open() (idempotent). Opens on destruction, so a
/// failing test never leaves an actor blocked.
class gate {
public:
  ~gate() { open(); }
  void pass() {
    std::unique_lock<std::mutex> g{m_};
    ++waiting_;
    cv_.notify_all();
    cv_.wait(g, [&] { return open_; });
  }
  void open() {
    std::lock_guard<std::mutex> g{m_};
    open_ = true;
    cv_.notify_all();
  }
  /// Waits until someone is held at the gate.
  bool wait_for_arrival(std::chrono::seconds limit = std::chrono::seconds{30}) {
    std::unique_lock<std::mutex> g{m_};
    return cv_.wait_for(g, limit, [&] { return waiting_ > 0; });
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

/// A projection that records the position of every account event it applies.
template <class Tag>
struct positions_of {
  static constexpr std::string_view name = Tag::name;
  using event_type = bank::account::event_type;
  std::vector<uint64_t> positions;
  template <class E>
  void apply(const envelope& e, const E&) {
    positions.push_back(e.position);
  }
};

/// 1, 2, ..., n.
inline std::vector<uint64_t> one_to(uint64_t n) {
  std::vector<uint64_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = i + 1;
  return v;
}

inline event_data encoded(const bank::account::event_type& e) {
  return variant_codec<bank::account::event_type>::encode(e);
}

/// Appends `batches` batches of `per_batch` deposits (the first event of a stream
/// an opening) straight to the store, one stream per batch.
inline void fill(journal& store, int batches, int per_batch, const std::string& prefix = "old") {
  for (int b = 0; b < batches; ++b) {
    std::vector<event_data> events;
    for (int i = 0; i < per_batch; ++i)
      events.push_back(encoded(i == 0 ? bank::account::event_type{bank::opened{"o"}}
                                      : bank::account::event_type{bank::deposited{1}}));
    REQUIRE(store.append_one({{"account", prefix + std::to_string(b)}, expected_version::any,
                              std::move(events)}));
  }
}

} // namespace cairn::feed_test
