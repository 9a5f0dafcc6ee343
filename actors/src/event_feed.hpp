// The event feed: how actors inside a node follow the store's committed events, in
// position order, each exactly once, through bounded buffers. Private to the actors
// library; projections, event notifications and sagas use it.
//
// Two parts:
//  - the publisher (feed_publisher.cpp, one per node) keeps a bounded ring of the
//    most recent commits, fed by the store's listener;
//  - a feed_cursor (below) lives inside each following actor and pulls from it.
//
// Protocol: the cursor sends (feed_atom, from_position, max_events) as a request and
// has exactly one outstanding at a time. The publisher answers with a feed_reply:
//  - events: the events from `from_position` on (at most max_events), shared with
//    the ring, never copied;
//  - behind: `from_position` is older than the ring holds. The cursor reads the
//    store itself (read_all, one chunk per round trip; through the node's reader
//    threads when the reply names a reader, store_readers.hpp) and asks again;
//  - nothing, yet: `from_position` is past the newest commit. The request is
//    parked and answered by the next commit (long poll);
//  - superseded: the same actor sent a newer request while this one was parked.
// Why this is gap-free and duplicate-free, also while writes continue: the cursor
// always asks for exactly the position after the last one it delivered, and every
// answer (ring slice or store chunk) is a contiguous run starting there. The ring
// itself stays contiguous: a commit that arrives with a hole before it (another
// writer's listener call overtook it) is preceded by a store read of the hole.
// Why it is bounded: the ring holds at most its capacity (in memory, plus the rest
// of the one committed batch it is trimming); each follower holds at most one answer
// (max_events, or one store chunk), and a slow follower just falls behind the ring
// and reads the store at its own pace, stalling nobody: commits never wait for
// followers, and the publisher never queues anything per follower but one parked
// request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "cairn/envelope.hpp"
#include "cairn/event_feed_stats.hpp"
#include "cairn/event_filter.hpp"
#include "cairn/journal.hpp"

namespace cairn {

/// One committed batch as the store published it, shared read-only.
using event_chunk = std::shared_ptr<const std::vector<envelope>>;

/// A run of consecutive committed events: slices of shared chunks (no copies).
class event_batch {
public:
  /// Adds events [begin, end) of `chunk`; they must follow the ones already held.
  void add(event_chunk chunk, size_t begin, size_t end);
  /// Wraps events read from the store.
  static event_batch of(std::vector<envelope> events);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// Position of the first event (0 when empty).
  uint64_t first_position() const;
  /// Position of the last event (0 when empty).
  uint64_t last_position() const;

  /// Calls fn(const envelope&) for each event, in position order.
  template <class F>
  void for_each(F&& fn) const {
    for (auto& p : parts_)
      for (size_t i = p.begin; i < p.end; ++i) fn((*p.events)[i]);
  }

private:
  struct part {
    event_chunk events;
    size_t begin;
    size_t end;
  };
  std::vector<part> parts_;
  size_t size_ = 0;
};

/// The publisher's answer to a feed request (see the protocol above).
struct feed_reply {
  enum class kind : uint8_t { events, behind, superseded };
  kind what = kind::events;
  event_batch events; ///< for kind::events: non-empty, starting at the asked position
  caf::actor reader;  ///< for kind::behind: read the store through it (null: read here)
};

/// What the store's listener hands the publisher: one committed batch.
struct committed_chunk {
  event_chunk events;
};

/// The publisher: keeps the last `ring_events` committed events of `store` and
/// answers feed requests (and feed_stats_atom with event_feed_stats). Subscribes to
/// the store's listener itself, so commits by any writer of the store are seen. It
/// starts copying commits when the first request arrives (a node nobody follows
/// pays nothing) and goes on from then on.
caf::actor spawn_feed_publisher(caf::actor_system& sys, std::shared_ptr<journal> store,
                                size_t ring_events, caf::actor reader = {});

/// Follows the feed on behalf of one event-based actor, from inside it: all calls
/// and callbacks run on that actor. Hands the owner every committed event that
/// matches `filter`, in position order, each once; switches between reading the
/// store (catch-up) and the publisher's ring (live) by itself.
///
/// Must outlive its pending request's reply or be stopped first: keep it in the
/// actor's state (it captures `this`). Not copyable or movable.
class feed_cursor {
public:
  struct settings {
    size_t max_batch = 4096;  ///< events per answer from the publisher
    size_t read_chunk = 4096; ///< events per store read while behind
  };

  /// Receives the matching events among positions up to `through` (those not
  /// matching are left out; `through` still covers them). Returns the last position
  /// it consumed: `through` to go on; anything less pauses the cursor, and
  /// resume() continues after that position (delivering the rest again).
  using deliver_fn =
    std::function<uint64_t(const std::vector<const envelope*>& events, uint64_t through)>;
  /// Receives a store read or publisher failure; the cursor is then paused.
  using failure_fn = std::function<void(const error&)>;

  feed_cursor(caf::event_based_actor* self, caf::actor publisher, std::shared_ptr<journal> store,
              event_filter filter, settings s, deliver_fn on_events, failure_fn on_failure);
  feed_cursor(const feed_cursor&) = delete;
  feed_cursor& operator=(const feed_cursor&) = delete;

  /// Starts (or restarts) delivery at `next_position` (1: from the first event).
  /// Whatever was outstanding from an earlier start is discarded when it arrives.
  void start(uint64_t next_position);
  /// Continues after a pause (a short deliver_fn return, or a failure).
  void resume();
  /// Stops asking; resume() or start() continue.
  void pause() { paused_ = true; }

  bool paused() const { return paused_; }
  /// The next position to be delivered.
  uint64_t next_position() const { return next_; }

private:
  void pull();
  void read_store();
  void got_store_read(expected<std::vector<envelope>>& events);
  /// Delivers `events` (a contiguous run from next_); false if the owner paused.
  template <class Each>
  bool deliver(Each&& for_each, uint64_t through);

  caf::event_based_actor* self_;
  caf::actor publisher_;
  caf::actor reader_; // the node's reader (store_readers.hpp), as the publisher said
  std::shared_ptr<journal> store_;
  event_filter filter_;
  settings settings_;
  deliver_fn on_events_;
  failure_fn on_failure_;
  uint64_t next_ = 1;
  uint64_t generation_ = 0; // bumped by start(): replies to older requests are dropped
  bool waiting_ = false;    // a request of this generation is outstanding
  bool paused_ = true;
  std::vector<const envelope*> matching_; // reused between deliveries
};

} // namespace cairn

// Local-only messages: they share memory and never leave the process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::feed_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::committed_chunk)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::event_feed_stats)
