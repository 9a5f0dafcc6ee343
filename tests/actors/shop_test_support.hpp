// Helpers for the saga dead-letter tests with the shop domain (fulfilment.hpp): the
// node's set-up, reading orders' outcomes from the store, and running the `cairn` tool.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <cairn/node.hpp>

#include "actors/fulfilment.hpp"
#include "support/run_cli.hpp"

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

using cairn::test::run_cli;

} // namespace shop::test
