// The event feed's publisher: a bounded ring of the most recent commits, from which
// followers pull (protocol and guarantees in event_feed.hpp).
#include <algorithm>
#include <atomic>
#include <deque>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "event_feed.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "store_readers.hpp"

namespace cairn {

namespace {

/// Whether the store's listener copies commits to the publisher. Off until the
/// first feed request, so a node nobody follows copies nothing.
struct commit_tap {
  std::atomic<bool> on{false};
};

/// A slice of one committed batch held by the ring.
struct ring_part {
  event_chunk events;
  size_t begin;
  size_t end;
  uint64_t first_position() const { return (*events)[begin].position; }
};

/// A request for events past the newest commit, answered by the next commit.
struct parked_request {
  caf::strong_actor_ptr sender;
  caf::response_promise promise;
  uint64_t from;
  size_t max;
};

struct publisher_state {
  static inline const char* name = "cairn.feed";

  std::shared_ptr<journal> store;
  caf::actor reader; // named in "behind" answers (null: followers read inline)
  std::shared_ptr<commit_tap> tap = std::make_shared<commit_tap>();
  journal::subscription listener = 0;

  // The ring holds exactly the positions (head - ring_events, head], in order.
  std::deque<ring_part> ring;
  size_t ring_events = 0;
  size_t capacity = 0;
  uint64_t head = 0;
  bool primed = false; // the tap is on and `head` was read from the store

  std::vector<parked_request> parked;
  event_feed_stats stats;

  // A store read that fills the ring runs on a reader thread (when there is a reader);
  // commits that arrive meanwhile wait here, in order, at most `capacity` events of them.
  bool filling = false;
  std::deque<event_chunk> held;
  size_t held_events = 0;

  uint64_t ring_first() const { return head - ring_events + 1; }

