// Sagas (process managers): long-running processes that react to committed events by
// sending commands, keep their own state event-sourced, and compensate when a step
// fails. A saga is a plain type, like an aggregate:
//
//   struct transfer_saga {
//     static constexpr std::string_view name = "transfer"; // streams saga_transfer-<key>
//     using event_type = std::variant<started, debited, ...>;         // its own history
//     using input_type = std::variant<transfer_requested, withdrawn>; // what it reacts to
//     using decision = cairn::saga_decision<event_type>;
//
//     // Which instance an event starts or concerns ("" for none). Needed only for
//     // events the saga's own commands did not cause: those find their way back.
//     static std::string correlate(const cairn::envelope& e, const transfer_requested&) {
//       return e.stream.id;
//     }
//     decision react(const transfer_requested& r) const {  // or react(const envelope&, const E&)
//       if (phase != idle) return cairn::nothing;
//       return decision{started{r.from, r.to, r.amount}}.send<account>("debit", r.from, withdraw{r.amount});
//     }
//     decision on_rejected(const cairn::saga_failure& f) const;  // optional: compensate
//     decision on_timeout(const cairn::saga_failure& f) const;   // optional: default cairn::retry
//     bool done() const;                                         // finished: nothing more to do
//     void apply(const started& e);                              // one per event_type alternative
//   };
//
// Runtime contract (see saga_process.hpp for the mechanics):
//  - An instance is identified by its correlation key. Its events go to the stream
//    "saga_<name>-<key>", together with the runtime's records of the commands it sent,
//    in one atomic append per step, so a crash mid-saga resumes where it was.
//  - Commands are sent only after the events and the "command sent" record that
//    preceded them are durable. Their metadata: correlation_id = the key,
//    causation_id = the id of the event (event_id()) or failed command that caused
//    them, and entry "cairn.command_id" = "<saga stream>#<step number>". Aggregates
//    copy command metadata onto their events, so all of it flows on.
//  - Idempotence, by expected versions: every command is sent with the target's
//    stream version read just before its "sent" record was stored, and that version
//    is stored with it. A command re-sent after a crash or a timeout carries the same
//    expected version, so at most one copy can ever be applied; a conflict makes the
//    runtime look for an event carrying the command's id in the target stream after
//    that version (found: the step was applied, nothing is re-sent; not found:
//    someone else wrote, so it re-sends at the new version). This needs no
//    deduplication table in the aggregates and no change to them.
//  - Each instance stores the position of the last input it processed, and the
//    manager checkpoints its position in the log plus a low-water mark (no instance
//    list, so a checkpoint stays a few bytes with any number of instances open):
//    after a restart it re-reads its instances' streams from the low-water mark to
//    find the open ones, then the log from the checkpoint, and instances skip inputs
//    they already processed. Nothing is lost and nothing is applied twice.
//  - Nothing is skipped and nothing spins. A command whose target is not a valid
//    stream id fails at once and goes to on_rejected with invalid_argument. A
//    decision that cannot be carried out (react, on_rejected or on_timeout throws, an
//    event its apply cannot take, an invalid command decided while compensating, a
//    write the store refuses) parks the instance: a durable "cairn.saga_parked"
//    record with the reason, the input it failed on held for later, and later inputs
//    held too. Other instances go on. node::parked_sagas and `cairn sagas failed`
//    list parked instances; node::retry_saga (or `cairn sagas retry` plus a restart)
//    loads one afresh, after the fix, and processes what it held; close_saga (or
//    `cairn sagas close`) ends it. An input no instance can take (correlate throws,
//    the event does not decode or upcast, its instance cannot be loaded) is parked
//    likewise in the saga's dead-letter stream ("cairn.saga_unrouted", with the
//    reason and the event's position, stream and type), and the saga goes on:
//    node::parked_saga_events and `cairn sagas failed` list it, retry_saga_event (or
//    `cairn sagas retry SAGA --event POSITION` plus a restart) routes it again after
//    the fix and hands it to its instance even if later inputs went first (once:
//    the instance skips an input it already handled), close_saga_event discards it.
//    Transient store errors are retried instead.
//  - A timed-out command may still be applied later. If the saga compensates on a
//    timeout instead of retrying, the late command's events still reach react() as
//    inputs (routed by their command id), so the saga can react to them too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cairn/aggregate_model.hpp"
#include "cairn/decision.hpp"
#include "cairn/envelope.hpp"
#include "cairn/error.hpp"

