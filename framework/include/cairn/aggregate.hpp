// aggregate_traits: how Cairn calls an application's aggregate. The aggregate is a
// plain type with `command_type` and `event_type` variants, a `category`, and pure
// handlers per alternative, either members or free functions found by ADL:
//   decision<event_type> decide(const Command&) const;   or  decide(const A&, const Command&)
//   void apply(const Event&);                             or  A evolve(A, const Event&)
// A missing handler is a compile-time error naming what to add.
#pragma once

#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "cairn/decision.hpp"
#include "cairn/variant_codec.hpp"

namespace cairn {

namespace detail {

template <class A, class C, class = void>
struct has_member_decide : std::false_type {};
template <class A, class C>
struct has_member_decide<A, C,
                         std::void_t<decltype(std::declval<const A&>().decide(
                           std::declval<const C&>()))>> : std::true_type {};

template <class A, class C, class = void>
struct has_free_decide : std::false_type {};
template <class A, class C>
struct has_free_decide<A, C,
                       std::void_t<decltype(decide(std::declval<const A&>(),
                                                   std::declval<const C&>()))>>
  : std::true_type {};

template <class A, class E, class = void>
struct has_member_apply : std::false_type {};
template <class A, class E>
struct has_member_apply<A, E,
                        std::void_t<decltype(std::declval<A&>().apply(std::declval<const E&>()))>>
  : std::true_type {};

template <class A, class E, class = void>
struct has_free_evolve : std::false_type {};
template <class A, class E>
struct has_free_evolve<
  A, E, std::void_t<decltype(evolve(std::declval<const A&>(), std::declval<const E&>()))>>
  : std::true_type {};

// Unqualified calls from inside aggregate_traits would find its own static members
// `decide`/`evolve` and so skip argument-dependent lookup; these forwarders live where
// only ADL can find the application's free functions.
template <class A, class C>
auto call_free_decide(const A& state, const C& command) -> decltype(decide(state, command)) {
  return decide(state, command);
}
template <class A, class E>
auto call_free_evolve(const A& state, const E& event) -> decltype(evolve(state, event)) {
  return evolve(state, event);
}

template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};

} // namespace detail

/// The uniform view of an aggregate type A that the runtime and the test kit use.
template <class A>
struct aggregate_traits {
  static_assert(std::is_default_constructible_v<A>,
                "cairn: an aggregate's default-constructed value is its initial state");
  static_assert(detail::is_variant<typename A::command_type>::value,
                "cairn: an aggregate needs `using command_type = std::variant<...>;`");
  static_assert(detail::is_variant<typename A::event_type>::value,
                "cairn: an aggregate needs `using event_type = std::variant<...>;`");

  using state_type = A;
  using command_type = typename A::command_type;
  using event_type = typename A::event_type;
  using command_codec = variant_codec<command_type>;
  using event_codec = variant_codec<event_type>;

  /// The stream category, e.g. "account" (from `static constexpr std::string_view category`).
  static constexpr std::string_view category() { return A::category; }

  /// Runs the decide handler for the alternative held by `command`.
  static decision<event_type> decide(const A& state, const command_type& command) {
    return std::visit([&](const auto& c) { return decide_one(state, c); }, command);
  }

  template <class C>
  static decision<event_type> decide_one(const A& state, const C& command) {
    if constexpr (detail::has_member_decide<A, C>::value) {
      return decision<event_type>(state.decide(command));
    } else if constexpr (detail::has_free_decide<A, C>::value) {
      return decision<event_type>(detail::call_free_decide(state, command));
    } else {
      static_assert(detail::always_false<C>,
                    "cairn: the aggregate has no decide handler for this command "
                    "(see the instantiation below for which). Add a member "
                    "`cairn::decision<event_type> decide(const Command&) const` or a free "
                    "`decide(const Aggregate&, const Command&)`.");
      return {};
    }
  }

  /// Runs the evolve handler for the alternative held by `event`.
  static void evolve(A& state, const event_type& event) {
    std::visit([&](const auto& e) { evolve_one(state, e); }, event);
  }

  template <class E>
  static void evolve_one(A& state, const E& event) {
    if constexpr (detail::has_member_apply<A, E>::value) {
      state.apply(event);
    } else if constexpr (detail::has_free_evolve<A, E>::value) {
      state = detail::call_free_evolve(static_cast<const A&>(state), event);
    } else {
      static_assert(detail::always_false<E>,
                    "cairn: the aggregate has no handler for this event (see the "
                    "instantiation below for which). Add a member `void apply(const Event&)` "
                    "or a free `Aggregate evolve(const Aggregate&, const Event&)`.");
    }
  }
};

} // namespace cairn
