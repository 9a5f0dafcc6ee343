// Helpers shared by the cairn subcommands: argument reading, opening the store, formatting.
#include "cli.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <limits>

#include <iomanip>
#include <nlohmann/json.hpp>

#include <cairn/file_journal.hpp>

namespace cairn::cli {

arg_reader::arg_reader(context& ctx, std::vector<std::string> args)
    : ctx_(ctx), args_(std::move(args)) {
  for (auto& a : args_) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") help_ = true;
  }
}

bool arg_reader::next() {
  ++index_;
  return index_ < args_.size();
}

bool arg_reader::flag(const char* name) { return !only_positional_ && current() == name; }

bool arg_reader::option(const char* name, std::string& value) {
  if (only_positional_) return false;
  const std::string& a = current();
  std::string prefix = std::string(name) + "=";
  if (a == name) {
    if (index_ + 1 >= args_.size()) throw usage_error(std::string(name) + " needs a value");
    value = args_[++index_];
    return true;
  }
  if (a.compare(0, prefix.size(), prefix) == 0) {
    value = a.substr(prefix.size());
    return true;
  }
  return false;
}

bool arg_reader::positional() {
  if (only_positional_) return true;
  const std::string& a = current();
  if (a == "--") {
    only_positional_ = true;
    return false;
  }
  if (a == "--help" || a == "-h") return false;
  std::string dir;
  if (option("--data", dir)) {
    if (dir.empty()) throw usage_error("--data needs a non-empty folder name");
    ctx_.data_given = dir;
    ctx_.data_dir = store_folder(dir);
    return false;
  }
  if (a.size() > 1 && a[0] == '-') throw usage_error("unknown option " + a);
  return true;
}

uint64_t parse_count(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error(what + " needs a non-negative integer, not \"" + printable(text) + "\"");
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE) throw usage_error(what + " value " + text + " is too large");
  return v;
}

int64_t parse_time(const std::string& text, const std::string& what) {
  auto bad = [&] {
    return usage_error(what + " needs a UTC time like 2024-05-01T10:00:00Z or "
                              "2024-05-01T10:00:00.123456789Z, or nanoseconds since the Unix "
                              "epoch, not \"" + printable(text) + "\"");
  };
  size_t sign = !text.empty() && text[0] == '-' ? 1 : 0;
  if (text.size() > sign && text.find_first_not_of("0123456789", sign) == std::string::npos) {
    errno = 0;
    long long v = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) throw usage_error(what + " value " + text + " is out of range");
    return v;
  }
  // YYYY-MM-DDTHH:MM:SS[.fraction]Z
  auto number = [&](size_t pos, size_t n) {
    int v = 0;
    for (size_t k = pos; k < pos + n; ++k) {
      if (k >= text.size() || text[k] < '0' || text[k] > '9') throw bad();
      v = v * 10 + (text[k] - '0');
    }
    return v;
  };
  auto expect = [&](size_t pos, char c) {
    if (pos >= text.size() || text[pos] != c) throw bad();
  };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  expect(4, '-');
  tm.tm_mon = number(5, 2) - 1;
  expect(7, '-');
  tm.tm_mday = number(8, 2);
  expect(10, 'T');
  tm.tm_hour = number(11, 2);
  expect(13, ':');
  tm.tm_min = number(14, 2);
  expect(16, ':');
  tm.tm_sec = number(17, 2);
  size_t i = 19;
  int64_t nanos = 0;
  if (i < text.size() && text[i] == '.') {
    size_t first = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') nanos = nanos * 10 + (text[i++] - '0');
    if (i == first || i - first > 9) throw bad();
    for (size_t digits = i - first; digits < 9; ++digits) nanos *= 10;
  }
  expect(i, 'Z');
  if (i + 1 != text.size()) throw bad();
  std::tm want = tm;
  std::time_t seconds = ::timegm(&tm);
  // timegm normalizes (February 30 becomes March 2): accept only dates that exist.
  std::tm back{};
  if (!::gmtime_r(&seconds, &back) || back.tm_year != want.tm_year || back.tm_mon != want.tm_mon ||
      back.tm_mday != want.tm_mday || back.tm_hour != want.tm_hour || back.tm_min != want.tm_min ||
      back.tm_sec != want.tm_sec)
    throw bad();
  constexpr int64_t ns_per_s = 1000000000;
  if (seconds > std::numeric_limits<int64_t>::max() / ns_per_s - 1 ||
      seconds < std::numeric_limits<int64_t>::min() / ns_per_s + 1)
    throw usage_error(what + " value " + text + " is out of range");
  return static_cast<int64_t>(seconds) * ns_per_s + nanos;
}

int fail(const std::string& command, const std::string& message) {
  std::cout.flush();
  std::cerr << "cairn " << command << ": " << message << '\n';
  return exit_failed;
}

