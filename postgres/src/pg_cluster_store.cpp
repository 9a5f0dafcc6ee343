// cluster_store on PostgreSQL (cluster_store.hpp): members, leases and the membership
// log in the journal's schema (version 4, pg_schema.cpp). Every time is the server's
// clock (clock_timestamp()), so members need not agree on theirs.
#include "cairn/cluster_store.hpp"

#include "pg_schema.hpp"
#include "postgres_internal.hpp"

namespace cairn {
namespace {

using pg::param;
using pg::query;

param text(const std::string& s) { return param{pg::text_oid, s, true}; }
param int8(int64_t v) { return param{pg::text_oid, std::to_string(v), true}; }

param int4_array(const std::vector<int32_t>& ids) {
  pg::array_builder b(pg::int4_oid);
  for (auto id : ids) b.add_int4(id);
  return param{pg::int4_array_oid, b.value()};
}

std::string text_at(const PGresult* r, int row, int col) {
  return PQgetisnull(r, row, col) ? std::string{} : pg::get_bytes(r, row, col);
}

int64_t int8_at(const PGresult* r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : pg::get_int8(r, row, col);
}

/// Nanoseconds since the Unix epoch of a timestamptz expression, as bigint.
std::string ns_of(const std::string& column) {
  return "(CASE WHEN " + column + " = '-infinity' THEN 0 ELSE (extract(epoch FROM " + column +
         ") * 1e9)::bigint END)";
}

/// Milliseconds from the server's now to `column` (negative: in the past).
std::string ms_until(const std::string& column) {
  return "(CASE WHEN " + column + " = '-infinity' THEN -9223372036854 ELSE (extract(epoch FROM " +
         column + " - clock_timestamp()) * 1000)::bigint END)";
}

bool plain_word(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

class pg_cluster_store final : public cluster_store {
public:
  pg_cluster_store(std::shared_ptr<pg::client> c, const std::string& schema, uint32_t shards)
      : client_(std::move(c)), t_(schema), schema_(schema), shards_(shards) {}

  /// Creates the cluster's rows (shard count and one lease per shard) if missing, and
  /// checks the count against an existing cluster's. `shards` 0: accept any.
  expected<uint32_t> setup(uint32_t shards) {
    std::vector<query> q;
    q.push_back(query{"BEGIN", {}});
    q.push_back(query{"SELECT pg_advisory_xact_lock(hashtext($1))",
                      {text("cairn cluster " + schema_)}});
    if (shards > 0) {
      q.push_back(query{"INSERT INTO " + t_.cluster_info + " (id, shards) VALUES (1, $1::integer)"
                        " ON CONFLICT (id) DO NOTHING",
                        {int8(shards)}});
      q.push_back(query{"INSERT INTO " + t_.leases + " (id, name) SELECT i, 'shard-' || i"
                        " FROM generate_series(0, $1::integer - 1) i ON CONFLICT DO NOTHING",
                        {int8(shards)}});
    }
    q.push_back(query{"SELECT shards::bigint FROM " + t_.cluster_info + " WHERE id = 1", {}});
    q.push_back(query{"COMMIT", {}});
    auto out = run(std::move(q));
    if (!out) return std::move(out).error();
    const PGresult* row = out->results[out->results.size() - 2].get();
    if (PQntuples(row) == 0)
      return error{errc::not_found, "PostgreSQL schema " + schema_ + " holds no cluster (no row in "
                                    "cluster_info): start a cluster member on it first"};
    auto found = static_cast<uint32_t>(pg::get_int8(row, 0, 0));
    if (shards > 0 && found != shards)
      return error{errc::invalid_argument,
                   "the cluster in PostgreSQL schema " + schema_ + " has " + std::to_string(found) +
                     " shards, fixed when it was created; this member is configured for " +
                     std::to_string(shards) + " (set shards = " + std::to_string(found) + ")"};
    shards_ = found;
    return found;
  }

  uint32_t shards() const override { return shards_; }

  expected<uint64_t> join(const member_row& me) override {
    if (!plain_word(me.name))
      return error{errc::invalid_argument, "member name '" + me.name + "': use lower-case "
                                           "letters, digits, '-' and '_'"};
    std::string roles = "{";
    for (auto& r : me.roles) {
      if (!plain_word(r))
        return error{errc::invalid_argument, "role '" + r + "' of member " + me.name +
                                               ": use lower-case letters, digits, '-' and '_'"};
      if (roles.size() > 1) roles += ',';
      roles += r;
    }
    roles += '}';
    auto out = run({query{"INSERT INTO " + t_.members +
                            " (name, host, port, roles, incarnation, state, started_at, heartbeat_at)"
                            " VALUES ($1, $2, $3::integer, $4::text[], 1, 'up', clock_timestamp(),"
                            " clock_timestamp()) ON CONFLICT (name) DO UPDATE SET host = excluded.host,"
                            " port = excluded.port, roles = excluded.roles, incarnation = " +
                            t_.members + ".incarnation + 1, state = 'up', started_at ="
                            " excluded.started_at, heartbeat_at = excluded.heartbeat_at"
                            " RETURNING incarnation",
                          {text(me.name), text(me.host), int8(me.port), text(roles)}},
                    log_query(me.name, me.name, "joined",
                              me.host + ":" + std::to_string(me.port) + " roles " + roles)});
    if (!out) return std::move(out).error();
    return static_cast<uint64_t>(pg::get_int8(out->results[0].get(), 0, 0));
  }

  expected<void> heartbeat(const std::string& me) override {
    auto out = run({query{"UPDATE " + t_.members + " SET heartbeat_at = clock_timestamp()"
                          " WHERE name = $1 AND state IN ('up', 'leaving') RETURNING 1",
                          {text(me)}}});
    if (!out) return std::move(out).error();
    if (PQntuples(out->results[0].get()) == 0)
      return error{errc::not_found, "member " + me + " is not up in the cluster (declared dead, "
                                    "or left): it must join again"};
    return {};
  }

  expected<bool> set_state(const std::string& by, const std::string& member,
                           const std::string& state, std::chrono::milliseconds older_than) override {
    if (state != "up" && state != "leaving" && state != "left" && state != "dead")
      return error{errc::invalid_argument, "member state '" + state + "': use up, leaving, left "
                                           "or dead"};
    auto out = run({query{"WITH u AS (UPDATE " + t_.members + " SET state = $3 WHERE name = $2"
                          " AND state <> $3 AND heartbeat_at <= clock_timestamp() - $4::bigint *"
                          " interval '1 millisecond' RETURNING name)"
                          " INSERT INTO " + t_.membership_log + " (seen_by, member, change, detail)"
                          " SELECT $1, name, $3, '' FROM u RETURNING 1",
                          {text(by), text(member), text(state), int8(older_than.count())}}});
    if (!out) return std::move(out).error();
    return PQntuples(out->results[0].get()) > 0;
  }

  expected<cluster_view> view() override {
    auto out = run({query{"SELECT name, host, port::bigint, array_to_string(roles, ','),"
                          " incarnation, state, " + ns_of("started_at") + ", " +
                          ns_of("heartbeat_at") + ", (extract(epoch FROM clock_timestamp() -"
                          " heartbeat_at) * 1000)::bigint FROM " + t_.members + " ORDER BY name",
                          {}},
                    query{"SELECT id::bigint, name, owner, epoch, " + ns_of("expires_at") + ", " +
                            ms_until("expires_at") + " FROM " + t_.leases + " ORDER BY id",
                          {}}});
    if (!out) return std::move(out).error();
    cluster_view v;
    v.shards = shards_;
    const PGresult* m = out->results[0].get();
    for (int i = 0; i < PQntuples(m); ++i) {
      member_row row;
      row.name = text_at(m, i, 0);
      row.host = text_at(m, i, 1);
      row.port = static_cast<uint16_t>(int8_at(m, i, 2));
      auto roles = text_at(m, i, 3);
      for (size_t at = 0; at < roles.size();) {
        auto comma = roles.find(',', at);
        if (comma == std::string::npos) comma = roles.size();
        row.roles.push_back(roles.substr(at, comma - at));
        at = comma + 1;
      }
      row.incarnation = static_cast<uint64_t>(int8_at(m, i, 4));
      row.state = text_at(m, i, 5);
      row.started_at_ns = int8_at(m, i, 6);
      row.heartbeat_at_ns = int8_at(m, i, 7);
      row.heartbeat_age_ms = int8_at(m, i, 8);
      v.members.push_back(std::move(row));
    }
    const PGresult* l = out->results[1].get();
    for (int i = 0; i < PQntuples(l); ++i) {
      lease_row row;
      row.id = static_cast<int32_t>(int8_at(l, i, 0));
      row.name = text_at(l, i, 1);
      row.owner = text_at(l, i, 2);
      row.epoch = static_cast<uint64_t>(int8_at(l, i, 3));
      row.expires_at_ns = int8_at(l, i, 4);
      row.expires_in_ms = int8_at(l, i, 5);
      v.leases.push_back(std::move(row));
    }
    return v;
  }

  expected<std::vector<lease_grant>> claim(const std::string& me, const std::vector<int32_t>& ids,
                                           std::chrono::milliseconds ttl) override {
    // Rows are locked in id order, as appends share-lock them (pg_schema.cpp).
    auto out = run({query{"WITH locked AS (SELECT id FROM " + t_.leases +
                          " WHERE id = ANY($2) ORDER BY id FOR UPDATE)"
                          " UPDATE " + t_.leases + " l SET owner = $1, epoch = l.epoch + CASE WHEN"
                          " l.owner = $1 THEN 0 ELSE 1 END, expires_at = clock_timestamp() +"
                          " $3::bigint * interval '1 millisecond' FROM locked WHERE l.id = locked.id"
                          " AND (l.owner IS NULL OR l.owner = $1 OR l.expires_at < clock_timestamp())"
                          " RETURNING l.id::bigint, l.epoch",
                          {text(me), int4_array(ids), int8(ttl.count())}}});
    if (!out) return std::move(out).error();
    std::vector<lease_grant> grants;
    for (auto id : ids) grants.push_back(lease_grant{id, false, 0});
    const PGresult* r = out->results[0].get();
    for (int i = 0; i < PQntuples(r); ++i) {
      auto id = static_cast<int32_t>(pg::get_int8(r, i, 0));
      for (auto& g : grants)
        if (g.id == id) {
          g.granted = true;
          g.epoch = static_cast<uint64_t>(pg::get_int8(r, i, 1));
        }
    }
    return grants;
  }

  expected<void> release(const std::string& me, const std::vector<int32_t>& ids) override {
    auto out = run({query{"WITH locked AS (SELECT id FROM " + t_.leases +
                          " WHERE id = ANY($2) ORDER BY id FOR UPDATE)"
                          " UPDATE " + t_.leases + " l SET owner = NULL, expires_at = '-infinity'"
                          " FROM locked WHERE l.id = locked.id AND l.owner = $1",
                          {text(me), int4_array(ids)}}});
    if (!out) return std::move(out).error();
    return {};
  }

  expected<int32_t> saga_lease(const std::string& saga) override {
    std::string name = "saga-" + saga;
    std::vector<query> q;
    q.push_back(query{"BEGIN", {}});
    q.push_back(query{"SELECT pg_advisory_xact_lock(hashtext($1))",
                      {text("cairn cluster " + schema_)}});
    q.push_back(query{"INSERT INTO " + t_.leases + " (id, name) SELECT greatest((SELECT"
                      " COALESCE(max(id) + 1, 0) FROM " + t_.leases + "), (SELECT shards FROM " +
                      t_.cluster_info + " WHERE id = 1)), $1 WHERE NOT EXISTS (SELECT 1 FROM " +
                      t_.leases + " WHERE name = $1)",
                      {text(name)}});
    q.push_back(query{"SELECT id::bigint FROM " + t_.leases + " WHERE name = $1", {text(name)}});
    q.push_back(query{"COMMIT", {}});
    auto out = run(std::move(q));
    if (!out) return std::move(out).error();
    return static_cast<int32_t>(pg::get_int8(out->results[3].get(), 0, 0));
  }

  expected<void> log_change(const membership_change& c) override {
    auto out = run({log_query(c.by, c.member, c.change, c.detail)});
    if (!out) return std::move(out).error();
    return {};
  }

  expected<std::vector<membership_change>> recent_changes(size_t count) override {
    auto out = run({query{"SELECT " + ns_of("at") + ", seen_by, member, change, detail FROM (SELECT *"
                          " FROM " + t_.membership_log + " ORDER BY id DESC LIMIT $1::bigint) r"
                          " ORDER BY id",
                          {int8(static_cast<int64_t>(count))}}});
    if (!out) return std::move(out).error();
    std::vector<membership_change> changes;
    const PGresult* r = out->results[0].get();
    for (int i = 0; i < PQntuples(r); ++i)
      changes.push_back(membership_change{int8_at(r, i, 0), text_at(r, i, 1), text_at(r, i, 2),
                                          text_at(r, i, 3), text_at(r, i, 4)});
    return changes;
  }

private:
  query log_query(const std::string& by, const std::string& member, const std::string& change,
                  const std::string& detail) {
    return query{"INSERT INTO " + t_.membership_log + " (seen_by, member, change, detail)"
                 " VALUES ($1, $2, $3, $4)",
                 {text(by), text(member), text(change), text(detail)}};
  }

  expected<pg::pipeline_outcome> run(std::vector<query> q) {
    auto conn = client_->acquire();
    if (!conn) return std::move(conn).error();
    bool transaction = !q.empty() && q.front().sql == "BEGIN";
    auto out = conn->run(std::move(q));
    if (!out.ok()) {
      if (transaction && !out.lost) conn->run(query{"ROLLBACK", {}});
      return error{out.timed_out ? errc::timeout : errc::unavailable,
                   "cluster tables in PostgreSQL schema " + schema_ + ": " + out.error};
    }
    return out;
  }

  std::shared_ptr<pg::client> client_;
  pg::tables t_;
  std::string schema_;
  uint32_t shards_;
};

expected<std::unique_ptr<cluster_store>> open_store(const std::string& conninfo, uint32_t shards,
                                                    const postgres_options& options) {
  auto c = pg::open_client(conninfo, options, 1, postgres_schema_version);
  if (!c) return std::move(c).error();
  auto store = std::make_unique<pg_cluster_store>(std::move(*c), options.schema, shards);
  if (auto set = store->setup(shards); !set) return std::move(set).error();
  return std::unique_ptr<cluster_store>(std::move(store));
}

} // namespace

expected<std::unique_ptr<cluster_store>> cluster_store::open(const std::string& conninfo,
                                                             uint32_t shards,
                                                             const postgres_options& options) {
  if (shards == 0)
    return error{errc::invalid_argument, "a cluster needs at least one shard (shards = 0)"};
  return open_store(conninfo, shards, options);
}

expected<std::unique_ptr<cluster_store>> cluster_store::open_existing(
  const std::string& conninfo, const postgres_options& options) {
  return open_store(conninfo, 0, options);
}

} // namespace cairn
