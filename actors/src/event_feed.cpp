// The follower's side of the event feed: shared event batches and the cursor that
// pulls them (protocol in event_feed.hpp).
#include "event_feed.hpp"

#include <algorithm>

#include <caf/event_based_actor.hpp>

#include "message_types.hpp"
#include "store_readers.hpp"

namespace cairn {

void event_batch::add(event_chunk chunk, size_t begin, size_t end) {
  if (begin >= end) return;
  size_ += end - begin;
  parts_.push_back(part{std::move(chunk), begin, end});
}

event_batch event_batch::of(std::vector<envelope> events) {
  event_batch b;
  auto n = events.size();
  b.add(std::make_shared<const std::vector<envelope>>(std::move(events)), 0, n);
  return b;
}

uint64_t event_batch::first_position() const {
  if (parts_.empty()) return 0;
  auto& p = parts_.front();
  return (*p.events)[p.begin].position;
}

uint64_t event_batch::last_position() const {
  if (parts_.empty()) return 0;
  auto& p = parts_.back();
  return (*p.events)[p.end - 1].position;
}

feed_cursor::feed_cursor(caf::event_based_actor* self, caf::actor publisher,
                         std::shared_ptr<journal> store, event_filter filter, settings s,
                         deliver_fn on_events, failure_fn on_failure)
  : self_(self),
    publisher_(std::move(publisher)),
    store_(std::move(store)),
    filter_(std::move(filter)),
    settings_(s),
    on_events_(std::move(on_events)),
    on_failure_(std::move(on_failure)) {
  settings_.max_batch = std::max<size_t>(settings_.max_batch, 1);
  settings_.read_chunk = std::max<size_t>(settings_.read_chunk, 1);
}

void feed_cursor::start(uint64_t next_position) {
  ++generation_;
  waiting_ = false;
  paused_ = false;
  next_ = std::max<uint64_t>(next_position, 1);
  pull();
}

void feed_cursor::resume() {
  if (!paused_) return;
  paused_ = false;
  pull();
}

void feed_cursor::pull() {
  if (paused_ || waiting_) return;
  waiting_ = true;
  auto generation = generation_;
  self_->request(publisher_, caf::infinite, feed_atom::value, next_,
                 static_cast<uint64_t>(settings_.max_batch))
    .then(
      [this, generation](feed_reply& reply) {
        if (generation != generation_) return; // answers a request from before a restart
        waiting_ = false;
        switch (reply.what) {
          case feed_reply::kind::superseded:
            return; // cannot happen within one generation (one request at a time)
          case feed_reply::kind::behind:
            reader_ = std::move(reply.reader);
            return read_store();
          case feed_reply::kind::events: {
            if (reply.events.empty() || reply.events.first_position() != next_) {
              paused_ = true;
              return on_failure_(error{errc::corrupt, "event feed answered position " +
                                                        std::to_string(next_) +
                                                        " with another position"});
            }
            auto through = reply.events.last_position();
            if (deliver([&](auto&& fn) { reply.events.for_each(fn); }, through)) pull();
            return;
          }
        }
      },
      [this, generation](caf::error& err) {
        if (generation != generation_) return;
        waiting_ = false;
        paused_ = true;
        on_failure_(from_caf(err));
      });
}

void feed_cursor::read_store() {
  // Off the scheduler threads when the node has readers: the owner handles its other
  // messages (queries) meanwhile; a reply from before a restart is dropped.
  waiting_ = true;
  auto generation = generation_;
  read_off_thread<expected<std::vector<envelope>>>(
    self_, reader_,
    [store = store_, from = next_, n = settings_.read_chunk] { return store->read_all(from, n); },
    [this, generation](expected<std::vector<envelope>>& events) {
      if (generation != generation_) return;
      waiting_ = false;
      if (paused_) return; // resume() asks again
      got_store_read(events);
    });
}

void feed_cursor::got_store_read(expected<std::vector<envelope>>& events) {
  if (!events) {
    paused_ = true;
    return on_failure_(events.error());
  }
  if (!events->empty()) {
    if (events->front().position != next_) {
      paused_ = true;
      return on_failure_(error{errc::corrupt, "store read from position " + std::to_string(next_) +
                                                " began at " +
                                                std::to_string(events->front().position)});
    }
    auto through = events->back().position;
    auto& chunk = *events;
    bool go_on = deliver(
      [&](auto&& fn) {
        for (auto& e : chunk) fn(e);
      },
      through);
    if (!go_on) return;
  }
  // Ask again rather than read on: the publisher says whether the ring now covers
  // us, and the round trip lets the owner's other messages (queries) in between.
  pull();
}

template <class Each>
bool feed_cursor::deliver(Each&& for_each, uint64_t through) {
  auto first = next_;
  matching_.clear();
  for_each([&](const envelope& e) {
    if (filter_.matches(e)) matching_.push_back(&e);
  });
  auto generation = generation_;
  auto consumed = on_events_(matching_, through);
  matching_.clear();
  if (generation != generation_) return false; // the owner restarted us from inside
  if (consumed >= through) {
    next_ = through + 1;
    return !paused_;
  }
  next_ = std::max(first, consumed + 1);
  paused_ = true;
  return false;
}

} // namespace cairn
