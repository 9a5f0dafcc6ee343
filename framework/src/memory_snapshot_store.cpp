// The in-memory snapshot store (tests).
#include <mutex>
#include <unordered_map>

#include "cairn/snapshot_store.hpp"

namespace cairn {

namespace {

class memory_snapshot_store final : public snapshot_store {
public:
  expected<void> save(const snapshot& s) override {
    std::lock_guard<std::mutex> guard{mutex_};
    snapshots_[s.stream] = s;
    return {};
  }
  expected<std::optional<snapshot>> load(const stream_id& stream) const override {
    std::lock_guard<std::mutex> guard{mutex_};
    auto it = snapshots_.find(stream);
    if (it == snapshots_.end()) return std::optional<snapshot>{};
    return std::optional<snapshot>{it->second};
  }

private:
  mutable std::mutex mutex_;
  std::unordered_map<stream_id, snapshot> snapshots_;
};

} // namespace

std::shared_ptr<snapshot_store> make_memory_snapshot_store() {
  return std::make_shared<memory_snapshot_store>();
}

} // namespace cairn
