// The decider test kit: given(events).when(command).then(events | rejection), with no
// store and no actors. Every check also proves that emitted events round-trip through
// the binary and JSON codecs and that replaying them rebuilds the same state.
//
//   REQUIRE(cairn::testkit::given<bank::account>(bank::opened{"ann"})
//             .when(bank::withdraw{5})
//             .then_rejected("insufficient funds"));
#pragma once

#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/aggregate.hpp"
#include "cairn/json_codec.hpp"

namespace cairn::testkit {

/// The outcome of one check: truthy when it passed; streams an explanation
/// (so Catch2's REQUIRE prints what differed).
struct verdict {
  bool passed = true;
  std::string explanation;
  explicit operator bool() const noexcept { return passed; }
  friend std::ostream& operator<<(std::ostream& os, const verdict& v) {
    return os << (v.passed ? "passed" : "FAILED: ") << v.explanation;
  }
};

namespace detail {

template <class Variant>
std::string render(const Variant& v) {
  return std::visit(
    [](const auto& x) {
      return std::string{schema_of<std::decay_t<decltype(x)>>().name} + " " +
             to_json(x).dump();
    },
    v);
}

template <class Variant>
std::string render_all(const std::vector<Variant>& vs) {
  std::string out = "[";
  for (size_t i = 0; i < vs.size(); ++i) out += (i ? ", " : "") + render(vs[i]);
  return out + "]";
}

template <class T, class = void>
struct has_equal : std::false_type {};
template <class T>
struct has_equal<T, std::void_t<decltype(std::declval<const T&>() == std::declval<const T&>())>>
  : std::true_type {};

} // namespace detail

/// The result of running one command against a given history.
template <class A>
class outcome {
public:
  using traits = aggregate_traits<A>;
  using event_type = typename traits::event_type;

  outcome(A state, decision<event_type> d, std::vector<std::string> codec_problems)
    : state_(std::move(state)), decision_(std::move(d)), problems_(std::move(codec_problems)) {}

  /// Passes if the command was accepted and emitted exactly these events, in order.
  template <class... Es>
  verdict then(const Es&... expected_events) const {
    std::vector<event_type> want{event_type{expected_events}...};
    if (auto v = common_checks(); !v) return v;
    if (decision_.rejected())
      return {false, "expected events " + detail::render_all(want) + ", but the command was "
                       "rejected: " + decision_.reason()};
    if (!same(decision_.events(), want))
      return {false, "expected events " + detail::render_all(want) + ", got " +
                       detail::render_all(decision_.events())};
    return {};
  }

  /// Passes if the command was accepted and emitted nothing.
  verdict then_nothing() const { return then(); }

  /// Passes if the command was rejected with a reason containing `reason_part`.
  verdict then_rejected(const std::string& reason_part = {}) const {
    if (!decision_.rejected())
      return {false, "expected a rejection, got events " + detail::render_all(decision_.events())};
    if (decision_.reason().find(reason_part) == std::string::npos)
      return {false, "expected a rejection mentioning \"" + reason_part + "\", got \"" +
                       decision_.reason() + "\""};
    return {};
  }

  /// The state after the given events and the emitted ones.
  const A& state() const { return state_; }
  const decision<event_type>& result() const { return decision_; }

private:
  static bool same(const std::vector<event_type>& a, const std::vector<event_type>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      auto ea = traits::event_codec::encode(a[i]);
      auto eb = traits::event_codec::encode(b[i]);
      if (ea.type != eb.type || ea.payload != eb.payload) return false;
    }
    return true;
  }

  verdict common_checks() const {
    if (problems_.empty()) return {};
    std::string all;
    for (auto& p : problems_) all += p + "; ";
    return {false, all};
  }

  A state_;
  decision<event_type> decision_;
  std::vector<std::string> problems_;
};

/// A history of events for aggregate A.
template <class A>
class scenario {
public:
  using traits = aggregate_traits<A>;
  using event_type = typename traits::event_type;

  explicit scenario(std::vector<event_type> history) : history_(std::move(history)) {}

  /// Runs decide for `command` on the state the history builds.
  template <class C>
  outcome<A> when(const C& command) const {
    A state{};
    for (auto& e : history_) traits::evolve(state, e);
    auto d = traits::decide(state, typename traits::command_type{command});
    std::vector<std::string> problems;
    if (!d.rejected()) {
      A replayed = state;
      for (auto& e : d.events()) {
        check_round_trip(e, problems);
        traits::evolve(state, e);
        // Replaying the decoded events must rebuild the same state.
        auto decoded = traits::event_codec::decode(traits::event_codec::encode(e));
        if (decoded) traits::evolve(replayed, *decoded);
      }
      if constexpr (is_described_v<A>) {
        if (encode(replayed) != encode(state))
          problems.push_back("replaying the decoded events gives a different state");
      } else if constexpr (detail::has_equal<A>::value) {
        if (!(replayed == state))
          problems.push_back("replaying the decoded events gives a different state");
      }
    }
    return outcome<A>{std::move(state), std::move(d), std::move(problems)};
  }

private:
  static void check_round_trip(const event_type& e, std::vector<std::string>& problems) {
    auto data = traits::event_codec::encode(e);
    auto back = traits::event_codec::decode(data);
    if (!back) {
      problems.push_back("event " + data.type + " does not decode: " + back.error().message());
      return;
    }
    if (traits::event_codec::encode(*back).payload != data.payload)
      problems.push_back("event " + data.type + " changes in a binary round trip");
    std::visit(
      [&](const auto& x) {
        using E = std::decay_t<decltype(x)>;
        auto j = from_json<E>(to_json(x));
        if (!j) problems.push_back("event " + data.type + " fails its JSON round trip: " +
                                   j.error().message());
        else if (encode(*j) != encode(x))
          problems.push_back("event " + data.type + " changes in a JSON round trip");
      },
      e);
  }

  std::vector<event_type> history_;
};

/// Starts a scenario from these past events (none for a new aggregate).
template <class A, class... Es>
scenario<A> given(const Es&... events) {
  return scenario<A>{std::vector<typename aggregate_traits<A>::event_type>{
    typename aggregate_traits<A>::event_type{events}...}};
}

} // namespace cairn::testkit
