// Snapshots: an aggregate's encoded state at a stream version, so recovery can
// start there and replay only the events after it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/envelope.hpp"
#include "cairn/expected.hpp"

namespace cairn {

struct snapshot {
  stream_id stream;
  uint64_t version = 0;        ///< the last event folded into `state`
  std::string type;            ///< the state type's schema name
  uint32_t schema_version = 1; ///< the state type's schema version when saved
  int64_t timestamp_ns = 0;
  bytes state;                 ///< encoded by the state type's codec
};

/// Keeps the latest snapshot per stream. Thread-safe. Snapshots are an
/// optimization: losing or refusing one only costs a longer replay.
class snapshot_store {
public:
  virtual ~snapshot_store() = default;
  /// Stores `s` as the latest snapshot of its stream. Errors: unavailable (I/O).
  virtual expected<void> save(const snapshot& s) = 0;
  /// The latest snapshot of `stream`, or nullopt if none. Errors: corrupt (a
  /// damaged snapshot: replay from the start instead), unavailable.
  virtual expected<std::optional<snapshot>> load(const stream_id& stream) const = 0;
};

/// Snapshots in memory (tests).
std::shared_ptr<snapshot_store> make_memory_snapshot_store();

/// Snapshots as one checksummed file per stream under `dir`, replaced atomically
/// (write, then rename). A torn or damaged file reads as errc::corrupt. Opening removes
/// the temporary files of saves that a crash interrupted (a save running at that
/// moment in another process on the same folder then fails: only that snapshot is lost).
/// Errors: unavailable (the folder cannot be created, listed or cleaned).
expected<std::shared_ptr<snapshot_store>> open_file_snapshot_store(const std::string& dir);

/// The snapshots in file snapshot folder `dir` whose stream names start with `prefix`
/// (at most 50 bytes), in no particular order, checked as load() checks them. For
/// tools. Errors: unavailable (the folder cannot be listed), corrupt (a damaged file).
expected<std::vector<snapshot>> read_file_snapshots(const std::string& dir,
                                                    const std::string& prefix);

} // namespace cairn
