// saga_process: a saga instance and its command ledger over an in-memory store,
// driven by hand the way the saga manager drives it (no actors).
#include <catch2/catch.hpp>

#include <cairn/memory_journal.hpp>
#include <cairn/saga_process.hpp>

#include "bank/account.hpp"
#include "bank/transfer.hpp"
#include "bank/transfer_saga.hpp"

using namespace cairn;

namespace {

// A probe saga: on an account's opening it deposits 1 there, and gives up after the
// second timeout (to see attempts counted across reloads).
struct probe_started {};
struct probe_gave_up {
  uint32_t attempts = 0;
};
inline auto describe(type<probe_started>) { return schema<probe_started>("probe_started", 1); }
inline auto describe(type<probe_gave_up>) {
  return schema<probe_gave_up>("probe_gave_up", 1, field("attempts", &probe_gave_up::attempts));
}

struct probe_saga {
  static constexpr std::string_view name = "probe";
  using event_type = std::variant<probe_started, probe_gave_up>;
  using input_type = std::variant<bank::opened>;
  using decision = saga_decision<event_type>;
  bool started = false;
  uint32_t gave_up_after = 0;

  static std::string correlate(const envelope& e, const bank::opened&) { return e.stream.id; }
  decision react(const envelope& e, const bank::opened&) const {
    if (started) return nothing;
    return decision{probe_started{}}.send<bank::account>("ping", e.stream.id, bank::deposit{1});
  }
  decision on_timeout(const saga_failure& f) const {
    if (f.attempts < 2) return retry;
    return probe_gave_up{f.attempts};
  }
  bool done() const { return gave_up_after > 0; }
  void apply(const probe_started&) { started = true; }
  void apply(const probe_gave_up& e) { gave_up_after = e.attempts; }
};

template <class A>
envelope append(journal& store, const std::string& id, const typename A::event_type& e,
                 metadata meta = {}) {
  stream_id s{std::string{A::category}, id};
  auto r = store.append_one({s, expected_version::any,
                             {aggregate_traits<A>::event_codec::encode(e, std::move(meta))}});
  REQUIRE(r);
  auto back = store.read_stream(s, r->last_version, 1);
  REQUIRE(back);
  REQUIRE(back->size() == 1);
  return back->front();
}

std::unique_ptr<saga_process> load(journal& store, std::shared_ptr<const saga_model> m,
                                   const std::string& key) {
  auto p = saga_process::load(store, std::move(m), key);
  REQUIRE(p);
  return std::move(*p);
}

/// Stores what `p` decided and returns the commands that then become ready.
std::vector<saga_dispatch> commit(journal& store, saga_process& p) {
  REQUIRE(p.has_append());
  auto r = store.append_one(p.take_append());
  REQUIRE(r);
  p.committed(*r);
  return p.take_ready();
}

std::vector<std::string> types_of(const append_request& req) {
  std::vector<std::string> out;
  for (auto& e : req.events) out.push_back(e.type);
  return out;
}

const std::string* entry(const metadata& m, const std::string& key) { return m.find(key); }

struct transfer_fixture {
  std::shared_ptr<journal> store = make_memory_journal();
  std::shared_ptr<const saga_model> model = make_saga_model<bank::transfer_saga>();
  envelope requested;

  transfer_fixture() {
    append<bank::account>(*store, "a", bank::opened{"ann"});
    append<bank::account>(*store, "a", bank::deposited{100});
    requested = append<bank::transfer>(*store, "t1", bank::transfer_requested{"a", "b", 30});
  }

  /// The instance after the request, with its debit sent.
  std::pair<std::unique_ptr<saga_process>, saga_dispatch> started() {
    auto p = load(*store, model, "t1");
    REQUIRE(p->on_event(requested, *store));
    auto sent = commit(*store, *p);
    REQUIRE(sent.size() == 1);
    return {std::move(p), sent.front()};
  }
};

} // namespace

TEST_CASE("a saga instance is routed by correlate, then by the command id its commands carry") {
  transfer_fixture f;
  REQUIRE(*saga_process::route(*f.model, f.requested) == "t1");
  auto plain = append<bank::account>(*f.store, "a", bank::deposited{1});
  REQUIRE(saga_process::route(*f.model, plain)->empty()); // nobody's: no correlate for it
  metadata m;
  m.entries.emplace_back(std::string{command_id_key}, "saga_transfer-t-x#7");
  auto caused = append<bank::account>(*f.store, "a", bank::deposited{1}, m);
  REQUIRE(*saga_process::route(*f.model, caused) == "t-x");
  m.entries.back().second = "saga_other-t-x#7"; // another saga's command
  auto foreign = append<bank::account>(*f.store, "a", bank::deposited{1}, m);
  REQUIRE(saga_process::route(*f.model, foreign)->empty());
}

