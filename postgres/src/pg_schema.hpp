// Cairn's tables in PostgreSQL: creation, versioning and migration of one schema.
#pragma once

#include <string>

#include "cairn/expected.hpp"
#include "pg_client.hpp"

namespace cairn::pg {

/// The SQL names of one schema's tables, quoted.
struct tables {
  explicit tables(const std::string& schema);
  std::string schema, info, head, events, snapshots;
  std::string append_batch; ///< the function storing one round of a batch (version 3)
  std::string cluster_info, members, leases, membership_log; ///< a cluster's (version 4)
  std::string channel; ///< the NOTIFY channel (unquoted)
};

/// invalid_argument unless `schema` is a plain lower-case identifier of at most 63 bytes.
expected<void> check_schema_name(const std::string& schema);

/// Creates the schema and its tables, or migrates them up to `target` (the current
/// version unless a test asks for an older one). Refuses a schema newer than `target`.
/// Serialised between processes by an advisory lock, so concurrent opens are safe.
expected<void> prepare_schema(lease& conn, const std::string& schema, int target);

/// The schema's recorded version (0 if it has no Cairn tables).
expected<int> schema_version(lease& conn, const std::string& schema);

} // namespace cairn::pg
