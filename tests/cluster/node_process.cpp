// node_process: child processes for process-level tests.
#include "cluster/node_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace cairn::test {

node_process::node_process(std::string program, std::vector<std::string> args,
                           std::string log_file)
    : log_file_(std::move(log_file)) {
  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls until exec.
  std::vector<std::string> all;
  all.push_back(program);
  for (auto& a : args) all.push_back(a);
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log_file_ + ": " + std::strerror(errno));
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(fd);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // the test process died: so does its child
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execv(argv[0], argv.data());
    const char msg[] = "node_process: exec failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(fd);
}

node_process::~node_process() { kill(); }

bool node_process::running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  else exit_code_ = -1; // not our child any more: treat it as gone
  return false;
}

void node_process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> node_process::wait_exit(std::chrono::milliseconds timeout) {
  wait_until([this] { return !running(); }, timeout);
  return exit_code_;
}

void node_process::kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = 128 + SIGKILL;
}

std::string node_process::log() const {
  std::ifstream in{log_file_};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string node_process::log_tail(size_t lines) const {
  std::ifstream in{log_file_};
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (auto& l : last) out += l + "\n";
  return out;
}

std::optional<nlohmann::json> read_json_file(const std::string& path) {
  std::ifstream in{path};
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
}

std::pair<int, std::string> run_to_end(const std::string& program,
                                       const std::vector<std::string>& args,
                                       const std::string& log_file,
                                       std::chrono::milliseconds timeout) {
  node_process p{program, args, log_file};
  auto code = p.wait_exit(timeout);
  if (!code) p.kill();
  return {code.value_or(-1), p.log()};
}

} // namespace cairn::test
