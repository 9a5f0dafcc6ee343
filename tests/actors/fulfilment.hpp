// A second domain for the saga tests, written the way a new user would: items with
// stock, orders, and a fulfilment saga that reserves each order line in turn, then
// confirms the order, or, when a line is refused, releases what it reserved and
// cancels the order. `bugs` switches on the mistakes the dead-letter tests need; a
// "fix" is switching one off (as a new build would) before a retry.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <cairn/decision.hpp>
#include <cairn/saga.hpp>
#include <cairn/schema.hpp>

namespace shop {

struct line {
  std::string item;
  int64_t qty = 0;
};

// Items.
struct stock { int64_t qty = 0; };
struct reserve { std::string order; int64_t qty = 0; };
struct release { std::string order; int64_t qty = 0; };
struct stocked { int64_t qty = 0; };
struct reserved { std::string order; int64_t qty = 0; };
struct released { std::string order; int64_t qty = 0; };

struct item {
  using command_type = std::variant<stock, reserve, release>;
  using event_type = std::variant<stocked, reserved, released>;
  static constexpr std::string_view category = "item";
  int64_t available = 0;

  cairn::decision<event_type> decide(const stock& c) const { return stocked{c.qty}; }
  cairn::decision<event_type> decide(const reserve& c) const {
    if (c.qty > available) return cairn::reject("out of stock");
    return reserved{c.order, c.qty};
  }
  cairn::decision<event_type> decide(const release& c) const { return released{c.order, c.qty}; }
  void apply(const stocked& e) { available += e.qty; }
  void apply(const reserved& e) { available -= e.qty; }
  void apply(const released& e) { available += e.qty; }
};

// Orders.
struct place { std::vector<line> lines; };
struct confirm {};
struct cancel { std::string reason; };
struct placed { std::vector<line> lines; };
struct confirmed {};
struct cancelled { std::string reason; };

struct order {
  using command_type = std::variant<place, confirm, cancel>;
  using event_type = std::variant<placed, confirmed, cancelled>;
  static constexpr std::string_view category = "order";
  bool is_placed = false;
  bool closed = false;

  cairn::decision<event_type> decide(const place& c) const {
    if (is_placed) return cairn::nothing;
    return placed{c.lines};
  }
  cairn::decision<event_type> decide(const confirm&) const {
    if (closed) return cairn::nothing;
    return confirmed{};
  }
  cairn::decision<event_type> decide(const cancel& c) const {
    if (closed) return cairn::nothing;
    return cancelled{c.reason};
  }
  void apply(const placed&) { is_placed = true; }
  void apply(const confirmed&) { closed = true; }
  void apply(const cancelled&) { closed = true; }
};

/// The mistakes the tests switch on.
struct bugs {
  static inline std::atomic<bool> empty_reserve_target{false}; ///< react: lines after the first
  static inline std::atomic<bool> empty_release_target{false}; ///< on_rejected's compensation
  static inline std::atomic<bool> react_throws{false};         ///< react on orders "bad-*"
  static inline std::atomic<bool> apply_throws{false};         ///< apply(line_reserved)
  static inline std::atomic<bool> correlate_throws{false};     ///< correlate on orders "lost-*"
  static void fix_all() {
    empty_reserve_target = empty_release_target = react_throws = apply_throws = false;
    correlate_throws = false;
  }
};

// The saga's own events.
struct fulfilment_started { std::string order; std::vector<line> lines; };
struct line_reserved { uint32_t index = 0; };
struct line_refused { uint32_t index = 0; std::string reason; };
struct fulfilment_closed { bool confirmed = false; };

struct fulfilment_saga {
  static constexpr std::string_view name = "fulfilment";
  using event_type =
    std::variant<fulfilment_started, line_reserved, line_refused, fulfilment_closed>;
  using input_type = std::variant<placed, reserved, confirmed, cancelled>;
  using decision = cairn::saga_decision<event_type>;

  std::string order_id;
  std::vector<line> lines;
  uint32_t reserved_lines = 0;
  bool refused = false;
  bool closed = false;

  static std::string correlate(const cairn::envelope& e, const placed&) {
    if (bugs::correlate_throws && e.stream.id.rfind("lost-", 0) == 0)
      throw std::runtime_error("a bug in correlate");
    return e.stream.id;
  }

