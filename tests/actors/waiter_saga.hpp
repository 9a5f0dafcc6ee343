// waiter_saga: a test saga that starts an instance per opened bank account, which then
// stays open for ever (for tests of saga checkpoints and instance loads).
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include <cairn/codec.hpp>
#include <cairn/saga.hpp>

#include "bank/account.hpp"

namespace cairn::test {

struct waiting_started {};
inline auto describe(type<waiting_started>) { return schema<waiting_started>("waiting_started", 1); }

/// Starts an instance per opened account, which then waits for ever.
struct waiter_saga {
  static constexpr std::string_view name = "waiter";
  using event_type = std::variant<waiting_started>;
  using input_type = std::variant<bank::opened>;
  using decision = saga_decision<event_type>;
  bool started = false;
  static std::string correlate(const envelope& e, const bank::opened&) { return e.stream.id; }
  decision react(const bank::opened&) const {
    if (started) return nothing;
    return waiting_started{};
  }
  bool done() const { return false; }
  void apply(const waiting_started&) { started = true; }
};

} // namespace cairn::test
