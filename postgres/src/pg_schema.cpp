// Cairn's tables in PostgreSQL, version by version.
//
// Version 1: schema_info (the version), head (the one row every writer locks to take the
// next global positions: see docs/postgres.md) and events (unique (stream, version)).
// Version 2: snapshots (latest snapshot or checkpoint per stream).
// Version 3: events.stream compares bytewise (COLLATE "C": cheaper index lookups than a
// locale's rules, and the order does not matter) and append_batch(), the function that
// stores one round of a batch in one statement (below).
// Version 4: a cluster's tables (cluster_info, members, leases, membership_log:
// cluster_store.hpp) and append_batch() with fences: an append carrying (lease, epoch)
// is stored only if that lease is held under that epoch, checked under the lease row's
// share lock in the batch's own transaction.
#include "pg_schema.hpp"

#include "cairn/postgres_journal.hpp"

namespace cairn::pg {
namespace {

/// append_batch(): one round of a batch, decided and stored under the head lock in one
/// statement (docs/postgres.md). Requests are (stream, expected version or -1 for any,
/// event count); each stream appears at most once per round, so every request is decided
/// against the stream's stored version. Events are flat arrays, each with its request's
/// index (1-based) and its index within the request (0-based). Returns one bigint array:
/// [timestamp, new head, first version per request..., first position per request...],
/// where first position 0 means a conflict and its first version is then the stream's
/// current version. The timestamp is max(now_ns, the head's last one), so it never goes
/// back. A missing head row raises P0002.
std::string append_function(const tables& t, bool fenced) {
  // Version 4 adds, per request, the fence's lease id (-1: none) and epoch. Fenced
  // requests' lease rows are share-locked in id order (a claim locks them in the same
  // order, so the two cannot deadlock) before anything is decided, so a claim either
  // waits for this batch to commit or is seen by it (a batch without fences skips the
  // lock). A refused fence answers first version -1 and first position 0.
  std::string fence_params = fenced ? ", fence_leases integer[], fence_epochs bigint[]" : "";
  std::string lock_leases =
    fenced ? "  IF (SELECT max(f) FROM unnest(fence_leases) f) >= 0 THEN\n"
             "    PERFORM 1 FROM (SELECT l.id FROM " + t.leases +
               " l WHERE l.id = ANY(fence_leases) ORDER BY l.id FOR SHARE) locked;\n"
             "  END IF;\n"
           : "";
  std::string unnest = fenced ? "unnest(streams, expected, counts, fence_leases, fence_epochs)"
                                " WITH ORDINALITY AS r(s, x, n, fl, fe, i)"
                              : "unnest(streams, expected, counts) WITH ORDINALITY AS r(s, x, n, i)";
  std::string held = fenced ? "(r.fl < 0 OR EXISTS (SELECT 1 FROM " + t.leases +
                                " l WHERE l.id = r.fl AND l.owner IS NOT NULL AND l.epoch = r.fe))"
                            : "true";
  return "CREATE OR REPLACE FUNCTION " + t.append_batch +
         "(streams text[], expected bigint[], counts bigint[], event_request integer[],"
         " event_index bigint[], types text[], schema_versions bigint[], metas bytea[],"
         " payloads bytea[], now_ns bigint, channel text" + fence_params + ") RETURNS bigint[]"
         " LANGUAGE plpgsql AS $fn$\n"
         "DECLARE h bigint; ts bigint; fv bigint[]; fp bigint[]; total bigint;\n"
         "BEGIN\n"
         "  SELECT position, greatest(last_timestamp, now_ns) INTO h, ts FROM " + t.head +
         " WHERE id = 1 FOR UPDATE;\n"
         "  IF NOT FOUND THEN RAISE EXCEPTION 'the head row of " + t.head +
         " (id = 1) is missing' USING ERRCODE = 'P0002'; END IF;\n" + lock_leases +
         "  SELECT array_agg(CASE WHEN ok THEN cur + 1 WHEN NOT held THEN -1 ELSE cur END ORDER BY i),"
         " array_agg(CASE WHEN ok THEN h + before + 1 ELSE 0 END ORDER BY i),"
         " COALESCE(sum(taken), 0) INTO fv, fp, total FROM (\n"
         "    SELECT i, cur, ok, held, taken, sum(taken) OVER (ORDER BY i) - taken AS before FROM (\n"
         "      SELECT i, cur, held, (held AND (x < 0 OR x = cur)) AS ok,"
         " CASE WHEN held AND (x < 0 OR x = cur) THEN n ELSE 0 END AS taken FROM (\n"
         "        SELECT r.i, r.x, r.n, c.cur, " + held + " AS held\n"
         "        FROM " + unnest + "\n"
         "        CROSS JOIN LATERAL (SELECT COALESCE(max(e.version), 0) AS cur FROM " + t.events +
         " e WHERE e.stream = r.s) c) b) d) w;\n"
         "  IF total > 0 THEN\n"
         "    INSERT INTO " + t.events +
         " (position, stream, version, type, schema_version, timestamp_ns, meta, payload)\n"
         "    SELECT fp[q] + k, streams[q], fv[q] + k, ty, sv, ts, me, pa\n"
         "    FROM unnest(event_request, event_index, types, schema_versions, metas, payloads)"
         " AS ev(q, k, ty, sv, me, pa) WHERE fp[q] > 0;\n"
         "    UPDATE " + t.head + " SET position = h + total, last_timestamp = ts WHERE id = 1;\n"
         "    PERFORM pg_notify(channel, (h + total)::text);\n"
         "  END IF;\n"
         "  RETURN ARRAY[ts, h + total] || fv || fp;\n"
         "END $fn$";
}

std::vector<std::string> migration_to(int version, const tables& t) {
  switch (version) {
    case 1:
      return {
        "CREATE TABLE " + t.head +
          " (id integer PRIMARY KEY CHECK (id = 1), position bigint NOT NULL,"
          " last_timestamp bigint NOT NULL)",
        "INSERT INTO " + t.head + " VALUES (1, 0, 0)",
        "CREATE TABLE " + t.events +
          " (position bigint PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL,"
          " type text NOT NULL, schema_version bigint NOT NULL, timestamp_ns bigint NOT NULL,"
          " meta bytea NOT NULL, payload bytea NOT NULL, UNIQUE (stream, version))",
      };
    case 2:
      return {
        "CREATE TABLE " + t.snapshots +
          " (stream text PRIMARY KEY, version bigint NOT NULL, type text NOT NULL,"
          " schema_version bigint NOT NULL, timestamp_ns bigint NOT NULL, state bytea NOT NULL)",
      };
    case 3:
      return {
        "ALTER TABLE " + t.events + " ALTER COLUMN stream TYPE text COLLATE \"C\"",
        append_function(t, false),
      };
    case 4:
      return {
        "CREATE TABLE " + t.cluster_info +
          " (id integer PRIMARY KEY CHECK (id = 1), shards integer NOT NULL CHECK (shards > 0),"
          " created_at timestamptz NOT NULL DEFAULT clock_timestamp())",
        "CREATE TABLE " + t.members +
          " (name text PRIMARY KEY, host text NOT NULL, port integer NOT NULL,"
          " roles text[] NOT NULL, incarnation bigint NOT NULL, state text NOT NULL,"
          " started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL)",
        // Logged on purpose: an unlogged table is emptied after a server crash, which
        // would reset the epochs that fence stale owners.
        "CREATE TABLE " + t.leases +
          " (id integer PRIMARY KEY, name text NOT NULL UNIQUE, owner text,"
          " epoch bigint NOT NULL DEFAULT 0,"
          " expires_at timestamptz NOT NULL DEFAULT '-infinity')",
        "CREATE TABLE " + t.membership_log +
          " (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(),"
          " seen_by text NOT NULL, member text NOT NULL, change text NOT NULL,"
          " detail text NOT NULL)",
        "DROP FUNCTION " + t.append_batch +
          "(text[], bigint[], bigint[], integer[], bigint[], text[], bigint[], bytea[], bytea[],"
          " bigint, text)",
        append_function(t, true),
      };
    default:
      return {};
  }
}

query sql(std::string text) { return query{std::move(text), {}}; }

expected<void> rollback(lease& conn, std::string why) {
  conn.run(sql("ROLLBACK"));
  return error{errc::unavailable, std::move(why)};
}

} // namespace

tables::tables(const std::string& s)
    : schema(quote_ident(s)), info(schema + ".schema_info"), head(schema + ".head"),
      events(schema + ".events"), snapshots(schema + ".snapshots"),
      append_batch(schema + ".append_batch"), cluster_info(schema + ".cluster_info"),
      members(schema + ".members"), leases(schema + ".leases"),
      membership_log(schema + ".membership_log"), channel("cairn." + s) {}

expected<void> check_schema_name(const std::string& schema) {
  // 57: the NOTIFY channel "cairn.<schema>" must fit PostgreSQL's 63-byte names.
  bool ok = !schema.empty() && schema.size() <= 57 && !(schema[0] >= '0' && schema[0] <= '9');
  for (char c : schema)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  if (!ok)
    return error{errc::invalid_argument,
                 "invalid PostgreSQL schema name '" + schema +
                   "': use 1 to 57 lower-case letters, digits and '_', not starting with a digit"};
  return {};
}

expected<int> schema_version(lease& conn, const std::string& schema) {
  tables t(schema);
  query q{"SELECT to_regclass($1) IS NOT NULL", {param{text_oid, t.info, true}}};
  auto exists = conn.run(std::move(q));
  if (!exists.ok()) return error{errc::unavailable, exists.error};
  if (*PQgetvalue(exists.results[0].get(), 0, 0) == 0) return 0;
  auto v = conn.run(sql("SELECT version FROM " + t.info + " WHERE id = 1"));
  if (!v.ok()) return error{errc::unavailable, v.error};
  if (PQntuples(v.results[0].get()) == 0) return 0;
  return static_cast<int>(get_int8(v.results[0].get(), 0, 0));
}

expected<void> prepare_schema(lease& conn, const std::string& schema, int target) {
  if (auto valid = check_schema_name(schema); !valid) return valid;
  tables t(schema);
  std::vector<query> start;
  start.push_back(sql("BEGIN"));
  start.push_back(query{"SELECT pg_advisory_xact_lock(hashtext($1))",
                        {param{text_oid, "cairn schema " + schema, true}}});
  start.push_back(sql("CREATE SCHEMA IF NOT EXISTS " + t.schema));
  start.push_back(sql("CREATE TABLE IF NOT EXISTS " + t.info +
                      " (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"));
  start.push_back(sql("SELECT version FROM " + t.info + " WHERE id = 1"));
  auto began = conn.run(std::move(start));
  if (!began.ok())
    return rollback(conn, "cannot prepare PostgreSQL schema " + schema + ": " + began.error);
  const PGresult* row = began.results.back().get();
  int found = PQntuples(row) == 0 ? 0 : static_cast<int>(get_int8(row, 0, 0));
  if (found > target)
    return rollback(conn, "PostgreSQL schema " + schema + " has version " +
                            std::to_string(found) + ", newer than this Cairn's " +
                            std::to_string(target) + ": upgrade Cairn to use it");
  std::vector<query> steps;
  for (int v = found + 1; v <= target; ++v)
    for (auto& s : migration_to(v, t)) steps.push_back(sql(s));
  if (found < target)
    steps.push_back(sql("INSERT INTO " + t.info + " VALUES (1, " + std::to_string(target) +
                        ") ON CONFLICT (id) DO UPDATE SET version = excluded.version"));
  steps.push_back(sql("COMMIT"));
  auto done = conn.run(std::move(steps));
  if (!done.ok())
    return rollback(conn, "cannot migrate PostgreSQL schema " + schema + " from version " +
                            std::to_string(found) + " to " + std::to_string(target) + ": " +
                            done.error);
  return {};
}

} // namespace cairn::pg
