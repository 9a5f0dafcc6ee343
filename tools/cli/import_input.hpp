// The input of `cairn import`, read line by line in bounded memory, twice: once to
// check every line, once to write. Standard input (or a pipe) is copied to an unlinked
// temporary file during the first reading, so it can be read again.
#pragma once

#include <cstdio>
#include <string>

#include <cairn/expected.hpp>

namespace cairn::cli {

/// The longest line import reads: an event within the store's 64 MiB limit can take
/// six times that in JSON (each control byte of a metadata string as \u00XX).
inline constexpr size_t max_import_line_bytes = size_t{385} << 20;

class import_input {
public:
  enum class status { line, too_long, end };

  /// Opens FILE, or standard input for "-". Errors: unavailable (naming the file).
  static expected<import_input> open(const std::string& source);

  import_input(import_input&& other) noexcept;
  import_input& operator=(import_input&&) = delete;
  ~import_input();

  /// The next line (without its "\n" or "\r\n") in `line`, with its number from 1.
  /// A line over max_import_line_bytes is skipped to its end and reported as too_long.
  /// Errors: unavailable (a read error, naming the source).
  expected<status> next(std::string& line);
  size_t line_number() const { return line_number_; }

  /// Starts the second reading from the first line. Errors: unavailable.
  expected<void> rewind();

  const std::string& name() const { return name_; }

private:
  import_input(std::FILE* in, std::string name, bool owned);

  std::FILE* in_;
  std::string name_;
  bool owned_;                 ///< close in_ at the end (not stdin)
  std::FILE* spool_ = nullptr; ///< the copy of a pipe, made during the first reading
  bool first_reading_ = true;
  size_t line_number_ = 0;
};

} // namespace cairn::cli
