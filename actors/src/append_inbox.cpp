#include "append_inbox.hpp"

#include <exception>

#include <caf/send.hpp>

#include "log.hpp"
#include "message_types.hpp"
#include "node_metrics.hpp"

namespace cairn {

namespace {

/// Batches begun and not yet finished: one being made durable while the next is
/// written.
constexpr size_t max_in_flight = 2;

const char* const stopped_message = "the journal stopped before this append was written";

} // namespace

append_inbox::append_inbox(std::shared_ptr<journal> store)
  : store_(std::move(store)), syncer_([this] { run_syncer(); }),
    writer_([this] { run_writer(); }) {}

append_inbox::~append_inbox() { stop(); }

void append_inbox::submit(append_request request, caf::actor reply_to, uint64_t tag) {
  enqueue(std::move(request), reply_address{std::move(reply_to), tag, {}});
}

void append_inbox::submit(append_request request, completion done) {
  enqueue(std::move(request), reply_address{{}, 0, std::move(done)});
}

namespace {

void answer(const caf::actor& to, uint64_t tag, const append_inbox::completion& done,
            expected<append_result> result) {
  if (done) {
    try {
      done(std::move(result));
    } catch (const std::exception& ex) {
      log().error("journal: an append's completion threw: {}", ex.what());
    }
    return;
  }
  if (!to) return;
  if (result) caf::anon_send(to, appended_atom::value, tag, std::move(*result));
  else caf::anon_send(to, appended_atom::value, tag, to_caf(result.error()));
}

} // namespace

void append_inbox::set_replier(caf::actor replier) {
  std::lock_guard<std::mutex> guard{mutex_};
  replier_ = std::move(replier);
}

void append_inbox::enqueue(append_request request, reply_address reply) {
  std::unique_lock<std::mutex> lock{mutex_};
  if (stopping_) {
    lock.unlock();
    return answer(reply.actor, reply.tag, reply.done, error{errc::unavailable, stopped_message});
  }
  pending_.push_back(std::move(request));
  try {
    pending_replies_.push_back(std::move(reply));
  } catch (...) { // the two lists must stay in step
    pending_.pop_back();
    throw;
  }
  // Wake the writer only if it sleeps: while it works, requests just gather.
  bool wake = writer_waiting_;
  writer_waiting_ = false;
  lock.unlock();
  if (wake) writer_wake_.notify_one();
}

void append_inbox::stop() {
  caf::actor replier; // released outside the lock
  {
    std::lock_guard<std::mutex> guard{mutex_};
    stopping_ = true;
    // The replier (the journal actor) may be the one stopping: what is still answered
    // goes straight to the appenders.
    replier.swap(replier_);
  }
  writer_wake_.notify_one();
  syncer_wake_.notify_one();
  auto me = std::this_thread::get_id();
  if (writer_.joinable() && writer_.get_id() != me) writer_.join();
  if (syncer_.joinable() && syncer_.get_id() != me) syncer_.join();
}

void append_inbox::set_metrics(std::shared_ptr<const journal_metrics> m) {
  std::lock_guard<std::mutex> guard{mutex_};
  metrics_ = std::move(m);
}

uint64_t append_inbox::batches_written() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return batches_;
}

void append_inbox::run_writer() {
  std::unique_lock<std::mutex> lock{mutex_};
  for (;;) {
    if (stopping_) {
      if (in_flight_ > 0) { // let the syncer finish and answer what was begun
        writer_wake_.wait(lock);
        continue;
      }
      break;
    }
    if (pending_.empty() || in_flight_ >= max_in_flight) {
      // Submits wake it only while it waits for them; a free slot is the syncer's news.
      writer_waiting_ = pending_.empty();
      writer_wake_.wait(lock);
      writer_waiting_ = false;
      continue;
    }
    batch_in_flight b;
    std::vector<append_request> batch;
    batch.swap(pending_);
    b.replies.swap(pending_replies_);
    pending_.reserve(batch.size()); // the next batch is likely as large
    ++in_flight_;
    auto* metrics = metrics_.get(); // lives as long as the node, which outlives the writer
    lock.unlock();
    size_t n = batch.size();
    if (metrics) {
      uint64_t events = 0;
      for (auto& r : batch) events += r.events.size();
      metrics->batch_appends.observe(n);
      metrics->batch_events.observe(events);
    }
    try {
      b.pending = store_->begin_append(std::move(batch));
    } catch (const std::exception& ex) {
      log().error("journal: store append threw: {}", ex.what());
    }
    if (!b.pending) b.results.assign(n, error{errc::unavailable, "the store failed the whole batch"});
    lock.lock();
    to_finish_.push_back(std::move(b));
    syncer_wake_.notify_one();
  }
  // Stopping: what has not reached the store fails, as after it no submit is taken.
  std::vector<reply_address> left;
  left.swap(pending_replies_);
  pending_.clear();
  writer_done_ = true;
  syncer_wake_.notify_one();
  lock.unlock();
  for (auto& r : left) answer(r.actor, r.tag, r.done, error{errc::unavailable, stopped_message});
}

void append_inbox::answer_all(batch_in_flight& b) {
  constexpr size_t chunk = 128;
  caf::actor replier;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    replier = replier_;
  }
  for (size_t from = 0; from < b.replies.size(); from += chunk) {
    size_t end = std::min(b.replies.size(), from + chunk);
    // Many answers go to the replier in one message, to be sent from a scheduler
    // thread (where CAF enqueues cheaply); a few go straight, a hop sooner.
    bool via_replier = replier && end - from >= 16;
    append_answers for_replier;
    for (size_t i = from; i < end; ++i) {
      auto& r = b.replies[i];
      if (r.actor && via_replier)
        for_replier.items.push_back({std::move(r.actor), r.tag, std::move(b.results[i])});
      else
        answer(r.actor, r.tag, r.done, std::move(b.results[i]));
    }
    if (!for_replier.items.empty())
      caf::anon_send(replier, appended_atom::value, std::move(for_replier));
  }
}

void append_inbox::run_syncer() {
  std::unique_lock<std::mutex> lock{mutex_};
  for (;;) {
    syncer_wake_.wait(lock, [this] { return !to_finish_.empty() || writer_done_; });
    if (to_finish_.empty()) return; // the writer is done, and so is everything it began
    auto b = std::move(to_finish_.front());
    to_finish_.pop_front();
    lock.unlock();
    size_t n = b.replies.size();
    if (b.pending) {
      try {
        b.results = store_->finish_append(std::move(b.pending));
      } catch (const std::exception& ex) {
        log().error("journal: store append threw: {}", ex.what());
      }
    }
    if (b.results.size() != n)
      b.results.assign(n, error{errc::unavailable, "the store failed the whole batch"});
    lock.lock();
    // The writer may start the next batch now, while these are answered.
    --in_flight_;
    ++batches_;
    lock.unlock();
    writer_wake_.notify_one();
    answer_all(b);
    lock.lock();
  }
}

} // namespace cairn
