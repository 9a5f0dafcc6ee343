// A test domain whose events went through three schema versions, a rename and a
// split: the current (v3) wallet, the old structs its store may still hold, and the
// upcasters that read them. Shared by the framework and node-level upcaster tests.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <cairn/decision.hpp>
#include <cairn/envelope.hpp>
#include <cairn/schema.hpp>
#include <cairn/upcaster.hpp>

namespace versioned {

// Current events.
struct opened { std::string owner; };
struct deposited { int64_t cents = 0; std::string currency; }; // v3
struct withdrawn { int64_t cents = 0; };
struct fee_charged { int64_t cents = 0; };

// Commands.
struct open { std::string owner; };
struct deposit { int64_t cents = 0; };
struct withdraw { int64_t cents = 0; };

struct wallet {
  using command_type = std::variant<open, deposit, withdraw>;
  using event_type = std::variant<opened, deposited, withdrawn, fee_charged>;
  static constexpr std::string_view category = "wallet";

  bool is_open = false;
  int64_t balance = 0; // cents
  int64_t fees = 0;
  std::string currency;
  int applied = 0; // events folded in (a split counts each part)

  cairn::decision<event_type> decide(const open& c) const {
    if (is_open) return cairn::nothing;
    return opened{c.owner};
  }
  cairn::decision<event_type> decide(const deposit& c) const {
    if (!is_open) return cairn::reject("wallet not open");
    return deposited{c.cents, "EUR"};
  }
  cairn::decision<event_type> decide(const withdraw& c) const {
    if (c.cents > balance) return cairn::reject("insufficient funds");
    return withdrawn{c.cents};
  }

  void apply(const opened&) {
    is_open = true;
    ++applied;
  }
  void apply(const deposited& e) {
    balance += e.cents;
    currency = e.currency;
    ++applied;
  }
  void apply(const withdrawn& e) {
    balance -= e.cents;
    ++applied;
  }
  void apply(const fee_charged& e) {
    balance -= e.cents;
    fees += e.cents;
    ++applied;
  }
};

// Old events, kept only to read what is stored.
struct deposited_v1 { int64_t euros = 0; };                  // deposited v1: whole euros
struct deposited_v2 { int64_t cents = 0; };                  // deposited v2: cents, no currency
struct amount_added_v1 { int64_t euros = 0; };               // the old name of deposited
struct transfer_made_v1 { int64_t cents = 0; int64_t fee = 0; }; // split: withdrawn + fee
struct transfer_reversed_v1 { int64_t cents = 0; int64_t fee = 0; }; // split into old parts
struct audited_v1 { std::string note; };                     // obsolete: dropped on read

inline auto describe(cairn::type<opened>) {
  return cairn::schema<opened>("opened", 1, cairn::field("owner", &opened::owner));
}
inline auto describe(cairn::type<deposited>) {
  return cairn::schema<deposited>("deposited", 3, cairn::field("cents", &deposited::cents),
                                  cairn::field("currency", &deposited::currency));
}
inline auto describe(cairn::type<withdrawn>) {
  return cairn::schema<withdrawn>("withdrawn", 1, cairn::field("cents", &withdrawn::cents));
}
inline auto describe(cairn::type<fee_charged>) {
  return cairn::schema<fee_charged>("fee_charged", 1, cairn::field("cents", &fee_charged::cents));
}
inline auto describe(cairn::type<open>) {
  return cairn::schema<open>("open", 1, cairn::field("owner", &open::owner));
}
inline auto describe(cairn::type<deposit>) {
  return cairn::schema<deposit>("deposit", 1, cairn::field("cents", &deposit::cents));
}
inline auto describe(cairn::type<withdraw>) {
  return cairn::schema<withdraw>("withdraw", 1, cairn::field("cents", &withdraw::cents));
}
inline auto describe(cairn::type<wallet>) {
  return cairn::schema<wallet>("wallet", 1, cairn::field("is_open", &wallet::is_open),
                               cairn::field("balance", &wallet::balance),
                               cairn::field("fees", &wallet::fees),
                               cairn::field("currency", &wallet::currency),
                               cairn::field("applied", &wallet::applied));
}
inline auto describe(cairn::type<deposited_v1>) {
  return cairn::schema<deposited_v1>("deposited", 1, cairn::field("euros", &deposited_v1::euros));
}
inline auto describe(cairn::type<deposited_v2>) {
  return cairn::schema<deposited_v2>("deposited", 2, cairn::field("cents", &deposited_v2::cents));
}
inline auto describe(cairn::type<amount_added_v1>) {
  return cairn::schema<amount_added_v1>("amount_added", 1,
                                        cairn::field("euros", &amount_added_v1::euros));
}
inline auto describe(cairn::type<transfer_made_v1>) {
  return cairn::schema<transfer_made_v1>("transfer_made", 1,
                                         cairn::field("cents", &transfer_made_v1::cents),
                                         cairn::field("fee", &transfer_made_v1::fee));
}
inline auto describe(cairn::type<transfer_reversed_v1>) {
  return cairn::schema<transfer_reversed_v1>("transfer_reversed", 1,
                                             cairn::field("cents", &transfer_reversed_v1::cents),
                                             cairn::field("fee", &transfer_reversed_v1::fee));
}
inline auto describe(cairn::type<audited_v1>) {
  return cairn::schema<audited_v1>("audited", 1, cairn::field("note", &audited_v1::note));
}

// Every way an old event becomes current, declared once for the wallet's events.
inline auto upcasters(cairn::type<wallet::event_type>) {
  return cairn::upcaster_set<wallet::event_type>{}
    // A chain: v1 -> v2 -> v3. The last step reads the currency from metadata if set.
    .add([](const deposited_v1& e) { return deposited_v2{e.euros * 100}; })
    .add([](const deposited_v2& e, const cairn::metadata& meta) {
      auto currency = meta.find("currency");
      return deposited{e.cents, currency ? *currency : "EUR"};
    })
    // A rename with a change of type (then the chain above), and a plain rename.
    .add([](const amount_added_v1& e) { return deposited_v1{e.euros}; })
    .rename("credited", "deposited")
    // Splits: into current events, and into old ones that are upcast further.
    .add([](const transfer_made_v1& e) {
      return std::vector<wallet::event_type>{withdrawn{e.cents}, fee_charged{e.fee}};
    })
    .add([](const transfer_reversed_v1& e) {
      return std::vector<deposited_v2>{deposited_v2{e.cents}, deposited_v2{e.fee}};
    })
    // An event with no meaning any more: dropped.
    .add([](const audited_v1&) { return std::vector<wallet::event_type>{}; });
}

/// A read model over wallet events: totals, and the position of every event applied.
struct wallet_totals {
  static constexpr std::string_view name = "wallet_totals";
  static constexpr std::string_view category = "wallet";
  using event_type = wallet::event_type;

