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
// Events of other categories, or of types outside event_type, are skipped before
// their payload is decoded (by stream category and type name alone). Optional members:
//   static constexpr std::array<std::string_view, N> event_types = {"deposited"};
//       reads only these type names (a subset of event_type's); alternatives not
//       listed need no apply handler, so a projection can share an aggregate's
//       event variant and handle just what it needs.
//   cairn::bytes save() const;  static cairn::expected<P> load(const cairn::bytes&);
//       lets the node checkpoint the read model (projection_options); a type with
//       `describe(cairn::type<P>)` gets both from its schema instead.
//   static constexpr uint32_t checkpoint_version = 1;
//       bump when save()'s format changes: older checkpoints are then ignored (a
//       described type uses its schema version).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "cairn/aggregate.hpp"
#include "cairn/codec.hpp"
#include "cairn/envelope.hpp"
#include "cairn/event_filter.hpp"
#include "cairn/expected.hpp"
#include "cairn/upcaster.hpp"
#include "cairn/snapshot_store.hpp"

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

template <class P, class = void>
struct has_event_types : std::false_type {};
template <class P>
struct has_event_types<P, std::void_t<decltype(P::event_types)>> : std::true_type {};

template <class P, class = void>
struct has_save_load : std::false_type {};
template <class P>
struct has_save_load<P, std::void_t<decltype(std::declval<const P&>().save()),
                                    decltype(P::load(std::declval<const bytes&>()))>>
  : std::true_type {};

template <class P, class = void>
struct has_checkpoint_version : std::false_type {};
template <class P>
struct has_checkpoint_version<P, std::void_t<decltype(P::checkpoint_version)>> : std::true_type {};

} // namespace detail

/// The stream id under which a projection's checkpoint is kept in a snapshot store:
/// "projection-<name>", its version being the position the read model covers.
inline stream_id projection_checkpoint_stream(std::string_view projection) {
  return stream_id{"projection", std::string{projection}};
}

/// The uniform view of a projection type P.
template <class P>
struct projection_traits {
  static_assert(std::is_default_constructible_v<P>,
                "cairn: a projection's default-constructed value is its empty read model");
  using event_type = typename P::event_type;
  using event_codec = variant_codec<event_type>;

  static constexpr std::string_view name() { return P::name; }

  template <class E>
  static constexpr bool handles = detail::has_apply_with_envelope<P, E>::value ||
                                  detail::has_member_apply<P, E>::value;

  /// True if the projection reads events named `type` (the pre-decode type filter).
  /// Old names that upcasters read (upcaster.hpp) are read too.
  static bool reads_type(std::string_view type) {
    if constexpr (detail::has_event_types<P>::value) {
      for (std::string_view t : P::event_types)
        if (t == type) return true;
    } else {
      if (event_codec::knows(type)) return true;
    }
    return upcasters_of<event_type>().handles(type);
  }

  /// True if the projection wants this envelope: its category and type name match.
  static bool wants(const envelope& e) {
    if constexpr (detail::has_category<P>::value)
      if (e.stream.category != P::category) return false;
    return reads_type(e.type);
  }

  /// The same test as wants(), as data for the event feed.
  static event_filter filter() {
    event_filter f;
    if constexpr (detail::has_category<P>::value) f.category = std::string{P::category};
    if constexpr (detail::has_event_types<P>::value) {
      for (std::string_view t : P::event_types) f.types.emplace_back(t);
    } else {
      add_names(f.types, static_cast<event_type*>(nullptr));
    }
    for (auto& old_name : upcasters_of<event_type>().stored_names())
      if (std::find(f.types.begin(), f.types.end(), old_name) == f.types.end())
        f.types.push_back(old_name);
    return f;
  }

