// store_saver: coalesced, ordered writes off CAF's scheduler threads.
#include "store_saver.hpp"

#include <mutex>

#include <caf/event_based_actor.hpp>

#include "store_readers.hpp"

namespace cairn {

/// Shared by the saver and its write jobs: a write runs under `mutex`, and only if no
/// newer write (higher sequence number) ran before it.
struct store_saver::lane {
  std::mutex mutex;
  uint64_t last_run = 0;

  /// Runs write number `seq` unless a newer one ran already (then: nothing to do).
  expected<void> run(uint64_t seq, const write_fn& write) {
    std::lock_guard<std::mutex> guard{mutex};
    if (seq < last_run) return {};
    last_run = seq;
    return write();
  }
};

store_saver::store_saver(caf::event_based_actor* self, caf::actor reader)
  : self_(self), reader_(std::move(reader)), lane_(std::make_shared<lane>()) {}

store_saver::~store_saver() = default;

void store_saver::save(write_fn write, done_fn done) {
  if (!reader_) {
    auto ok = write();
    if (done) done(ok);
    return;
  }
  if (in_flight_) {
    waiting_.emplace(std::move(write), std::move(done));
    return;
  }
  launch(std::move(write), std::move(done));
}

void store_saver::launch(write_fn write, done_fn done) {
  in_flight_ = true;
  auto seq = ++next_seq_;
  read_off_thread<expected<void>>(
    self_, reader_,
    [lane = lane_, seq, write = std::move(write)] { return lane->run(seq, write); },
    [this, done = std::move(done)](expected<void>& ok) {
      in_flight_ = false;
      if (done) done(ok);
      if (in_flight_ || !waiting_) return; // `done` started one itself
      auto next = std::move(*waiting_);
      waiting_.reset();
      launch(std::move(next.first), std::move(next.second));
    });
}

expected<void> store_saver::save_now(const write_fn& write) {
  waiting_.reset();
  return lane_->run(++next_seq_, write);
}

} // namespace cairn
