// kafka_consumer: integration events in. A consumer group member that hands each
// record of its topics to an application handler (which typically sends commands to
// aggregates), one at a time per consumer, in offset order per partition.
//
// At least once: a record's offset is stored for commit only after its handler
// returned success (so after the commands it awaited were acknowledged), and stored
// offsets are committed every commit_interval and on stop. A crash re-delivers what
// was handled since the last commit; use kafka_record::id() (or command_metadata())
// to make the handler's commands idempotent. A record the handler keeps failing on is
// parked with the reason (in the snapshot store, stream "kafka_parked-<group>") and
// the partition moves on; parked() lists them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/envelope.hpp"
#include "cairn/expected.hpp"
#include "cairn/kafka_settings.hpp"
#include "cairn/snapshot_store.hpp"

namespace cairn {

/// One consumed record.
struct kafka_record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t timestamp_ms = 0;

  /// "topic/partition/offset", unique per record of a cluster: an idempotency key.
  std::string id() const;
  /// For the commands the record causes: correlation and causation id "kafka:<id>",
  /// and entry "cairn.command_id" = "kafka:<id>".
  metadata command_metadata() const;
  /// The first header called `name`, or nullptr.
  const std::string* header(std::string_view name) const;
};

/// Handles one record. Return success once its effects are durable (e.g. after
/// node::execute() succeeded). An error with code rejected, invalid_argument or
/// corrupt parks the record at once (it would fail again the same way); any other
/// error, or an exception, is retried with backoff, then parked after max_attempts.
using record_handler = std::function<expected<void>(const kafka_record&)>;

struct kafka_consumer_options {
  kafka_settings kafka;
  /// The consumer group (group.id); also names where parked records are kept.
  std::string group;
  std::vector<std::string> topics;
  /// Attempts on a record before it is parked (at least 1).
  uint32_t max_attempts = 5;
  std::chrono::milliseconds retry_delay{100};
  std::chrono::milliseconds retry_max_delay{5000};
  /// How often stored offsets are committed (auto.commit.interval.ms).
  std::chrono::milliseconds commit_interval{1000};
  /// A group with no committed offset starts at the earliest record (else the latest).
  bool from_beginning = true;
};

/// A record the handler failed on, set aside.
struct parked_record {
  kafka_record record;
  std::string reason;
  uint32_t attempts = 0;
  int64_t parked_at_ns = 0;
};

struct kafka_consumer_status {
  uint64_t handled = 0;          ///< records handled successfully
  uint64_t failed_attempts = 0;  ///< handler failures (retried or parked)
  uint64_t parked = 0;           ///< records parked by this consumer since it started
  std::string last_error;        ///< the latest handler, broker or commit error
  bool running = false;
};

class kafka_consumer {
public:
  /// Joins the group and starts consuming on a thread of its own. Parked records are
  /// kept in `parking` (null: only in memory, lost on restart). Errors:
  /// invalid_argument (no group or topics, bad librdkafka property), unavailable
  /// (stored parked records unreadable).
  static expected<std::unique_ptr<kafka_consumer>> start(kafka_consumer_options opts,
                                                         record_handler handler,
                                                         std::shared_ptr<snapshot_store> parking);

  /// Stops after the record in hand (a record being retried is not committed and will
  /// be delivered again), commits the stored offsets and leaves the group.
  ~kafka_consumer();

  kafka_consumer(const kafka_consumer&) = delete;
  kafka_consumer& operator=(const kafka_consumer&) = delete;

  kafka_consumer_status status() const;

  /// Every parked record of this group, oldest first.
  std::vector<parked_record> parked() const;

  /// The parked records of `group` kept in `parking` (for tools; no consumer needed).
  static expected<std::vector<parked_record>> stored_parked(const snapshot_store& parking,
                                                            const std::string& group);

  struct impl;

private:
  explicit kafka_consumer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace cairn
