// eventually(): waits for a condition that asynchronous actors make true, in tests.
#pragma once

#include <chrono>
#include <thread>

namespace cairn::test {

/// True once `done()` holds; false if it still does not after `limit`. Sagas, projections
/// and passivation work asynchronously, so tests wait for the state they expect.
template <class F>
bool eventually(F done, std::chrono::seconds limit = std::chrono::seconds{60}) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  return true;
}

} // namespace cairn::test
