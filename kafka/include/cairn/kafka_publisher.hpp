// kafka_publisher: follows a store's committed events from a stored position and
// produces them to Kafka, at least once and in order per stream. Runs on a thread of
// its own, so a slow or unreachable broker never holds up the node's commands.
//
// Each event matching the filter becomes one message on the topic of its category
// (kafka_settings::topic_for), keyed by the stream name (so a stream stays in one
// partition, in order), with the value from the event_renderer and these headers:
//   cairn.type, cairn.schema_version, cairn.stream, cairn.version, cairn.position,
//   cairn.timestamp_ns, cairn.correlation_id, cairn.causation_id (when set),
//   cairn.meta.<key> for each metadata entry, content-type.
// The producer is idempotent (enable.idempotence, enable.gapless.guarantee). The
// position is checkpointed (snapshot store, stream "kafka_publisher-<name>") only when
// Kafka acknowledged every message before it. A failed delivery makes the publisher
// wait for what is in flight, back off, and produce again from the checkpoint; after a
// crash it resumes there too. So a consumer may see an event again (drop repeats by
// cairn.position, or by cairn.stream + cairn.version), but never a later event of a
// stream without the earlier ones.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cairn/event_filter.hpp"
#include "cairn/event_renderer.hpp"
#include "cairn/journal.hpp"
#include "cairn/kafka_settings.hpp"
#include "cairn/snapshot_store.hpp"

namespace cairn {

struct kafka_publisher_options {
  /// Names the checkpoint; one publisher per name. Letters, digits, '_' and '-'.
  std::string name = "default";
  kafka_settings kafka;
  /// Which events to publish.
  event_filter filter;
  /// Where to start when no checkpoint is stored: the store's first event (true) or
  /// its head at start (false).
  bool from_beginning = true;
  /// Most messages produced and not yet acknowledged.
  size_t max_in_flight = 100000;
  /// Store the checkpoint at most this often (and on stop).
  std::chrono::milliseconds checkpoint_interval{200};
  /// Backoff after a failed delivery, doubling up to retry_max_delay.
  std::chrono::milliseconds retry_delay{100};
  std::chrono::milliseconds retry_max_delay{10000};
  /// How long librdkafka keeps trying to deliver one message before reporting it
  /// failed (message.timeout.ms); the publisher then backs off and re-sends.
  std::chrono::milliseconds delivery_timeout{30000};
  /// If set, called each time the acknowledged position advances, with the range of
  /// positions newly acknowledged, on the publisher's thread (keep it short).
  std::function<void(uint64_t first, uint64_t last)> on_acknowledged;
};

/// What a publisher has done, for monitoring.
struct kafka_publisher_status {
  uint64_t head = 0;            ///< the store's last committed position
  uint64_t acknowledged = 0;    ///< every event up to here is published (or filtered out)
  uint64_t checkpoint = 0;      ///< the position last stored
  uint64_t lag = 0;             ///< head - acknowledged
  uint64_t produced = 0;        ///< messages handed to librdkafka (repeats included)
  uint64_t delivered = 0;       ///< messages Kafka acknowledged
  uint64_t failed = 0;          ///< deliveries that failed
  uint64_t restarts = 0;        ///< times it backed off and produced again from the checkpoint
  std::string last_error;       ///< the latest delivery or broker error, if any
  bool running = false;
};

class kafka_publisher {
public:
  /// Starts publishing from `store` (which must be the node's store, or any journal),
  /// keeping the checkpoint in `checkpoints` (null: none, so every start begins as
  /// `opts.from_beginning` says). Errors: invalid_argument (bad name or librdkafka
  /// property), unavailable (the checkpoint cannot be read).
  static expected<std::unique_ptr<kafka_publisher>> start(std::shared_ptr<journal> store,
                                                          std::shared_ptr<snapshot_store> checkpoints,
                                                          kafka_publisher_options opts,
                                                          event_renderer renderer = {});

  /// Stops: waits up to `opts.delivery_timeout` for messages in flight, stores the
  /// checkpoint and joins the thread.
  ~kafka_publisher();

  kafka_publisher(const kafka_publisher&) = delete;
  kafka_publisher& operator=(const kafka_publisher&) = delete;

  kafka_publisher_status status() const;

  /// Waits until every event up to `position` is acknowledged. False on timeout.
  bool wait_until_acknowledged(uint64_t position, std::chrono::milliseconds timeout) const;

  /// The stored checkpoint of publisher `name` (0 if none).
  static expected<uint64_t> stored_checkpoint(const snapshot_store& checkpoints,
                                              const std::string& name);

  struct impl;

private:
  explicit kafka_publisher(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace cairn
