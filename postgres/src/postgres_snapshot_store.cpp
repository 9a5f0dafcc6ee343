// postgres_snapshot_store: the latest snapshot (or projection/saga checkpoint) per stream,
// one row each in <schema>.snapshots, replaced by an upsert.
#include "cairn/postgres_journal.hpp"

#include "pg_rows.hpp"
#include "pg_schema.hpp"
#include "postgres_internal.hpp"

namespace cairn {
namespace {

using namespace pg;

class postgres_snapshot_store final : public snapshot_store {
public:
  postgres_snapshot_store(std::shared_ptr<client> c, const std::string& schema)
      : client_(std::move(c)), t_(schema) {}

  expected<void> save(const snapshot& s) override {
    if (auto valid = s.stream.validate(); !valid) return valid;
    if (!is_text(s.type))
      return error{errc::invalid_argument, "snapshot type of " + s.stream.str() + " is not UTF-8 text"};
    auto c = client_->acquire();
    if (!c) return std::move(c).error();
    auto r = c->run(query{
      "INSERT INTO " + t_.snapshots +
        " (stream, version, type, schema_version, timestamp_ns, state)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream) DO UPDATE SET"
        " version = excluded.version, type = excluded.type, schema_version ="
        " excluded.schema_version, timestamp_ns = excluded.timestamp_ns, state = excluded.state"
        // A slower saver (another node, an old passivation) never replaces a newer one.
        " WHERE " + t_.snapshots + ".version <= excluded.version",
      {param{text_oid, s.stream.str(), true},
       param{int8_oid, int8_value(static_cast<int64_t>(s.version))},
       param{text_oid, s.type, true}, param{int8_oid, int8_value(s.schema_version)},
       param{int8_oid, int8_value(s.timestamp_ns)},
       param{bytea_oid, std::string(s.state.begin(), s.state.end())}}});
    if (!r.ok()) return error{errc::unavailable, "cannot save the snapshot of " + s.stream.str() +
                                                   " in PostgreSQL: " + r.error};
    return {};
  }

  expected<std::optional<snapshot>> load(const stream_id& stream) const override {
    auto c = client_->acquire();
    if (!c) return std::move(c).error();
    auto r = c->run(query{"SELECT " + std::string(snapshot_columns) + " FROM " + t_.snapshots +
                            " WHERE stream = $1",
                          {param{text_oid, stream.str(), true}}});
    if (!r.ok()) return error{errc::unavailable, "cannot load the snapshot of " + stream.str() +
                                                   " from PostgreSQL: " + r.error};
    const PGresult* row = r.results[0].get();
    if (PQntuples(row) == 0) return std::optional<snapshot>{};
    return std::optional<snapshot>(decode_snapshot(row, 0, 0, stream));
  }

private:
  std::shared_ptr<client> client_;
  tables t_;
};

} // namespace

expected<std::shared_ptr<snapshot_store>> open_postgres_snapshot_store(
  const std::string& conninfo, const postgres_options& options) {
  auto c = pg::open_client(conninfo, options, 2, postgres_schema_version);
  if (!c) return std::move(c).error();
  return std::shared_ptr<snapshot_store>(
    std::make_shared<postgres_snapshot_store>(std::move(*c), options.schema));
}

expected<void> drop_postgres_schema(const std::string& conninfo,
                                    const postgres_options& options) {
  if (auto valid = pg::check_schema_name(options.schema); !valid) return valid;
  auto c = pg::client::open(conninfo, options, 1);
  if (!c) return std::move(c).error();
  auto conn = (*c)->acquire();
  if (!conn) return std::move(conn).error();
  auto r = conn->run(pg::query{"DROP SCHEMA IF EXISTS " + pg::quote_ident(options.schema) +
                                 " CASCADE", {}});
  if (!r.ok()) return error{errc::unavailable, "cannot drop PostgreSQL schema " +
                                                 options.schema + ": " + r.error};
  return {};
}

} // namespace cairn
