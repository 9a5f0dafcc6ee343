// cluster_fixture: a cluster of cluster_bank_node processes on the test's throwaway
// PostgreSQL server (a fresh schema per test), with certificates of a fresh CA, test
// timings (100 ms rounds, 1 s leases, 16 shards), and the checks the process tests share.
// Every member still running when the fixture ends is killed; if the test failed, the
// last lines of each member's log are printed.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/node_process.hpp"

namespace cairn::test {

class cluster_fixture {
public:
  using clock = std::chrono::steady_clock;

  cluster_fixture();
  ~cluster_fixture();

  /// Runs config/cluster/make-certs.sh DIR NAMES... (DIR relative to the work folder).
  void make_certs(const std::string& dir, const std::vector<std::string>& names) const;

  /// The command line of member `name` driving `commands` deposits (with an ack file if
  /// > 0), with certificates from `cert_dir` (relative to the work folder; empty: none).
  std::vector<std::string> args(const std::string& name, size_t commands,
                                const std::string& cert_dir = "certs") const;

  /// Starts member `name` (replacing a stopped one of that name; its old status file is
  /// removed first). The fixture watches it: wait() fails if it exits.
  node_process& start(const std::string& name, size_t commands, const std::string& cert_dir = "certs");
  /// Starts a process the fixture does not watch (one expected to exit).
  std::unique_ptr<node_process> start_unwatched(const std::vector<std::string>& args,
                                                const std::string& log_name) const;
  /// SIGKILLs member `name` and forgets the process (its status and ack files stay).
  void kill(const std::string& name);
  node_process& process(const std::string& name);

  /// The member's status file as last written ({} if there is none yet).
  nlohmann::json status(const std::string& name) const;
  /// Its status is from the current process, it has joined and holds shards.
  bool owns_shards(const std::string& name);
  std::vector<uint32_t> owned(const std::string& name) const;
  uint64_t acked(const std::string& name) const;
  uint64_t acked_total(const std::vector<std::string>& names) const;
  bool drive_done(const std::string& name) const;
  std::vector<std::string> live_members(const std::string& name) const;

  /// Polls `pred` every 50 ms for up to `timeout`; fails the test naming `what` when it
  /// never held, or as soon as a watched member has exited.
  void wait(const std::string& what, const std::function<bool()>& pred,
            std::chrono::milliseconds timeout);

  /// The store's head position, read from PostgreSQL.
  uint64_t store_head() const;
  /// Whether member `name` (in the members table) exists.
  bool member_row_exists(const std::string& name) const;
  /// Whether member `name` is listed as up (false also while there is no members table).
  bool member_up(const std::string& name) const;
  /// Every named member's projection has reached the store's head.
  bool projections_at_head(const std::vector<std::string>& names) const;
  /// Waits until every named member's projection is at the head, then runs
  /// cluster_bank_verify over the ack files of `ack_names` and the status files of
  /// `status_names`; requires it to pass (its report is printed).
  void verify(const std::vector<std::string>& ack_names, const std::vector<std::string>& status_names);

  /// Prints "<seconds since the start>  <what>".
  void say(const std::string& what) const;
  double seconds() const;

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }

  std::string url, schema;
  size_t shards = 16;
  size_t accounts = 200; ///< the drivers' accounts
  /// Drivers start once this many members share the shards (--drive.wait-members).
  size_t wait_members = 3;
  /// Further options of one member, e.g. {"node1", {"--drive.window=256"}}.
  std::map<std::string, std::vector<std::string>> extra_args;
  std::chrono::milliseconds lease_ttl{1000};

private:
  std::string dir_;
  std::map<std::string, std::unique_ptr<node_process>> nodes_;
  clock::time_point t0_ = clock::now();
};

} // namespace cairn::test
