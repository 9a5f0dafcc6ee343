// Specs for the bank sample's account aggregate, written with the decider test kit.
#include <catch2/catch.hpp>

#include <cairn/testkit.hpp>

#include "bank/account.hpp"

using namespace bank;
using cairn::testkit::given;

TEST_CASE("opening a new account emits opened") {
  REQUIRE(given<account>().when(open{"ann"}).then(opened{"ann"}));
}

TEST_CASE("opening an open account again does nothing") {
  REQUIRE(given<account>(opened{"ann"}).when(open{"bob"}).then_nothing());
}

TEST_CASE("an account needs an owner") {
  REQUIRE(given<account>().when(open{""}).then_rejected("owner"));
}

TEST_CASE("a deposit to an open account emits deposited and raises the balance") {
  auto out = given<account>(opened{"ann"}, deposited{10}).when(deposit{5});
  REQUIRE(out.then(deposited{5}));
  REQUIRE(out.state().balance == 15);
}

TEST_CASE("deposits and withdrawals need an open account") {
  REQUIRE(given<account>().when(deposit{5}).then_rejected("not open"));
  REQUIRE(given<account>().when(withdraw{5}).then_rejected("not open"));
}

TEST_CASE("amounts must be positive") {
  REQUIRE(given<account>(opened{"ann"}).when(deposit{0}).then_rejected("positive"));
  REQUIRE(given<account>(opened{"ann"}).when(withdraw{-3}).then_rejected("positive"));
}

TEST_CASE("a withdrawal beyond the balance is rejected") {
  REQUIRE(given<account>(opened{"ann"}, deposited{10}).when(withdraw{11})
            .then_rejected("insufficient funds"));
}

TEST_CASE("a withdrawal of the whole balance empties the account") {
  auto out = given<account>(opened{"ann"}, deposited{10}).when(withdraw{10});
  REQUIRE(out.then(withdrawn{10}));
  REQUIRE(out.state().balance == 0);
}

TEST_CASE("the test kit reports a wrong expectation with both event lists") {
  auto v = given<account>(opened{"ann"}).when(deposit{5}).then(deposited{6});
  REQUIRE_FALSE(v);
  REQUIRE(v.explanation.find("deposited {\"amount\":6}") != std::string::npos);
  REQUIRE(v.explanation.find("deposited {\"amount\":5}") != std::string::npos);
}
