// Notification actors: call an application's plain event handler for each committed
// event matching a filter, at least once, resuming from a stored position.
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

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
#include "store_readers.hpp"
#include "store_saver.hpp"

namespace cairn {

namespace {

/// Store the position at least this often while nothing matches, so a restart
/// does not rescan a long run of other events.
constexpr uint64_t max_unsaved_positions = 65536;

/// A subscription's parked events read again for a retry, by position.
using parked_reads = std::map<uint64_t, expected<std::vector<envelope>>>;

/// Reads the events at `positions` (one read each). Touches only its arguments, so it
/// may run on a reader thread.
parked_reads read_parked(const journal& store, const std::vector<uint64_t>& positions) {
  parked_reads out;
  for (auto position : positions) out.emplace(position, store.read_all(position, 1));
  return out;
}

/// What a subscription loads as it starts (on a reader thread when the node has them).
struct notification_start {
  expected<std::vector<parked_event>> parked = std::vector<parked_event>{};
  std::vector<uint64_t> requested; ///< retries an operator asked for while it was down
  parked_reads reads;              ///< the requested parked events, read
  expected<std::optional<snapshot>> position = std::optional<snapshot>{};
};

/// Loads the parked events, takes (and clears) the retry requests, reads the events they
/// name, and loads the stored position.
notification_start load_start(snapshot_store& checkpoints, const journal& store,
                              const std::string& subscription) {
  notification_start out;
  out.parked = load_parked_events(checkpoints, subscription);
  auto requested = load_retry_requests(checkpoints, subscription);
  if (!requested) {
    log().error("event subscription {}: cannot read its retry requests: {}", subscription,
                requested.error().describe());
  } else if (!requested->empty()) {
    if (auto ok = save_retry_requests(checkpoints, subscription, {}); !ok)
      log().error("event subscription {}: its retry requests are not cleared: {}", subscription,
                  ok.error().describe());
    out.requested = std::move(*requested);
    std::sort(out.requested.begin(), out.requested.end());
    std::vector<uint64_t> positions;
    if (out.parked)
      for (auto& p : *out.parked)
        if (std::binary_search(out.requested.begin(), out.requested.end(), p.position))
          positions.push_back(p.position);
    out.reads = read_parked(store, positions);
  }
  out.position = checkpoints.load(stream_id{"notification", subscription});
  return out;
}

struct notification_state {
  static inline const char* name = "cairn.notification";
  std::string subscription;
  event_handler handler;
  notification_options options;
  std::shared_ptr<journal> store;
  std::shared_ptr<snapshot_store> checkpoints; // null: positions are not stored
  caf::actor reader; // store reads and writes run through it (null: inline)
  std::unique_ptr<feed_cursor> feed;
  std::unique_ptr<store_saver> position_saver; // writes of the position
  std::unique_ptr<store_saver> parked_saver;   // writes of the parked list

  uint64_t delivered = 0;          // every matching event up to here was handled
  uint64_t saved = 0;              // the position last stored
  uint64_t handled_since_save = 0;
  uint32_t attempts = 0;           // failed attempts on the next event
  std::chrono::nanoseconds delay{0};
  std::vector<parked_event> parked; // given up on after max_attempts, in position order
  rate_limited_log warnings;

  stream_id checkpoint_stream() const { return stream_id{"notification", subscription}; }
  snapshot position_snapshot() const {
    return snapshot{checkpoint_stream(), delivered, "position", 1, now_ns(), {}};
  }

  /// Stores the parked events (the whole list: it is expected to stay short).
  void save_parked() {
    if (!checkpoints) return;
    parked_saver->save(
      [cps = checkpoints, name = subscription, list = parked] {
        return save_parked_events(*cps, name, list);
      },
      [this, n = parked.size()](const expected<void>& ok) {
        if (!ok)
          log().error("event subscription {}: its {} parked events are not stored: {}",
                      subscription, n, ok.error().describe());
      });
  }

  void save_position() {
    if (!checkpoints) return;
    handled_since_save = 0;
    position_saver->save([cps = checkpoints, s = position_snapshot()] { return cps->save(s); },
                         [this, position = delivered](const expected<void>& ok) {
                           if (ok) {
                             saved = std::max(saved, position);
                             return;
                           }
                           log().warn("event subscription {}: position {} not stored: {}",
                                      subscription, position, ok.error().describe());
                           // Try again with the next events handled.
                           handled_since_save += std::max<uint64_t>(options.checkpoint_every, 1);
                         });
  }

