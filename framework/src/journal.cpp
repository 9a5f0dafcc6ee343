// The journal base class: listener bookkeeping and the convenience helpers.
#include "cairn/journal.hpp"

#include <algorithm>
#include <string>

namespace cairn {

expected<append_result> journal::append_one(append_request request) {
  std::vector<append_request> batch;
  batch.push_back(std::move(request));
  auto results = append(std::move(batch));
  if (results.size() != 1)
    return error{errc::unavailable, "journal returned " + std::to_string(results.size()) +
                                      " results for a batch of 1"};
  return std::move(results.front());
}

namespace {

/// The default pending batch: append() has already done everything.
struct completed_append final : journal::pending_append {
  std::vector<expected<append_result>> results;
};

} // namespace

std::unique_ptr<journal::pending_append> journal::begin_append(std::vector<append_request> batch) {
  auto done = std::make_unique<completed_append>();
  done->results = append(std::move(batch));
  return done;
}

std::vector<expected<append_result>> journal::finish_append(
  std::unique_ptr<pending_append> pending) {
  auto* done = dynamic_cast<completed_append*>(pending.get());
  if (!done) return {}; // not begun by this class: the caller fails the whole batch
  return std::move(done->results);
}

journal::subscription journal::subscribe(listener fn) {
  std::lock_guard<std::mutex> lock(listeners_mutex_);
  subscription handle = next_subscription_++;
  listeners_.emplace_back(handle, std::move(fn));
  return handle;
}

void journal::unsubscribe(subscription handle) {
  std::lock_guard<std::mutex> lock(listeners_mutex_);
  listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                  [&](const auto& entry) { return entry.first == handle; }),
                   listeners_.end());
}

size_t journal::publish(const std::vector<envelope>& committed) noexcept {
  std::vector<std::pair<subscription, listener>> snapshot;
  try {
    std::lock_guard<std::mutex> lock(listeners_mutex_);
    snapshot = listeners_;
  } catch (...) { // out of memory for the copy: none of them hears this batch
    std::lock_guard<std::mutex> lock(listeners_mutex_);
    return listeners_.size();
  }
  // Called outside the mutex so a listener may subscribe, unsubscribe or read.
  size_t failed = 0;
  for (auto& entry : snapshot) {
    try {
      if (entry.second) entry.second(committed);
    } catch (...) {
      ++failed;
    }
  }
  return failed;
}

expected<std::vector<envelope>> read_stream_all(const journal& j, const stream_id& stream,
                                                uint64_t from_version) {
  constexpr size_t chunk_size = 4096;
  uint64_t next = std::max<uint64_t>(from_version, 1);
  auto first = j.read_stream(stream, next, chunk_size);
  if (!first || first->size() < chunk_size) return first; // all of it: nothing to copy
  // More to come: size the result once, from the stream's version now (appends may
  // add more meanwhile), instead of moving envelopes through a doubling vector.
  std::vector<envelope> out;
  if (auto version = j.stream_version(stream); version && *version >= next)
    out.reserve(static_cast<size_t>(*version - next + 1));
  out.insert(out.end(), std::make_move_iterator(first->begin()),
             std::make_move_iterator(first->end()));
  for (;;) {
    next = out.back().version + 1;
    auto chunk = j.read_stream(stream, next, chunk_size);
    if (!chunk) return std::move(chunk).error();
    size_t n = chunk->size();
    out.insert(out.end(), std::make_move_iterator(chunk->begin()),
               std::make_move_iterator(chunk->end()));
    if (n < chunk_size) return expected<std::vector<envelope>>(std::move(out));
  }
}

} // namespace cairn
