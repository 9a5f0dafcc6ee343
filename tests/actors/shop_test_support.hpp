// Helpers for the saga dead-letter tests with the shop domain (fulfilment.hpp): the
// node's set-up, reading orders' outcomes from the store, and running the `cairn` tool.
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>

#include <cairn/node.hpp>

#include "actors/fulfilment.hpp"

namespace shop::test {

/// Switches the bugs off however a test ends.
struct bug_guard {
  bug_guard() { bugs::fix_all(); }
  ~bug_guard() { bugs::fix_all(); }
};

inline void register_shop(cairn::node& n, cairn::saga_options opts = {}) {
  REQUIRE(n.register_aggregate<item>());
  REQUIRE(n.register_aggregate<order>());
  REQUIRE(n.register_saga<fulfilment_saga>(opts));
}

inline std::vector<cairn::envelope> stream(const cairn::journal& store,
                                           const std::string& category, const std::string& id) {
  auto events = cairn::read_stream_all(store, {category, id});
  REQUIRE(events);
  return *events;
}

/// "confirmed" or "cancelled" once order `id` has an outcome, else "".
inline std::string outcome(const cairn::journal& store, const std::string& id) {
  auto events = stream(store, "order", id);
  if (events.empty() || events.back().type == "placed") return {};
  return events.back().type;
}

inline void stock_item(cairn::node& n, const std::string& id, int64_t qty) {
  REQUIRE(n.execute<item>(id, stock{qty}));
}

inline void place_order(cairn::node& n, const std::string& id, std::vector<line> lines) {
  REQUIRE(n.execute<order>(id, place{std::move(lines)}));
}

/// Runs the `cairn` tool (CAIRN_CLI) and returns its exit code and what it printed on stdout.
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

} // namespace shop::test
