// Upcasters: turn events stored under an older schema version, or an old type name,
// into the current events of an event variant when they are read. The application
// keeps each old struct (described with its old name and version) and writes pure
// functions from old to newer; Cairn chains them until the event is current:
//
//   struct deposited_v1 { int64_t amount = 0; };   // schema("deposited", 1, ...)
//   inline auto upcasters(cairn::type<account::event_type>) {
//     return cairn::upcaster_set<account::event_type>{}
//       .add([](const deposited_v1& e) { return deposited{e.amount * 100, "EUR"}; })
//       .rename("amount_added", "deposited")               // same bytes, new name
//       .add([](const transfer_v1& e) {                      // one stored event, several
//         return std::vector<account::event_type>{withdrawn{e.amount}, fee_charged{e.fee}};
//       });
//   }
//
// `upcasters` is found by argument-dependent lookup, like `describe`; declare it next to
// the event types, before anything reads them. Without it nothing is upcast. See
// docs/versioning.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cairn/aggregate.hpp"
#include "cairn/codec.hpp"
#include "cairn/variant_codec.hpp"

namespace cairn {

namespace detail {

/// The parameter and result types of a non-generic callable (lambda, function pointer).
template <class F>
struct callable_traits : callable_traits<decltype(&F::operator())> {};
template <class R, class... Args>
struct callable_traits<R (*)(Args...)> {
  using result = R;
  using args = std::tuple<Args...>;
};
template <class R, class... Args>
struct callable_traits<R (*)(Args...) noexcept> : callable_traits<R (*)(Args...)> {};
template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...) const> : callable_traits<R (*)(Args...)> {};
template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...) const noexcept> : callable_traits<R (*)(Args...)> {};
template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...)> : callable_traits<R (*)(Args...)> {};
template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...) noexcept> : callable_traits<R (*)(Args...)> {};

template <class T, class Variant>
struct is_alternative : std::false_type {};
template <class T, class... Ts>
struct is_alternative<T, std::variant<Ts...>> : std::disjunction<std::is_same<T, Ts>...> {};

/// A stored event's identity: its type name and schema version.
using schema_key = std::pair<std::string, uint32_t>;

inline std::string describe_key(std::string_view name, uint32_t version) {
  return std::string{name} + " v" + std::to_string(version);
}

/// The (name, version) of every event an upcaster returning T may produce.
template <class T>
struct output_keys {
  static void add(std::vector<schema_key>& out) {
    if constexpr (is_vector<T>::value) {
      output_keys<typename T::value_type>::add(out);
    } else {
      static_assert(is_described_v<T>,
                    "cairn: an upcaster returns a described event type (old or current), a "
                    "std::variant of them, or a std::vector of either (several events, or none)");
      auto s = schema_of<T>();
      out.emplace_back(std::string{s.name}, s.version);
    }
  }
};
template <class... Ts>
struct output_keys<std::variant<Ts...>> {
  static void add(std::vector<schema_key>& out) { (output_keys<Ts>::add(out), ...); }
};

} // namespace detail

/// The upcasters of one event variant: steps from a stored (type name, schema version)
/// to newer events, applied repeatedly until every event is one of Variant's
/// alternatives. Build it once (it is immutable afterwards and then thread-safe).
template <class Variant>
class upcaster_set {
public:
  using variant_type = Variant;
  using codec = variant_codec<Variant>;

  /// Adds a step from `In` (found by its schema: the stored name and version) to what
  /// `fn` returns: a newer version of the event, another (renamed) type, a
  /// std::vector of events (a split; empty drops the event), or a std::variant of
  /// them. `fn` is `Out(const In&)` or `Out(const In&, const cairn::metadata&)`, pure,
  /// and may return old types: they are upcast further.
  template <class F>
  upcaster_set& add(F fn) & {
    add_step(std::move(fn));
    return *this;
  }
  template <class F>
  upcaster_set add(F fn) && {
    add_step(std::move(fn));
    return std::move(*this);
  }

  /// Reads every version of events stored as `old_name` as the same version of
  /// `new_name`, bytes unchanged (a rename with no change of fields).
  upcaster_set& rename(std::string old_name, std::string new_name) & {
    add_rename(std::move(old_name), std::move(new_name));
    return *this;
  }
  upcaster_set rename(std::string old_name, std::string new_name) && {
    add_rename(std::move(old_name), std::move(new_name));
    return std::move(*this);
  }

  bool empty() const noexcept { return steps_.empty(); }

