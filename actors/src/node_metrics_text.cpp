// node::metrics_text's rendering: the registry's counters, plus what the store, the
// event feed, the projections and the saga managers report when asked at scrape time.
#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <optional>

#include "cairn/saga_options.hpp"
#include "event_feed.hpp"
#include "message_types.hpp"
#include "node_metrics.hpp"
#include "saga_manager.hpp"

namespace cairn {

namespace {

/// How long a scrape waits for one actor's answer before leaving its figures out.
constexpr auto ask_timeout = std::chrono::seconds{2};

using metrics::kind;

/// Asks `who` with `msg...`; returns its answer, or nothing in time.
template <class T, class... Ts>
std::optional<T> ask(caf::scoped_actor& self, const caf::actor& who, Ts... msg) {
  std::optional<T> result;
  if (!who) return result;
  self->request(who, ask_timeout, msg...)
    .receive([&](T& answer) { result = std::move(answer); }, [&](caf::error&) {});
  return result;
}

void render_projections(caf::scoped_actor& self, const metrics_sources& from, uint64_t head,
                        metrics::text_writer& out) {
  std::vector<std::pair<std::string, uint64_t>> positions;
  for (auto& [name, actor] : from.projections)
    if (auto p = ask<uint64_t>(self, actor, position_atom::value)) positions.emplace_back(name, *p);
  if (positions.empty()) return;
  out.family("cairn_projection_position", "Last store position the projection has applied.",
             kind::gauge);
  for (auto& [name, p] : positions) out.sample({{"projection", name}}, double(p));
  out.family("cairn_projection_lag_events",
             "Store positions committed that the projection has not applied yet.", kind::gauge);
  for (auto& [name, p] : positions) out.sample({{"projection", name}}, double(head > p ? head - p : 0));
}

void render_sagas(caf::scoped_actor& self, const metrics_sources& from, uint64_t head,
                  metrics::text_writer& out) {
  std::vector<std::pair<std::string, saga_status>> sagas;
  for (auto& [name, actor] : from.sagas)
    if (auto s = ask<saga_status>(self, actor, caf::get_atom::value)) sagas.emplace_back(name, *s);
  if (sagas.empty()) return;
  auto each = [&](const char* name, const char* help, kind k, auto value) {
    out.family(name, help, k);
    for (auto& [saga, s] : sagas) out.sample({{"saga", saga}}, double(value(s)));
  };
  each("cairn_saga_position", "Store position up to which the saga has processed every event.",
       kind::gauge, [](const saga_status& s) { return s.processed; });
  each("cairn_saga_lag_events", "Store positions committed that the saga has not processed yet.",
       kind::gauge, [&](const saga_status& s) { return head > s.processed ? head - s.processed : 0; });
  each("cairn_saga_instances_open", "Saga instances started and not finished.", kind::gauge,
       [](const saga_status& s) { return s.open; });
  each("cairn_saga_steps_pending", "Commands sagas sent that are not known applied or failed yet.",
       kind::gauge, [](const saga_status& s) { return s.pending_steps; });
  each("cairn_saga_instances_parked",
       "Saga instances parked as failed, waiting for an operator's retry or close.", kind::gauge,
       [](const saga_status& s) { return s.parked; });
  each("cairn_saga_events_parked",
       "Input events no saga instance could take (routing threw, undecodable), parked "
       "for an operator's retry or close.",
       kind::gauge, [](const saga_status& s) { return s.parked_events; });
  each("cairn_saga_rounds_failed_total",
       "Saga processing rounds whose store write failed (they are retried).", kind::counter,
       [](const saga_status& s) { return s.rounds_failed; });
}

void render_feed(caf::scoped_actor& self, const metrics_sources& from, metrics::text_writer& out) {
  auto s = ask<event_feed_stats>(self, from.feed, feed_stats_atom::value);
  if (!s) return;
  auto one = [&](const char* name, const char* help, kind k, double v) {
    out.family(name, help, k);
    out.sample({}, v);
  };
  one("cairn_feed_ring_events", "Recent committed events the event feed holds in memory.",
      kind::gauge, double(s->ring_events));
  one("cairn_feed_ring_capacity", "Most events the event feed's ring may hold (feed-ring-events).",
      kind::gauge, double(s->ring_capacity));
  one("cairn_feed_ring_peak_events", "Most events the event feed's ring has held.", kind::gauge,
      double(s->peak_ring_events));
  one("cairn_feed_parked_followers", "Followers (projections, subscriptions, sagas) waiting for "
      "the next commit.", kind::gauge, double(s->parked));
  out.family("cairn_feed_requests_total",
             "Follower requests the event feed answered: from its ring (live) or by sending the "
             "follower to read the store (behind).",
             kind::counter);
  out.sample({{"answer", "live"}}, double(s->answered_live));
  out.sample({{"answer", "behind"}}, double(s->answered_behind));
  one("cairn_feed_store_reads_total", "Times the event feed read the store to close a gap.",
      kind::counter, double(s->store_reads));
}

} // namespace

std::string render_node_metrics(caf::actor_system& sys, const metrics_sources& from) {
  metrics::text_writer out;
  from.registry.render(out);
  auto head = from.store.head_position();
  out.family("cairn_store_head_position", "Position of the last event committed to the store.",
             kind::gauge);
  out.sample({}, double(head));
  if (auto* own = from.store.store_metrics()) own->render(out);
  caf::scoped_actor self{sys};
  render_projections(self, from, head, out);
  render_sagas(self, from, head, out);
  render_feed(self, from, out);
  return out.take();
}

} // namespace cairn