TEST_CASE("a saga's own and checkpoint streams are never routed back to it") {
  transfer_fixture f;
  envelope own = f.requested;
  own.stream = stream_id{"saga_transfer", "t1"};
  REQUIRE(saga_process::route(*f.model, own)->empty());
  own.stream = saga_checkpoint_stream("transfer");
  REQUIRE(saga_process::route(*f.model, own)->empty());
}

TEST_CASE("a starting event stores the saga's event and its command before the command goes") {
  transfer_fixture f;
  auto p = load(*f.store, f.model, "t1");
  REQUIRE(p->empty());
  REQUIRE(p->on_event(f.requested, *f.store));
  REQUIRE(p->take_ready().empty()); // nothing is sent before it is stored
  auto req = p->take_append();
  REQUIRE(req.stream == stream_id{"saga_transfer", "t1"});
  REQUIRE(req.expected_version == 0);
  REQUIRE(types_of(req) == std::vector<std::string>{"transfer_started", "cairn.saga_sent"});
  for (auto& e : req.events) {
    REQUIRE(e.meta.correlation_id == "t1");
    REQUIRE(e.meta.causation_id == "transfer-t1@1");
    REQUIRE(*entry(e.meta, "cairn.position") == std::to_string(f.requested.position));
  }
  auto r = f.store->append_one(std::move(req));
  REQUIRE(r);
  p->committed(*r);
  auto sent = p->take_ready();
  REQUIRE(sent.size() == 1);
  auto& cmd = sent.front().command;
  REQUIRE(cmd.target == stream_id{"account", "a"});
  REQUIRE(cmd.type == "withdraw");
  REQUIRE(cmd.expected_version == 2); // account-a's version when the step was decided
  REQUIRE(cmd.meta.correlation_id == "t1");
  REQUIRE(cmd.meta.causation_id == "transfer-t1@1");
  REQUIRE(*entry(cmd.meta, "cairn.command_id") == "saga_transfer-t1#1");
  REQUIRE(p->pending_steps() == 1);
}

TEST_CASE("a reloaded instance re-sends its pending command as stored and skips what it processed") {
  transfer_fixture f;
  auto [p, sent] = f.started();
  auto again = load(*f.store, f.model, "t1");
  REQUIRE(again->last_position() == f.requested.position);
  REQUIRE(again->pending_steps() == 1);
  auto resumed = again->resume();
  REQUIRE(resumed.size() == 1);
  REQUIRE(resumed.front().command.expected_version == sent.command.expected_version);
  REQUIRE(resumed.front().command.meta == sent.command.meta);
  REQUIRE(resumed.front().command.payload == sent.command.payload);
  REQUIRE(again->on_event(f.requested, *f.store));
  REQUIRE_FALSE(again->has_append()); // already processed: nothing happens twice
}

TEST_CASE("the event a command caused resolves its step and moves the saga on") {
  transfer_fixture f;
  auto [p, sent] = f.started();
  auto withdrawn = append<bank::account>(*f.store, "a", bank::withdrawn{30}, sent.command.meta);
  REQUIRE(*saga_process::route(*f.model, withdrawn) == "t1");
  REQUIRE(p->on_event(withdrawn, *f.store));
  auto req = p->take_append();
  REQUIRE(types_of(req) ==
          std::vector<std::string>{"cairn.saga_done", "transfer_debited", "cairn.saga_sent"});
  REQUIRE(req.events[1].meta.causation_id == "account-a@3");
  REQUIRE(p->pending_steps() == 1); // the credit
}

TEST_CASE("a re-sent command that conflicts because it was applied is not sent again") {
  transfer_fixture f;
  auto [p, sent] = f.started();
  // The first copy was applied; the reply to the re-sent copy is a conflict.
  append<bank::account>(*f.store, "a", bank::withdrawn{30}, sent.command.meta);
  REQUIRE(p->on_reply(sent.step_id, sent.send_seq,
                      error{errc::conflict, "expected version 2, found 3"}, *f.store));
  REQUIRE(p->take_ready().empty());
  REQUIRE_FALSE(p->expects(sent.step_id, sent.send_seq)); // its event is on its way
  REQUIRE(p->pending_steps() == 1);
}

TEST_CASE("a command that conflicts with another writer is sent again at the new version") {
  transfer_fixture f;
  auto [p, sent] = f.started();
  append<bank::account>(*f.store, "a", bank::deposited{5}); // someone else
  REQUIRE(p->on_reply(sent.step_id, sent.send_seq, error{errc::conflict, "moved"}, *f.store));
  auto again = p->take_ready();
  REQUIRE(again.size() == 1);
  REQUIRE(again.front().command.expected_version == 3);
  REQUIRE(again.front().send_seq == sent.send_seq + 1);
  REQUIRE(again.front().command.meta == sent.command.meta); // the same command id
  // A late reply to the superseded send changes nothing.
  REQUIRE(p->on_reply(sent.step_id, sent.send_seq, error{errc::rejected, "late"}, *f.store));
  REQUIRE_FALSE(p->has_append());
}

