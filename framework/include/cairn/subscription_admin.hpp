// Event subscriptions' dead letters (parked_event.hpp) as stored in a snapshot store,
// read and answered without the subscription's handler: the node's notification
// actors keep them here, and the `cairn subscriptions` tool lists them, asks for a
// retry (which the node carries out when the subscription next starts) or discards
// them while the node is down. A running node offers the same through
// node::parked_events, retry_parked_events and discard_parked_event.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/parked_event.hpp"
#include "cairn/snapshot_store.hpp"

namespace cairn {

/// Where subscription `name`'s parked events are kept: "notification_parked-<name>".
stream_id parked_events_stream(const std::string& name);

/// Subscription `name`'s parked events, oldest first (none if nothing is stored).
/// Errors: corrupt, those of the store.
expected<std::vector<parked_event>> load_parked_events(const snapshot_store& store,
                                                       const std::string& name);
/// Stores subscription `name`'s parked events (the whole list).
expected<void> save_parked_events(snapshot_store& store, const std::string& name,
                                  const std::vector<parked_event>& parked);

/// The positions of `name`'s parked events an operator asked to retry while the node
/// was down (kept in "notification_retry-<name>"), in order. Errors as above.
expected<std::vector<uint64_t>> load_retry_requests(const snapshot_store& store,
                                                    const std::string& name);
/// Replaces the retry requests of `name` (an empty list: none wait).
expected<void> save_retry_requests(snapshot_store& store, const std::string& name,
                                   const std::vector<uint64_t>& positions);

/// Asks for `name`'s parked event at `position` (every parked event if none is given)
/// to be retried when the subscription next starts. Errors: not_found (no such parked
/// event, or none at all), those of the store.
expected<void> request_parked_event_retry(snapshot_store& store, const std::string& name,
                                          std::optional<uint64_t> position);
/// Drops `name`'s parked event at `position` for good. Errors: not_found, those of the store.
expected<void> discard_parked_event(snapshot_store& store, const std::string& name,
                                    uint64_t position);

/// One subscription's dead letters, as a tool lists them.
struct parked_subscription {
  std::string name;
  std::vector<parked_event> parked;
  std::vector<uint64_t> retry_requested; ///< positions the node retries when it starts
};

/// Every subscription with parked events in the file snapshot folder `dir`, by name.
/// Errors: unavailable, corrupt.
expected<std::vector<parked_subscription>> find_parked_subscriptions(const std::string& dir);

/// The same from snapshots read out of any store (the others are ignored): a store that
/// can list its snapshots by stream-name prefix gives those of subscription_admin_prefix().
/// Errors: corrupt.
expected<std::vector<parked_subscription>>
find_parked_subscriptions(const std::vector<snapshot>& snapshots);

/// The stream-name prefix of every snapshot the functions above keep ("notification_").
std::string subscription_admin_prefix();

} // namespace cairn
