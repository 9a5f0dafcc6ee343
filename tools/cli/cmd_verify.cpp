// cairn verify: checks every record's CRC and framing and every stream's version sequence.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include <cairn/file_journal.hpp>

#include "cli.hpp"

namespace cairn::cli {
namespace {

constexpr const char* verify_help = R"(Usage: cairn [--data DIR] verify [--quiet]

Reads every segment file of the data folder and checks each record's CRC and framing,
that global positions run 1, 2, 3... without holes and that every stream's versions
run 1, 2, 3... without holes or repeats. Prints each problem found (naming file and
offset) and exits 1 if there is any, 0 if the store is sound. Shows a progress bar on
stderr when stderr is a terminal. Reads only: safe beside a running node.

Options:
  -q, --quiet  print only problems
  --data DIR   the data folder (default ./data)
)";

/// Draws "verifying [#####.....]  52%  12.3 of 23.6 MiB" on stderr, at most every 100 ms.
class progress_bar {
public:
  void update(uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    constexpr int width = 30;
    double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
    if (fraction > 1.0) fraction = 1.0;
    int filled = static_cast<int>(fraction * width);
    char line[160];
    std::snprintf(line, sizeof line, "\rverifying [%.*s%.*s] %3d%%  %.1f of %.1f MiB", filled,
                  "##############################", width - filled,
                  "..............................", static_cast<int>(fraction * 100),
                  static_cast<double>(done) / 1048576.0, static_cast<double>(total) / 1048576.0);
    std::fputs(line, stderr);
    std::fflush(stderr);
  }
  /// Erases the bar so later output starts on a clean line.
  void clear() {
    if (!drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }

private:
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

} // namespace

int run_verify(context& ctx, std::vector<std::string> args) {
  arg_reader r(ctx, std::move(args));
  if (r.help()) {
    std::cout << verify_help;
    return exit_ok;
  }
  bool quiet = false;
  while (r.next()) {
    if (r.flag("--quiet") || r.flag("-q"))
      quiet = true;
    else if (r.positional())
      throw usage_error("unexpected argument \"" + printable(r.current()) + "\"");
  }
  if (ctx.uses_postgres()) return run_postgres_verify(ctx, quiet);
  if (auto ok = require_data_dir(ctx); !ok) return fail("verify", ok.error().describe());

  progress_bar bar;
  std::function<void(uint64_t, uint64_t)> progress;
  if (::isatty(STDERR_FILENO)) progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
  auto report = verify_file_journal(ctx.data_dir, progress);
  bar.clear();
  if (!report) return fail("verify", report.error().describe());

  for (auto& problem : report->problems) std::cout << problem << '\n';
  const auto& rep = *report;
  std::string checked = std::to_string(rep.records) + " records, " + std::to_string(rep.streams) +
                        " streams, " + std::to_string(rep.bytes) + " bytes in " + ctx.data_dir;
  if (!rep.problems.empty()) {
    std::cout.flush();
    std::cerr << "cairn verify: " << rep.problems.size()
              << (rep.problems.size() == 1 ? " problem" : " problems") << " found (checked "
              << checked << ")\n";
    return exit_failed;
  }
  if (!quiet) std::cout << "ok: " << checked << '\n';
  std::cout.flush();
  return exit_ok;
}

} // namespace cairn::cli
