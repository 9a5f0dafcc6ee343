// Reading `cairn import`'s input in bounded memory (import_input.hpp).
#include "import_input.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace cairn::cli {
namespace {

/// An unlinked temporary file in $TMPDIR (or /tmp), gone when closed.
expected<std::FILE*> temporary_file() {
  const char* dir = std::getenv("TMPDIR");
  std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/cairn-import-XXXXXX";
  int fd = ::mkstemp(pattern.data());
  if (fd < 0)
    return error{errc::unavailable, "cannot create a temporary file for standard input in " +
                                      pattern.substr(0, pattern.rfind('/')) + ": " +
                                      std::strerror(errno) + " (set TMPDIR)"};
  ::unlink(pattern.c_str());
  std::FILE* f = ::fdopen(fd, "w+b");
  if (!f) {
    ::close(fd);
    return error{errc::unavailable, std::string("cannot use a temporary file: ") + std::strerror(errno)};
  }
  return f;
}

} // namespace

import_input::import_input(std::FILE* in, std::string name, bool owned)
    : in_(in), name_(std::move(name)), owned_(owned) {}

import_input::import_input(import_input&& other) noexcept
    : in_(other.in_), name_(std::move(other.name_)), owned_(other.owned_), spool_(other.spool_),
      first_reading_(other.first_reading_), line_number_(other.line_number_) {
  other.in_ = nullptr;
  other.spool_ = nullptr;
}

import_input::~import_input() {
  if (in_ && owned_) std::fclose(in_);
  if (spool_) std::fclose(spool_);
}

expected<import_input> import_input::open(const std::string& source) {
  if (source == "-") {
    auto spool = temporary_file();
    if (!spool) return std::move(spool).error();
    import_input in{stdin, "standard input", false};
    in.spool_ = *spool;
    return in;
  }
  std::FILE* f = std::fopen(source.c_str(), "rb");
  if (!f) return error{errc::unavailable, "cannot open " + source + ": " + std::strerror(errno)};
  import_input in{f, source, true};
  struct stat st;
  if (::fstat(::fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) { // a pipe cannot be read twice
    auto spool = temporary_file();
    if (!spool) return std::move(spool).error();
    in.spool_ = *spool;
  }
  return in;
}

expected<import_input::status> import_input::next(std::string& line) {
  line.clear();
  bool too_long = false, any = false;
  int c;
  while ((c = getc_unlocked(in_)) != EOF) {
    any = true;
    if (c == '\n') break;
    if (line.size() < max_import_line_bytes)
      line.push_back(static_cast<char>(c));
    else
      too_long = true;
  }
  if (std::ferror(in_))
    return error{errc::unavailable, "cannot read " + name_ + ": " + std::strerror(errno)};
  if (!any) return status::end;
  ++line_number_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // A UTF-8 byte order mark, as some editors write at the start of a file, is no content.
  if (line_number_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
  if (spool_ && first_reading_) {
    // A line too long to keep is copied as a bad one (the import stops after the check).
    if (std::fwrite(line.data(), 1, line.size(), spool_) != line.size() ||
        std::fputc('\n', spool_) == EOF)
      return error{errc::unavailable, std::string("cannot copy standard input to a temporary "
                                                  "file: ") + std::strerror(errno)};
  }
  return too_long ? status::too_long : status::line;
}

expected<void> import_input::rewind() {
  if (spool_) {
    if (std::fflush(spool_) != 0)
      return error{errc::unavailable, std::string("cannot write the copy of standard input: ") +
                                        std::strerror(errno)};
    if (owned_) std::fclose(in_); // stdin stays open
    in_ = spool_;
    spool_ = nullptr;
    owned_ = true;
  }
  if (std::fseek(in_, 0, SEEK_SET) != 0)
    return error{errc::unavailable, "cannot read " + name_ + " again: " + std::strerror(errno)};
  std::clearerr(in_);
  first_reading_ = false;
  line_number_ = 0;
  return {};
}

} // namespace cairn::cli
