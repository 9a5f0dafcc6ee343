// pointer_index: a flat map from pointers to small indexes, for one append batch's
// bookkeeping: open addressing, no allocation per entry, no erase.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace cairn::detail {

class pointer_index {
public:
  /// Empties the index and sizes it for about `expected` keys.
  void reset(size_t expected) {
    size_t capacity = 16;
    while (capacity < 2 * expected) capacity <<= 1;
    slots_.assign(capacity, {nullptr, 0});
    count_ = 0;
  }

  /// The value stored for `key`, or null.
  const uint32_t* find(const void* key) const {
    if (slots_.empty()) return nullptr;
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      if (slots_[i].first == key) return &slots_[i].second;
      if (!slots_[i].first) return nullptr;
    }
  }

  /// Adds `key` (not null, not yet present).
  void insert(const void* key, uint32_t value) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    place(key, value);
    ++count_;
  }

private:
  static size_t hash(const void* p) {
    auto x = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return static_cast<size_t>(x);
  }

  void place(const void* key, uint32_t value) {
    size_t mask = slots_.size() - 1;
    size_t i = hash(key) & mask;
    while (slots_[i].first) i = (i + 1) & mask;
    slots_[i] = {key, value};
  }

  void grow() {
    auto old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : 2 * old.size(), {nullptr, 0});
    for (auto& s : old)
      if (s.first) place(s.first, s.second);
  }

  std::vector<std::pair<const void*, uint32_t>> slots_;
  size_t count_ = 0;
};

} // namespace cairn::detail