namespace cairn {

/// A stored event's id: "<stream>@<version>", e.g. "account-acc-1@17". Unique in a
/// store and stable across processes; used as the causation_id of the commands an
/// event causes.
inline std::string event_id(const envelope& e) {
  return e.stream.str() + "@" + std::to_string(e.version);
}

/// The metadata key under which a saga's command carries its id (and every event the
/// command causes carries it too).
inline constexpr std::string_view command_id_key = "cairn.command_id";

/// The stream category of saga `name`'s instances: "saga_<name>".
inline std::string saga_category(std::string_view name) {
  return "saga_" + std::string{name};
}

/// "Try the timed-out command again" (same command, same expected version, so a
/// copy that did arrive late cannot be applied twice): `return cairn::retry;`
struct retry_t {};
inline constexpr retry_t retry{};

/// One command a saga wants sent: a step name (for failure reports) and the command.
struct saga_command {
  std::string step;
  command_message command;
};

/// Why a step failed, as handed to on_rejected / on_timeout.
struct saga_failure {
  std::string step;   ///< the name given to send()
  stream_id target;   ///< the aggregate the command went to
  cairn::error error; ///< rejected (the business reason), not_found, invalid_argument; or timeout
  uint32_t attempts = 1; ///< times the command has been sent, counted across restarts
  const std::string& reason() const noexcept { return error.message(); }
};

/// What a saga's react, on_rejected or on_timeout returns: events for its own history
/// (stored atomically, then applied), commands to send once those are stored, or
/// retry (on_timeout only).
template <class Event>
class saga_decision {
public:
  saga_decision() = default;
  saga_decision(nothing_t) {}
  saga_decision(retry_t) : retry_(true) {}
  /// Exactly one event (any alternative of Event).
  template <class E, class = std::enable_if_t<std::is_constructible_v<Event, E&&> &&
                                              !std::is_same_v<std::decay_t<E>, saga_decision>>>
  saga_decision(E&& event) {
    events_.emplace_back(std::forward<E>(event));
  }
  /// Several events, stored atomically in this order.
  saga_decision(std::vector<Event> events) : events_(std::move(events)) {}

  /// Adds command `command` for aggregate A's instance `id`, named `step`.
  template <class A, class C>
  saga_decision& send(std::string step, std::string id, const C& command) & {
    commands_.push_back(saga_command{
      std::move(step), make_command<A>(std::move(id), typename A::command_type{command})});
    return *this;
  }
  template <class A, class C>
  saga_decision&& send(std::string step, std::string id, const C& command) && {
    return std::move(send<A>(std::move(step), std::move(id), command));
  }

  bool retry() const noexcept { return retry_; }
  const std::vector<Event>& events() const noexcept { return events_; }
  std::vector<Event>& events() noexcept { return events_; }
  const std::vector<saga_command>& commands() const noexcept { return commands_; }
  std::vector<saga_command>& commands() noexcept { return commands_; }

private:
  bool retry_ = false;
  std::vector<Event> events_;
  std::vector<saga_command> commands_;
};

namespace detail {

template <class S, class E, class = void>
struct has_react : std::false_type {};
template <class S, class E>
struct has_react<S, E, std::void_t<decltype(std::declval<const S&>().react(std::declval<const E&>()))>>
  : std::true_type {};

template <class S, class E, class = void>
struct has_react_with_envelope : std::false_type {};
template <class S, class E>
struct has_react_with_envelope<S, E,
                               std::void_t<decltype(std::declval<const S&>().react(
                                 std::declval<const envelope&>(), std::declval<const E&>()))>>
  : std::true_type {};

template <class S, class E, class = void>
struct has_correlate : std::false_type {};
template <class S, class E>
struct has_correlate<S, E,
                     std::void_t<decltype(S::correlate(std::declval<const envelope&>(),
                                                       std::declval<const E&>()))>>
  : std::true_type {};

template <class S, class = void>
struct has_on_rejected : std::false_type {};
template <class S>
struct has_on_rejected<S, std::void_t<decltype(std::declval<const S&>().on_rejected(
                            std::declval<const saga_failure&>()))>> : std::true_type {};

template <class S, class = void>
struct has_on_timeout : std::false_type {};
template <class S>
struct has_on_timeout<S, std::void_t<decltype(std::declval<const S&>().on_timeout(
                           std::declval<const saga_failure&>()))>> : std::true_type {};

template <class S, class = void>
struct has_done : std::false_type {};
template <class S>
struct has_done<S, std::void_t<decltype(bool{std::declval<const S&>().done()})>>
  : std::true_type {};

template <class S, class = void>
struct has_saga_name : std::false_type {};
template <class S>
struct has_saga_name<S, std::void_t<decltype(std::string_view{S::name})>> : std::true_type {};

} // namespace detail

/// The uniform view of a saga type S that the runtime and the test kit use.
template <class S>
struct saga_traits {
  static_assert(std::is_default_constructible_v<S>,
                "cairn: a saga's default-constructed value is the state before its first event");
  static_assert(detail::has_saga_name<S>::value,
                "cairn: a saga needs `static constexpr std::string_view name = \"...\";`");
  static_assert(detail::is_variant<typename S::event_type>::value,
                "cairn: a saga needs `using event_type = std::variant<...>;` (its own events)");
  static_assert(detail::is_variant<typename S::input_type>::value,
                "cairn: a saga needs `using input_type = std::variant<...>;` (the events it reacts to)");
  static_assert(detail::has_done<S>::value,
                "cairn: a saga needs `bool done() const` (true once it has nothing more to do)");

