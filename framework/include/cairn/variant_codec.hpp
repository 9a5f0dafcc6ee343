// variant_codec: encodes and decodes a closed set of described types (an aggregate's
// events or commands) by their stable type names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "cairn/codec.hpp"

namespace cairn {

template <class Variant>
struct variant_codec;

/// For `std::variant<Ts...>` where every T is described (schema.hpp).
template <class... Ts>
struct variant_codec<std::variant<Ts...>> {
  using variant_type = std::variant<Ts...>;

  /// The stable type name of the alternative held by `v`.
  static std::string_view type_name(const variant_type& v) {
    return std::visit([](const auto& x) { return schema_of<std::decay_t<decltype(x)>>().name; },
                      v);
  }

  /// Name, schema version and encoded payload of `v`, ready to append.
  static event_data encode(const variant_type& v, metadata meta = {}) {
    return std::visit(
      [&](const auto& x) {
        auto s = schema_of<std::decay_t<decltype(x)>>();
        return event_data{std::string{s.name}, s.version, std::move(meta), cairn::encode(x)};
      },
      v);
  }

  /// True if `type` names one of the alternatives.
  static bool knows(std::string_view type) {
    return ((schema_of<Ts>().name == type) || ...);
  }

  /// Decodes a payload of the alternative named `type`. Errors: not_found for an
  /// unknown type name, corrupt for a schema version other than the current one
  /// (upcast first: upcaster.hpp) or for bytes that do not decode.
  static expected<variant_type> decode(std::string_view type, uint32_t schema_version,
                                       const uint8_t* data, size_t size) {
    if (auto current = decode_current(type, schema_version, data, size))
      return std::move(*current);
    // Messages are built only on this path: replay decodes every stored event, and a
    // message per event would cost an allocation each.
    if (!knows(type)) return error{errc::not_found, "unknown type \"" + std::string{type} + "\""};
    return error{errc::corrupt, std::string{type} + " has schema version " +
                                  std::to_string(current_version(type)) +
                                  ", stored event has version " +
                                  std::to_string(schema_version) + " and no upcaster"};
  }

  /// Decodes a payload if `type` and `schema_version` name an alternative's current
  /// schema; nullopt (at no cost) for an unknown type or another version, which an
  /// upcaster may still turn into current events. Errors: corrupt for bytes that do
  /// not decode.
  static std::optional<expected<variant_type>> decode_current(std::string_view type,
                                                              uint32_t schema_version,
                                                              const uint8_t* data, size_t size) {
    std::optional<expected<variant_type>> result;
    (try_decode<Ts>(type, schema_version, data, size, result) || ...);
    return result;
  }

  /// The current schema version of the alternative named `type` (0 if none is).
  static uint32_t current_version(std::string_view type) {
    uint32_t version = 0;
    ((schema_of<Ts>().name == type ? (version = schema_of<Ts>().version, true) : false) || ...);
    return version;
  }

  static expected<variant_type> decode(const envelope& e) {
    return decode(e.type, e.schema_version, e.payload.data(), e.payload.size());
  }
  static expected<variant_type> decode(const event_data& e) {
    return decode(e.type, e.schema_version, e.payload.data(), e.payload.size());
  }

  /// Empty if every alternative has a distinct, non-empty name; else the problem.
  static std::string check_names() {
    std::string_view names[] = {schema_of<Ts>().name...};
    constexpr size_t n = sizeof...(Ts);
    for (size_t i = 0; i < n; ++i) {
      if (names[i].empty()) return "a type has an empty name";
      for (size_t j = i + 1; j < n; ++j)
        if (names[i] == names[j]) return "two types share the name \"" + std::string{names[i]} + "\"";
    }
    return {};
  }

private:
  // True once the alternative named `type` is found (names are unique); fills `out`
  // only if the stored version is that alternative's current one.
  template <class T>
  static bool try_decode(std::string_view type, uint32_t schema_version, const uint8_t* data,
                         size_t size, std::optional<expected<variant_type>>& out) {
    auto s = schema_of<T>();
    if (s.name != type) return false;
    if (schema_version != s.version) return true;
    auto x = cairn::decode<T>(data, size);
    if (x) out.emplace(variant_type{std::in_place_type<T>, std::move(*x)});
    else out.emplace(error{errc::corrupt, "cannot decode " + std::string{type} + ": " +
                                            x.error().message()});
    return true;
  }
};

} // namespace cairn
