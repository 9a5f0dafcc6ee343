// file_journal: Cairn's default, embedded, durable event store: append-only segment
// files in one data folder, with group commit, CRC-checked records, crash recovery
// and a persisted per-stream index. One process writes a folder at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/journal.hpp"

namespace cairn {

/// When an append is made durable (fdatasync) before it is acknowledged. A crash of
/// the process alone never loses an acknowledged append under any policy (the data
/// is in the OS page cache); the policies differ on power loss or an OS crash.
enum class sync_policy {
  always,   ///< every batch is fdatasync'ed before append() returns (the default)
  /// A background thread fdatasyncs every sync_interval, so an OS crash may lose the
  /// appends acknowledged in roughly the last sync_interval plus one fdatasync's time.
  /// Sealed segments are always synced before the next segment starts.
  interval,
  never, ///< leave it to the OS: tests and benchmarks only
};

/// Parses "always", "interval" or "never".
expected<sync_policy> parse_sync_policy(const std::string& name);
const char* to_string(sync_policy p);

struct file_journal_options {
  /// A segment is sealed and a new one started when the next batch would take it past
  /// this size (a batch larger than this gets a segment of its own). 1 byte to 1 GiB.
  uint64_t segment_bytes = 64ull << 20;
  sync_policy sync = sync_policy::always;
  /// Upper bound on unsynced time under sync_policy::interval.
  std::chrono::milliseconds sync_interval{100};
  /// Open without the writer lock, never modifying anything (the CLI's readers,
  /// which may run beside a writing node). append() then fails with unavailable;
  /// a torn tail is ignored rather than truncated, and reads see what was
  /// complete when the folder was opened or last refreshed.
  bool read_only = false;
  /// Read and check every record of the sealed segments on open, so a writer
  /// refuses to start on a damaged store rather than find the damage later (reads
  /// the whole store: about 2.3 s for 10 million events from the page cache). Turn
  /// it off for very large stores: sealed segments are then trusted by their
  /// checked index files, their records are still checked on every read (corrupt,
  /// naming file and offset) and by verify_file_journal().
  bool verify_on_open = true;
  /// Receives what recovery and maintenance did ("truncated the torn tail of ...",
  /// "rebuilt the index of ...", "stopped accepting appends ..."). Called on the
  /// opening, appending or flushing thread; may be empty.
  std::function<void(const std::string&)> log;
};

/// The most bytes one event may take in a file store: its record, with the stream's
/// name, type, metadata and framing. A larger event fails its append (invalid_argument).
inline constexpr uint64_t file_journal_max_event_bytes = uint64_t{64} << 20;

/// The bytes `event` takes in a file store when appended to `stream` (its record).
uint64_t file_journal_event_bytes(const stream_id& stream, const event_data& event);

/// Opens (creating if needed) the store in folder `dir`. Recovers from a crash:
/// a torn or corrupt record or unfinished batch at the tail of the last segment is
/// truncated (back to the last whole batch) and logged. Errors: unavailable (another
/// journal, in this or another process, holds the folder's lock, or I/O failure,
/// naming the path), corrupt (damage that no interrupted write explains: in a sealed
/// segment, or in the last segment before records written after it had been made
/// durable; names file and offset: the store refuses to open rather than skip
/// events), invalid_argument (bad options), not_found (read_only and the folder does
/// not exist). The returned journal's append() fails with unavailable once a
/// fdatasync has failed (or a failed write could not be rolled back), until it is
/// reopened. The on-disk format and recovery rules: docs/file-format.md.
expected<std::shared_ptr<journal>> open_file_journal(const std::string& dir,
                                                     file_journal_options options = {});

/// For a journal opened read_only: picks up what the writer committed since the open
/// or the last refresh (whole batches only) and returns the new head position.
/// Listeners are not called for what a refresh finds; read from the old head + 1.
/// For a writable file journal it just returns the head position. Errors:
/// invalid_argument (`j` is not a file journal), corrupt or unavailable as for open.
expected<uint64_t> refresh_file_journal(journal& j);

/// What an open file journal has written since it was opened (for metrics and
/// benchmarks): batches written, fdatasync calls on its segments, and bytes written.
struct file_journal_counters {
  uint64_t batches = 0;
  uint64_t syncs = 0;
  uint64_t bytes = 0;
};
/// Errors: invalid_argument (`j` is not a file journal).
expected<file_journal_counters> counters_of_file_journal(const journal& j);

/// What `cairn stats` shows.
struct file_journal_stats {
  uint64_t events = 0;
  uint64_t streams = 0;
  uint64_t segments = 0;
  uint64_t bytes = 0;            ///< total size of all segment files
  uint64_t head_position = 0;
  int64_t first_timestamp_ns = 0;
  int64_t last_timestamp_ns = 0;
};
/// Opens `dir` read-only (safe beside a writer) and sums it up. Events and streams
/// count committed ones; `bytes` includes any torn tail. Errors as for a read-only open.
expected<file_journal_stats> file_journal_statistics(const std::string& dir);

/// What `cairn verify` reports: every record's CRC and framing, and every stream's
/// version sequence (no holes, no repeats) and the global position sequence.
struct verify_report {
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t streams = 0;
  std::vector<std::string> problems; ///< empty when the store is sound ("file X offset Y: ...")
};
/// Reads every segment from start to end without trusting the index files (it also
/// reports an index file that disagrees with its segment), takes no lock and changes
/// nothing, so it may run beside a writer (whose unfinished append may then show up
/// as an incomplete tail). Damage does not stop it: it reports the problem and goes
/// on from the next intact record. Errors (no report at all): not_found (no such
/// folder), unavailable (I/O failure).
/// `progress(done_bytes, total_bytes)` is called now and then (for a progress bar).
expected<verify_report> verify_file_journal(
  const std::string& dir, std::function<void(uint64_t, uint64_t)> progress = {});

/// True if a writer (a journal opened for writing, in any process) holds the lock of
/// the store in folder `dir` now; false if not, or if there is no such folder or store.
/// Probes by taking and at once releasing a shared lock on the LOCK file, so a writer
/// opening in that very instant may fail with unavailable. Errors: unavailable (I/O).
expected<bool> file_journal_locked(const std::string& dir);

} // namespace cairn
