// Statistics, verification and snapshot listing of a PostgreSQL store, for the cairn CLI.
#include "cairn/postgres_tools.hpp"

#include "pg_rows.hpp"
#include "pg_schema.hpp"
#include "postgres_internal.hpp"

namespace cairn {
namespace {

using namespace pg;

/// A one-connection client on an existing Cairn schema (never creates one).
struct inspector {
  std::shared_ptr<client> c;
  std::optional<lease> conn;
  tables t;
  int version = 0;

  explicit inspector(const std::string& schema) : t(schema) {}

  static expected<inspector> open(const std::string& conninfo, const postgres_options& o) {
    if (auto valid = check_schema_name(o.schema); !valid) return std::move(valid).error();
    inspector in(o.schema);
    auto c = client::open(conninfo, o, 1);
    if (!c) return std::move(c).error();
    in.c = std::move(*c);
    auto conn = in.c->acquire();
    if (!conn) return std::move(conn).error();
    in.conn.emplace(std::move(*conn));
    auto v = schema_version(*in.conn, o.schema);
    if (!v) return std::move(v).error();
    if (*v == 0) return error{errc::not_found, "no Cairn store in PostgreSQL schema " + o.schema};
    in.version = *v;
    return in;
  }

  expected<int64_t> number(const std::string& sql) {
    auto r = conn->run(query{sql, {}});
    if (!r.ok()) return error{errc::unavailable, r.error};
    if (PQntuples(r.results[0].get()) == 0 || PQgetisnull(r.results[0].get(), 0, 0)) return 0;
    return get_int8(r.results[0].get(), 0, 0);
  }
};

} // namespace

expected<int> postgres_store_version(const std::string& conninfo, const postgres_options& options) {
  auto in = inspector::open(conninfo, options);
  if (!in) return std::move(in).error();
  return in->version;
}

expected<postgres_statistics> postgres_store_statistics(const std::string& conninfo,
                                                        const postgres_options& options) {
  auto in = inspector::open(conninfo, options);
  if (!in) return std::move(in).error();
  postgres_statistics s;
  s.schema_version = in->version;
  const auto& t = in->t;
  auto events = in->number("SELECT count(*) FROM " + t.events);
  auto streams = in->number("SELECT count(DISTINCT stream) FROM " + t.events);
  auto head = in->number("SELECT position FROM " + t.head);
  auto first = in->number("SELECT timestamp_ns FROM " + t.events + " ORDER BY position LIMIT 1");
  auto last = in->number("SELECT last_timestamp FROM " + t.head);
  auto bytes = in->number("SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM"
                          " pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE"
                          " n.nspname = '" + options.schema + "' AND c.relkind = 'r'");
  auto snapshots = in->version >= 2 ? in->number("SELECT count(*) FROM " + t.snapshots)
                                    : expected<int64_t>(0);
  for (auto* v : {&events, &streams, &head, &first, &last, &bytes, &snapshots})
    if (!*v) return v->error();
  s.events = static_cast<uint64_t>(*events);
  s.streams = static_cast<uint64_t>(*streams);
  s.head_position = static_cast<uint64_t>(*head);
  s.first_timestamp_ns = *first;
  s.last_timestamp_ns = s.events ? *last : 0;
  s.bytes = static_cast<uint64_t>(*bytes);
  s.snapshots = static_cast<uint64_t>(*snapshots);
  return s;
}

expected<postgres_verify_report> verify_postgres_store(const std::string& conninfo,
                                                       const postgres_options& options) {
  auto in = inspector::open(conninfo, options);
  if (!in) return std::move(in).error();
  postgres_verify_report rep;
  const auto& t = in->t;
  auto count = in->number("SELECT count(*) FROM " + t.events);
  auto max = in->number("SELECT max(position) FROM " + t.events);
  auto head = in->number("SELECT position FROM " + t.head);
  auto streams = in->number("SELECT count(DISTINCT stream) FROM " + t.events);
  for (auto* v : {&count, &max, &head, &streams})
    if (!*v) return v->error();
  rep.events = static_cast<uint64_t>(*count);
  rep.streams = static_cast<uint64_t>(*streams);
  if (*count != *max)
    rep.problems.push_back("positions have holes: " + std::to_string(*count) +
                           " events but the last position is " + std::to_string(*max));
  if (*head != *max)
    rep.problems.push_back("the head row says " + std::to_string(*head) +
                           " but the last stored position is " + std::to_string(*max));
  auto bad = in->conn->run(query{
    "SELECT stream, count(*), min(version), max(version) FROM " + t.events +
      " GROUP BY stream HAVING min(version) <> 1 OR max(version) <> count(*) LIMIT 100",
    {}});
  if (!bad.ok()) return error{errc::unavailable, bad.error};
  const PGresult* rows = bad.results[0].get();
  for (int i = 0; i < PQntuples(rows); ++i)
    rep.problems.push_back("stream " + get_bytes(rows, i, 0) + " has " +
                           std::to_string(get_int8(rows, i, 1)) + " events with versions " +
                           std::to_string(get_int8(rows, i, 2)) + ".." +
                           std::to_string(get_int8(rows, i, 3)));
  // Every row decodes.
  for (int64_t from = 1;;) {
    auto r = in->conn->run(query{"SELECT " + std::string(event_columns) + " FROM " + t.events +
                                   " WHERE position >= $1 ORDER BY position LIMIT 10000",
                                 {param{int8_oid, int8_value(from)}}});
    if (!r.ok()) return error{errc::unavailable, r.error};
    std::vector<envelope> chunk;
    if (auto ok = decode_events(r.results[0].get(), chunk); !ok) {
      rep.problems.push_back(ok.error().message() + " (after position " +
                             std::to_string(from - 1) + ")");
      break;
    }
    if (chunk.empty()) break;
    from = static_cast<int64_t>(chunk.back().position) + 1;
  }
  return rep;
}

expected<std::vector<snapshot>> read_postgres_snapshots(const std::string& conninfo,
                                                        const std::string& prefix,
                                                        const postgres_options& options) {
  auto in = inspector::open(conninfo, options);
  if (!in) return std::move(in).error();
  std::vector<snapshot> out;
  if (in->version < 2) return out; // no snapshots table yet
  // left() and not LIKE, so a "_" or "%" in the prefix is matched as it is.
  auto r = in->conn->run(query{"SELECT stream, " + std::string(snapshot_columns) + " FROM " +
                                 in->t.snapshots +
                                 " WHERE left(stream, char_length($1)) = $1 ORDER BY stream",
                               {param{text_oid, prefix, true}}});
  if (!r.ok()) return error{errc::unavailable, "cannot list the snapshots in PostgreSQL schema " +
                                                 options.schema + ": " + r.error};
  const PGresult* rows = r.results[0].get();
  for (int i = 0; i < PQntuples(rows); ++i) {
    auto name = get_bytes(rows, i, 0);
    auto stream = stream_id::parse(name);
    if (!stream)
      return error{errc::corrupt, "snapshot row \"" + name + "\" in PostgreSQL schema " +
                                    options.schema + ": " + stream.error().message()};
    out.push_back(decode_snapshot(rows, i, 1, std::move(*stream)));
  }
  return out;
}

} // namespace cairn