  ~publisher_state() {
    if (store && listener) store->unsubscribe(listener);
  }
};

using publisher_actor_t = caf::stateful_actor<publisher_state>;

void trim(publisher_state& st) {
  while (st.ring_events > st.capacity) {
    auto& front = st.ring.front();
    auto drop = std::min(front.end - front.begin, st.ring_events - st.capacity);
    front.begin += drop;
    st.ring_events -= drop;
    if (front.begin == front.end) st.ring.pop_front();
  }
}

/// Appends events [begin, end) of `chunk`, which continue the ring at head + 1.
void push(publisher_state& st, event_chunk chunk, size_t begin, size_t end) {
  if (begin >= end) return;
  st.head = (*chunk)[end - 1].position;
  st.ring_events += end - begin;
  st.ring.push_back(ring_part{std::move(chunk), begin, end});
  trim(st);
  st.stats.peak_ring_events = std::max(st.stats.peak_ring_events, st.ring_events);
}

/// Empties the ring and moves its head to `position`: requests for anything up to
/// there are then told to read the store.
void restart_ring(publisher_state& st, uint64_t position) {
  st.ring.clear();
  st.ring_events = 0;
  st.head = position;
}

void answer_parked(publisher_state& st);
void absorb(publisher_actor_t* self, event_chunk chunk);

/// Adds a read of positions (head, upto] to the ring; false if it does not continue
/// the ring (then the ring restarts at `upto`: followers read the store).
bool push_read(publisher_state& st, expected<std::vector<envelope>>& events, uint64_t upto) {
  if (!events || events->empty() || events->front().position != st.head + 1) {
    if (!events)
      log().warn("event feed: reading positions {}..{} failed ({}); followers read the store",
                 st.head + 1, upto, events.error().describe());
    restart_ring(st, upto);
    return false;
  }
  auto n = events->size();
  push(st, std::make_shared<const std::vector<envelope>>(std::move(*events)), 0, n);
  return true;
}

void fill_from_store(publisher_actor_t* self, uint64_t upto);

/// A fill's read is back: add it, read on if short of `upto`; else take in the commits
/// that waited and answer the requests that can be answered now.
void filled(publisher_actor_t* self, uint64_t upto, expected<std::vector<envelope>>& events) {
  auto& st = self->state;
  st.filling = false;
  if (push_read(st, events, upto) && st.head < upto) return fill_from_store(self, upto);
  while (!st.filling && !st.held.empty()) {
    auto chunk = std::move(st.held.front());
    st.held.pop_front();
    st.held_events -= chunk->size();
    absorb(self, std::move(chunk));
  }
  if (st.filling) return;
  answer_parked(st);
  // A follower that read the store may be ahead of what the fill read.
  bool ahead = std::any_of(st.parked.begin(), st.parked.end(),
                           [&](const parked_request& p) { return p.from > st.head; });
  if (ahead) fill_from_store(self, st.store->head_position());
}

/// Brings the ring up to `upto` from the store: used when commits reach the ring
/// out of order or not at all (another writer's listener call overtook it, or a
/// commit happened while the tap was being switched on). With a reader, the read runs
/// on its threads and `filling` is set until it is back (filled()); else inline.
void fill_from_store(publisher_actor_t* self, uint64_t upto) {
  auto& st = self->state;
  if (st.filling || upto <= st.head) return;
  ++st.stats.store_reads;
  if (upto - st.head > st.capacity) return restart_ring(st, upto); // would not fit anyway
  if (st.reader) {
    st.filling = true;
    read_off_thread<expected<std::vector<envelope>>>(
      self, st.reader,
      [store = st.store, from = st.head + 1, n = static_cast<size_t>(upto - st.head)] {
        return store->read_all(from, n);
      },
      [self, upto](expected<std::vector<envelope>>& events) { filled(self, upto, events); });
    return;
  }
  while (st.head < upto) {
    auto events = st.store->read_all(st.head + 1, static_cast<size_t>(upto - st.head));
    if (!push_read(st, events, upto)) return;
  }
}

/// Holds a commit that arrived while a fill runs (the oldest go beyond `capacity`
/// events: the gap they leave is read from the store, or skipped by a ring restart).
void hold(publisher_state& st, event_chunk chunk, bool in_front) {
  st.held_events += chunk->size();
  if (in_front) st.held.push_front(std::move(chunk));
  else st.held.push_back(std::move(chunk));
  while (st.held_events > st.capacity && st.held.size() > 1) {
    st.held_events -= st.held.front()->size();
    st.held.pop_front();
  }
}

/// The answer for a request from `from` (<= head): a ring slice, or "behind".
feed_reply answer(publisher_state& st, uint64_t from, size_t max) {
  feed_reply reply;
  if (st.ring_events == 0 || from < st.ring_first()) {
    ++st.stats.answered_behind;
    reply.what = feed_reply::kind::behind;
    reply.reader = st.reader;
    return reply;
  }
  ++st.stats.answered_live;
  reply.what = feed_reply::kind::events;
  // The part holding `from`: the last one starting at or before it.
  auto it = std::upper_bound(st.ring.begin(), st.ring.end(), from,
                             [](uint64_t pos, const ring_part& p) {
                               return pos < p.first_position();
                             });
  --it;
  auto begin = it->begin + static_cast<size_t>(from - it->first_position());
  for (size_t left = max; it != st.ring.end() && left > 0; ++it) {
    auto end = std::min(it->end, begin + left);
    reply.events.add(it->events, begin, end);
    left -= end - begin;
    if (std::next(it) != st.ring.end()) begin = std::next(it)->begin;
  }
  return reply;
}

void answer_parked(publisher_state& st) {
  auto ready = std::stable_partition(st.parked.begin(), st.parked.end(),
                                     [&](const parked_request& p) { return p.from > st.head; });
  for (auto it = ready; it != st.parked.end(); ++it)
    it->promise.deliver(answer(st, it->from, it->max));
  st.parked.erase(ready, st.parked.end());
}

void absorb(publisher_actor_t* self, event_chunk chunk) {
  auto& st = self->state;
  if (!st.primed || chunk->empty()) return;
  if (st.filling) return hold(st, std::move(chunk), false);
  auto first = chunk->front().position;
  auto last = chunk->back().position;
  if (last <= st.head) return; // already read from the store
  if (last - first + 1 != chunk->size()) {
    // Not one contiguous run: no store publishes that, but never trust it blindly.
    fill_from_store(self, st.store->head_position());
    if (!st.filling) answer_parked(st);
    return;
  }
  if (first > st.head + 1) fill_from_store(self, first - 1);
  if (st.filling) return hold(st, std::move(chunk), true); // taken in after the read
  if (first > st.head + 1) restart_ring(st, first - 1);
  if (last > st.head) push(st, std::move(chunk), static_cast<size_t>(st.head + 1 - first),
                           static_cast<size_t>(last - first + 1));
  answer_parked(st);
}

/// Switches the tap on, then reads the head: a commit whose listener call missed
/// the switch was visible before it (stores publish after committing), so it is
/// covered by the head read. Late or missing ones are caught by fill_from_store.
void prime(publisher_state& st) {
  st.tap->on.store(true, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  restart_ring(st, st.store->head_position());
  st.primed = true;
}

caf::behavior feed_publisher(publisher_actor_t* self, std::shared_ptr<journal> store,
                             size_t ring_events, caf::actor reader) {
  auto& st = self->state;
  st.store = std::move(store);
  st.reader = std::move(reader);
  st.capacity = std::max<size_t>(ring_events, 1);
  st.listener = st.store->subscribe(
    [tap = st.tap, me = caf::actor_cast<caf::actor>(self)](const std::vector<envelope>& events) {
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!tap->on.load(std::memory_order_relaxed) || events.empty()) return;
      caf::anon_send(me, commit_atom::value,
                     committed_chunk{std::make_shared<const std::vector<envelope>>(events)});
    });
  return {
    [self](commit_atom, committed_chunk& c) { absorb(self, std::move(c.events)); },
    [self](feed_atom, uint64_t from, uint64_t max) -> caf::result<feed_reply> {
      auto& st = self->state;
      if (!st.primed) prime(st);
      from = std::max<uint64_t>(from, 1);
      auto limit = static_cast<size_t>(std::max<uint64_t>(max, 1));
      // Stores make a commit readable before they publish it, so a follower that
      // read the store may be ahead of the ring: catch up before parking it.
      if (from > st.head) fill_from_store(self, st.store->head_position());
      if (from <= st.head) return answer(st, from, limit);
      auto sender = self->current_sender();
      for (auto& p : st.parked) {
        if (p.sender != sender) continue;
        feed_reply superseded;
        superseded.what = feed_reply::kind::superseded;
        p.promise.deliver(std::move(superseded));
        p = parked_request{sender, self->make_response_promise(), from, limit};
        return p.promise;
      }
      st.parked.push_back(parked_request{sender, self->make_response_promise(), from, limit});
      return st.parked.back().promise;
    },
    [self](feed_stats_atom) {
      auto& st = self->state;
      auto s = st.stats;
      s.head_position = st.head;
      s.ring_events = st.ring_events;
      s.ring_capacity = st.capacity;
      s.parked = st.parked.size();
      return s;
    },
  };
}

} // namespace

caf::actor spawn_feed_publisher(caf::actor_system& sys, std::shared_ptr<journal> store,
                                size_t ring_events, caf::actor reader) {
  return sys.spawn(feed_publisher, std::move(store), ring_events, std::move(reader));
}

} // namespace cairn
