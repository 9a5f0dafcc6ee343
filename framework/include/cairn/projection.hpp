// Projections: in-memory read models fed by committed events. A projection is a plain
// type with a name, the event variant it reads, and one apply handler per alternative:
//
//   struct balances {
//     static constexpr std::string_view name = "balances";
//     static constexpr std::string_view category = "account"; // optional filter
//     using event_type = bank::account::event_type;
//     void apply(const cairn::envelope& e, const bank::deposited& d) { ... } // or apply(const bank::deposited&)
//   };
//
// Events of other categories, or of types outside event_type, are skipped.
#pragma once

#include <memory>
#include <string_view>
#include <type_traits>

#include "cairn/aggregate.hpp"
#include "cairn/envelope.hpp"
#include "cairn/expected.hpp"

namespace cairn {

namespace detail {

template <class P, class E, class = void>
struct has_apply_with_envelope : std::false_type {};
template <class P, class E>
struct has_apply_with_envelope<P, E,
                               std::void_t<decltype(std::declval<P&>().apply(
                                 std::declval<const envelope&>(), std::declval<const E&>()))>>
  : std::true_type {};

template <class P, class = void>
struct has_category : std::false_type {};
template <class P>
struct has_category<P, std::void_t<decltype(P::category)>> : std::true_type {};

} // namespace detail

/// The uniform view of a projection type P.
template <class P>
struct projection_traits {
  static_assert(std::is_default_constructible_v<P>,
                "cairn: a projection's default-constructed value is its empty read model");
  using event_type = typename P::event_type;
  using event_codec = variant_codec<event_type>;

  static constexpr std::string_view name() { return P::name; }

  /// True if the projection wants events of this envelope's category.
  static bool wants(const envelope& e) {
    if constexpr (detail::has_category<P>::value) return e.stream.category == P::category;
    else return true;
  }

  /// Applies one decoded event.
  static void apply(P& model, const envelope& env, const event_type& event) {
    std::visit(
      [&](const auto& e) {
        using E = std::decay_t<decltype(e)>;
        if constexpr (detail::has_apply_with_envelope<P, E>::value) model.apply(env, e);
        else if constexpr (detail::has_member_apply<P, E>::value) model.apply(e);
        else
          static_assert(detail::always_false<E>,
                        "cairn: the projection has no apply handler for this event (see the "
                        "instantiation below for which). Add `void apply(const Event&)` or "
                        "`void apply(const cairn::envelope&, const Event&)`.");
      },
      event);
  }
};

/// One projection's live read model, owned by one actor.
class projection_instance {
public:
  virtual ~projection_instance() = default;
  /// Folds one committed event in (skipping events the projection does not read).
  /// Errors: corrupt (undecodable bytes, or the application's apply threw).
  virtual expected<void> apply(const envelope& e) = 0;
  /// The read model, for queries run on the owning actor.
  virtual const void* model() const = 0;
};

/// Creates instances of one projection type. Thread-safe (immutable).
class projection_model {
public:
  virtual ~projection_model() = default;
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<projection_instance> make_instance() const = 0;
};

namespace detail {

template <class P>
class typed_projection_instance final : public projection_instance {
public:
  using traits = projection_traits<P>;
  expected<void> apply(const envelope& e) override {
    if (!traits::wants(e) || !traits::event_codec::knows(e.type)) return {};
    auto ev = traits::event_codec::decode(e);
    if (!ev) return error{errc::corrupt, std::string{traits::name()} + " at position " +
                                           std::to_string(e.position) + ": " +
                                           ev.error().message()};
    try {
      traits::apply(model_, e, *ev);
    } catch (const std::exception& ex) {
      return error{errc::corrupt, std::string{traits::name()} + " apply threw at position " +
                                    std::to_string(e.position) + ": " + ex.what()};
    }
    return {};
  }
  const void* model() const override { return &model_; }

private:
  P model_{};
};

template <class P>
class typed_projection_model final : public projection_model {
public:
  std::string_view name() const override { return projection_traits<P>::name(); }
  std::unique_ptr<projection_instance> make_instance() const override {
    return std::make_unique<typed_projection_instance<P>>();
  }
};

} // namespace detail

template <class P>
std::shared_ptr<const projection_model> make_projection_model() {
  return std::make_shared<detail::typed_projection_model<P>>();
}

} // namespace cairn
