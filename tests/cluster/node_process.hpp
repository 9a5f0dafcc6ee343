// node_process: a child process for process-level tests (a cluster member, a checker),
// with its output in a log file. The destructor kills it (SIGKILL) and reaps it, so a
// failing test leaves no process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cairn::test {

class node_process {
public:
  /// Starts `program` with `args` (not including argv[0]); stdout and stderr are
  /// appended to `log_file`. The child is killed if this test process dies.
  node_process(std::string program, std::vector<std::string> args, std::string log_file);
  ~node_process();
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  pid_t pid() const { return pid_; }

  /// True until the child has exited (reaps it when it has).
  bool running();

  /// Sends `sig` to the child if it still runs.
  void signal(int sig);

  /// Waits up to `timeout` for the child to exit: its exit code, 128 + the signal that
  /// ended it, or nothing if it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  /// SIGKILL and reap (no-op once it has exited).
  void kill();

  /// The whole log file.
  std::string log() const;
  /// Its last `lines` lines.
  std::string log_tail(size_t lines = 20) const;

  const std::string& log_file() const { return log_file_; }

private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_file_;
};

/// The JSON in `path`, or nothing if it does not exist (yet) or does not parse.
std::optional<nlohmann::json> read_json_file(const std::string& path);

/// Polls `pred` every 50 ms until it holds (true) or `timeout` has passed (false).
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

/// Runs `program` with `args` to its end (at most `timeout`, then SIGKILL): its exit
/// code (128 + signal if one ended it, -1 on timeout) and its output (stdout + stderr).
std::pair<int, std::string> run_to_end(const std::string& program,
                                       const std::vector<std::string>& args,
                                       const std::string& log_file,
                                       std::chrono::milliseconds timeout);

} // namespace cairn::test
