// Upcasters: old schema versions, renames and splits read as current events, and the
// errors for declarations or stored events they cannot handle.
#include <catch2/catch.hpp>

#include <stdexcept>

#include <cairn/aggregate_model.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/projection.hpp>
#include <cairn/upcaster.hpp>

#include "framework/versioned_wallet.hpp"

using namespace cairn;
using namespace versioned;

namespace {

using events = wallet::event_type;

bool mentions(const error& e, const std::string& part) {
  return e.message().find(part) != std::string::npos;
}

// Old structs for declarations that go wrong.
struct loop_v1 { int64_t n = 0; };
struct loop_v2 { int64_t n = 0; };
inline auto describe(cairn::type<loop_v1>) {
  return cairn::schema<loop_v1>("loop", 1, cairn::field("n", &loop_v1::n));
}
inline auto describe(cairn::type<loop_v2>) {
  return cairn::schema<loop_v2>("loop", 2, cairn::field("n", &loop_v2::n));
}

} // namespace

TEST_CASE("the wallet's declared upcasters pass their own check") {
  REQUIRE(upcasters_of<events>().check() == "");
  REQUIRE_FALSE(upcasters_of<events>().empty());
  REQUIRE(has_upcasters_v<events>);
}

TEST_CASE("a v1 event is upcast through v2 to the current v3") {
  auto r = upcast<events>(as_stored(stored(deposited_v1{7})));
  REQUIRE(r);
  REQUIRE(r->size() == 1);
  auto& d = std::get<deposited>(r->front());
  REQUIRE(d.cents == 700);
  REQUIRE(d.currency == "EUR");
}

TEST_CASE("an upcaster can read the stored event's metadata") {
  auto r = upcast<events>(as_stored(stored(deposited_v2{5}, {"", "", {{"currency", "CHF"}}})));
  REQUIRE(r);
  REQUIRE(std::get<deposited>(r->front()).currency == "CHF");
  REQUIRE(std::get<deposited>(r->front()).cents == 5);
}

TEST_CASE("a current event decodes as it is, with upcasters declared") {
  auto data = stored(deposited{12, "USD"});
  REQUIRE(data.schema_version == 3);
  auto r = upcast<events>(as_stored(data));
  REQUIRE(r);
  REQUIRE(r->size() == 1);
  REQUIRE(std::get<deposited>(r->front()).currency == "USD");
}

TEST_CASE("a renamed type is read under its new name and then upcast") {
  SECTION("a typed rename: amount_added v1 becomes deposited v1, then v3") {
    auto r = upcast<events>(as_stored(stored(amount_added_v1{3})));
    REQUIRE(r);
    REQUIRE(std::get<deposited>(r->front()).cents == 300);
  }
  SECTION("a plain rename keeps the bytes and the version: credited v2 is deposited v2") {
    auto r = upcast<events>(as_stored(event_data{"credited", 2, {}, encode(deposited_v2{9})}));
    REQUIRE(r);
    REQUIRE(std::get<deposited>(r->front()).cents == 9);
    auto v1 = upcast<events>(as_stored(event_data{"credited", 1, {}, encode(deposited_v1{1})}));
    REQUIRE(v1);
    REQUIRE(std::get<deposited>(v1->front()).cents == 100);
  }
}

TEST_CASE("a split event becomes several current events, in order") {
  SECTION("into current events") {
    auto r = upcast<events>(as_stored(stored(transfer_made_v1{30, 5})));
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    REQUIRE(std::get<withdrawn>((*r)[0]).cents == 30);
    REQUIRE(std::get<fee_charged>((*r)[1]).cents == 5);
  }
  SECTION("into old events that are upcast further") {
    auto r = upcast<events>(as_stored(stored(transfer_reversed_v1{30, 5})));
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    REQUIRE(std::get<deposited>((*r)[0]).cents == 30);
    REQUIRE(std::get<deposited>((*r)[1]).cents == 5);
    REQUIRE(std::get<deposited>((*r)[1]).currency == "EUR");
  }
  SECTION("into nothing: an obsolete event is dropped") {
    auto r = upcast<events>(as_stored(stored(audited_v1{"x"})));
    REQUIRE(r);
    REQUIRE(r->empty());
  }
}

