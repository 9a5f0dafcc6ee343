// The bank sample's money transfer: a request to move an amount from one account to
// another, and its outcome. The transfer saga (transfer_saga.hpp) carries it out.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include <cairn/decision.hpp>
#include <cairn/schema.hpp>

namespace bank {

struct request_transfer {
  std::string from;
  std::string to;
  int64_t amount = 0;
};
struct complete_transfer {};
struct fail_transfer {
  std::string reason;
};

struct transfer_requested {
  std::string from;
  std::string to;
  int64_t amount = 0;
};
struct transfer_completed {};
struct transfer_failed {
  std::string reason;
};

/// One transfer, identified by a transfer id chosen by the client (so a request
/// sent twice is a harmless no-op).
struct transfer {
  using command_type = std::variant<request_transfer, complete_transfer, fail_transfer>;
  using event_type = std::variant<transfer_requested, transfer_completed, transfer_failed>;
  static constexpr std::string_view category = "transfer";

  enum class status : uint8_t { none, requested, completed, failed };
  status state = status::none;
  std::string from;
  std::string to;
  int64_t amount = 0;

  cairn::decision<event_type> decide(const request_transfer& c) const {
    if (state != status::none) {
      if (c.from == from && c.to == to && c.amount == amount) return cairn::nothing;
      return cairn::reject("transfer id already used for another transfer");
    }
    if (c.from.empty() || c.to.empty()) return cairn::reject("both accounts are needed");
    if (c.from == c.to) return cairn::reject("cannot transfer to the same account");
    if (c.amount <= 0) return cairn::reject("amount must be positive");
    return transfer_requested{c.from, c.to, c.amount};
  }
  cairn::decision<event_type> decide(const complete_transfer&) const {
    if (state != status::requested) return cairn::reject("transfer is not in progress");
    return transfer_completed{};
  }
  cairn::decision<event_type> decide(const fail_transfer& c) const {
    if (state != status::requested) return cairn::reject("transfer is not in progress");
    return transfer_failed{c.reason};
  }

  void apply(const transfer_requested& e) {
    state = status::requested;
    from = e.from;
    to = e.to;
    amount = e.amount;
  }
  void apply(const transfer_completed&) { state = status::completed; }
  void apply(const transfer_failed&) { state = status::failed; }
};

inline auto describe(cairn::type<transfer>) {
  return cairn::schema<transfer>("transfer", 1, cairn::field("state", &transfer::state),
                                 cairn::field("from", &transfer::from),
                                 cairn::field("to", &transfer::to),
                                 cairn::field("amount", &transfer::amount));
}
inline auto describe(cairn::type<request_transfer>) {
  return cairn::schema<request_transfer>("request_transfer", 1,
                                         cairn::field("from", &request_transfer::from),
                                         cairn::field("to", &request_transfer::to),
                                         cairn::field("amount", &request_transfer::amount));
}
inline auto describe(cairn::type<complete_transfer>) {
  return cairn::schema<complete_transfer>("complete_transfer", 1);
}
inline auto describe(cairn::type<fail_transfer>) {
  return cairn::schema<fail_transfer>("fail_transfer", 1,
                                      cairn::field("reason", &fail_transfer::reason));
}
inline auto describe(cairn::type<transfer_requested>) {
  return cairn::schema<transfer_requested>("transfer_requested", 1,
                                           cairn::field("from", &transfer_requested::from),
                                           cairn::field("to", &transfer_requested::to),
                                           cairn::field("amount", &transfer_requested::amount));
}
inline auto describe(cairn::type<transfer_completed>) {
  return cairn::schema<transfer_completed>("transfer_completed", 1);
}
inline auto describe(cairn::type<transfer_failed>) {
  return cairn::schema<transfer_failed>("transfer_failed", 1,
                                        cairn::field("reason", &transfer_failed::reason));
}

} // namespace bank
