// Inspection of a PostgreSQL store for tools (the cairn CLI): counts, a full check, and
// snapshots listed by stream-name prefix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/postgres_journal.hpp"

namespace cairn {

struct postgres_statistics {
  int schema_version = 0;
  uint64_t events = 0;
  uint64_t streams = 0;
  uint64_t head_position = 0;
  uint64_t snapshots = 0;      ///< snapshots and checkpoints
  uint64_t bytes = 0;          ///< on disk: the schema's tables with their indexes
  int64_t first_timestamp_ns = 0; ///< 0 for an empty store
  int64_t last_timestamp_ns = 0;
};

/// The schema version of the Cairn store in `options.schema`, checked without creating
/// or migrating anything. Errors: unavailable, not_found (no Cairn store there).
expected<int> postgres_store_version(const std::string& conninfo,
                                     const postgres_options& options = {});

/// Counts of the store in `options.schema`. Errors: unavailable, not_found (no schema).
expected<postgres_statistics> postgres_store_statistics(const std::string& conninfo,
                                                        const postgres_options& options = {});

struct postgres_verify_report {
  uint64_t events = 0;
  uint64_t streams = 0;
  /// What is wrong, one sentence each (empty: the store is sound).
  std::vector<std::string> problems;
};

/// Checks that positions run 1..head without holes, the head row matches, every stream's
/// versions run 1..n, and every row decodes (stream name, metadata). Errors only when the
/// check itself cannot run (unavailable, not_found).
expected<postgres_verify_report> verify_postgres_store(const std::string& conninfo,
                                                       const postgres_options& options = {});

/// The snapshots and checkpoints in `options.schema` whose stream names start with
/// `prefix`, by stream name: what read_file_snapshots gives for a snapshot folder (the
/// cairn tool lists subscriptions' parked events with it). Errors: unavailable,
/// not_found (no Cairn store in that schema), corrupt (a stored stream name that does
/// not parse).
expected<std::vector<snapshot>> read_postgres_snapshots(const std::string& conninfo,
                                                        const std::string& prefix,
                                                        const postgres_options& options = {});

} // namespace cairn