TEST_CASE("a stored version with no upcaster is a corrupt error naming what exists") {
  auto partial = upcaster_set<events>{}.add(
    [](const deposited_v2& e) { return deposited{e.cents, "EUR"}; });
  REQUIRE(partial.check() == "");
  auto v1 = stored(deposited_v1{1});
  auto r = partial.upcast(v1.type, v1.schema_version, v1.payload.data(), v1.payload.size(), {});
  REQUIRE_FALSE(r);
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(mentions(r.error(), "no upcaster for deposited v1"));
  REQUIRE(mentions(r.error(), "the current version is 3"));
  REQUIRE(mentions(r.error(), "upcasters exist from version 2"));

  // With no upcasters at all.
  auto none = upcaster_set<events>{}.upcast(v1.type, 1, v1.payload.data(), v1.payload.size(), {});
  REQUIRE(is_corrupt(none.error()));
  REQUIRE(none.error().message() == "no upcaster for deposited v1; the current version is 3");
}

TEST_CASE("a step whose result goes nowhere is found by check() and fails on read") {
  auto dangling = upcaster_set<events>{}.add([](const deposited_v1& e) {
    return deposited_v2{e.euros * 100};
  });
  REQUIRE(dangling.check() ==
          "the upcaster from deposited v1 produces deposited v2, which is not current and has no "
          "upcaster");
  auto v1 = stored(deposited_v1{1});
  auto r = dangling.upcast(v1.type, 1, v1.payload.data(), v1.payload.size(), {});
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(mentions(r.error(), "an upcaster produced deposited v2, which is not current"));
}

TEST_CASE("a cycle is found by check() and is an error on read, not an endless loop") {
  SECTION("typed steps") {
    auto cycle = upcaster_set<events>{}
                   .add([](const loop_v1& e) { return loop_v2{e.n}; })
                   .add([](const loop_v2& e) { return loop_v1{e.n}; });
    REQUIRE(mentions(error{errc::invalid_argument, cycle.check()},
                     "the upcasters form a cycle: loop v1 -> loop v2 -> loop v1"));
    auto data = encode(loop_v1{1});
    auto r = cycle.upcast("loop", 1, data.data(), data.size(), {});
    REQUIRE(is_corrupt(r.error()));
    REQUIRE(mentions(r.error(), "form a cycle"));
  }
  SECTION("renames") {
    auto cycle = upcaster_set<events>{}.rename("a", "b").rename("b", "a");
    REQUIRE(mentions(error{errc::invalid_argument, cycle.check()},
                     "the renames form a cycle: a -> b -> a"));
    auto r = cycle.upcast("a", 1, nullptr, 0, {});
    REQUIRE(is_corrupt(r.error()));
    REQUIRE(mentions(r.error(), "form a cycle"));
  }
}

TEST_CASE("check() reports duplicate steps, steps that never run and renames to nothing") {
  auto twice = upcaster_set<events>{}
                 .add([](const deposited_v2& e) { return deposited{e.cents, "EUR"}; })
                 .add([](const deposited_v2& e) { return deposited{e.cents, "USD"}; });
  REQUIRE(mentions(error{errc::invalid_argument, twice.check()}, "two upcasters read deposited v2"));
  auto never = upcaster_set<events>{}.add([](const withdrawn& e) { return fee_charged{e.cents}; });
  REQUIRE(mentions(error{errc::invalid_argument, never.check()},
                   "an upcaster reads withdrawn v1, which is current"));
  auto nowhere = upcaster_set<events>{}.rename("old", "unheard_of");
  REQUIRE(mentions(error{errc::invalid_argument, nowhere.check()},
                   "unheard_of is not a current type and has no upcaster"));
}