  using state_type = S;
  using event_type = typename S::event_type;
  using input_type = typename S::input_type;
  using decision_type = saga_decision<event_type>;
  using event_codec = variant_codec<event_type>;
  using input_codec = variant_codec<input_type>;

  static constexpr std::string_view name() { return S::name; }

  /// Runs react for the input alternative held by `input`.
  static decision_type react(const S& state, const envelope& env, const input_type& input) {
    return std::visit(
      [&](const auto& e) -> decision_type {
        using E = std::decay_t<decltype(e)>;
        if constexpr (detail::has_react_with_envelope<S, E>::value) return state.react(env, e);
        else if constexpr (detail::has_react<S, E>::value) return state.react(e);
        else {
          static_assert(detail::always_false<E>,
                        "cairn: the saga has no react handler for this input event (see the "
                        "instantiation below for which). Add `decision react(const Event&) const` "
                        "or `decision react(const cairn::envelope&, const Event&) const`.");
          return {};
        }
      },
      input);
  }

  /// The key of the instance `input` starts or concerns, from S::correlate, or "" if
  /// S declares no correlate for its type.
  static std::string correlate(const envelope& env, const input_type& input) {
    return std::visit(
      [&](const auto& e) -> std::string {
        using E = std::decay_t<decltype(e)>;
        if constexpr (detail::has_correlate<S, E>::value) return std::string{S::correlate(env, e)};
        else return {};
      },
      input);
  }

  /// True if S declares correlate for the input type named `type`.
  static bool correlates(std::string_view type) {
    return correlates_any(type, static_cast<input_type*>(nullptr));
  }

  /// A step was refused for good. Default: nothing (the saga stays as it is).
  static decision_type on_rejected(const S& state, const saga_failure& f) {
    if constexpr (detail::has_on_rejected<S>::value) return decision_type(state.on_rejected(f));
    else return {};
  }

  /// A step got no answer in time. Default: retry.
  static decision_type on_timeout(const S& state, const saga_failure& f) {
    if constexpr (detail::has_on_timeout<S>::value) return decision_type(state.on_timeout(f));
    else return decision_type{retry};
  }

  static bool done(const S& state) { return state.done(); }

  /// Folds one of the saga's own events into its state.
  static void evolve(S& state, const event_type& event) {
    std::visit([&](const auto& e) { evolve_one(state, e); }, event);
  }

  template <class E>
  static void evolve_one(S& state, const E& event) {
    if constexpr (detail::has_member_apply<S, E>::value) {
      state.apply(event);
    } else if constexpr (detail::has_free_evolve<S, E>::value) {
      state = detail::call_free_evolve(static_cast<const S&>(state), event);
    } else {
      static_assert(detail::always_false<E>,
                    "cairn: the saga has no handler for this event of its own (see the "
                    "instantiation below for which). Add a member `void apply(const Event&)`.");
    }
  }

  /// Empty if the saga's own and input type names are usable; else the problem.
  static std::string check_names() {
    if (auto p = event_codec::check_names(); !p.empty()) return "its events: " + p;
    if (auto p = input_codec::check_names(); !p.empty()) return "its inputs: " + p;
    return check_reserved(static_cast<event_type*>(nullptr));
  }

private:
  template <class... Ts>
  static bool correlates_any(std::string_view type, std::variant<Ts...>*) {
    return ((schema_of<Ts>().name == type && detail::has_correlate<S, Ts>::value) || ...);
  }
  template <class... Ts>
  static std::string check_reserved(std::variant<Ts...>*) {
    std::string out;
    auto check = [&](std::string_view n) {
      if (out.empty() && n.substr(0, 6) == "cairn.")
        out = "event type \"" + std::string{n} + "\" uses the reserved prefix \"cairn.\"";
    };
    (check(schema_of<Ts>().name), ...);
    return out;
  }
};

} // namespace cairn