  /// Empty if the declaration is consistent; otherwise what is wrong (every name in
  /// event_types must be an event_type alternative that has an apply handler).
  static std::string check() {
    if constexpr (detail::has_event_types<P>::value) {
      for (std::string_view t : P::event_types) {
        int found = handled_by_name(t, static_cast<event_type*>(nullptr));
        if (found < 0)
          return std::string{name()} + ": event_types lists \"" + std::string{t} +
                 "\", which is not an alternative of event_type";
        if (found == 0)
          return std::string{name()} + ": event_types lists \"" + std::string{t} +
                 "\" but there is no apply handler for it";
      }
    }
    return {};
  }

  /// Applies one decoded event.
  static void apply(P& model, const envelope& env, const event_type& event) {
    std::visit(
      [&](const auto& e) {
        using E = std::decay_t<decltype(e)>;
        if constexpr (detail::has_event_types<P>::value) {
          // Only listed types are applied (an upcast old event may yield others);
          // check() ensures each listed one has a handler.
          if constexpr (handles<E>)
            if (listed(schema_of<E>().name)) call_apply(model, env, e);
        } else if constexpr (handles<E>) {
          call_apply(model, env, e);
        } else
          static_assert(detail::always_false<E>,
                        "cairn: the projection has no apply handler for this event (see the "
                        "instantiation below for which). Add `void apply(const Event&)` or "
                        "`void apply(const cairn::envelope&, const Event&)`, or list the "
                        "events it reads in `event_types`.");
      },
      event);
  }

  /// True if the read model can be saved and loaded (checkpoints).
  static constexpr bool can_checkpoint = detail::has_save_load<P>::value || is_described_v<P>;

  /// The name and format version stored with a checkpoint; a checkpoint whose
  /// name or version differs is ignored.
  static std::string checkpoint_type() {
    if constexpr (detail::has_save_load<P>::value) return std::string{name()};
    else if constexpr (is_described_v<P>) return std::string{schema_of<P>().name};
    else return std::string{name()};
  }
  static uint32_t checkpoint_version() {
    if constexpr (detail::has_save_load<P>::value) {
      if constexpr (detail::has_checkpoint_version<P>::value) return P::checkpoint_version;
      else return 1;
    } else if constexpr (is_described_v<P>) {
      return schema_of<P>().version;
    } else {
      return 0;
    }
  }

private:
  template <class E>
  static void call_apply(P& model, const envelope& env, const E& e) {
    if constexpr (detail::has_apply_with_envelope<P, E>::value) model.apply(env, e);
    else model.apply(e);
  }
  static bool listed(std::string_view type) {
    if constexpr (detail::has_event_types<P>::value) {
      for (std::string_view t : P::event_types)
        if (t == type) return true;
    }
    return false;
  }
  template <class... Ts>
  static void add_names(std::vector<std::string>& out, std::variant<Ts...>*) {
    (out.emplace_back(schema_of<Ts>().name), ...);
  }
  /// 1: an alternative named `type` is handled; 0: it exists unhandled; -1: none.
  template <class... Ts>
  static int handled_by_name(std::string_view type, std::variant<Ts...>*) {
    int found = -1;
    ((schema_of<Ts>().name == type ? (found = handles<Ts> ? 1 : 0, true) : false) || ...);
    return found;
  }
};

/// One projection's live read model, owned by one actor.
class projection_instance {
public:
  virtual ~projection_instance() = default;
  /// Folds one committed event in (skipping events the projection does not read;
  /// upcasting old ones, which may give several events for one position).
  /// Errors: corrupt (undecodable bytes, no upcaster for its version, or the
  /// application's apply threw).
  virtual expected<void> apply(const envelope& e) = 0;
  /// The read model, for queries run on the owning actor.
  virtual const void* model() const = 0;
  /// The read model as a checkpoint covering every event up to `position`.
  /// Errors: not_found (the projection has no save()/load() or schema), corrupt
  /// (the application's save() threw).
  virtual expected<snapshot> save_checkpoint(uint64_t position) const = 0;
  /// Replaces the read model with a checkpoint's; the caller resumes after
  /// `s.version`. Errors: invalid_argument (another type or format version: replay
  /// instead), corrupt (bytes that do not load), not_found (cannot checkpoint).
  virtual expected<void> load_checkpoint(const snapshot& s) = 0;
};

