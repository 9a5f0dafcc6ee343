// Cairn's small, closed set of error codes and the error value that carries them.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace cairn {

/// What went wrong, coarsely. Callers branch on these; the message says the rest.
enum class errc : uint8_t {
  ok = 0,
  rejected = 1,         ///< a business rule refused the command; nothing was stored
  conflict = 2,         ///< optimistic concurrency: the stream moved on
  not_found = 3,        ///< no such stream, aggregate type, projection or event type
  timeout = 4,          ///< no answer in time; the operation may or may not have happened
  unavailable = 5,      ///< the store or actor cannot serve now (shut down, not started)
  corrupt = 6,          ///< stored or received bytes do not decode
  invalid_argument = 7, ///< the caller passed something malformed
  fenced = 8,           ///< a cluster node no longer owns the stream's shard; nothing was stored
};

/// Stable lower-case name of a code, e.g. "conflict".
std::string_view to_string(errc code) noexcept;

/// An error value: a code plus a message a person can act on
/// ("expected version 7, found 9 in stream account-42"). Cheap to copy.
class error {
public:
  error() = default;
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// "conflict: expected version 7, found 9 in stream account-42"
  std::string describe() const;

  explicit operator bool() const noexcept { return code_ != errc::ok; }

  friend bool operator==(const error& a, const error& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }
  friend bool operator!=(const error& a, const error& b) { return !(a == b); }

private:
  errc code_ = errc::ok;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const error& e);

inline bool is_rejected(const error& e) noexcept { return e.code() == errc::rejected; }
inline bool is_conflict(const error& e) noexcept { return e.code() == errc::conflict; }
inline bool is_not_found(const error& e) noexcept { return e.code() == errc::not_found; }
inline bool is_timeout(const error& e) noexcept { return e.code() == errc::timeout; }
inline bool is_unavailable(const error& e) noexcept { return e.code() == errc::unavailable; }
inline bool is_corrupt(const error& e) noexcept { return e.code() == errc::corrupt; }
inline bool is_fenced(const error& e) noexcept { return e.code() == errc::fenced; }
inline bool is_invalid_argument(const error& e) noexcept {
  return e.code() == errc::invalid_argument;
}

} // namespace cairn
