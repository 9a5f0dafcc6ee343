// The PostgreSQL store: a journal and a snapshot store in one PostgreSQL schema, shared
// by every node that opens the same database and schema (cairn::postgres, on libpq).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/expected.hpp"
#include "cairn/journal.hpp"
#include "cairn/snapshot_store.hpp"

namespace cairn {

struct postgres_options {
  /// The schema holding Cairn's tables; created (and migrated) on open.
  std::string schema = "cairn";
  /// How long one connection attempt may take; libpq counts whole seconds (at least 2).
  std::chrono::milliseconds connect_timeout{5000};
  /// Connections for reads (recovery, catch-up, queries) besides the writer's.
  size_t read_connections = 4;
  /// Other writers' commits reach this journal's listeners when a notification says so,
  /// and at least this often when notifications are lost (0: never poll).
  std::chrono::milliseconds poll_interval{200};
  /// Follow other writers' commits (LISTEN/NOTIFY plus polling) and publish them to this
  /// journal's listeners, in position order, between its own commits.
  bool follow_external = true;
};

/// The schema version this Cairn writes. Older schemas are migrated on open; a newer one
/// is refused with errc::unavailable naming both versions.
inline constexpr int postgres_schema_version = 2;

/// Opens (creating or migrating its schema) the journal in the database named by
/// `conninfo`: a libpq URL (postgresql://user:pw@host:port/db) or "key=value" string.
/// Errors, each naming what is wrong: invalid_argument (malformed conninfo or schema
/// name), unavailable (no server, refused password, missing database, unsupported
/// server version, schema newer than this Cairn, timeout).
expected<std::shared_ptr<journal>> open_postgres_journal(const std::string& conninfo,
                                                         const postgres_options& options = {});

/// Opens the snapshot store (snapshots and projection/saga checkpoints) in the same
/// database and schema, with its own connection.
expected<std::shared_ptr<snapshot_store>> open_postgres_snapshot_store(
  const std::string& conninfo, const postgres_options& options = {});

/// Deletes the schema with every event, snapshot and checkpoint in it (no-op if absent).
/// For tests, benchmarks and `--fresh` runs; close the store's journals first.
expected<void> drop_postgres_schema(const std::string& conninfo,
                                    const postgres_options& options = {});

} // namespace cairn
