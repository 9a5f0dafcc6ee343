// The CLI's JSON-lines event format, shared by export, read --json, tail --json and import.
//
// One event per line, keys in this order:
//   {"position":1,"stream":"account-1","version":1,"type":"opened","schema_version":1,
//    "timestamp_ns":1714557600123456789,"time":"2024-05-01T10:00:00.123456789Z",
//    "metadata":{"correlation_id":"c","causation_id":"k","entries":{"user":"ann"}},
//    "payload_base64":"AQNhbm4="}
// Payloads stay opaque: the bytes of the type's binary encoding (docs/encoding.md).
#pragma once

#include <string>
#include <string_view>

#include <cairn/envelope.hpp>
#include <cairn/expected.hpp>

namespace cairn::cli {

/// How to render strings that JSON cannot hold faithfully.
enum class json_fidelity {
  exact, ///< export: non-UTF-8 text or a repeated metadata key is an error
  lossy, ///< display: invalid UTF-8 becomes U+FFFD, a repeated key keeps its first value
};

/// One event as a JSON line (without the newline).
expected<std::string> event_to_json_line(const envelope& e, json_fidelity fidelity);

/// The metadata entry where import keeps the original "timestamp_ns".
inline constexpr const char* imported_timestamp_key = "imported_timestamp_ns";

/// An event parsed from an import line.
struct import_event {
  stream_id stream;
  event_data data;
  uint64_t version = 0; ///< the line's "version": the event's place in its stream; 0 if not given
  size_t line = 0;      ///< in the input, from 1
};

/// Parses and checks one import line. "stream", "type" and "payload_base64" are
/// required; "schema_version" defaults to 1; "metadata" and "version" (a positive
/// integer) are optional; "position" and "time" are accepted and ignored (the store
/// assigns them). With
/// `keep_timestamp`, a "timestamp_ns" is kept as metadata entry "imported_timestamp_ns"
/// unless that entry is already present (an earlier import's original time wins).
/// Errors are invalid_argument with a message that names the offending key.
expected<import_event> parse_import_line(std::string_view line, bool keep_timestamp);

} // namespace cairn::cli
