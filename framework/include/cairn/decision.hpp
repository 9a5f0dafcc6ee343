// decision: what an aggregate's decide() returns for a command: one event, several
// events (stored atomically), nothing (an idempotent no-op), or a rejection.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace cairn {

/// A business refusal. It is a normal reply to the sender, not a failure; nothing is stored.
struct rejection {
  std::string reason;
};

/// Builds a rejection: `return cairn::reject("account not open");`
inline rejection reject(std::string reason) { return rejection{std::move(reason)}; }

/// "Nothing to do": `return cairn::nothing;`
struct nothing_t {};
inline constexpr nothing_t nothing{};

template <class Event>
class decision {
public:
  /// No events.
  decision() = default;
  decision(nothing_t) {}
  decision(rejection r) : rejected_(true), reason_(std::move(r.reason)) {}
  /// Exactly one event (any alternative of Event, or Event itself).
  template <class E, class = std::enable_if_t<std::is_constructible_v<Event, E&&> &&
                                              !std::is_same_v<std::decay_t<E>, decision> &&
                                              !std::is_same_v<std::decay_t<E>, rejection>>>
  decision(E&& event) {
    events_.emplace_back(std::forward<E>(event));
  }
  /// Several events, appended atomically in this order.
  decision(std::vector<Event> events) : events_(std::move(events)) {}

  bool rejected() const noexcept { return rejected_; }
  /// Why it was rejected (empty unless rejected()).
  const std::string& reason() const noexcept { return reason_; }
  const std::vector<Event>& events() const noexcept { return events_; }
  std::vector<Event>& events() noexcept { return events_; }

private:
  bool rejected_ = false;
  std::string reason_;
  std::vector<Event> events_;
};

} // namespace cairn
