// The HTTP API's routes, free of Beast: a parsed request in, a response (now or
// later) or an event-stream request out. server.cpp does the I/O around them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server_state.hpp"

namespace cairn::http {

/// Routes a request that passed the access check. Returns an sse_request when it
/// opens the event stream; otherwise calls `respond` once, now or later, on any
/// thread.
std::optional<sse_request> route(http_server::impl& s, api_request req, responder respond);

/// A JSON error body: {"error": code, "message": message}.
api_response error_response(unsigned status, std::string_view code, std::string_view message);

/// The HTTP status a Cairn error maps to (docs/http.md).
unsigned status_of(errc code);

/// An error as its response.
api_response error_response(const error& e);

/// One committed event as a JSON object, its payload rendered by the event
/// renderer of its category, else as base64 (events.cpp).
std::string event_json(const http_server::impl& s, const envelope& e);

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`); nullopt if malformed.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);

} // namespace cairn::http