  /// True if some step reads events stored under this type name (any version).
  bool handles(std::string_view type) const noexcept {
    for (auto& s : steps_)
      if (s.name == type) return true;
    return false;
  }

  /// Every stored type name some step reads, once each (for filters by type name).
  std::vector<std::string> stored_names() const {
    std::vector<std::string> names;
    for (auto& s : steps_) {
      bool seen = false;
      for (auto& n : names) seen |= n == s.name;
      if (!seen) names.push_back(s.name);
    }
    return names;
  }

  /// Empty if the declaration is sound; else its problems, "; "-separated: two steps
  /// for one stored version, a step that reads a current version (it never runs), a
  /// step whose result is neither current nor upcast further, or a cycle.
  std::string check() const;

  /// The current events for one stored event (several for a split, none if dropped).
  /// Errors: not_found (a type name neither Variant nor any step knows), corrupt
  /// (bytes that do not decode, a version with no step, a step that threw, or a
  /// chain that does not end: a cycle).
  expected<std::vector<Variant>> upcast(std::string_view type, uint32_t schema_version,
                                        const uint8_t* data, size_t size,
                                        const metadata& meta) const {
    std::vector<Variant> out;
    if (auto ok = expand(type, schema_version, data, size, meta, 0, out); !ok)
      return std::move(ok).error();
    return out;
  }

private:
  using sink = std::vector<Variant>;
  struct step {
    std::string name;       // the stored type name this step reads
    uint32_t version = 0;   // its schema version; unused by a rename
    std::string rename_to;  // a rename's new name (then `run` is empty)
    std::vector<detail::schema_key> produces;
    std::function<expected<void>(const upcaster_set&, const uint8_t*, size_t, const metadata&,
                                 size_t, sink&)>
      run;
  };

  template <class F>
  void add_step(F fn) {
    using traits = detail::callable_traits<std::decay_t<F>>;
    using args = typename traits::args;
    constexpr size_t arity = std::tuple_size_v<args>;
    static_assert(arity == 1 || arity == 2,
                  "cairn: an upcaster takes (const Old&) or (const Old&, const cairn::metadata&)");
    using In = std::decay_t<std::tuple_element_t<0, args>>;
    using Out = std::decay_t<typename traits::result>;
    static_assert(is_described_v<In>, "cairn: an upcaster's parameter must be a described type "
                                      "(the old struct, with its stored name and version)");
    if constexpr (arity == 2)
      static_assert(std::is_same_v<std::decay_t<std::tuple_element_t<1, args>>, metadata>,
                    "cairn: an upcaster's second parameter is `const cairn::metadata&`");
    auto s = schema_of<In>();
    step st;
    st.name = std::string{s.name};
    st.version = s.version;
    detail::output_keys<Out>::add(st.produces);
    st.run = [fn = std::move(fn)](const upcaster_set& self, const uint8_t* data, size_t size,
                                  const metadata& meta, size_t depth, sink& out) -> expected<void> {
      auto in = cairn::decode<In>(data, size);
      auto from = [] { return detail::describe_key(schema_of<In>().name, schema_of<In>().version); };
      if (!in) return error{errc::corrupt, "cannot decode " + from() + ": " + in.error().message()};
      std::optional<Out> result;
      try {
        if constexpr (arity == 2) result.emplace(fn(*in, meta));
        else result.emplace(fn(*in));
      } catch (const std::exception& ex) {
        return error{errc::corrupt, "the upcaster from " + from() + " threw: " + ex.what()};
      } catch (...) {
        return error{errc::corrupt, "the upcaster from " + from() + " threw"};
      }
      return self.route(std::move(*result), meta, depth, out);
    };
    steps_.push_back(std::move(st));
  }

  void add_rename(std::string old_name, std::string new_name) {
    step st;
    st.name = std::move(old_name);
    st.rename_to = std::move(new_name);
    steps_.push_back(std::move(st));
  }

  /// The step for a stored key: an exact typed step first, else a rename of the name.
  const step* find(std::string_view type, uint32_t version) const {
    const step* renamed = nullptr;
    for (auto& s : steps_) {
      if (s.name != type) continue;
      if (s.run && s.version == version) return &s;
      if (!s.run && !renamed) renamed = &s;
    }
    return renamed;
  }

