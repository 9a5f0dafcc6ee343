// Base64 (RFC 4648, standard alphabet, padded) for payloads in the CLI's JSON lines.
#pragma once

#include <string>
#include <string_view>

#include <cairn/envelope.hpp>
#include <cairn/expected.hpp>

namespace cairn::cli {

/// Encodes `data` with the standard alphabet and '=' padding.
std::string base64_encode(const bytes& data);

/// Decodes canonical padded base64: length a multiple of 4, only the standard
/// alphabet, '=' only as the final one or two characters, unused bits zero. No
/// whitespace. Anything else is an invalid_argument error naming the offset; never
/// undefined behaviour, whatever the input.
expected<bytes> base64_decode(std::string_view text);

} // namespace cairn::cli
