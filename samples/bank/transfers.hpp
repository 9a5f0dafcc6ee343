// The bank sample's transfer read model: how many transfers were requested and how
// they ended, kept by a projection over transfer events.
#pragma once

#include <cstdint>

#include <cairn/envelope.hpp>

#include "transfer.hpp"

namespace bank {

struct transfers {
  static constexpr std::string_view name = "transfers";
  static constexpr std::string_view category = "transfer";
  using event_type = transfer::event_type;

  uint64_t requested = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;

  /// Requested transfers that have no outcome yet.
  uint64_t in_flight() const { return requested - completed - failed; }

  void apply(const transfer_requested&) { ++requested; }
  void apply(const transfer_completed&) { ++completed; }
  void apply(const transfer_failed&) { ++failed; }
};

} // namespace bank