TEST_CASE("a rejected step records the failure and runs the saga's compensation") {
  transfer_fixture f;
  auto [p, sent] = f.started();
  append<bank::account>(*f.store, "a", bank::withdrawn{30}, sent.command.meta);
  auto withdrawn = f.store->read_stream({"account", "a"}, 3, 1);
  REQUIRE(p->on_event(withdrawn->front(), *f.store));
  auto credit = commit(*f.store, *p);
  REQUIRE(credit.size() == 1);
  REQUIRE(credit.front().command.target == stream_id{"account", "b"});
  REQUIRE(p->on_reply(credit.front().step_id, credit.front().send_seq,
                      error{errc::rejected, "account not open"}, *f.store));
  auto req = p->take_append();
  REQUIRE(types_of(req) == std::vector<std::string>{"cairn.saga_failed", "transfer_credit_refused",
                                                    "cairn.saga_sent"});
  REQUIRE(req.events[1].meta.causation_id == "saga_transfer-t1#2"); // the refused command
  auto r = f.store->append_one(std::move(req));
  REQUIRE(r);
  p->committed(*r);
  auto refund = p->take_ready();
  REQUIRE(refund.size() == 1);
  REQUIRE(refund.front().command.target == stream_id{"account", "a"});
  REQUIRE(refund.front().command.type == "deposit");
  REQUIRE(refund.front().command.meta.causation_id == "saga_transfer-t1#2");
}

TEST_CASE("an accepted no-op finishes its step, an unavailable one is sent again later") {
  transfer_fixture f;
  auto [p, sent] = f.started();
  REQUIRE(p->on_reply(sent.step_id, sent.send_seq, error{errc::unavailable, "stopping"}, *f.store));
  auto delayed = p->take_delayed();
  REQUIRE(delayed.size() == 1);
  p->resend(delayed.front().first, delayed.front().second);
  auto again = p->take_ready();
  REQUIRE(again.size() == 1);
  REQUIRE(p->on_reply(again.front().step_id, again.front().send_seq, command_reply{2, 0, 0},
                      *f.store));
  REQUIRE(types_of(p->take_append()) == std::vector<std::string>{"cairn.saga_done"});
  REQUIRE(p->pending_steps() == 0);
}

TEST_CASE("timeouts are retried as the saga decides, counting attempts across reloads") {
  auto store = make_memory_journal();
  auto model = make_saga_model<probe_saga>();
  auto opened = append<bank::account>(*store, "a", bank::opened{"ann"});
  auto p = load(*store, model, "a");
  REQUIRE(p->on_event(opened, *store));
  auto sent = commit(*store, *p);
  REQUIRE(sent.size() == 1);
  REQUIRE(p->on_timeout(sent.front().step_id, sent.front().send_seq, *store));
  auto retried = commit(*store, *p);
  REQUIRE(retried.size() == 1);
  REQUIRE(retried.front().command.expected_version == sent.front().command.expected_version);
  // A restart: the reloaded instance knows this is the second attempt.
  auto q = load(*store, model, "a");
  auto resumed = q->resume();
  REQUIRE(resumed.size() == 1);
  REQUIRE(q->on_timeout(resumed.front().step_id, resumed.front().send_seq, *store));
  auto req = q->take_append();
  REQUIRE(types_of(req) == std::vector<std::string>{"cairn.saga_failed", "probe_gave_up"});
  REQUIRE(q->finished());
  auto state = static_cast<const probe_saga*>(q->instance().state());
  REQUIRE(state->gave_up_after == 2);
}

TEST_CASE("load_saga_state replays a stored instance") {
  transfer_fixture f;
  auto [p, sent] = f.started();
  auto s = load_saga_state<bank::transfer_saga>(*f.store, "t1");
  REQUIRE(s);
  REQUIRE(s->at == bank::transfer_saga::phase::debiting);
  REQUIRE(s->amount == 30);
  auto fresh = load_saga_state<bank::transfer_saga>(*f.store, "nope");
  REQUIRE(fresh);
  REQUIRE(fresh->at == bank::transfer_saga::phase::idle);
}

// --- Parking ------------------------------------------------------------------------

