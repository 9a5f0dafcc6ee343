// A saga reads its inputs through the input variant's upcasters, like aggregates and
// projections: old versions, old names and split events all reach react().
#include <catch2/catch.hpp>

#include <cairn/saga_model.hpp>

#include "versioned_wallet.hpp"

using namespace cairn;
using namespace versioned;

namespace {

struct fee_seen {
  int64_t cents = 0;
};
struct cents_seen {
  int64_t cents = 0;
};
inline auto describe(type<fee_seen>) {
  return schema<fee_seen>("fee_seen", 1, field("cents", &fee_seen::cents));
}
inline auto describe(type<cents_seen>) {
  return schema<cents_seen>("cents_seen", 1, field("cents", &cents_seen::cents));
}

// Records what each wallet event it reads amounts to, once upcast.
struct wallet_watch {
  static constexpr std::string_view name = "wallet_watch";
  using event_type = std::variant<cents_seen, fee_seen>;
  using input_type = wallet::event_type; // the wallet's upcasters apply
  using decision = saga_decision<event_type>;

  static std::string correlate(const envelope& e, const deposited&) { return e.stream.id; }

  decision react(const opened&) const { return nothing; }
  decision react(const deposited& d) const { return decision{cents_seen{d.cents}}; }
  decision react(const withdrawn& w) const { return decision{cents_seen{-w.cents}}; }
  decision react(const fee_charged& f) const { return decision{fee_seen{f.cents}}; }
  void apply(const cents_seen& e) { total += e.cents; }
  void apply(const fee_seen& e) { fees += e.cents; }
  bool done() const { return false; }

  int64_t total = 0;
  int64_t fees = 0;
};

} // namespace

TEST_CASE("a saga reacts to old, renamed and split input events once they are upcast") {
  auto model = make_saga_model<wallet_watch>();
  auto instance = model->make_instance();

  auto v1 = as_stored(event_data{"deposited", 1, {}, encode(deposited_v1{2})}); // 2 euros
  REQUIRE(model->reads("deposited"));
  REQUIRE(model->correlates("deposited"));
  auto key = model->correlate(v1);
  REQUIRE(key);
  REQUIRE(*key == "w1");
  auto effects = instance->react(v1);
  REQUIRE(effects);
  REQUIRE(effects->events.size() == 1);
  REQUIRE(effects->events[0].type == "cents_seen");

  // An old name, and a split into two current events.
  REQUIRE(model->reads("amount_added"));
  auto renamed = instance->react(as_stored(event_data{"amount_added", 1, {}, encode(amount_added_v1{1})}));
  REQUIRE(renamed);
  REQUIRE(renamed->events.size() == 1);
  REQUIRE(model->reads("transfer_made"));
  auto split =
    instance->react(as_stored(event_data{"transfer_made", 1, {}, encode(transfer_made_v1{50, 5})}));
  REQUIRE(split);
  REQUIRE(split->events.size() == 2);
  REQUIRE(split->events[0].type == "cents_seen");
  REQUIRE(split->events[1].type == "fee_seen");

  auto& state = *static_cast<const wallet_watch*>(instance->state());
  REQUIRE(state.total == 200 + 100 - 50);
  REQUIRE(state.fees == 5);

  // A version with no upcaster is a typed error, not a crash.
  auto unknown = instance->react(as_stored(event_data{"deposited", 9, {}, encode(deposited_v2{1})}));
  REQUIRE_FALSE(unknown);
  REQUIRE(is_corrupt(unknown.error()));
}