  /// Appends the current events for one stored (or upcast) event to `out`.
  expected<void> expand(std::string_view type, uint32_t version, const uint8_t* data, size_t size,
                        const metadata& meta, size_t depth, sink& out) const {
    if (auto current = codec::decode_current(type, version, data, size)) {
      if (!*current) return std::move(*current).error();
      out.push_back(std::move(**current));
      return {};
    }
    // Each step is used at most once on a path that ends; a longer one repeats a step.
    if (depth > steps_.size())
      return error{errc::corrupt, "upcasting reached " + detail::describe_key(type, version) +
                                    " after " + std::to_string(depth) +
                                    " steps: the upcasters form a cycle"};
    const step* s = find(type, version);
    if (!s) return missing(type, version, depth);
    if (s->run) return s->run(*this, data, size, meta, depth, out);
    return expand(s->rename_to, version, data, size, meta, depth + 1, out);
  }

  error missing(std::string_view type, uint32_t version, size_t depth) const {
    if (depth == 0 && !codec::knows(type) && !handles(type))
      return error{errc::not_found, "unknown type \"" + std::string{type} + "\""};
    std::string what = "no upcaster for " + detail::describe_key(type, version);
    if (depth > 0) what = "an upcaster produced " + detail::describe_key(type, version) +
                          ", which is not current and has no upcaster";
    if (auto v = codec::current_version(type)) what += "; the current version is " + std::to_string(v);
    std::string from;
    for (auto& s : steps_)
      if (s.name == type && s.run) from += (from.empty() ? "" : ", ") + std::to_string(s.version);
    if (!from.empty()) what += "; upcasters exist from version " + from;
    return error{errc::corrupt, what};
  }

  /// Sends an upcaster's result on: current alternatives to `out`, older types round again.
  template <class T>
  expected<void> route(T&& x, const metadata& meta, size_t depth, sink& out) const {
    using U = std::decay_t<T>;
    if constexpr (detail::is_vector<U>::value) {
      for (auto& e : x)
        if (auto ok = route(std::move(e), meta, depth, out); !ok) return ok;
      return {};
    } else if constexpr (detail::is_variant<U>::value) {
      return std::visit([&](auto& e) { return route(std::move(e), meta, depth, out); }, x);
    } else if constexpr (detail::is_alternative<U, Variant>::value) {
      out.emplace_back(std::in_place_type<U>, std::move(x));
      return {};
    } else {
      auto s = schema_of<U>();
      auto payload = cairn::encode(x);
      return expand(s.name, s.version, payload.data(), payload.size(), meta, depth + 1, out);
    }
  }

  /// check(): follows every possible path from `key`, recording problems.
  void check_path(const detail::schema_key& key, std::vector<detail::schema_key>& path,
                  std::vector<detail::schema_key>& sound, std::string& problems) const;

  static bool is_current(const std::string& name, uint32_t version) {
    return codec::knows(name) && codec::current_version(name) == version;
  }

  std::vector<step> steps_;
};

template <class Variant>
void upcaster_set<Variant>::check_path(const detail::schema_key& key,
                                       std::vector<detail::schema_key>& path,
                                       std::vector<detail::schema_key>& sound,
                                       std::string& problems) const {
  auto note = [&](std::string p) { problems += (problems.empty() ? "" : "; ") + p; };
  if (is_current(key.first, key.second)) return;
  for (auto& k : sound)
    if (k == key) return;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != key) continue;
    std::string cycle;
    for (size_t j = i; j < path.size(); ++j) cycle += detail::describe_key(path[j].first, path[j].second) + " -> ";
    return note("the upcasters form a cycle: " + cycle + detail::describe_key(key.first, key.second));
  }
  const step* s = find(key.first, key.second);
  if (!s) {
    auto from = path.empty() ? std::string{"a rename"}
                             : detail::describe_key(path.back().first, path.back().second);
    return note("the upcaster from " + from + " produces " +
                detail::describe_key(key.first, key.second) +
                ", which is not current and has no upcaster");
  }
  path.push_back(key);
  if (s->run) {
    for (auto& next : s->produces) check_path(next, path, sound, problems);
  } else {
    check_path({s->rename_to, key.second}, path, sound, problems);
  }
  path.pop_back();
  sound.push_back(key);
}

