// journal_wrapper: forwards every call to another journal. Derive and override one
// method to inject faults or observe calls in tests (like LevelDB's EnvWrapper).
#pragma once

#include <memory>
#include <utility>

#include "cairn/journal.hpp"

namespace cairn {

class journal_wrapper : public journal {
public:
  explicit journal_wrapper(std::shared_ptr<journal> target) : target_(std::move(target)) {}

  journal& target() const { return *target_; }

  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    return target_->append(std::move(batch));
  }
  // begin_append() and finish_append() are not forwarded: the defaults go through
  // append() above, so an override of append() sees every write. A wrapper that wants
  // the target's pipelining forwards them itself.
  expected<std::vector<envelope>> read_stream(const stream_id& stream, uint64_t from_version,
                                              size_t max_count) const override {
    return target_->read_stream(stream, from_version, max_count);
  }
  expected<std::vector<envelope>> read_all(uint64_t from_position,
                                           size_t max_count) const override {
    return target_->read_all(from_position, max_count);
  }
  expected<uint64_t> stream_version(const stream_id& stream) const override {
    return target_->stream_version(stream);
  }
  uint64_t head_position() const override { return target_->head_position(); }
  expected<std::vector<stream_id>> list_streams() const override {
    return target_->list_streams();
  }
  subscription subscribe(listener fn) override { return target_->subscribe(std::move(fn)); }
  void unsubscribe(subscription handle) override { target_->unsubscribe(handle); }
  const metrics::registry* store_metrics() const override { return target_->store_metrics(); }
  bool reads_wait_on_server() const override { return target_->reads_wait_on_server(); }

private:
  std::shared_ptr<journal> target_;
};

} // namespace cairn
