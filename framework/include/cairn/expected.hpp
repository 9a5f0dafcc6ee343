// expected<T>: a value or a cairn::error. Fallible calls return it instead of throwing.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

#include "cairn/error.hpp"

namespace cairn {

/// Holds either a T or an error. Accessing the wrong side is a programming error
/// (asserted in debug builds). `expected<void>` carries only success or an error.
template <class T>
class expected {
public:
  using value_type = T;

  expected(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  expected(cairn::error err) : data_(std::in_place_index<1>, std::move(err)) {
    assert(std::get<1>(data_).code() != errc::ok);
  }
  template <class U, class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                              !std::is_same_v<std::decay_t<U>, T> &&
                                              !std::is_same_v<std::decay_t<U>, cairn::error> &&
                                              !std::is_same_v<std::decay_t<U>, expected>>>
  expected(U&& value) : data_(std::in_place_index<0>, T(std::forward<U>(value))) {}

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(data_); }
  const T& value() const& { assert(has_value()); return std::get<0>(data_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(data_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const cairn::error& error() const& { assert(!has_value()); return std::get<1>(data_); }
  cairn::error&& error() && { assert(!has_value()); return std::get<1>(std::move(data_)); }

private:
  std::variant<T, cairn::error> data_;
};

template <>
class expected<void> {
public:
  using value_type = void;
  expected() = default;
  expected(cairn::error err) : err_(std::move(err)) {}

  bool has_value() const noexcept { return !err_; }
  explicit operator bool() const noexcept { return has_value(); }
  const cairn::error& error() const& { return err_; }
  cairn::error&& error() && { return std::move(err_); }

private:
  cairn::error err_;
};

} // namespace cairn
