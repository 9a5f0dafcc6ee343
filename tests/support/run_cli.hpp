// run_cli(): runs the `cairn` tool (its path in CAIRN_CLI) from a test.
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>

namespace cairn::test {

/// Runs the `cairn` tool with `args` and returns its exit code and what it printed on
/// stdout (stderr goes to the test's output).
inline std::pair<int, std::string> run_cli(const std::vector<std::string>& args) {
  std::string command = CAIRN_CLI;
  for (auto& a : args) command += " '" + a + "'"; // the tests' arguments hold no quotes
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

} // namespace cairn::test
