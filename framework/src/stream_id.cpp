// Parsing and validation of "<category>-<id>" stream names.
#include "cairn/stream_id.hpp"

#include <cstdio>

namespace cairn {
namespace {

constexpr size_t max_name_length = 1024; // bytes of "<category>-<id>"
constexpr size_t max_quoted_length = 64; // longer inputs are cut in messages

/// `text` in double quotes, control bytes as \xNN, cut after max_quoted_length bytes.
std::string quote(std::string_view text) {
  std::string out = "\"";
  size_t n = 0;
  for (char c : text) {
    if (n++ == max_quoted_length) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool is_category_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_control_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

error invalid(std::string message) { return error{errc::invalid_argument, std::move(message)}; }

} // namespace

expected<stream_id> stream_id::parse(std::string_view name) {
  auto dash = name.find('-');
  if (dash == std::string_view::npos)
    return invalid("stream name " + quote(name) + " has no '-' between category and id");
  stream_id s{std::string(name.substr(0, dash)), std::string(name.substr(dash + 1))};
  if (auto ok = s.validate(); !ok) return std::move(ok).error();
  return expected<stream_id>(std::move(s));
}

expected<void> stream_id::validate() const {
  if (category.empty()) return invalid("stream " + quote(str()) + " has an empty category");
  for (char c : category)
    if (!is_category_char(c))
      return invalid("stream category " + quote(category) +
                     " may contain only letters, digits and '_'");
  if (id.empty()) return invalid("stream " + quote(str()) + " has an empty id");
  for (char c : id)
    if (is_control_char(c))
      return invalid("stream id " + quote(id) + " contains a control character");
  size_t length = category.size() + 1 + id.size();
  if (length > max_name_length)
    return invalid("stream name " + quote(str()) + " is " + std::to_string(length) +
                   " bytes long; the limit is " + std::to_string(max_name_length));
  return {};
}

} // namespace cairn
