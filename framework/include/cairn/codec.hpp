// The binary codec: a compact, stable encoding of any described type for storage.
// The format is specified in docs/encoding.md; decoding never trusts its input.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cairn/envelope.hpp"
#include "cairn/expected.hpp"
#include "cairn/schema.hpp"

// Floating-point values are copied byte for byte, so the format (little-endian) is only
// produced on little-endian hosts.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
  __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cairn codec: big-endian hosts are not supported"
#endif

namespace cairn {

namespace detail {

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_map : std::false_type {};
template <class K, class V, class C, class A>
struct is_map<std::map<K, V, C, A>> : std::true_type {};

template <class>
inline constexpr bool always_false = false;

/// Appends the encoding of values to a byte buffer.
class binary_writer {
public:
  explicit binary_writer(bytes& out) : out_(out) {}

  void varint(uint64_t x) {
    while (x >= 0x80) {
      out_.push_back(static_cast<uint8_t>(x) | 0x80);
      x >>= 7;
    }
    out_.push_back(static_cast<uint8_t>(x));
  }
  void raw(const void* data, size_t n) {
    auto p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + n);
  }

  template <class T>
  void value(const T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      out_.push_back(x ? 1 : 0);
    } else if constexpr (std::is_enum_v<T>) {
      value(static_cast<std::underlying_type_t<T>>(x));
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      auto v = static_cast<int64_t>(x);
      varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); // zigzag
    } else if constexpr (std::is_integral_v<T>) {
      varint(static_cast<uint64_t>(x));
    } else if constexpr (std::is_floating_point_v<T>) {
      static_assert(sizeof(double) == 8 && sizeof(float) == 4);
      static_assert(!std::is_same_v<T, long double>, "cairn codec: use double, not long double");
      uint8_t buf[sizeof(T)];
      std::memcpy(buf, &x, sizeof(T)); // little-endian hosts only (checked above)
      raw(buf, sizeof(T));
    } else if constexpr (std::is_same_v<T, std::string>) {
      varint(x.size());
      raw(x.data(), x.size());
    } else if constexpr (is_vector<T>::value) {
      varint(x.size());
      for (const auto& e : x) value(e); // const auto&: std::vector<bool> yields a bool prvalue
    } else if constexpr (is_optional<T>::value) {
      out_.push_back(x ? 1 : 0);
      if (x) value(*x);
    } else if constexpr (is_map<T>::value) {
      varint(x.size());
      for (auto& [k, v] : x) {
        value(k);
        value(v);
      }
    } else if constexpr (is_described_v<T>) {
      auto s = schema_of<T>();
      varint(s.field_count);
      s.for_each(x, [&](std::string_view, const auto& member) { value(member); });
    } else {
      static_assert(always_false<T>,
                    "cairn codec: this type has no schema and is not a supported field "
                    "type. Declare `describe(cairn::type<T>)` next to a struct (see "
                    "schema.hpp), or use integers, bool, enums, double, std::string, "
                    "std::vector, std::optional or std::map");
    }
  }

private:
  bytes& out_;
};

