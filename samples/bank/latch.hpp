// latch: counts outstanding work down and lets a thread wait for zero (the sample's
// and the benchmarks' clients report their last reply through it).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace bank {

class latch {
public:
  explicit latch(size_t n) : left_(n) {}
  void count_down() {
    std::lock_guard<std::mutex> g{m_};
    if (--left_ == 0) cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> g{m_};
    cv_.wait(g, [&] { return left_ == 0; });
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  size_t left_;
};

} // namespace bank
