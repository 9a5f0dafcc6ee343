// The journal: the one interface every event store implements (memory, file, PostgreSQL).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "cairn/envelope.hpp"
#include "cairn/expected.hpp"

namespace cairn {

namespace metrics {
class registry;
}

/// Special values for append_request::expected_version.
namespace expected_version {
/// Append whatever the stream's current version is (no concurrency check).
inline constexpr uint64_t any = std::numeric_limits<uint64_t>::max();
/// The stream must not exist yet (have no events).
inline constexpr uint64_t no_stream = 0;
} // namespace expected_version

/// A cluster member's proof that it owns what it writes to: the lease it holds (a
/// shard of streams, or a saga type) and the epoch it holds it under. A store that
/// keeps leases (PostgreSQL) refuses, in the append's own transaction, an append
/// whose lease has since been released or claimed by another member (a higher
/// epoch): errc::fenced, nothing stored. Stores without leases refuse every fenced
/// append with invalid_argument. The default token is inactive: no check.
struct fence_token {
  int32_t lease = -1; ///< lease id (cluster_store.hpp); -1: unfenced
  uint64_t epoch = 0; ///< the epoch under which the writer holds the lease

  bool active() const noexcept { return lease >= 0; }
  friend bool operator==(const fence_token& a, const fence_token& b) {
    return a.lease == b.lease && a.epoch == b.epoch;
  }
};

/// One atomic write to one stream: all of `events` are stored, in order, or none.
struct append_request {
  stream_id stream;
  /// The stream's version the writer based its decision on (its last event's
  /// version, 0 for an empty stream), or expected_version::any.
  uint64_t expected_version = expected_version::any;
  std::vector<event_data> events;
  /// Ownership the store checks before storing (cluster members only).
  fence_token fence{};
};

/// Where a successful append landed.
struct append_result {
  uint64_t first_version = 0;  ///< version of the first appended event
  uint64_t last_version = 0;   ///< the stream's new version
  uint64_t first_position = 0; ///< global position of the first appended event
  uint64_t last_position = 0;  ///< global position of the last appended event

  friend bool operator==(const append_result& a, const append_result& b) {
    return a.first_version == b.first_version && a.last_version == b.last_version &&
           a.first_position == b.first_position && a.last_position == b.last_position;
  }
};

/// An event store. Contract shared by every implementation (checked by the
/// conformance suite in tests/conformance):
///  - append() is called by one thread at a time (the journal's writer); reads,
///    stream_version() and head_position() may run concurrently from any thread
///    and see only fully committed appends.
///  - Stream versions start at 1 and have no holes; global positions start at 1,
///    have no holes and follow commit order.
///  - Listeners see every committed event exactly once, in position order, called
///    synchronously on the appending thread after the batch is durable and before
///    append() (or finish_append()) returns. A listener must not throw: one that does
///    misses that batch, and the others and the append are not affected.
class journal {
public:
  using listener = std::function<void(const std::vector<envelope>&)>;
  using subscription = uint64_t;

  virtual ~journal() = default;

  /// Stores a batch of independent requests with as few durable writes as the store
  /// allows (group commit). Each request succeeds or fails on its own; results are
  /// index-aligned with `batch`. Per request errors: conflict (expected version
  /// mismatch: nothing of that request is stored), fenced (its fence_token is
  /// stale: nothing of it stored), invalid_argument (bad stream name, empty event
  /// list, or a fence on a store without leases), unavailable (store closed or I/O failure: treat the
  /// whole batch as failed).
  virtual std::vector<expected<append_result>> append(std::vector<append_request> batch) = 0;

  /// Convenience: a batch of one.
  expected<append_result> append_one(append_request request);

  /// A batch that begin_append() has written and finish_append() has yet to commit.
  class pending_append {
  public:
    virtual ~pending_append() = default;
  };

  /// Group commit in two steps, so that one batch is written while the one before it
  /// is being made durable. begin_append() checks `batch`, assigns its versions and
  /// positions (after those of the batches still pending) and writes it;
  /// finish_append() makes it durable, commits it (from then on readers and listeners
  /// see it) and returns its results, as append() would. One thread at a time calls
  /// begin_append(); every pending batch is finished exactly once, in the order the
  /// batches were begun, by one thread at a time; append() is not called while any
  /// batch is pending. begin_append() may wait until the pending batches are finished
  /// (the file store does, to seal a segment), so they must be finished on another
  /// thread than the one that begins. The default does all the work in
  /// begin_append(), by append().
  virtual std::unique_ptr<pending_append> begin_append(std::vector<append_request> batch);
  virtual std::vector<expected<append_result>> finish_append(
    std::unique_ptr<pending_append> pending);

  /// Up to `max_count` events of `stream` with version >= `from_version`, in
  /// version order. An unknown stream gives an empty vector, not an error.
  virtual expected<std::vector<envelope>> read_stream(const stream_id& stream,
                                                      uint64_t from_version,
                                                      size_t max_count) const = 0;

  /// Up to `max_count` events with position >= `from_position`, in position order.
  virtual expected<std::vector<envelope>> read_all(uint64_t from_position,
                                                   size_t max_count) const = 0;

  /// The stream's current version (0 if it has no events).
  virtual expected<uint64_t> stream_version(const stream_id& stream) const = 0;

  /// Position of the last committed event (0 for an empty store).
  virtual uint64_t head_position() const = 0;

  /// Every stream that has at least one event, in no particular order.
  virtual expected<std::vector<stream_id>> list_streams() const = 0;

  /// Registers `fn` for every commit from now on. Returns a handle for unsubscribe().
  virtual subscription subscribe(listener fn);
  virtual void unsubscribe(subscription handle);

  /// The store's own metrics (metrics.hpp), e.g. the file store's fdatasync latency,
  /// which node::metrics_text() adds to the node's; null if it keeps none.
  virtual const metrics::registry* store_metrics() const { return nullptr; }

  /// Whether reads wait on another process (a database server), so that a node runs
  /// them on reader threads of its own rather than on its actors' scheduler threads
  /// (node_options::store_read_threads). False: reads are local and quick.
  virtual bool reads_wait_on_server() const { return false; }

protected:
  /// Implementations call this after a batch is durable, with its events in order.
  /// A listener that throws is skipped for this batch and the others still run; returns
  /// how many threw (the batch stays committed).
  size_t publish(const std::vector<envelope>& committed) noexcept;

private:
  std::mutex listeners_mutex_;
  std::vector<std::pair<subscription, listener>> listeners_;
  subscription next_subscription_ = 1;
};

/// Reads a whole stream (all versions from `from_version`), in chunks.
expected<std::vector<envelope>> read_stream_all(const journal& j, const stream_id& stream,
                                                uint64_t from_version = 1);

} // namespace cairn
