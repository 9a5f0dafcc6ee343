// The JSON codec: renders any described type as JSON for people and tools, and
// parses it back (the import path). Uses nlohmann::json.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "cairn/codec.hpp"

namespace cairn {

namespace detail {

template <class T, bool = std::is_enum_v<T>>
struct integer_of {
  using type = T;
};
template <class T>
struct integer_of<T, true> {
  using type = std::underlying_type_t<T>;
};

template <class T>
nlohmann::json to_json_value(const T& x) {
  if constexpr (std::is_same_v<T, bool> || std::is_arithmetic_v<T> ||
                std::is_same_v<T, std::string>) {
    return x;
  } else if constexpr (std::is_enum_v<T>) {
    return static_cast<std::underlying_type_t<T>>(x);
  } else if constexpr (is_vector<T>::value) {
    auto arr = nlohmann::json::array();
    for (const auto& e : x) arr.push_back(to_json_value(e)); // also std::vector<bool>
    return arr;
  } else if constexpr (is_optional<T>::value) {
    return x ? to_json_value(*x) : nlohmann::json(nullptr);
  } else if constexpr (is_map<T>::value) {
    static_assert(std::is_same_v<typename T::key_type, std::string>,
                  "cairn JSON codec: map keys must be std::string");
    auto obj = nlohmann::json::object();
    for (auto& [k, v] : x) obj[k] = to_json_value(v);
    return obj;
  } else if constexpr (is_described_v<T>) {
    auto obj = nlohmann::json::object();
    schema_of<T>().for_each(x, [&](std::string_view name, const auto& member) {
      obj[std::string{name}] = to_json_value(member);
    });
    return obj;
  } else {
    static_assert(always_false<T>, "cairn JSON codec: unsupported field type");
  }
}

/// Returns an empty string on success, else what is wrong at `path`.
template <class T>
std::string from_json_value(const nlohmann::json& j, T& x, const std::string& path) {
  auto mismatch = [&](const char* want) {
    return path + ": expected " + want + ", got " + j.type_name();
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) return mismatch("a boolean");
    x = j.get<bool>();
  } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
    using int_t = typename integer_of<T>::type;
    if (!j.is_number_integer()) return mismatch("an integer");
    if constexpr (std::is_signed_v<int_t>) {
      if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(
                                                          std::numeric_limits<int_t>::max()))
        return path + ": integer out of range";
      auto v = j.get<int64_t>();
      if (v < std::numeric_limits<int_t>::min() || v > std::numeric_limits<int_t>::max())
        return path + ": integer out of range";
      x = static_cast<T>(v);
    } else {
      // nlohmann stores integers built in code (json j = 5) as signed even when >= 0.
      if (!j.is_number_unsigned() && j.get<int64_t>() < 0)
        return path + ": expected a non-negative integer";
      auto v = j.get<uint64_t>();
      if (v > std::numeric_limits<int_t>::max()) return path + ": integer out of range";
      x = static_cast<T>(v);
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!j.is_number()) return mismatch("a number");
    x = j.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return mismatch("a string");
    x = j.get<std::string>();
  } else if constexpr (is_vector<T>::value) {
    if (!j.is_array()) return mismatch("an array");
    x.clear();
    for (size_t i = 0; i < j.size(); ++i) {
      typename T::value_type elem{}; // not x.emplace_back(): std::vector<bool> has no bool&
      if (auto e = from_json_value(j[i], elem, path + "[" + std::to_string(i) + "]"); !e.empty())
        return e;
      x.push_back(std::move(elem));
    }
  } else if constexpr (is_optional<T>::value) {
    if (j.is_null()) {
      x.reset();
      return {};
    }
    return from_json_value(j, x.emplace(), path);
  } else if constexpr (is_map<T>::value) {
    if (!j.is_object()) return mismatch("an object");
    x.clear();
    for (auto it = j.begin(); it != j.end(); ++it)
      if (auto e = from_json_value(it.value(), x[it.key()], path + "." + it.key()); !e.empty())
        return e;
  } else if constexpr (is_described_v<T>) {
    if (!j.is_object()) return mismatch("an object");
    auto s = schema_of<T>();
    std::string err;
    size_t seen = 0;
    s.for_each(x, [&](std::string_view name, auto& member) {
      if (!err.empty()) return;
      auto it = j.find(std::string{name});
      if (it == j.end()) {
        err = path + ": missing field \"" + std::string{name} + "\"";
        return;
      }
      ++seen;
      err = from_json_value(*it, member, path + "." + std::string{name});
    });
    if (err.empty() && seen != j.size())
      err = path + ": unknown fields (" + std::string{s.name} + " has " +
            std::to_string(s.field_count) + ")";
    return err;
  } else {
    static_assert(always_false<T>, "cairn JSON codec: unsupported field type");
  }
  return {};
}

} // namespace detail

/// Renders a described value as a JSON object keyed by field name.
template <class T>
nlohmann::json to_json(const T& value) {
  return detail::to_json_value(value);
}

/// Parses JSON made by to_json<T> (or by hand). Missing, unknown or mistyped
/// fields give an errc::invalid_argument error naming the JSON path.
template <class T>
expected<T> from_json(const nlohmann::json& j) {
  T result{};
  auto err = detail::from_json_value(j, result, "$");
  if (!err.empty()) return error{errc::invalid_argument, err};
  return result;
}

} // namespace cairn