TEST_CASE("bad bytes in an old event are a corrupt error") {
  bytes garbage{0xff, 0xff, 0xff};
  auto r = upcast<events>(as_stored(event_data{"deposited", 1, {}, garbage}));
  REQUIRE_FALSE(r);
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(mentions(r.error(), "cannot decode deposited v1"));
  // And at the current version, the codec's error.
  auto current = upcast<events>(as_stored(event_data{"deposited", 3, {}, garbage}));
  REQUIRE(is_corrupt(current.error()));
  REQUIRE(mentions(current.error(), "cannot decode deposited"));
}

TEST_CASE("an upcaster that throws is a corrupt error") {
  auto throwing = upcaster_set<events>{}.add([](const deposited_v2&) -> deposited {
    throw std::runtime_error("no exchange rate");
  });
  auto v2 = stored(deposited_v2{1});
  auto r = throwing.upcast(v2.type, 2, v2.payload.data(), v2.payload.size(), {});
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(mentions(r.error(), "the upcaster from deposited v2 threw: no exchange rate"));
}

TEST_CASE("an unknown type name stays not_found") {
  auto r = upcast<events>(as_stored(event_data{"teleported", 1, {}, {}}));
  REQUIRE(is_not_found(r.error()));
}

TEST_CASE("an aggregate replays v1 events from the store, then decides on the v3 state") {
  auto store = make_memory_journal();
  REQUIRE(store->append_one({stream_id{"wallet", "w1"}, expected_version::no_stream, old_history()}));
  auto stored_events = read_stream_all(*store, stream_id{"wallet", "w1"});
  REQUIRE(stored_events);

  detail::typed_aggregate_instance<wallet> instance;
  for (auto& e : *stored_events) REQUIRE(instance.replay(e));
  REQUIRE(instance.version() == 8); // the stored stream's version, not the events applied
  REQUIRE(instance.state().balance == expected_balance);
  REQUIRE(instance.state().applied == expected_applied);
  REQUIRE(instance.state().fees == 5);
  REQUIRE(instance.state().currency == "EUR");

  auto decided = instance.decide(make_command<wallet>("w1", withdraw{expected_balance}));
  REQUIRE(decided);
  REQUIRE(decided->size() == 1);
  REQUIRE(instance.commit());
  REQUIRE(instance.version() == 9);
  REQUIRE(instance.state().balance == 0);
  auto too_much = instance.decide(make_command<wallet>("w1", withdraw{1}));
  REQUIRE(is_rejected(too_much.error()));
}

TEST_CASE("aggregate replay of an event with no upcaster fails with corrupt") {
  detail::typed_aggregate_instance<wallet> instance;
  auto r = instance.replay(as_stored(event_data{"deposited", 9, {}, {}}));
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(instance.version() == 0);
}

TEST_CASE("a projection applies every part of a split event at the stored position") {
  detail::typed_projection_instance<wallet_totals> projection;
  auto history = old_history();
  for (size_t i = 0; i < history.size(); ++i)
    REQUIRE(projection.apply(as_stored(history[i], i + 1, i + 1)));
  // Another category and an unknown type are skipped, not errors.
  auto other = as_stored(event_data{"teleported", 1, {}, {}}, 1, 9);
  REQUIRE(projection.apply(other));
  auto& model = *static_cast<const wallet_totals*>(projection.model());
  REQUIRE(model.balance == expected_balance);
  REQUIRE(model.fees == 5);
  REQUIRE(model.positions == std::vector<uint64_t>{1, 2, 3, 4, 5, 5, 6, 6, 8});
  REQUIRE(model.currencies == std::vector<std::string>{"EUR", "CHF", "EUR", "EUR", "EUR", "EUR"});
}

TEST_CASE("a projection reports an old event it cannot upcast as corrupt, with its position") {
  detail::typed_projection_instance<wallet_totals> projection;
  auto r = projection.apply(as_stored(event_data{"deposited", 1, {}, {0xff}}, 4, 17));
  REQUIRE(is_corrupt(r.error()));
  REQUIRE(mentions(r.error(), "wallet_totals at position 17"));
}