/// Creates instances of one projection type. Thread-safe (immutable).
class projection_model {
public:
  virtual ~projection_model() = default;
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<projection_instance> make_instance() const = 0;
  /// The events the projection reads (projection_traits::filter()).
  virtual event_filter filter() const = 0;
  /// True if its read model can be checkpointed (save()/load() or a schema).
  virtual bool can_checkpoint() const = 0;
};

namespace detail {

template <class P>
class typed_projection_instance final : public projection_instance {
public:
  using traits = projection_traits<P>;
  expected<void> apply(const envelope& e) override {
    using event_type = typename traits::event_type;
    if (!traits::wants(e)) return {};
    // An old event may upcast to several (a split): each is applied with the stored
    // event's envelope, so they share its position.
    expected<void> ok;
    try {
      ok = decode_each<event_type>(e, [&](const event_type& ev) { traits::apply(model_, e, ev); });
    } catch (const std::exception& ex) {
      return error{errc::corrupt, std::string{traits::name()} + " apply threw at position " +
                                    std::to_string(e.position) + ": " + ex.what()};
    }
    if (!ok) return error{errc::corrupt, std::string{traits::name()} + " at position " +
                                           std::to_string(e.position) + ": " +
                                           ok.error().message()};
    return {};
  }
  const void* model() const override { return &model_; }

  expected<snapshot> save_checkpoint(uint64_t position) const override {
    if constexpr (traits::can_checkpoint) {
      snapshot s{projection_checkpoint_stream(traits::name()), position, traits::checkpoint_type(),
                 traits::checkpoint_version(), now_ns(), {}};
      if constexpr (detail::has_save_load<P>::value) {
        try {
          s.state = model_.save();
        } catch (const std::exception& ex) {
          return error{errc::corrupt, std::string{traits::name()} + " save() threw: " + ex.what()};
        }
      } else {
        s.state = encode(model_);
      }
      return s;
    } else {
      (void) position;
      return error{errc::not_found, std::string{traits::name()} +
                                      " has no save()/load() or schema to checkpoint with"};
    }
  }

  expected<void> load_checkpoint(const snapshot& s) override {
    if constexpr (traits::can_checkpoint) {
      if (s.type != traits::checkpoint_type() || s.schema_version != traits::checkpoint_version())
        return error{errc::invalid_argument,
                     "checkpoint of " + std::string{traits::name()} + " is " + s.type + " v" +
                       std::to_string(s.schema_version) + ", the projection saves " +
                       traits::checkpoint_type() + " v" +
                       std::to_string(traits::checkpoint_version())};
      expected<P> loaded = error{errc::corrupt, "not loaded"};
      try {
        if constexpr (detail::has_save_load<P>::value) loaded = P::load(s.state);
        else loaded = decode<P>(s.state);
      } catch (const std::exception& ex) {
        return error{errc::corrupt, std::string{traits::name()} + " load() threw: " + ex.what()};
      }
      if (!loaded) return error{errc::corrupt, "checkpoint of " + std::string{traits::name()} +
                                                 ": " + loaded.error().message()};
      model_ = std::move(*loaded);
      return {};
    } else {
      (void) s;
      return error{errc::not_found, std::string{traits::name()} + " cannot load checkpoints"};
    }
  }

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
  event_filter filter() const override { return projection_traits<P>::filter(); }
  bool can_checkpoint() const override { return projection_traits<P>::can_checkpoint; }
};

} // namespace detail

template <class P>
std::shared_ptr<const projection_model> make_projection_model() {
  return std::make_shared<detail::typed_projection_model<P>>();
}

} // namespace cairn
