// Schemas: the one declaration per event or command type that gives it a stable
// name, a schema version and named fields. Codecs (binary, JSON) are derived from it.
//
//   struct deposited { int64_t amount; };
//   inline auto describe(cairn::type<deposited>) {
//     return cairn::schema<deposited>("deposited", 1, cairn::field("amount", &deposited::amount));
//   }
//
// `describe` is found by argument-dependent lookup, so it lives next to the type.
#pragma once

#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace cairn {

/// A tag naming a type; the argument of `describe`.
template <class T>
struct type {};

/// One named data member of a described type.
template <class Class, class Member>
struct field_ref {
  std::string_view name;
  Member Class::*member;
};

template <class Class, class Member>
constexpr field_ref<Class, Member> field(std::string_view name, Member Class::*member) {
  return {name, member};
}

namespace detail {
template <class F>
struct field_class;
template <class Class, class Member>
struct field_class<field_ref<Class, Member>> {
  using type = Class;
};
} // namespace detail

/// A type's stable name, schema version and fields in their encoding order.
/// Changing the fields of a stored type means bumping `version` (and adding an
/// upcaster for the old one); renaming a C++ type or member changes nothing stored.
template <class T, class... Fields>
struct schema_t {
  using value_type = T;
  std::string_view name;
  uint32_t version;
  std::tuple<Fields...> fields;

  /// Calls fn(name, member_ref) for each field of `x`, in order.
  template <class U, class Fn>
  void for_each(U& x, Fn&& fn) const {
    std::apply([&](const auto&... f) { (fn(f.name, x.*(f.member)), ...); }, fields);
  }
  static constexpr size_t field_count = sizeof...(Fields);
};

/// Builds a schema; see the example at the top of this file.
template <class T, class... Fields>
constexpr schema_t<T, Fields...> schema(std::string_view name, uint32_t version,
                                        Fields... fields) {
  static_assert((std::is_base_of_v<typename detail::field_class<Fields>::type, T> && ...),
                "cairn::schema<T>: every field must be a member pointer of T");
  return {name, version, std::tuple<Fields...>{fields...}};
}

namespace detail {

template <class T, class = void>
struct has_describe : std::false_type {};
template <class T>
struct has_describe<T, std::void_t<decltype(describe(type<T>{}))>> : std::true_type {};

} // namespace detail

/// True if `describe(cairn::type<T>)` is declared for T.
template <class T>
inline constexpr bool is_described_v = detail::has_describe<T>::value;

/// The schema of T. A missing `describe` is a compile-time error that names T.
template <class T>
auto schema_of() {
  static_assert(is_described_v<T>,
                "cairn: this type has no schema. Declare, next to the type, "
                "`inline auto describe(cairn::type<T>) { return cairn::schema<T>(\"name\", 1, "
                "cairn::field(\"member\", &T::member), ...); }`");
  return describe(type<T>{});
}

} // namespace cairn