  /// The last writes as the actor stops, here and now (after those in flight).
  ~notification_state() {
    if (!checkpoints) return;
    if (parked_saver->busy()) {
      auto ok = parked_saver->save_now(
        [&] { return save_parked_events(*checkpoints, subscription, parked); });
      if (!ok)
        log().error("event subscription {}: its {} parked events are not stored: {}",
                    subscription, parked.size(), ok.error().describe());
    }
    if (delivered > saved) {
      auto ok = position_saver->save_now([&, s = position_snapshot()] { return checkpoints->save(s); });
      if (!ok)
        log().warn("event subscription {}: position {} not stored: {}", subscription, delivered,
                   ok.error().describe());
    }
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

/// Calls the handler again on the parked events read in `reads`, in order; those that
/// still fail stay parked, as do those not read. Stores the list.
void retry_parked(notification_state& st, parked_reads& reads) {
  std::vector<parked_event> still;
  for (auto& p : std::exchange(st.parked, {})) {
    auto it = reads.find(p.position);
    if (it == reads.end()) {
      still.push_back(std::move(p));
      continue;
    }
    auto& e = it->second;
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

/// Starts delivering once the start is loaded: retries what an operator asked for,
/// then resumes after the stored position, or after `start_after` (and stores that,
/// so events committed while the node is down are delivered after a restart).
void begin(notification_actor_t* self, notification_start& start, uint64_t start_after) {
  auto& st = self->state;
  if (start.parked) st.parked = std::move(*start.parked);
  else log().error("event subscription {}: cannot read its parked events: {}", st.subscription,
                   start.parked.error().describe());
  if (!start.requested.empty()) retry_parked(st, start.reads);
  bool stored = false;
  if (!start.position)
    log().warn("event subscription {}: ignoring its stored position: {}", st.subscription,
               start.position.error().describe());
  else if (*start.position) {
    st.delivered = st.saved = (*start.position)->version;
    stored = true;
  }
  if (!stored) {
    st.delivered = start_after;
    st.save_position();
  }
  st.feed->start(st.delivered + 1);
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
                                 feed_options feed_opts, caf::actor reader) {
  auto& st = self->state;
  st.subscription = std::move(subscription);
  st.handler = std::move(handler);
  st.options = options;
  st.delay = options.retry_delay;
  st.store = store;
  st.checkpoints = std::move(checkpoints);
  st.reader = reader;
  st.position_saver = std::make_unique<store_saver>(self, reader);
  st.parked_saver = std::make_unique<store_saver>(self, reader);
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
  caf::behavior running{
    [self](retry_atom) { self->state.feed->resume(); },
    [self](position_atom) { return self->state.delivered; },
    [self](parked_events_atom) { return self->state.parked; },
    [self](retry_parked_atom) {
      // The reads on a reader thread; the handler calls here, in the actor.
      auto& st = self->state;
      std::vector<uint64_t> positions;
      for (auto& p : st.parked) positions.push_back(p.position);
      auto answer = self->make_response_promise();
      read_off_thread<parked_reads>(
        self, st.reader,
        [store = st.store, positions = std::move(positions)] {
          return read_parked(*store, positions);
        },
        [self, answer](parked_reads& reads) mutable {
          retry_parked(self->state, reads);
          answer.deliver(self->state.parked);
        });
      return caf::delegated<std::vector<parked_event>>{};
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
  if (!st.checkpoints) {
    notification_start nothing;
    begin(self, nothing, start_after);
    return running;
  }
  read_off_thread<notification_start>(
    self, reader,
    [cps = st.checkpoints, store, name = st.subscription] { return load_start(*cps, *store, name); },
    [self, running, start_after, held = static_cast<bool>(reader)](notification_start& start) {
      begin(self, start, start_after);
      if (held) serve_after_load(self, running);
    });
  if (!reader) return running; // loaded inline, above
  return hold_messages(self);
}

} // namespace

caf::actor spawn_notification(caf::actor_system& sys, std::string subscription,
                              event_filter filter, event_handler handler,
                              notification_options options, uint64_t start_after,
                              std::shared_ptr<journal> store, caf::actor feed,
                              std::shared_ptr<snapshot_store> checkpoints, feed_options feed_opts,
                              caf::actor reader) {
  return sys.spawn(notification_actor, std::move(subscription), std::move(filter),
                   std::move(handler), options, start_after, std::move(store), std::move(feed),
                   std::move(checkpoints), feed_opts, std::move(reader));
}

} // namespace cairn
