// Base64 encoder and strict decoder for the CLI's JSON lines.
#include "base64.hpp"

#include <cstdio>

namespace cairn::cli {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// 0..63 for alphabet characters, -1 otherwise.
int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

error bad(std::string message) {
  return error{errc::invalid_argument, "invalid base64: " + std::move(message)};
}

std::string describe_char(char c) {
  auto u = static_cast<unsigned char>(c);
  char buf[16];
  if (u >= 0x21 && u < 0x7f)
    std::snprintf(buf, sizeof buf, "'%c'", c);
  else
    std::snprintf(buf, sizeof buf, "byte 0x%02x", u);
  return buf;
}

} // namespace

std::string base64_encode(const bytes& data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{data[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

expected<bytes> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return bad("length " + std::to_string(text.size()) + " is not a multiple of 4");
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  size_t data_chars = text.size() - padding;
  bytes out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < data_chars; ++i) {
    int v = sextet(text[i]);
    if (v < 0) {
      if (text[i] == '=') return bad("'=' padding at offset " + std::to_string(i) + " is not at the end");
      return bad(describe_char(text[i]) + " at offset " + std::to_string(i) +
                 " is not in the base64 alphabet");
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
      acc &= (1u << bits) - 1;
    }
  }
  // Leftover bits come from the last group before the padding and must be zero, or the
  // text is not what the encoder writes (and two texts would decode to the same bytes).
  if (acc != 0) return bad("the unused bits before the '=' padding are not zero");
  return expected<bytes>(std::move(out));
}

} // namespace cairn::cli
