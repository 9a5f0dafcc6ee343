// Notification actors: call an application's plain event handler for each committed
// event matching a filter, at least once, resuming from a stored position.
#include <algorithm>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <fmt/format.h>

#include "cairn/codec.hpp"
#include "cairn/subscription_admin.hpp"
#include "event_feed.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "rate_limited_log.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

/// Store the position at least this often while nothing matches, so a restart
/// does not rescan a long run of other events.
constexpr uint64_t max_unsaved_positions = 65536;

struct notification_state {
  static inline const char* name = "cairn.notification";
  std::string subscription;
  event_handler handler;
  notification_options options;
  std::shared_ptr<snapshot_store> checkpoints; // null: positions are not stored
  std::unique_ptr<feed_cursor> feed;

  uint64_t delivered = 0;          // every matching event up to here was handled
  uint64_t saved = 0;              // the position last stored
  uint64_t handled_since_save = 0;
  uint32_t attempts = 0;           // failed attempts on the next event
  std::chrono::nanoseconds delay{0};
  std::vector<parked_event> parked; // given up on after max_attempts, in position order
  rate_limited_log warnings;

  stream_id checkpoint_stream() const { return stream_id{"notification", subscription}; }

  /// Stores the parked events (the whole list: it is expected to stay short).
  void save_parked() {
    if (!checkpoints) return;
    if (auto ok = save_parked_events(*checkpoints, subscription, parked); !ok)
      log().error("event subscription {}: its {} parked events are not stored: {}", subscription,
                  parked.size(), ok.error().describe());
  }

  void load_parked() {
    if (!checkpoints) return;
    auto list = load_parked_events(*checkpoints, subscription);
    if (list) parked = std::move(*list);
    else log().error("event subscription {}: cannot read its parked events: {}", subscription,
                     list.error().describe());
  }

  /// The positions an operator asked to retry while the node was down (`cairn
  /// subscriptions retry`); the request is consumed.
  std::vector<uint64_t> take_retry_requests() {
    if (!checkpoints) return {};
    auto requested = load_retry_requests(*checkpoints, subscription);
    if (!requested) {
      log().error("event subscription {}: cannot read its retry requests: {}", subscription,
                  requested.error().describe());
      return {};
    }
    if (!requested->empty())
      if (auto ok = save_retry_requests(*checkpoints, subscription, {}); !ok)
        log().error("event subscription {}: its retry requests are not cleared: {}", subscription,
                    ok.error().describe());
    return std::move(*requested);
  }

  void save_position() {
    if (!checkpoints) return;
    snapshot s{checkpoint_stream(), delivered, "position", 1, now_ns(), {}};
    if (auto ok = checkpoints->save(s); !ok) {
      log().warn("event subscription {}: position {} not stored: {}", subscription, delivered,
                 ok.error().describe());
      return;
    }
    saved = delivered;
    handled_since_save = 0;
  }

  ~notification_state() {
    if (delivered > saved) save_position();
  }
};

using notification_actor_t = caf::stateful_actor<notification_state>;


