// Specs for the bank sample's transfer aggregate and transfer saga: pure given/when/then,
// no store and no actors.
#include <catch2/catch.hpp>

#include <cairn/saga_testkit.hpp>
#include <cairn/testkit.hpp>

#include "bank/transfer.hpp"
#include "bank/transfer_saga.hpp"

using namespace bank;
using cairn::stream_id;
using cairn::testkit::given;
using cairn::testkit::saga_given;

namespace {
const transfer_started started{"t1", "a", "b", 30};
} // namespace

TEST_CASE("a transfer request is recorded once and a repeat of it does nothing") {
  REQUIRE(given<transfer>().when(request_transfer{"a", "b", 30}).then(transfer_requested{"a", "b", 30}));
  REQUIRE(given<transfer>(transfer_requested{"a", "b", 30})
            .when(request_transfer{"a", "b", 30})
            .then_nothing());
  REQUIRE(given<transfer>(transfer_requested{"a", "b", 30})
            .when(request_transfer{"a", "c", 30})
            .then_rejected("already used"));
}

TEST_CASE("a transfer needs two different accounts and a positive amount") {
  REQUIRE(given<transfer>().when(request_transfer{"a", "a", 30}).then_rejected("same account"));
  REQUIRE(given<transfer>().when(request_transfer{"a", "", 30}).then_rejected("both accounts"));
  REQUIRE(given<transfer>().when(request_transfer{"a", "b", 0}).then_rejected("positive"));
}

TEST_CASE("a transfer ends once, completed or failed") {
  REQUIRE(given<transfer>(transfer_requested{"a", "b", 30})
            .when(complete_transfer{})
            .then(transfer_completed{}));
  REQUIRE(given<transfer>(transfer_requested{"a", "b", 30}, transfer_completed{})
            .when(fail_transfer{"late"})
            .then_rejected("not in progress"));
  REQUIRE(given<transfer>().when(complete_transfer{}).then_rejected("not in progress"));
}

TEST_CASE("a requested transfer starts the saga, which withdraws from the payer") {
  auto out = saga_given<transfer_saga>().when(stream_id{"transfer", "t1"},
                                              transfer_requested{"a", "b", 30});
  REQUIRE(out.then(started));
  REQUIRE(out.sends<account>("debit", "a", withdraw{30}));
  REQUIRE(out.state().id == "t1");
  REQUIRE_FALSE(out.state().done());
}

TEST_CASE("the saga correlates a transfer request by its transfer id") {
  cairn::envelope e;
  e.stream = stream_id{"transfer", "t-42"};
  REQUIRE(transfer_saga::correlate(e, transfer_requested{"a", "b", 1}) == "t-42");
}

TEST_CASE("after the withdrawal the saga deposits to the payee, then completes the transfer") {
  auto credit = saga_given<transfer_saga>(started).when(stream_id{"account", "a"}, withdrawn{30});
  REQUIRE(credit.then(transfer_debited{}));
  REQUIRE(credit.sends<account>("credit", "b", deposit{30}));

  auto complete = saga_given<transfer_saga>(started, transfer_debited{})
                    .when(stream_id{"account", "b"}, deposited{30});
  REQUIRE(complete.then(transfer_credited{}));
  REQUIRE(complete.sends<transfer>("complete", "t1", complete_transfer{}));

  auto closed = saga_given<transfer_saga>(started, transfer_debited{}, transfer_credited{})
                  .when(stream_id{"transfer", "t1"}, transfer_completed{});
  REQUIRE(closed.then(transfer_closed{}));
  REQUIRE(closed.sends_nothing());
  REQUIRE(closed.state().done());
}

TEST_CASE("a refused withdrawal fails the transfer with nothing to undo") {
  auto out = saga_given<transfer_saga>(started).when_rejected("debit", "insufficient funds");
  REQUIRE(out.then(transfer_debit_refused{"insufficient funds"}));
  REQUIRE(out.sends<transfer>("close", "t1", fail_transfer{"insufficient funds"}));
}

TEST_CASE("a refused deposit is compensated by refunding the payer") {
  auto refund = saga_given<transfer_saga>(started, transfer_debited{})
                  .when_rejected("credit", "account not open");
  REQUIRE(refund.then(transfer_credit_refused{"account not open"}));
  REQUIRE(refund.sends<account>("refund", "a", deposit{30}));

  auto close = saga_given<transfer_saga>(started, transfer_debited{},
                                         transfer_credit_refused{"account not open"})
                 .when(stream_id{"account", "a"}, deposited{30});
  REQUIRE(close.then(transfer_refunded{}));
  REQUIRE(close.sends<transfer>("close", "t1",
                                fail_transfer{"credit refused, refunded: account not open"}));
}

TEST_CASE("the saga ignores events that do not fit where it is") {
  // A deposit to the payee while still debiting, a second withdrawal, another account.
  REQUIRE(saga_given<transfer_saga>(started).when(stream_id{"account", "b"}, deposited{30}).then());
  REQUIRE(saga_given<transfer_saga>(started, transfer_debited{})
            .when(stream_id{"account", "a"}, withdrawn{30})
            .then());
  REQUIRE(saga_given<transfer_saga>(started).when(stream_id{"account", "c"}, withdrawn{30}).then());
  REQUIRE(saga_given<transfer_saga>(started)
            .when(stream_id{"transfer", "t1"}, transfer_requested{"a", "b", 30})
            .then());
}

TEST_CASE("a step that timed out is retried") {
  REQUIRE(saga_given<transfer_saga>(started).when_timed_out("debit", 3).then_retry());
}
