// Inspection of a PostgreSQL store for tools (the cairn CLI): counts and a full check.
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

} // namespace cairn
