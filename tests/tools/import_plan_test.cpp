// Unit tests of `cairn import`'s per-line decisions (tools/cli/import_plan.hpp): lines
// with versions are skipped when stored, refused when they conflict or leave a gap.
#include <catch2/catch.hpp>

#include <cairn/memory_journal.hpp>

#include "event_json.hpp"
#include "import_plan.hpp"

using namespace cairn;
using namespace cairn::cli;

namespace {

event_data deposit(uint8_t amount) { return event_data{"deposited", 1, {"corr", "", {}}, {1, amount}}; }

import_event line(const std::string& id, uint64_t version, event_data data) {
  return import_event{stream_id{"account", id}, std::move(data), version, 0};
}

/// A store where account-1 has three deposits (1, 2, 3) and account-2 none.
std::shared_ptr<journal> store_with_three() {
  auto store = make_memory_journal();
  auto r = store->append_one({stream_id{"account", "1"}, 0, {deposit(1), deposit(2), deposit(3)}});
  REQUIRE(r);
  return store;
}

} // namespace

TEST_CASE("cli: import skips lines the store already holds and appends the rest") {
  auto store = store_with_three();
  import_plan plan(store.get(), false, "d");
  for (uint8_t v = 1; v <= 3; ++v) {
    auto d = plan.decide(line("1", v, deposit(v)));
    REQUIRE(d);
    CHECK(d->what == import_plan::action::skip);
    CHECK(d->version == v);
  }
  auto next = plan.decide(line("1", 4, deposit(4)));
  REQUIRE(next);
  CHECK(next->what == import_plan::action::append);
  CHECK(next->version == 4);
  // A line without a version follows its stream's previous line.
  auto after = plan.decide(line("1", 0, deposit(5)));
  REQUIRE(after);
  CHECK(after->what == import_plan::action::append);
  CHECK(after->version == 5);
  // A new stream starts at version 1, with or without a version.
  auto fresh = plan.decide(line("2", 0, deposit(1)));
  REQUIRE(fresh);
  CHECK(fresh->version == 1);
  CHECK(plan.streams() == 2);
}

TEST_CASE("cli: an overlapping import may start inside the stored versions") {
  auto store = store_with_three();
  import_plan plan(store.get(), false, "d");
  auto d = plan.decide(line("1", 3, deposit(3)));
  REQUIRE(d);
  CHECK(d->what == import_plan::action::skip);
  auto e = plan.decide(line("1", 4, deposit(9)));
  REQUIRE(e);
  CHECK(e->what == import_plan::action::append);
}

TEST_CASE("cli: the import time entry does not make a stored event differ") {
  auto store = make_memory_journal();
  event_data stored = deposit(1);
  stored.meta.entries = {{"user", "ann"}, {imported_timestamp_key, "111"}};
  REQUIRE(store->append_one({stream_id{"account", "1"}, 0, {stored}}));
  event_data again = deposit(1);
  again.meta.entries = {{"user", "ann"}, {imported_timestamp_key, "222"}};
  import_plan plan(store.get(), false, "d");
  auto d = plan.decide(line("1", 1, again));
  REQUIRE(d);
  CHECK(d->what == import_plan::action::skip);
  again.meta.entries = {{"user", "bob"}};
  import_plan other(store.get(), false, "d");
  auto conflict = other.decide(line("1", 1, again));
  REQUIRE_FALSE(conflict);
  CHECK(conflict.error().message() ==
        "stream account-1 version 1 conflicts with the event stored in d: the metadata differ");
}

TEST_CASE("cli: import refuses conflicts, gaps and versions out of order, naming stream and version") {
  auto store = store_with_three();
  import_plan plan(store.get(), false, "d");
  SECTION("another event at a stored version") {
    auto r = plan.decide(line("1", 2, deposit(7)));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::conflict);
    CHECK(r.error().message() == "stream account-1 version 2 conflicts with the event stored in d: "
                                 "the payloads differ (2 bytes stored, 2 in the line)");
    event_data other_type = deposit(2);
    other_type.type = "withdrawn";
    auto t = plan.decide(line("1", 3, other_type));
    REQUIRE_FALSE(t);
    CHECK(t.error().message() == "stream account-1 version 3 conflicts with the event stored in d: "
                                 "type \"deposited\" is stored, the line has \"withdrawn\"");
  }
  SECTION("a gap after the stored events") {
    auto r = plan.decide(line("1", 6, deposit(6)));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(r.error().message() == "stream account-1 version 6 would leave a gap: d has 3 events in it");
    auto fresh = plan.decide(line("2", 2, deposit(1)));
    REQUIRE_FALSE(fresh);
    CHECK(fresh.error().message() == "stream account-2 version 2 would leave a gap: d has 0 events in it");
  }
  SECTION("versions of a stream that do not follow each other") {
    REQUIRE(plan.decide(line("1", 1, deposit(1))));
    auto repeat = plan.decide(line("1", 1, deposit(1)));
    REQUIRE_FALSE(repeat);
    CHECK(repeat.error().message() ==
          "stream account-1 version 1 does not follow its previous line's version 1");
    // The plan goes on from the line it refused.
    auto next = plan.decide(line("1", 2, deposit(2)));
    REQUIRE(next);
    CHECK(next->what == import_plan::action::skip);
  }
  SECTION("a line without a version for a stream with events, unless appending is allowed") {
    auto r = plan.decide(line("1", 0, deposit(4)));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::conflict);
    CHECK(r.error().message() == "stream account-1 already has 3 events in d and the line gives "
                                 "no version (give --append to add after them)");
    import_plan appending(store.get(), true, "d");
    auto a = appending.decide(line("1", 0, deposit(4)));
    REQUIRE(a);
    CHECK(a->what == import_plan::action::append);
    CHECK(a->version == 4);
  }
}

TEST_CASE("cli: without a store every line is new") {
  import_plan plan(nullptr, false, "d");
  auto a = plan.decide(line("1", 1, deposit(1)));
  REQUIRE(a);
  CHECK(a->what == import_plan::action::append);
  auto gap = plan.decide(line("2", 5, deposit(1)));
  REQUIRE_FALSE(gap);
}

TEST_CASE("cli: import lines carry an optional positive version") {
  auto with = parse_import_line(R"({"stream":"a-1","version":7,"type":"t","payload_base64":""})", true);
  REQUIRE(with);
  CHECK(with->version == 7);
  auto without = parse_import_line(R"({"stream":"a-1","type":"t","payload_base64":""})", true);
  REQUIRE(without);
  CHECK(without->version == 0);
  for (auto bad : {R"({"stream":"a-1","version":0,"type":"t","payload_base64":""})",
                   R"({"stream":"a-1","version":-1,"type":"t","payload_base64":""})",
                   R"({"stream":"a-1","version":1.5,"type":"t","payload_base64":""})",
                   R"({"stream":"a-1","version":"3","type":"t","payload_base64":""})"}) {
    auto r = parse_import_line(bad, true);
    REQUIRE_FALSE(r);
    CHECK(r.error().message() == "version must be a positive integer (the event's place in its stream)");
  }
}
