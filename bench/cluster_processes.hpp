// cluster_processes: what cluster_bench runs: cluster_bank_node members as child processes
// on one fresh PostgreSQL schema, their status files and ack files, their CPU time. A
// member is SIGKILLed and reaped when its owner goes, and by PR_SET_PDEATHSIG should the
// bench itself die.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bench_support.hpp"

#ifndef CAIRN_CLUSTER_NODE
#error "CAIRN_CLUSTER_NODE: the path of the cluster_bank_node program"
#endif

namespace cairn::bench::cluster_run {

using cairn::bench::clock_type;
using cairn::bench::median;
using nlohmann::json;
using strings = std::vector<std::string>;

constexpr uint32_t shard_count = 64; // the binary's default [cluster] shards

struct settings {
  std::string url, tls, node = CAIRN_CLUSTER_NODE, work;
  uint64_t runs = 3, commands = 20000, accounts = 1000, window = 64, kills = 5;
  uint64_t failover_commands = 1000000, failover_window = 16;
  bool keep_logs = false;
  bool projections = true; ///< throughput and failover: each member also runs the ledger
};

[[noreturn]] inline void fail(const std::string& what) { throw std::runtime_error(what); }

inline void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds{ms}); }

inline std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::optional<json> read_json(const std::string& path) {
  auto text = read_file(path);
  if (text.empty()) return std::nullopt;
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

/// A process's CPU time (user + system) in seconds, from /proc/<pid>/stat.
inline double cpu_of(pid_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = text.rfind(')');
  if (close == std::string::npos) fail("cannot read the CPU time of process " + std::to_string(pid));
  std::istringstream in{text.substr(close + 2)};
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) { // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// One cluster_bank_node process: its output in `<file_base>.log`, its status file
/// `<file_base>.json`. SIGKILLed and reaped when destroyed.
class member {
public:
  member(const settings& s, std::string name, std::string file_base, const strings& args)
      : name_(std::move(name)), status_(file_base + ".json"), log_(file_base + ".log") {
    strings all{s.node};
    all.insert(all.end(), args.begin(), args.end());
    all.push_back("--status.file=" + status_);
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot open " + log_);
    ::unlink(status_.c_str());
    pid_t parent = ::getpid();
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL); // the bench died: so does its member
      if (::getppid() != parent) ::_exit(127);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fd);
    if (pid_ < 0) fail("fork failed");
  }
  ~member() { kill(); }
  member(const member&) = delete;
  member& operator=(const member&) = delete;

  void kill() {
    if (exited_) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    exited_ = true;
  }
  /// Fails (with the end of its log) if the process has exited.
  void check_running() {
    if (exited_) fail(name_ + " is not running");
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == 0) return;
    exited_ = true;
    auto log = read_file(log_);
    auto how = WIFEXITED(status) ? "with code " + std::to_string(WEXITSTATUS(status))
                                 : "on signal " + std::to_string(WTERMSIG(status));
    fail(name_ + " exited " + how + "; its log ends:\n" +
         log.substr(log.size() > 1500 ? log.size() - 1500 : 0));
  }
  std::optional<json> status() const { return read_json(status_); }
  bool log_has(const std::string& text) const { return read_file(log_).find(text) != std::string::npos; }
  double cpu() const { return cpu_of(pid_); }
  const std::string& name() const { return name_; }

private:
  std::string name_, status_, log_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

