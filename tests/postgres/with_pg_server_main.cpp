// Runs commands against a throwaway PostgreSQL server (tests/postgres/pg_server.hpp):
//   with_pg_server PROGRAM ARGS... [";;" PROGRAM ARGS...]...
// Every "@PG_URL@" inside an argument becomes the server's URL. The commands run one after
// the other; the first that fails ends the run with its exit status. The server is
// stopped and removed at exit. A server that cannot start is a failure (exit 1).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "postgres/pg_server.hpp"

namespace {

int run(std::vector<std::string> args, const std::string& url) {
  std::vector<char*> argv;
  for (auto& a : args) {
    for (size_t at; (at = a.find("@PG_URL@")) != std::string::npos;) a.replace(at, 8, url);
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    std::perror(argv[0]);
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) < 0) return 1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: with_pg_server PROGRAM ARGS... [;; PROGRAM ARGS...]...\n");
    return 2;
  }
  try {
    auto& server = cairn::test::pg_server::shared();
    std::vector<std::string> command;
    for (int i = 1; i <= argc; ++i) {
      if (i == argc || std::string(argv[i]) == ";;") {
        if (command.empty()) continue;
        if (int rc = run(command, server.url()); rc != 0) return rc;
        command.clear();
      } else {
        command.emplace_back(argv[i]);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "with_pg_server: %s\n", e.what());
    return 1;
  }
}