  int64_t balance = 0;
  int64_t fees = 0;
  std::vector<uint64_t> positions; // one entry per applied event (a split repeats one)
  std::vector<std::string> currencies;

  void apply(const cairn::envelope& e, const opened&) { positions.push_back(e.position); }
  void apply(const cairn::envelope& e, const deposited& d) {
    balance += d.cents;
    currencies.push_back(d.currency);
    positions.push_back(e.position);
  }
  void apply(const cairn::envelope& e, const withdrawn& w) {
    balance -= w.cents;
    positions.push_back(e.position);
  }
  void apply(const cairn::envelope& e, const fee_charged& f) {
    balance -= f.cents;
    fees += f.cents;
    positions.push_back(e.position);
  }
};

/// An event as an older program stored it: its struct's schema name and version.
template <class T>
cairn::event_data stored(const T& old_event, cairn::metadata meta = {}) {
  auto s = cairn::schema_of<T>();
  return cairn::event_data{std::string{s.name}, s.version, std::move(meta), cairn::encode(old_event)};
}

/// `d` as the store hands it back from stream wallet-w1 (position: the version if 0).
inline cairn::envelope as_stored(const cairn::event_data& d, uint64_t version = 1,
                                 uint64_t position = 0) {
  cairn::envelope e;
  e.stream = cairn::stream_id{"wallet", "w1"};
  e.version = version;
  e.position = position ? position : version;
  e.type = d.type;
  e.schema_version = d.schema_version;
  e.meta = d.meta;
  e.payload = d.payload;
  return e;
}

/// The history the tests store for one wallet: 8 events in every old form. Folded,
/// it gives expected_balance after expected_applied current events.
inline std::vector<cairn::event_data> old_history() {
  return {
    stored(opened{"ann"}),                                   // 1: current already
    stored(deposited_v1{1}),                                 // 2: v1 -> v3: +100
    stored(deposited_v2{250}, {"", "", {{"currency", "CHF"}}}), // 3: v2 -> v3: +250 CHF
    stored(amount_added_v1{2}),                              // 4: renamed: +200
    stored(transfer_made_v1{30, 5}),                         // 5: split: -30, fee -5
    stored(transfer_reversed_v1{30, 5}),                     // 6: split into v2s: +30, +5
    stored(audited_v1{"checked"}),                           // 7: dropped
    cairn::event_data{"credited", 2, {}, cairn::encode(deposited_v2{40})}, // 8: rename: +40
  };
}
inline constexpr int64_t expected_balance = 100 + 250 + 200 - 30 - 5 + 30 + 5 + 40;
inline constexpr int expected_applied = 1 + 1 + 1 + 1 + 2 + 2 + 0 + 1;

} // namespace versioned