/// A cluster of members on one fresh schema, dropped when it is destroyed.
class cluster {
public:
  cluster(const settings& s, const std::string& tag) : s_(s) {
    static int runs = 0;
    schema_ = "b" + std::to_string(::getpid()) + "_" + std::to_string(++runs);
    dir_ = s.work + "/" + tag + "-" + std::to_string(runs);
    ::mkdir(dir_.c_str(), 0755);
  }
  ~cluster() {
    members_.clear(); // killed before their schema goes
    if (PGconn* c = PQconnectdb(s_.url.c_str())) {
      auto drop = "SET client_min_messages = warning; DROP SCHEMA IF EXISTS " + schema_ + " CASCADE";
      if (PQstatus(c) == CONNECTION_OK) PQclear(PQexec(c, drop.c_str()));
      PQfinish(c);
    }
  }
  /// Starts member `name` (node1, node2 ...) with `extra` options; `incarnation` tells a
  /// restarted member's files apart.
  member& start(const std::string& name, strings extra, int incarnation = 1) {
    strings args{"--cluster.name=" + name, "--cluster.postgres-url=" + s_.url,
                 "--cluster.postgres-schema=" + schema_};
    if (s_.tls.empty()) {
      args.push_back("--cluster.insecure");
    } else {
      args.push_back("--openssl.certificate=" + s_.tls + "/" + name + ".pem");
      args.push_back("--openssl.key=" + s_.tls + "/" + name + ".key");
      args.push_back("--openssl.cafile=" + s_.tls + "/ca.pem");
    }
    if (!s_.projections) args.push_back("--cluster.roles=[\"aggregates\"]");
    args.insert(args.end(), extra.begin(), extra.end());
    auto base = dir_ + "/" + name + (incarnation > 1 ? "-" + std::to_string(incarnation) : "");
    auto m = std::make_unique<member>(s_, name, base, args);
    auto& ref = *m;
    members_.push_back(std::move(m));
    return ref;
  }
  void remove(member& m) {
    members_.erase(std::find_if(members_.begin(), members_.end(), [&](auto& p) { return p.get() == &m; }));
  }
  /// Polls every `ms` until `done()` holds; fails after `timeout_s` or if a member exits.
  void wait(const std::string& what, double timeout_s, const std::function<bool()>& done, int ms = 20) {
    auto t0 = clock_type::now();
    while (!done()) {
      for (auto& m : members_) m->check_running();
      if (cairn::bench::seconds_since(t0) > timeout_s)
        fail("timed out after " + std::to_string(int(timeout_s)) + " s waiting until " + what +
             " (logs in " + dir_ + ")");
      sleep_ms(ms);
    }
  }
  const std::string& dir() const { return dir_; }

private:
  const settings& s_;
  std::string schema_, dir_;
  std::vector<std::unique_ptr<member>> members_;
};

inline strings drive_args(uint64_t commands, uint64_t accounts, uint64_t window, size_t wait_members) {
  return {"--drive.commands=" + std::to_string(commands), "--drive.accounts=" + std::to_string(accounts),
          "--drive.window=" + std::to_string(window), "--drive.wait-members=" + std::to_string(wait_members)};
}

/// Starts `count` members one after another (each once its log says it joined), so that
/// the shards are spread by handoffs before load starts.
inline std::vector<member*> start_in_turn(cluster& c, size_t count, const strings& extra) {
  std::vector<member*> out;
  for (size_t i = 1; i <= count; ++i) {
    auto& m = c.start("node" + std::to_string(i), extra);
    c.wait(m.name() + " joined", 60, [&] { return m.log_has(" joined"); });
    out.push_back(&m);
  }
  return out;
}

/// Reads the lines appended to an ack file since the last call.
class ack_tail {
public:
  explicit ack_tail(std::string path) : path_(std::move(path)) {}
  /// Calls `line(account id)` for each new complete line.
  void read(const std::function<void(const std::string&)>& line) {
    std::ifstream in{path_, std::ios::binary};
    if (!in) return;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk{std::istreambuf_iterator<char>(in), {}};
    size_t at = 0;
    for (size_t nl; (nl = chunk.find('\n', at)) != std::string::npos; at = nl + 1) {
      auto sp1 = chunk.find(' ', at), sp2 = chunk.find(' ', sp1 + 1);
      if (sp1 < nl && sp2 < nl) line(chunk.substr(sp1 + 1, sp2 - sp1 - 1));
    }
    offset_ += at;
  }

private:
  std::string path_;
  size_t offset_ = 0;
};

} // namespace cairn::bench::cluster_run
