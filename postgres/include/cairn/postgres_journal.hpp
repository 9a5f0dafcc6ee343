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
  /// A reader walking the store (a projection catching up) has this many further chunks
  /// read at once on other connections (at most read_connections - 1; 0: none).
  size_t read_ahead_chunks = 3;
  /// Other writers' commits reach this journal's listeners when a notification says so,
  /// and at least this often when notifications are lost (0: never poll).
  std::chrono::milliseconds poll_interval{200};
  /// Follow other writers' commits (LISTEN/NOTIFY plus polling) and publish them to this
  /// journal's listeners, in position order, between its own commits.
  bool follow_external = true;

  // Bounds, so that a hung server or a half-open connection fails calls instead of
  // hanging the node (docs/postgres.md, "Timeouts"). 0 turns a bound off.
  /// Longest wait for the answer to one round trip (a batch's statements, COMMIT
  /// included) and for a free pooled connection. Past it the call fails with
  /// errc::timeout (an append: "may or may not be stored") and the connection is dropped.
  std::chrono::milliseconds request_timeout{30000};
  /// Server side: statement_timeout, lock_timeout (a writer waiting for the head row
  /// that a stuck peer holds) and idle_in_transaction_session_timeout, set at connect
  /// unless the conninfo's own "options" sets them.
  std::chrono::milliseconds statement_timeout{20000};
  std::chrono::milliseconds lock_timeout{10000};
  std::chrono::milliseconds idle_in_transaction_timeout{60000};
  /// TCP keepalives (libpq's keepalives_*; tcp_user_timeout is their sum): a silently
  /// dropped connection is noticed after about idle + interval * count even when idle.
  std::chrono::seconds keepalive_idle{10};
  std::chrono::seconds keepalive_interval{5};
  int keepalive_count = 3;

  // Limits on what one append may carry (PostgreSQL takes at most 1 GiB per value).
  /// An append whose events hold more bytes (type, payload and metadata) is refused
  /// alone with errc::invalid_argument naming the limit. At most 512 MiB.
  size_t max_append_bytes = size_t{512} << 20;
  /// A batch holding more bytes is stored in several transactions of at most this size
  /// (an append larger than this goes alone).
  size_t max_batch_bytes = size_t{64} << 20;
};

/// The schema version this Cairn writes. Older schemas are migrated on open; a newer one
/// is refused with errc::unavailable naming both versions.
inline constexpr int postgres_schema_version = 4;

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

/// Registers the "postgres" store for cairn::open_store (store_config.hpp), so a node
/// config with `[cairn] store = "postgres"` opens the journal and snapshot store at
/// postgres-url in schema postgres-schema, with `defaults` for every other option.
/// Call it once at start in a program that links cairn::postgres.
void register_postgres_store(postgres_options defaults = {});

/// Deletes the schema with every event, snapshot and checkpoint in it (no-op if absent).
/// For tests, benchmarks and `--fresh` runs; close the store's journals first.
expected<void> drop_postgres_schema(const std::string& conninfo,
                                    const postgres_options& options = {});

} // namespace cairn