template <class Variant>
std::string upcaster_set<Variant>::check() const {
  std::string problems;
  auto note = [&](std::string p) { problems += (problems.empty() ? "" : "; ") + p; };
  for (size_t i = 0; i < steps_.size(); ++i) {
    auto& a = steps_[i];
    auto what = a.run ? detail::describe_key(a.name, a.version) : "renames of " + a.name;
    for (size_t j = i + 1; j < steps_.size(); ++j) {
      auto& b = steps_[j];
      if (a.name == b.name && bool(a.run) == bool(b.run) && (!a.run || a.version == b.version))
        note("two upcasters read " + what);
    }
    if (a.run && is_current(a.name, a.version))
      note("an upcaster reads " + what + ", which is current (it would never run)");
  }
  std::vector<detail::schema_key> path, sound;
  for (auto& s : steps_) {
    if (s.run) {
      check_path({s.name, s.version}, path, sound, problems);
      continue;
    }
    // A rename applies to every stored version; follow it from each version that the
    // new name is known under, and require that the new name is known at all.
    std::vector<uint32_t> versions;
    if (auto v = codec::current_version(s.rename_to)) versions.push_back(v);
    for (auto& t : steps_)
      if (t.run && t.name == s.rename_to) versions.push_back(t.version);
    bool renamed_again = false;
    for (auto& t : steps_) renamed_again |= !t.run && t.name == s.rename_to;
    if (versions.empty() && !renamed_again)
      note("the rename of " + s.name + " to " + s.rename_to + ": " + s.rename_to +
           " is not a current type and has no upcaster");
    if (renamed_again) {
      // Renames alone can loop (a -> b -> a) whatever the version.
      std::vector<std::string> chain{s.name};
      for (const step* r = &s; r;) {
        const std::string& next = r->rename_to;
        bool seen = false;
        for (auto& n : chain) seen |= n == next;
        if (seen) {
          std::string cycle;
          for (auto& n : chain) cycle += n + " -> ";
          note("the renames form a cycle: " + cycle + next);
          break;
        }
        chain.push_back(next);
        r = nullptr;
        for (auto& t : steps_)
          if (!t.run && t.name == next) r = &t;
      }
    }
    for (auto v : versions) check_path({s.name, v}, path, sound, problems);
  }
  return problems;
}

namespace detail {

template <class V, class = void>
struct has_upcasters : std::false_type {};
template <class V>
struct has_upcasters<V, std::void_t<decltype(upcasters(type<V>{}))>> : std::true_type {};

// Called from here so that only argument-dependent lookup finds the application's
// `upcasters`.
template <class V>
upcaster_set<V> declared_upcasters() {
  static_assert(std::is_convertible_v<decltype(upcasters(type<V>{})), upcaster_set<V>>,
                "cairn: `upcasters(cairn::type<V>)` must return cairn::upcaster_set<V>");
  return upcasters(type<V>{});
}

} // namespace detail

/// True if `upcasters(cairn::type<Variant>)` is declared.
template <class Variant>
inline constexpr bool has_upcasters_v = detail::has_upcasters<Variant>::value;

/// The upcasters declared for Variant (an empty set if none), built on first use.
template <class Variant>
const upcaster_set<Variant>& upcasters_of() {
  if constexpr (has_upcasters_v<Variant>) {
    static const upcaster_set<Variant> set = detail::declared_upcasters<Variant>();
    return set;
  } else {
    static const upcaster_set<Variant> none;
    return none;
  }
}

/// Decodes a stored event into current events of Variant and calls `fn(Variant&&)` on
/// each, in order. An event at its current version takes the same path as a plain
/// variant_codec decode (no allocation beyond the event's own); only older versions and
/// old names go through the declared upcasters. Errors as upcaster_set::upcast();
/// exceptions thrown by `fn` propagate.
template <class Variant, class Fn>
expected<void> decode_each(std::string_view type, uint32_t schema_version, const uint8_t* data,
                           size_t size, const metadata& meta, Fn&& fn) {
  if (auto current = variant_codec<Variant>::decode_current(type, schema_version, data, size)) {
    if (!*current) return std::move(*current).error();
    fn(std::move(**current));
    return {};
  }
  auto events = upcasters_of<Variant>().upcast(type, schema_version, data, size, meta);
  if (!events) return std::move(events).error();
  for (auto& e : *events) fn(std::move(e));
  return {};
}

template <class Variant, class Fn>
expected<void> decode_each(const envelope& e, Fn&& fn) {
  return decode_each<Variant>(e.type, e.schema_version, e.payload.data(), e.payload.size(),
                              e.meta, std::forward<Fn>(fn));
}

/// The current events of Variant for one stored event, upcast with its declared upcasters.
template <class Variant>
expected<std::vector<Variant>> upcast(const envelope& e) {
  std::vector<Variant> out;
  auto ok = decode_each<Variant>(e, [&](Variant&& v) { out.push_back(std::move(v)); });
  if (!ok) return std::move(ok).error();
  return out;
}

} // namespace cairn