/// Reads values back, checking every length against the bytes that remain.
class binary_reader {
public:
  binary_reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}

  bool at_end() const { return p_ == end_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const error& failure() const { return error_; }
  bool failed() const { return static_cast<bool>(error_); }

  void fail(std::string what) {
    if (!error_) error_ = error{errc::corrupt, std::move(what)};
    p_ = end_;
  }

  uint64_t varint() {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) {
        fail("truncated varint");
        return 0;
      }
      uint8_t byte = *p_++;
      if (shift == 63 && byte > 1) {
        fail(byte & 0x80 ? "varint longer than 10 bytes" : "varint overflows 64 bits");
        return 0;
      }
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return result;
    }
    fail("varint longer than 10 bytes");
    return 0;
  }

  /// A count of elements that each take at least one byte: bounded by what remains.
  size_t count() {
    auto n = varint();
    if (n > remaining()) {
      fail("length " + std::to_string(n) + " exceeds the " + std::to_string(remaining()) +
           " bytes that remain");
      return 0;
    }
    return static_cast<size_t>(n);
  }

  template <class T>
  void value(T& x) {
    if (failed()) return;
    if constexpr (std::is_same_v<T, bool>) {
      auto b = byte();
      if (b > 1) fail("bool byte is " + std::to_string(b));
      x = b == 1;
    } else if constexpr (std::is_enum_v<T>) {
      std::underlying_type_t<T> u{};
      value(u);
      x = static_cast<T>(u);
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      auto z = varint();
      auto v = static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
      if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<int64_t>(std::numeric_limits<T>::max()))
        fail("integer " + std::to_string(v) + " out of range for its field");
      x = static_cast<T>(v);
    } else if constexpr (std::is_integral_v<T>) {
      auto v = varint();
      if (v > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        fail("integer " + std::to_string(v) + " out of range for its field");
      x = static_cast<T>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
      static_assert(!std::is_same_v<T, long double>, "cairn codec: use double, not long double");
      if (remaining() < sizeof(T)) return fail("truncated floating-point value");
      std::memcpy(&x, p_, sizeof(T));
      p_ += sizeof(T);
    } else if constexpr (std::is_same_v<T, std::string>) {
      auto n = count();
      x.assign(reinterpret_cast<const char*>(p_), n);
      p_ += n;
    } else if constexpr (is_vector<T>::value) {
      auto n = count();
      x.clear();
      x.reserve(n);
      for (size_t i = 0; i < n && !failed(); ++i) {
        if constexpr (std::is_same_v<typename T::value_type, bool>) { // vector<bool>: no bool&
          bool b = false;
          value(b);
          x.push_back(b);
        } else {
          value(x.emplace_back());
        }
      }
    } else if constexpr (is_optional<T>::value) {
      auto b = byte();
      if (b > 1) return fail("optional flag is " + std::to_string(b));
      if (b == 1) value(x.emplace());
      else x.reset();
    } else if constexpr (is_map<T>::value) {
      auto n = count();
      x.clear();
      for (size_t i = 0; i < n && !failed(); ++i) {
        typename T::key_type k{};
        typename T::mapped_type v{};
        value(k);
        value(v);
        if (!failed() && !x.emplace(std::move(k), std::move(v)).second)
          fail("duplicate map key");
      }
    } else if constexpr (is_described_v<T>) {
      auto s = schema_of<T>();
      auto n = varint();
      if (!failed() && n != s.field_count)
        return fail(std::string{s.name} + " has " + std::to_string(s.field_count) +
                    " fields, the bytes say " + std::to_string(n));
      s.for_each(x, [&](std::string_view, auto& member) { value(member); });
    } else {
      static_assert(always_false<T>, "cairn codec: unsupported field type");
    }
  }

private:
  uint8_t byte() {
    if (p_ == end_) {
      fail("truncated input");
      return 0;
    }
    return *p_++;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  error error_;
};

} // namespace detail

/// Encodes a described value (see schema.hpp) in Cairn's binary format.
template <class T>
bytes encode(const T& value) {
  bytes out;
  out.reserve(16);
  detail::binary_writer{out}.value(value);
  return out;
}

/// Decodes bytes made by encode<T>. Malformed, truncated or trailing bytes give an
/// errc::corrupt error that says what was wrong; never undefined behavior.
template <class T>
expected<T> decode(const uint8_t* data, size_t size) {
  static_assert(std::is_default_constructible_v<T>, "cairn codec: T must be default-constructible");
  detail::binary_reader in{data, size};
  T result{};
  in.value(result);
  if (in.failed()) return error{errc::corrupt, in.failure().message()};
  if (!in.at_end())
    return error{errc::corrupt, std::to_string(in.remaining()) + " trailing bytes after value"};
  return result;
}

template <class T>
expected<T> decode(const bytes& data) {
  return decode<T>(data.data(), data.size());
}

} // namespace cairn
