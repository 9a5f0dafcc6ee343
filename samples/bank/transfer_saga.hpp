// The bank sample's transfer saga: carries out a requested transfer by withdrawing
// from the payer and depositing to the payee; if the deposit is refused (the payee
// account does not exist or is not open), it refunds the payer. Its own events
// record where it is, so a crash mid-transfer resumes there.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include <cairn/saga.hpp>
#include <cairn/schema.hpp>

#include "bank/account.hpp"
#include "bank/transfer.hpp"

namespace bank {

// The saga's own events.
struct transfer_started {
  std::string id; ///< the transfer id, which is also the saga's key
  std::string from;
  std::string to;
  int64_t amount = 0;
};
struct transfer_debited {};
struct transfer_debit_refused {
  std::string reason;
};
struct transfer_credited {};
struct transfer_credit_refused {
  std::string reason;
};
struct transfer_refunded {};
struct transfer_closed {};

struct transfer_saga {
  static constexpr std::string_view name = "transfer";
  using event_type =
    std::variant<transfer_started, transfer_debited, transfer_debit_refused, transfer_credited,
                 transfer_credit_refused, transfer_refunded, transfer_closed>;
  using input_type = std::variant<transfer_requested, withdrawn, deposited, transfer_completed,
                                  transfer_failed>;
  using decision = cairn::saga_decision<event_type>;

  enum class phase : uint8_t { idle, debiting, crediting, completing, refunding, failing, closed };
  phase at = phase::idle;
  std::string id;
  std::string from;
  std::string to;
  int64_t amount = 0;
  std::string failure;

  // A transfer's saga is keyed by the transfer id. The other inputs are events the
  // saga's own commands caused, which find their way back by themselves.
  static std::string correlate(const cairn::envelope& e, const transfer_requested&) {
    return e.stream.id;
  }

  decision react(const cairn::envelope& e, const transfer_requested& r) const {
    if (at != phase::idle) return cairn::nothing;
    return decision{transfer_started{e.stream.id, r.from, r.to, r.amount}}.send<account>(
      "debit", r.from, withdraw{r.amount});
  }
  decision react(const cairn::envelope& e, const withdrawn&) const {
    if (at != phase::debiting || e.stream.id != from) return cairn::nothing;
    return decision{transfer_debited{}}.send<account>("credit", to, deposit{amount});
  }
  decision react(const cairn::envelope& e, const deposited&) const {
    if (at == phase::crediting && e.stream.id == to)
      return decision{transfer_credited{}}.send<transfer>("complete", id, complete_transfer{});
    if (at == phase::refunding && e.stream.id == from)
      return decision{transfer_refunded{}}.send<transfer>("close", id, fail_transfer{failure});
    return cairn::nothing;
  }
  decision react(const transfer_completed&) const { return close(); }
  decision react(const transfer_failed&) const { return close(); }

  // A refused step: nothing was taken yet after a refused debit; after a refused
  // credit the payer gets the money back.
  decision on_rejected(const cairn::saga_failure& f) const {
    if (f.step == "debit")
      return decision{transfer_debit_refused{f.reason()}}.send<transfer>(
        "close", id, fail_transfer{f.reason()});
    if (f.step == "credit")
      return decision{transfer_credit_refused{f.reason()}}.send<account>("refund", from,
                                                                          deposit{amount});
    if (f.step == "complete" || f.step == "close") return close(); // it has an outcome already
    return cairn::nothing; // a refused refund: the saga waits for a person to look
  }
  // Every command of this saga is safe to send again (the runtime's expected
  // versions make a late copy harmless), so a step that timed out is retried.
  decision on_timeout(const cairn::saga_failure&) const { return cairn::retry; }

  bool done() const { return at == phase::closed; }

  void apply(const transfer_started& e) {
    at = phase::debiting;
    id = e.id;
    from = e.from;
    to = e.to;
    amount = e.amount;
  }
  void apply(const transfer_debited&) { at = phase::crediting; }
  void apply(const transfer_debit_refused& e) {
    at = phase::failing;
    failure = e.reason;
  }
  void apply(const transfer_credited&) { at = phase::completing; }
  void apply(const transfer_credit_refused& e) {
    at = phase::refunding;
    failure = "credit refused, refunded: " + e.reason;
  }
  void apply(const transfer_refunded&) { at = phase::failing; }
  void apply(const transfer_closed&) { at = phase::closed; }

private:
  decision close() const {
    if (at == phase::closed || at == phase::idle) return cairn::nothing;
    return transfer_closed{};
  }
};

inline auto describe(cairn::type<transfer_started>) {
  return cairn::schema<transfer_started>("transfer_started", 1,
                                         cairn::field("id", &transfer_started::id),
                                         cairn::field("from", &transfer_started::from),
                                         cairn::field("to", &transfer_started::to),
                                         cairn::field("amount", &transfer_started::amount));
}
inline auto describe(cairn::type<transfer_debited>) {
  return cairn::schema<transfer_debited>("transfer_debited", 1);
}
inline auto describe(cairn::type<transfer_debit_refused>) {
  return cairn::schema<transfer_debit_refused>(
    "transfer_debit_refused", 1, cairn::field("reason", &transfer_debit_refused::reason));
}
inline auto describe(cairn::type<transfer_credited>) {
  return cairn::schema<transfer_credited>("transfer_credited", 1);
}
inline auto describe(cairn::type<transfer_credit_refused>) {
  return cairn::schema<transfer_credit_refused>(
    "transfer_credit_refused", 1, cairn::field("reason", &transfer_credit_refused::reason));
}
inline auto describe(cairn::type<transfer_refunded>) {
  return cairn::schema<transfer_refunded>("transfer_refunded", 1);
}
inline auto describe(cairn::type<transfer_closed>) {
  return cairn::schema<transfer_closed>("transfer_closed", 1);
}

} // namespace bank
