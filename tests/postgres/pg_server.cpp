// The throwaway PostgreSQL server of a test process.
#include "postgres/pg_server.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace cairn::test {
namespace {

std::string newest_bin_dir() {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    auto bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "pg_ctl")) continue;
    try {
      found.emplace_back(std::stoi(entry.path().filename().string()), bin.string());
    } catch (...) {
    }
  }
  if (found.empty())
    throw std::runtime_error("no PostgreSQL server found under /usr/lib/postgresql: install "
                             "Debian's postgresql package (tools/setup does)");
  std::sort(found.begin(), found.end());
  return found.back().second;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("cannot find a free loopback port");
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

bool root() { return ::geteuid() == 0; }

std::string run(const std::string& command) {
  std::string full = command + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + command);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = ::pclose(p);
  if (status != 0) throw std::runtime_error(command + " failed: " + out);
  return out;
}

std::string as_postgres(const std::string& command) {
  return root() ? "runuser -u postgres -- " + command : command;
}

} // namespace

pg_server& pg_server::shared() {
  static pg_server server;
  return server;
}

pg_server::pg_server() : bin_(newest_bin_dir()) {
  std::string templ = (fs::temp_directory_path() / "cairn-pg-XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  dir_ = templ;
  if (root()) {
    passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("no 'postgres' user to run the server as (install postgresql)");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
  }
  run(as_postgres(bin_ + "/initdb -D " + dir_ + "/data -U postgres --auth=trust -E UTF8"));
  port_ = free_port();
  {
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "listen_addresses = '127.0.0.1'\nport = " << port_
         << "\nunix_socket_directories = '" << dir_ << "'\nmax_connections = 300\n";
    // Benchmarks may tune the server (bench/RESULTS.md names what they set): each
    // ';'-separated "name = value" in CAIRN_PG_SETTINGS becomes a line of postgresql.conf.
    if (const char* extra = std::getenv("CAIRN_PG_SETTINGS")) {
      std::string s = extra;
      for (size_t at = 0; at <= s.size();) {
        size_t end = std::min(s.find(';', at), s.size());
        if (end > at) conf << s.substr(at, end - at) << "\n";
        at = end + 1;
      }
    }
  }
  {
    std::ofstream hba(dir_ + "/data/pg_hba.conf", std::ios::trunc);
    hba << "local all all trust\n"
        << "host all " << password_user << " 127.0.0.1/32 scram-sha-256\n"
        << "host all all 127.0.0.1/32 trust\n";
  }
  start();
  exec(std::string("CREATE ROLE ") + password_user + " LOGIN PASSWORD '" + password + "'");
  exec(std::string("GRANT CREATE ON DATABASE postgres TO ") + password_user);
}

pg_server::~pg_server() {
  try {
    stop_immediate();
  } catch (...) {
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string pg_server::pg_ctl(const std::string& args) const {
  return run(as_postgres(bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log " + args));
}

void pg_server::start() { pg_ctl("-w -t 60 start"); }
void pg_server::stop_immediate() { pg_ctl("-w -m immediate stop"); }
void pg_server::restart_immediate() { pg_ctl("-w -t 60 -m immediate restart"); }

std::string pg_server::url(const std::string& db, const std::string& user) const {
  return "postgresql://" + user + "@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

void pg_server::exec(const std::string& sql, const std::string& db) const {
  PGconn* c = PQconnectdb(url(db).c_str());
  std::string why;
  if (PQstatus(c) != CONNECTION_OK) {
    why = PQerrorMessage(c);
  } else {
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(c, sql.c_str());
    auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) why = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  if (!why.empty()) throw std::runtime_error("SQL failed: " + sql + ": " + why);
}

std::string pg_server::fresh_schema() {
  static int n = 0;
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(++n);
}

} // namespace cairn::test
