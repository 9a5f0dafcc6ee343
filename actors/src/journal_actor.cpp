// The journal actor: owns the store's write side (append_inbox.hpp) for the node.
// Aggregates append through the inbox directly; this actor keeps the inbox alive
// while the node runs, stops it on exit, and serves the request form of append for
// callers that append rarely (sagas). (Committed events reach projections and other
// followers through the event feed: event_feed.hpp.)
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "append_inbox.hpp"
#include "message_types.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

struct journal_state {
  static inline const char* name = "cairn.journal";

  std::shared_ptr<journal> store;
  std::shared_ptr<append_inbox> inbox;
  // Request-form appends in the inbox, by tag.
  std::unordered_map<uint64_t, caf::response_promise> requests;
  uint64_t next_tag = 0;

  ~journal_state() {
    // Stopping: the batch being written completes, the rest fail. A request in that
    // batch is answered to this actor, which is gone by then: its outcome is unknown.
    if (inbox) inbox->stop();
    for (auto& kv : requests)
      kv.second.deliver(to_caf(error{
        errc::unavailable, "the journal stopped; the append may or may not have been written"}));
  }
};

using journal_actor_t = caf::stateful_actor<journal_state>;

void answer_request(journal_actor_t* self, uint64_t tag, expected<append_result> r) {
  auto i = self->state.requests.find(tag);
  if (i == self->state.requests.end()) return;
  auto rp = std::move(i->second);
  self->state.requests.erase(i);
  if (r) rp.deliver(*r);
  else rp.deliver(to_caf(r.error()));
}

caf::behavior journal_actor(journal_actor_t* self, std::shared_ptr<journal> store,
                            std::shared_ptr<append_inbox> inbox) {
  self->state.store = std::move(store);
  self->state.inbox = std::move(inbox);
  return {
    // The request form: the inbox answers this actor, which answers the request.
    [self](append_atom, append_request& req) -> caf::result<append_result> {
      auto& st = self->state;
      auto tag = ++st.next_tag;
      auto rp = self->make_response_promise();
      st.requests.emplace(tag, rp);
      st.inbox->submit(std::move(req), caf::actor_cast<caf::actor>(self), tag);
      return rp;
    },
    // The one-way form, for callers without the inbox: answered by (appended, tag, ...).
    [self](append_atom, append_request& req, uint64_t tag) {
      self->state.inbox->submit(std::move(req),
                                caf::actor_cast<caf::actor>(self->current_sender()), tag);
    },
    [self](appended_atom, uint64_t tag, append_result& r) { answer_request(self, tag, r); },
    [self](appended_atom, uint64_t tag, const caf::error& err) {
      answer_request(self, tag, from_caf(err));
    },
    [self](appended_atom, append_answers& batch) {
      for (auto& a : batch.items) {
        if (a.result) self->send(a.to, appended_atom::value, a.tag, std::move(*a.result));
        else self->send(a.to, appended_atom::value, a.tag, to_caf(a.result.error()));
      }
    },
    [self](position_atom) { return self->state.store->head_position(); },
  };
}

} // namespace

journal_handle spawn_journal(caf::actor_system& sys, std::shared_ptr<journal> store) {
  journal_handle h;
  h.inbox = std::make_shared<append_inbox>(store);
  h.actor = sys.spawn(journal_actor, std::move(store), h.inbox);
  h.inbox->set_replier(h.actor);
  return h;
}

} // namespace cairn