namespace {

struct odd_started {};
inline auto describe(type<odd_started>) { return schema<odd_started>("odd_started", 1); }

/// Sends a deposit to an account whose id it takes from the event; with `bad` set,
/// to an empty id; its on_rejected compensates with the same mistake.
struct careless_saga {
  static constexpr std::string_view name = "careless";
  using event_type = std::variant<odd_started>;
  using input_type = std::variant<bank::opened>;
  using decision = saga_decision<event_type>;
  static inline bool bad_compensation = false;
  bool started = false;
  static std::string correlate(const envelope& e, const bank::opened&) { return e.stream.id; }
  decision react(const envelope&, const bank::opened&) const {
    return decision{odd_started{}}.send<bank::account>("first", "", bank::deposit{1});
  }
  decision on_rejected(const saga_failure&) const {
    if (bad_compensation) return decision{}.send<bank::account>("undo", "", bank::deposit{1});
    return nothing;
  }
  bool done() const { return started; }
  void apply(const odd_started&) { started = true; }
};

} // namespace

TEST_CASE("an invalid command fails at once into on_rejected, one decided there is an error") {
  auto store = make_memory_journal();
  auto model = make_saga_model<careless_saga>();
  auto opened = append<bank::account>(*store, "c1", bank::opened{"o"});
  careless_saga::bad_compensation = false;
  auto p = load(*store, model, "c1");
  REQUIRE(p->on_event(opened, *store));
  auto req = p->take_append();
  REQUIRE(types_of(req) == std::vector<std::string>{"odd_started", "cairn.saga_failed"});
  REQUIRE(p->pending_steps() == 0);
  REQUIRE(p->finished());

  careless_saga::bad_compensation = true;
  auto q = load(*store, model, "c2");
  auto opened2 = append<bank::account>(*store, "c2", bank::opened{"o"});
  auto failed = q->on_event(opened2, *store);
  careless_saga::bad_compensation = false;
  REQUIRE_FALSE(failed);
  REQUIRE(is_invalid_argument(failed.error()));
  REQUIRE(failed.error().message().find("\"undo\"") != std::string::npos);
}

TEST_CASE("a parked process holds its inputs, survives a reload, and unparks or closes") {
  transfer_fixture f;
  auto fresh = load(*f.store, f.model, "t1");
  fresh->park(error{errc::invalid_argument, "react threw"}, {f.requested.position});
  REQUIRE(fresh->parked());
  REQUIRE(fresh->resume().empty()); // sends nothing while parked
  auto later = append<bank::account>(*f.store, "a", bank::deposited{1});
  REQUIRE(fresh->on_event(later, *f.store)); // held, not processed
  auto req = fresh->take_append();
  REQUIRE(types_of(req) == std::vector<std::string>{"cairn.saga_parked", "cairn.saga_held"});
  REQUIRE(f.store->append_one(std::move(req)));

  auto again = load(*f.store, f.model, "t1");
  REQUIRE(again->parked());
  REQUIRE(again->park_reason()->reason == "react threw");
  REQUIRE(again->held() == std::vector<uint64_t>{f.requested.position, later.position});
  REQUIRE_FALSE(again->finished());
  REQUIRE(again->unpark(*f.store));
  REQUIRE_FALSE(again->parked());
  auto sent = commit(*f.store, *again); // the held request is processed: the debit goes
  REQUIRE(sent.size() == 1);
  REQUIRE(sent.front().command.type == "withdraw");
  auto resumed = load(*f.store, f.model, "t1");
  REQUIRE_FALSE(resumed->parked());
  REQUIRE(resumed->pending_steps() == 1);

  auto other = load(*f.store, f.model, "t9");
  other->park(error{errc::corrupt, "x"});
  other->close("by hand");
  REQUIRE(other->finished());
  REQUIRE(f.store->append_one(other->take_append()));
  REQUIRE(load(*f.store, f.model, "t9")->finished());
}

TEST_CASE("a retried parked event is handled after later inputs, and only once") {
  transfer_fixture f;
  auto p = load(*f.store, f.model, "t1");
  auto later = append<bank::account>(*f.store, "a", bank::deposited{1});
  REQUIRE(p->on_event(later, *f.store)); // an input after it went first (it decides nothing)
  REQUIRE(p->last_position() == later.position);
  REQUIRE(p->on_event(f.requested, *f.store));
  REQUIRE_FALSE(p->has_append()); // on_event skips what comes before its position
  REQUIRE(p->on_late_event(f.requested, *f.store));
  auto req = p->take_append();
  REQUIRE(types_of(req) == std::vector<std::string>{"transfer_started", "cairn.saga_sent"});
  REQUIRE(*entry(req.events.front().meta, "cairn.position") == std::to_string(f.requested.position));
  auto r = f.store->append_one(std::move(req));
  REQUIRE(r);
  p->committed(*r);
  REQUIRE(p->take_ready().size() == 1);
  // Retried again (its dead letter was not marked done before a crash): nothing twice.
  auto again = load(*f.store, f.model, "t1");
  REQUIRE(again->on_late_event(f.requested, *f.store));
  REQUIRE_FALSE(again->has_append());
  REQUIRE(again->pending_steps() == 1);
}