/// Calls the handler on one event: empty if it succeeded, else what it threw.
std::string call(const event_handler& handler, const envelope& e) {
  try {
    handler(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
  return {};
}

/// Calls the handler again on the parked events at `positions` (all if null), in
/// order; those that still fail stay parked. Stores the list.
void retry_parked(notification_state& st, const journal& store,
                  const std::vector<uint64_t>* positions) {
  std::vector<parked_event> still;
  for (auto& p : std::exchange(st.parked, {})) {
    if (positions && !std::binary_search(positions->begin(), positions->end(), p.position)) {
      still.push_back(std::move(p));
      continue;
    }
    auto e = store.read_all(p.position, 1);
    std::string failure;
    if (!e) failure = "cannot read it: " + e.error().describe();
    else if (e->empty() || e->front().position != p.position) failure = "it is not in the store";
    else failure = call(st.handler, e->front());
    if (failure.empty()) {
      log().info("event subscription {}: the parked event at position {} is handled",
                 st.subscription, p.position);
      continue;
    }
    p.reason = std::move(failure);
    ++p.attempts;
    still.push_back(std::move(p));
  }
  st.parked = std::move(still);
  st.save_parked();
}

/// Calls the handler on each event; returns the position consumed (short of
/// `through` when a handler failed and the event is to be retried).
uint64_t handle_events(notification_actor_t* self, const std::vector<const envelope*>& events,
                       uint64_t through) {
  auto& st = self->state;
  for (auto* e : events) {
    auto failure = call(st.handler, *e);
    if (failure.empty() || (st.options.max_attempts > 0 && st.attempts + 1 >= st.options.max_attempts)) {
      if (!failure.empty()) {
        st.parked.push_back(
          parked_event{e->position, e->stream.str(), e->type, failure, st.attempts + 1});
        st.save_parked();
        st.warnings.log(log(), spdlog::level::err,
                        fmt::format("event subscription {}: parked the event at position {} ({} "
                                    "{}) after {} attempts (node::parked_events lists it, "
                                    "retry_parked_events retries it): {}",
                                    st.subscription, e->position, e->stream.str(), e->type,
                                    st.attempts + 1, failure));
      }
      st.attempts = 0;
      st.delay = st.options.retry_delay;
      st.delivered = e->position;
      ++st.handled_since_save;
      continue;
    }
    ++st.attempts;
    // Rate-limited: the same failure on the same event repeats until it succeeds.
    st.warnings.log(log(), spdlog::level::warn,
                    fmt::format("event subscription {}: handler failed on position {} ({} {}), "
                                "retrying with backoff: {}",
                                st.subscription, e->position, e->stream.str(), e->type, failure));
    st.delivered = e->position - 1;
    if (st.handled_since_save > 0) st.save_position();
    self->delayed_send(self, st.delay, retry_atom::value);
    st.delay = std::min(st.delay * 2, st.options.retry_max_delay);
    return st.delivered;
  }
  st.delivered = through;
  if (st.handled_since_save >= std::max<uint64_t>(st.options.checkpoint_every, 1) ||
      st.delivered - st.saved >= max_unsaved_positions)
    st.save_position();
  return through;
}

caf::behavior notification_actor(notification_actor_t* self, std::string subscription,
                                 event_filter filter, event_handler handler,
                                 notification_options options, uint64_t start_after,
                                 std::shared_ptr<journal> store, caf::actor feed,
                                 std::shared_ptr<snapshot_store> checkpoints,
                                 feed_options feed_opts) {
  auto& st = self->state;
  st.subscription = std::move(subscription);
  st.handler = std::move(handler);
  st.options = options;
  st.delay = options.retry_delay;
  st.checkpoints = std::move(checkpoints);
  st.load_parked();
  if (auto requested = st.take_retry_requests(); !requested.empty()) {
    std::sort(requested.begin(), requested.end());
    retry_parked(st, *store, &requested);
  }
  // Resume after the stored position; else after `start_after` (and store that, so
  // events committed while the node is down are delivered after a restart).
  bool stored = false;
  if (st.checkpoints) {
    auto snap = st.checkpoints->load(st.checkpoint_stream());
    if (!snap)
      log().warn("event subscription {}: ignoring its stored position: {}", st.subscription,
                 snap.error().describe());
    else if (*snap) {
      st.delivered = st.saved = (*snap)->version;
      stored = true;
    }
  }
  if (!stored) {
    st.delivered = start_after;
    st.save_position();
  }
  st.feed = std::make_unique<feed_cursor>(
    self, std::move(feed), store, std::move(filter),
    feed_cursor::settings{feed_opts.batch_events, feed_opts.batch_events},
    [self](const std::vector<const envelope*>& events, uint64_t through) {
      return handle_events(self, events, through);
    },
    [self](const error& why) {
      auto& st = self->state;
      log().warn("event subscription {}: reading events failed, retrying: {}", st.subscription,
                 why.describe());
      self->delayed_send(self, st.options.retry_max_delay, retry_atom::value);
    });
  st.feed->start(st.delivered + 1);
  return {
    [self](retry_atom) { self->state.feed->resume(); },
    [self](position_atom) { return self->state.delivered; },
    [self](parked_events_atom) { return self->state.parked; },
    [self, store](retry_parked_atom) {
      auto& st = self->state;
      retry_parked(st, *store, nullptr);
      return st.parked;
    },
    [self](discard_parked_atom, uint64_t position) -> caf::result<bool> {
      auto& st = self->state;
      auto it = std::find_if(st.parked.begin(), st.parked.end(),
                             [&](const parked_event& p) { return p.position == position; });
      if (it == st.parked.end())
        return to_caf(error{errc::not_found, "event subscription " + st.subscription +
                                               " has no parked event at position " +
                                               std::to_string(position)});
      st.parked.erase(it);
      st.save_parked();
      return true;
    },
  };
}

} // namespace

caf::actor spawn_notification(caf::actor_system& sys, std::string subscription,
                              event_filter filter, event_handler handler,
                              notification_options options, uint64_t start_after,
                              std::shared_ptr<journal> store, caf::actor feed,
                              std::shared_ptr<snapshot_store> checkpoints, feed_options feed_opts) {
  return sys.spawn(notification_actor, std::move(subscription), std::move(filter),
                   std::move(handler), options, start_after, std::move(store), std::move(feed),
                   std::move(checkpoints), feed_opts);
}

} // namespace cairn
