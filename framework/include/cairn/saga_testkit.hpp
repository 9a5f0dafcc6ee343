// The saga test kit: given(the saga's own events).when(an input, a rejection or a
// timeout).then(events).sends(command), with no store and no actors. Like the decider
// test kit, every check also proves that emitted events round-trip through the
// binary and JSON codecs.
//
//   auto out = cairn::testkit::saga_given<bank::transfer_saga>(bank::transfer_started{"t1", "a", "b", 5})
//                .when(cairn::stream_id{"account", "a"}, bank::withdrawn{5});
//   REQUIRE(out.then(bank::transfer_debited{}));
//   REQUIRE(out.sends<bank::account>("credit", "b", bank::deposit{5}));
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cairn/json_codec.hpp"
#include "cairn/saga.hpp"
#include "cairn/testkit.hpp"

namespace cairn::testkit {

/// The result of one saga reaction.
template <class S>
class saga_result {
public:
  using traits = saga_traits<S>;
  using event_type = typename traits::event_type;

  saga_result(S state, saga_decision<event_type> d, std::vector<std::string> problems)
    : state_(std::move(state)), decision_(std::move(d)), problems_(std::move(problems)) {}

  /// Passes if exactly these events were decided, in order (and round-trip).
  template <class... Es>
  verdict then(const Es&... expected_events) const {
    std::vector<event_type> want{event_type{expected_events}...};
    if (!problems_.empty()) {
      std::string all;
      for (auto& p : problems_) all += p + "; ";
      return {false, all};
    }
    auto& got = decision_.events();
    bool same = got.size() == want.size();
    for (size_t i = 0; same && i < got.size(); ++i) {
      auto a = traits::event_codec::encode(got[i]);
      auto b = traits::event_codec::encode(want[i]);
      same = a.type == b.type && a.payload == b.payload;
    }
    if (!same)
      return {false, "expected events " + detail::render_all(want) + ", got " +
                       detail::render_all(got)};
    return {};
  }

  /// Passes if the decision sends step `step`: command `command` to aggregate A's `id`.
  template <class A, class C>
  verdict sends(const std::string& step, const std::string& id, const C& command) const {
    auto want = make_command<A>(id, typename A::command_type{command});
    std::string seen;
    for (auto& c : decision_.commands()) {
      if (c.step == step && c.command.target == want.target && c.command.type == want.type &&
          c.command.payload == want.payload)
        return {};
      seen += (seen.empty() ? "" : ", ") + c.step + ": " + c.command.type + " to " +
              c.command.target.str();
    }
    return {false, "expected step " + step + ": " + want.type + " to " + want.target.str() +
                     ", it sends [" + seen + "]"};
  }

  /// Passes if the decision sends no command.
  verdict sends_nothing() const {
    if (decision_.commands().empty()) return {};
    return {false, std::to_string(decision_.commands().size()) + " commands are sent, the first " +
                     decision_.commands().front().command.type + " to " +
                     decision_.commands().front().command.target.str()};
  }

  /// Passes if the decision is to retry.
  verdict then_retry() const {
    if (decision_.retry()) return {};
    return {false, "expected a retry, got events " + detail::render_all(decision_.events())};
  }

  /// The state after the given events and the decided ones.
  const S& state() const { return state_; }
  const saga_decision<event_type>& result() const { return decision_; }

private:
  S state_;
  saga_decision<event_type> decision_;
  std::vector<std::string> problems_;
};

/// A history of the saga's own events.
template <class S>
class saga_scenario {
public:
  using traits = saga_traits<S>;
  using event_type = typename traits::event_type;
  using input_type = typename traits::input_type;

  explicit saga_scenario(std::vector<event_type> history) : history_(std::move(history)) {}

  /// Reacts to input `e`, committed in stream `stream` (the envelope react may read).
  template <class E>
  saga_result<S> when(const stream_id& stream, const E& e) const {
    envelope env;
    env.stream = stream;
    env.version = 1;
    env.position = 1;
    return when(env, e);
  }
  template <class E>
  saga_result<S> when(const envelope& env, const E& e) const {
    S state = replay();
    auto d = traits::react(state, env, input_type{e});
    return finish(std::move(state), std::move(d));
  }

  /// The command of step `step` was refused with `reason`.
  saga_result<S> when_rejected(const std::string& step, const std::string& reason) const {
    S state = replay();
    auto d = traits::on_rejected(state, failure(step, error{errc::rejected, reason}));
    return finish(std::move(state), std::move(d));
  }

  /// The command of step `step` got no reply in time, `attempts` times so far.
  saga_result<S> when_timed_out(const std::string& step, uint32_t attempts = 1) const {
    S state = replay();
    auto f = failure(step, error{errc::timeout, "no reply in time"});
    f.attempts = attempts;
    auto d = traits::on_timeout(state, f);
    return finish(std::move(state), std::move(d));
  }

private:
  S replay() const {
    S state{};
    for (auto& e : history_) traits::evolve(state, e);
    return state;
  }

  static saga_failure failure(const std::string& step, error why) {
    saga_failure f;
    f.step = step;
    f.error = std::move(why);
    return f;
  }

  static saga_result<S> finish(S state, saga_decision<event_type> d) {
    std::vector<std::string> problems;
    for (auto& e : d.events()) {
      auto data = traits::event_codec::encode(e);
      auto back = traits::event_codec::decode(data);
      if (!back) problems.push_back("event " + data.type + " does not decode: " + back.error().message());
      else if (traits::event_codec::encode(*back).payload != data.payload)
        problems.push_back("event " + data.type + " changes in a binary round trip");
      std::visit(
        [&](const auto& x) {
          using E = std::decay_t<decltype(x)>;
          auto j = from_json<E>(to_json(x));
          if (!j) problems.push_back("event " + data.type + " fails its JSON round trip");
        },
        e);
      traits::evolve(state, e);
    }
    return saga_result<S>{std::move(state), std::move(d), std::move(problems)};
  }

  std::vector<event_type> history_;
};

/// Starts a saga scenario from these of its own events (none for a new instance).
template <class S, class... Es>
saga_scenario<S> saga_given(const Es&... events) {
  return saga_scenario<S>{
    std::vector<typename saga_traits<S>::event_type>{typename saga_traits<S>::event_type{events}...}};
}

} // namespace cairn::testkit
