// The bank sample's domain: an account aggregate (open, deposit, withdraw) and its
// events, written as plain types plus pure decide/apply functions.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include <cairn/decision.hpp>
#include <cairn/schema.hpp>

namespace bank {

// [account-example]
// Commands say what someone wants; events say what happened.
struct open { std::string owner; };
struct deposit { int64_t amount = 0; };
struct withdraw { int64_t amount = 0; };

struct opened { std::string owner; };
struct deposited { int64_t amount = 0; };
struct withdrawn { int64_t amount = 0; };

// The aggregate: state plus pure functions. No actors, no I/O.
struct account {
  using command_type = std::variant<open, deposit, withdraw>;
  using event_type = std::variant<opened, deposited, withdrawn>;
  static constexpr std::string_view category = "account";

  bool is_open = false;
  int64_t balance = 0;

  cairn::decision<event_type> decide(const open& c) const {
    if (is_open) return cairn::nothing; // opening twice is a harmless no-op
    if (c.owner.empty()) return cairn::reject("owner must not be empty");
    return opened{c.owner};
  }
  cairn::decision<event_type> decide(const deposit& c) const {
    if (!is_open) return cairn::reject("account not open");
    if (c.amount <= 0) return cairn::reject("amount must be positive");
    return deposited{c.amount};
  }
  cairn::decision<event_type> decide(const withdraw& c) const {
    if (!is_open) return cairn::reject("account not open");
    if (c.amount <= 0) return cairn::reject("amount must be positive");
    if (c.amount > balance) return cairn::reject("insufficient funds");
    return withdrawn{c.amount};
  }

  void apply(const opened&) { is_open = true; }
  void apply(const deposited& e) { balance += e.amount; }
  void apply(const withdrawn& e) { balance -= e.amount; }
};
// [account-example]

// One declaration per type gives it a stable name, a schema version and codecs.
// The account's own schema lets the node snapshot its state.
inline auto describe(cairn::type<account>) {
  return cairn::schema<account>("account", 1, cairn::field("is_open", &account::is_open),
                                cairn::field("balance", &account::balance));
}
inline auto describe(cairn::type<open>) {
  return cairn::schema<open>("open", 1, cairn::field("owner", &open::owner));
}
inline auto describe(cairn::type<deposit>) {
  return cairn::schema<deposit>("deposit", 1, cairn::field("amount", &deposit::amount));
}
inline auto describe(cairn::type<withdraw>) {
  return cairn::schema<withdraw>("withdraw", 1, cairn::field("amount", &withdraw::amount));
}
inline auto describe(cairn::type<opened>) {
  return cairn::schema<opened>("opened", 1, cairn::field("owner", &opened::owner));
}
inline auto describe(cairn::type<deposited>) {
  return cairn::schema<deposited>("deposited", 1, cairn::field("amount", &deposited::amount));
}
inline auto describe(cairn::type<withdrawn>) {
  return cairn::schema<withdrawn>("withdrawn", 1, cairn::field("amount", &withdrawn::amount));
}

} // namespace bank