  decision react(const cairn::envelope& e, const placed& p) const {
    if (!order_id.empty()) return cairn::nothing;
    if (bugs::react_throws && e.stream.id.rfind("bad-", 0) == 0)
      throw std::runtime_error("a bug in react");
    decision d{fulfilment_started{e.stream.id, p.lines}};
    if (p.lines.empty()) return std::move(d).send<order>("confirm", e.stream.id, confirm{});
    return std::move(d).send<item>("reserve 0", p.lines[0].item, reserve{e.stream.id, p.lines[0].qty});
  }
  decision react(const reserved&) const {
    auto next = reserved_lines + 1;
    decision d{line_reserved{reserved_lines}};
    if (next == lines.size()) return std::move(d).send<order>("confirm", order_id, confirm{});
    auto target = bugs::empty_reserve_target ? std::string{} : lines[next].item;
    return std::move(d).send<item>("reserve " + std::to_string(next), target,
                                   reserve{order_id, lines[next].qty});
  }
  decision react(const confirmed&) const { return fulfilment_closed{true}; }
  decision react(const cancelled&) const { return fulfilment_closed{false}; }

  /// A refused line: release the lines reserved before it, cancel the order.
  decision on_rejected(const cairn::saga_failure& f) const {
    if (f.step.rfind("reserve", 0) != 0) return cairn::nothing;
    decision d{line_refused{reserved_lines, f.reason()}};
    for (uint32_t i = 0; i < reserved_lines; ++i) {
      auto target = bugs::empty_release_target ? std::string{} : lines[i].item;
      d.send<item>("release " + std::to_string(i), target, release{order_id, lines[i].qty});
    }
    return std::move(d).send<order>("cancel", order_id, cancel{"line refused: " + f.reason()});
  }

  bool done() const { return closed; }
  void apply(const fulfilment_started& e) {
    order_id = e.order;
    lines = e.lines;
  }
  void apply(const line_reserved&) {
    if (bugs::apply_throws) throw std::runtime_error("a bug in apply");
    ++reserved_lines;
  }
  void apply(const line_refused&) { refused = true; }
  void apply(const fulfilment_closed&) { closed = true; }
};

} // namespace shop

namespace shop {
using cairn::field;
using cairn::schema;
using cairn::type;
// Schemas, found by argument-dependent lookup on cairn::type<T>.
inline auto describe(type<line>) {
  return schema<line>("line", 1, field("item", &line::item), field("qty", &line::qty));
}
inline auto describe(type<stock>) { return schema<stock>("stock", 1, field("qty", &stock::qty)); }
inline auto describe(type<reserve>) {
  return schema<reserve>("reserve", 1, field("order", &reserve::order), field("qty", &reserve::qty));
}
inline auto describe(type<release>) {
  return schema<release>("release", 1, field("order", &release::order), field("qty", &release::qty));
}
inline auto describe(type<stocked>) { return schema<stocked>("stocked", 1, field("qty", &stocked::qty)); }
inline auto describe(type<reserved>) {
  return schema<reserved>("reserved", 1, field("order", &reserved::order), field("qty", &reserved::qty));
}
inline auto describe(type<released>) {
  return schema<released>("released", 1, field("order", &released::order), field("qty", &released::qty));
}
inline auto describe(type<place>) { return schema<place>("place", 1, field("lines", &place::lines)); }
inline auto describe(type<confirm>) { return schema<confirm>("confirm", 1); }
inline auto describe(type<cancel>) { return schema<cancel>("cancel", 1, field("reason", &cancel::reason)); }
inline auto describe(type<placed>) { return schema<placed>("placed", 1, field("lines", &placed::lines)); }
inline auto describe(type<confirmed>) { return schema<confirmed>("confirmed", 1); }
inline auto describe(type<cancelled>) {
  return schema<cancelled>("cancelled", 1, field("reason", &cancelled::reason));
}
inline auto describe(type<fulfilment_started>) {
  return schema<fulfilment_started>("fulfilment_started", 1,
                                    field("order", &fulfilment_started::order),
                                    field("lines", &fulfilment_started::lines));
}
inline auto describe(type<line_reserved>) {
  return schema<line_reserved>("line_reserved", 1, field("index", &line_reserved::index));
}
inline auto describe(type<line_refused>) {
  return schema<line_refused>("line_refused", 1, field("index", &line_refused::index),
                              field("reason", &line_refused::reason));
}
inline auto describe(type<fulfilment_closed>) {
  return schema<fulfilment_closed>("fulfilment_closed", 1,
                                   field("confirmed", &fulfilment_closed::confirmed));
}
} // namespace shop