std::string store_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p{dir};
  if (!fs::exists(p / "LOCK", ec) && fs::is_directory(p / "events", ec)) return (p / "events").string();
  return dir;
}

std::string import_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p{dir};
  auto name = p.filename().empty() ? p.parent_path().filename() : p.filename();
  if (fs::exists(p / "LOCK", ec) || name == "events") return dir;
  return (p / "events").string();
}

expected<void> require_data_dir(const context& ctx) {
  struct stat st;
  if (::stat(ctx.data_dir.c_str(), &st) != 0)
    return error{errc::unavailable, "data folder " + ctx.data_dir + ": " + std::strerror(errno) +
                                      " (choose the folder with --data DIR)"};
  if (!S_ISDIR(st.st_mode))
    return error{errc::unavailable, "data folder " + ctx.data_dir + " is not a directory"};
  return {};
}

file_journal_options store_options(bool read_only) {
  file_journal_options options;
  options.read_only = read_only;
  // Readers trust the checked index files (verify checks every record itself).
  if (read_only) options.verify_on_open = false;
  options.log = [](const std::string& message) { std::cerr << "cairn: store: " << message << '\n'; };
  return options;
}

expected<std::shared_ptr<journal>> open_reader(const context& ctx) {
  if (ctx.uses_postgres()) return open_postgres_reader(ctx);
  if (auto ok = require_data_dir(ctx); !ok) return std::move(ok).error();
  return open_file_journal(ctx.data_dir, store_options(true));
}

std::string format_time(int64_t timestamp_ns) {
  // Floor division, so times before 1970 still get a nanosecond part in [0, 1e9).
  int64_t seconds = timestamp_ns / 1000000000;
  int64_t nanos = timestamp_ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    seconds -= 1;
  }
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (!::gmtime_r(&t, &tm)) return std::to_string(timestamp_ns) + "ns";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(nanos));
  return buf;
}

std::string to_hex(const bytes& data) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 3);
  for (size_t i = 0; i < data.size(); ++i) {
    if (i > 0) out += ' ';
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_event_text(const envelope& e) {
  std::string out = "position " + std::to_string(e.position) + "  " + printable(e.stream.str()) +
                    "  version " + std::to_string(e.version) + "  " + format_time(e.timestamp_ns) +
                    "\n";
  out += "  type: " + printable(e.type) + " (schema " + std::to_string(e.schema_version) + ")\n";
  if (!e.meta.correlation_id.empty())
    out += "  correlation_id: " + printable(e.meta.correlation_id) + "\n";
  if (!e.meta.causation_id.empty())
    out += "  causation_id: " + printable(e.meta.causation_id) + "\n";
  for (auto& [key, value] : e.meta.entries)
    out += "  meta " + printable(key) + ": " + printable(value) + "\n";
  out += "  payload (" + std::to_string(e.payload.size()) + " bytes)";
  // 32 bytes of hex per line keeps long payloads readable.
  constexpr size_t per_line = 32;
  if (e.payload.empty()) {
    out += "\n";
  } else if (e.payload.size() <= per_line) {
    out += ": " + to_hex(e.payload) + "\n";
  } else {
    out += ":\n";
    for (size_t i = 0; i < e.payload.size(); i += per_line) {
      size_t n = std::min(per_line, e.payload.size() - i);
      out += "    " + to_hex(bytes(e.payload.begin() + static_cast<std::ptrdiff_t>(i),
                                     e.payload.begin() + static_cast<std::ptrdiff_t>(i + n))) +
             "\n";
    }
  }
  return out;
}


int print_stats(const std::vector<stats_count>& counts, uint64_t events, int64_t first_ns,
                int64_t last_ns, bool json) {
  bool empty = events == 0;
  if (json) {
    nlohmann::ordered_json j;
    for (auto& c : counts) {
      std::string key = c.label;
      std::replace(key.begin(), key.end(), ' ', '_');
      j[key] = c.value;
    }
    j["first_timestamp_ns"] = empty ? nlohmann::ordered_json() : nlohmann::ordered_json(first_ns);
    j["first_time"] = empty ? nlohmann::ordered_json() : nlohmann::ordered_json(format_time(first_ns));
    j["last_timestamp_ns"] = empty ? nlohmann::ordered_json() : nlohmann::ordered_json(last_ns);
    j["last_time"] = empty ? nlohmann::ordered_json() : nlohmann::ordered_json(format_time(last_ns));
    std::cout << j.dump() << '\n';
  } else {
    auto row = [](const std::string& label) -> std::ostream& {
      return std::cout << std::left << std::setw(16) << label + ":";
    };
    for (auto& c : counts) row(c.label) << c.value << '\n';
    row("first event") << (empty ? "-" : format_time(first_ns)) << '\n';
    row("last event") << (empty ? "-" : format_time(last_ns)) << '\n';
  }
  std::cout.flush();
  return std::cout ? exit_ok : fail("stats", "cannot write the output");
}

} // namespace cairn::cli
