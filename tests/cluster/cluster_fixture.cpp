// cluster_fixture: member processes, their status files and the store, for the tests.
#include "cluster/cluster_fixture.hpp"

#include <libpq-fe.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "postgres/pg_server.hpp"

namespace fs = std::filesystem;

namespace cairn::test {
namespace {

/// The one number `sql` answers on `url` (throws on failure).
uint64_t query_number(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  std::string why;
  uint64_t out = 0;
  if (PQstatus(c) != CONNECTION_OK) {
    why = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
      out = std::stoull(PQgetvalue(r, 0, 0));
    else
      why = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  if (!why.empty()) throw std::runtime_error(sql + ": " + why);
  return out;
}

} // namespace

cluster_fixture::cluster_fixture()
    : url(pg_server::shared().url()), schema(pg_server::fresh_schema()) {
  std::string templ = (fs::temp_directory_path() / "cairn-cluster-test-XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  dir_ = templ;
  make_certs("certs", {"node1", "node2", "node3"});
}

cluster_fixture::~cluster_fixture() {
  bool failed = std::uncaught_exceptions() > 0;
  for (auto& [name, p] : nodes_) {
    if (failed) std::cerr << "--- last lines of " << name << "'s log:\n" << p->log_tail(25);
    p->kill();
  }
  nodes_.clear();
  std::error_code ec;
  if (failed && std::getenv("CAIRN_KEEP_CLUSTER_TEST"))
    std::cerr << "work folder kept: " << dir_ << "\n";
  else
    fs::remove_all(dir_, ec);
}

void cluster_fixture::make_certs(const std::string& dir, const std::vector<std::string>& names) const {
  std::vector<std::string> a{path(dir)};
  a.insert(a.end(), names.begin(), names.end());
  auto [code, out] = run_to_end(CAIRN_MAKE_CERTS, a, path("make-certs.log"), std::chrono::seconds{60});
  INFO(out);
  REQUIRE(code == 0);
}

std::vector<std::string> cluster_fixture::args(const std::string& name, size_t commands,
                                               const std::string& cert_dir) const {
  std::vector<std::string> a{
    "--cluster.name=" + name, "--cluster.host=127.0.0.1", "--cluster.port=0",
    "--cluster.postgres-url=" + url, "--cluster.postgres-schema=" + schema,
    "--cluster.shards=" + std::to_string(shards), "--cluster.heartbeat-interval=100ms",
    "--cluster.member-timeout=1s", "--cluster.lease-ttl=" + std::to_string(lease_ttl.count()) + "ms",
    "--cluster.lease-margin=300ms", "--status.file=" + path(name + ".json"),
    "--drive.commands=" + std::to_string(commands), "--drive.accounts=" + std::to_string(accounts)};
  if (commands > 0) {
    a.push_back("--drive.ack-file=" + path(name + ".acks"));
    a.push_back("--drive.wait-members=" + std::to_string(wait_members));
  }
  if (!cert_dir.empty()) {
    a.push_back("--openssl.certificate=" + path(cert_dir + "/" + name + ".pem"));
    a.push_back("--openssl.key=" + path(cert_dir + "/" + name + ".key"));
    a.push_back("--openssl.cafile=" + path(cert_dir + "/ca.pem"));
  }
  if (auto it = extra_args.find(name); it != extra_args.end())
    a.insert(a.end(), it->second.begin(), it->second.end());
  return a;
}

node_process& cluster_fixture::start(const std::string& name, size_t commands,
                                     const std::string& cert_dir) {
  if (auto it = nodes_.find(name); it != nodes_.end()) it->second->kill();
  std::error_code ec;
  fs::remove(path(name + ".json"), ec);
  auto p = std::make_unique<node_process>(CAIRN_CLUSTER_NODE, args(name, commands, cert_dir),
                                          path(name + ".log"));
  auto& ref = *p;
  nodes_[name] = std::move(p);
  say("started " + name + " (pid " + std::to_string(ref.pid()) + ", " + std::to_string(commands) +
      " deposits)");
  return ref;
}

std::unique_ptr<node_process> cluster_fixture::start_unwatched(const std::vector<std::string>& a,
                                                               const std::string& log_name) const {
  return std::make_unique<node_process>(CAIRN_CLUSTER_NODE, a, path(log_name));
}

void cluster_fixture::kill(const std::string& name) {
  process(name).kill();
  nodes_.erase(name);
}

node_process& cluster_fixture::process(const std::string& name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) throw std::logic_error("no member " + name);
  return *it->second;
}

nlohmann::json cluster_fixture::status(const std::string& name) const {
  return read_json_file(path(name + ".json")).value_or(nlohmann::json::object());
}

bool cluster_fixture::owns_shards(const std::string& name) {
  auto s = status(name);
  auto it = nodes_.find(name);
  return it != nodes_.end() && s.value("pid", -1) == it->second->pid() && s.value("joined", false) &&
         !owned(name).empty();
}

std::vector<uint32_t> cluster_fixture::owned(const std::string& name) const {
  auto s = status(name);
  return s.contains("owned_shards") ? s["owned_shards"].get<std::vector<uint32_t>>()
                                    : std::vector<uint32_t>{};
}

uint64_t cluster_fixture::acked(const std::string& name) const {
  auto s = status(name);
  return s.contains("drive") ? s["drive"].value("acked", uint64_t{0}) : 0;
}

uint64_t cluster_fixture::acked_total(const std::vector<std::string>& names) const {
  uint64_t sum = 0;
  for (auto& n : names) sum += acked(n);
  return sum;
}

bool cluster_fixture::drive_done(const std::string& name) const {
  auto s = status(name);
  return s.contains("drive") && s["drive"].value("done", false);
}

std::vector<std::string> cluster_fixture::live_members(const std::string& name) const {
  auto s = status(name);
  return s.contains("members_live") ? s["members_live"].get<std::vector<std::string>>()
                                    : std::vector<std::string>{};
}

void cluster_fixture::wait(const std::string& what, const std::function<bool()>& pred,
                           std::chrono::milliseconds timeout) {
  std::string exited;
  bool ok = wait_until(
    [&] {
      for (auto& [name, p] : nodes_)
        if (!p->running()) {
          exited = name + " exited with code " + std::to_string(*p->wait_exit({})) + ":\n" +
                   p->log_tail(15);
          return true;
        }
      return pred();
    },
    timeout);
  INFO("waiting until " << what);
  INFO(exited);
  REQUIRE(exited.empty());
  REQUIRE(ok);
  say(what);
}

uint64_t cluster_fixture::store_head() const {
  return query_number(url, "SELECT position FROM \"" + schema + "\".head");
}

bool cluster_fixture::member_row_exists(const std::string& name) const {
  return query_number(url, "SELECT count(*) FROM \"" + schema + "\".members WHERE name = '" + name + "'") > 0;
}

bool cluster_fixture::member_up(const std::string& name) const {
  try {
    return query_number(url, "SELECT count(*) FROM \"" + schema + "\".members WHERE name = '" + name +
                               "' AND state = 'up'") > 0;
  } catch (const std::exception&) {
    return false; // no cluster tables yet
  }
}

bool cluster_fixture::projections_at_head(const std::vector<std::string>& names) const {
  auto head = store_head();
  for (auto& n : names) {
    auto s = status(n);
    if (!s.contains("projection") || s["projection"].value("position", uint64_t{0}) != head)
      return false;
  }
  return true;
}

void cluster_fixture::verify(const std::vector<std::string>& ack_names,
                             const std::vector<std::string>& status_names) {
  wait("every projection is at the store's head", [&] { return projections_at_head(status_names); },
       std::chrono::seconds{120});
  std::vector<std::string> a{"--postgres-url", url, "--postgres-schema", schema};
  for (auto& n : ack_names) a.insert(a.end(), {"--acks", path(n + ".acks")});
  for (auto& n : status_names) a.insert(a.end(), {"--status", path(n + ".json")});
  auto [code, report] = run_to_end(CAIRN_CLUSTER_VERIFY, a, path("verify.log"), std::chrono::seconds{120});
  std::cout << report;
  INFO(report);
  REQUIRE(code == 0);
}

double cluster_fixture::seconds() const {
  return std::chrono::duration<double>(clock::now() - t0_).count();
}

void cluster_fixture::say(const std::string& what) const {
  std::printf("%7.2fs  %s\n", seconds(), what.c_str());
  std::fflush(stdout);
}

} // namespace cairn::test
