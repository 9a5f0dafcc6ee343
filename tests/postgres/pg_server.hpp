// A throwaway PostgreSQL server for tests: initdb into a temporary folder, a free loopback
// port, run as the `postgres` user when we are root, stopped and removed at exit. Uses the
// newest Debian server binaries (/usr/lib/postgresql/<version>/bin); if there are none the
// test fails (it never skips).
#pragma once

#include <string>

namespace cairn::test {

class pg_server {
public:
  /// The server of this test process, started on first use. Throws if it cannot start.
  static pg_server& shared();

  /// A libpq URL for `user` on database `db`.
  std::string url(const std::string& db = "postgres", const std::string& user = "postgres") const;
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  /// Runs SQL on `db` as the superuser; throws with the server's message on failure.
  void exec(const std::string& sql, const std::string& db = "postgres") const;

  /// A crash-like restart: pg_ctl restart -m immediate (waits until it accepts again).
  void restart_immediate();
  void stop_immediate();
  void start();

  /// A schema name not used before in this process ("t<pid>_<n>").
  static std::string fresh_schema();

  ~pg_server();
  pg_server(const pg_server&) = delete;
  pg_server& operator=(const pg_server&) = delete;

private:
  pg_server();
  std::string pg_ctl(const std::string& args) const;
  std::string bin_, dir_;
  int port_ = 0;
};

/// The user with a password (scram-sha-256) that pg_server creates for auth tests.
inline constexpr const char* password_user = "cairn_pw";
inline constexpr const char* password = "s3cret";

} // namespace cairn::test
