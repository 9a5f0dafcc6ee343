// The cluster's tables on a real PostgreSQL server: membership with heartbeats, leases
// with epochs, and the fence every owner's append carries, checked in the append's own
// transaction (a paused owner whose lease another member took over cannot write).
#include <catch2/catch.hpp>

#include <thread>

#include <cairn/cluster_store.hpp>
#include <cairn/postgres_journal.hpp>

#include "postgres/pg_server.hpp"

using namespace cairn;
using cairn::test::pg_server;
using namespace std::chrono_literals;

namespace {

postgres_options fresh() {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  return o;
}

std::unique_ptr<cluster_store> open_cluster(const postgres_options& o, uint32_t shards = 8) {
  auto c = cluster_store::open(pg_server::shared().url(), shards, o);
  REQUIRE(c.has_value());
  return std::move(*c);
}

member_row member(const std::string& name, uint16_t port) {
  member_row m;
  m.name = name;
  m.host = "127.0.0.1";
  m.port = port;
  m.roles = {"aggregates", "projections"};
  return m;
}

append_request fenced_append(const std::string& id, int32_t lease, uint64_t epoch) {
  append_request r{stream_id{"account", id}, expected_version::any,
                   {event_data{"deposited", 1, {}, {1, 2}}}};
  r.fence = fence_token{lease, epoch};
  return r;
}

lease_grant grant_of(const std::vector<lease_grant>& grants, int32_t id) {
  for (auto& g : grants)
    if (g.id == id) return g;
  FAIL("no answer for lease " << id);
  return {};
}

} // namespace

TEST_CASE("cluster store: the shard count is fixed when the cluster is created", "[postgres][cluster]") {
  auto o = fresh();
  auto c = open_cluster(o, 8);
  CHECK(c->shards() == 8);
  auto v = c->view();
  REQUIRE(v.has_value());
  REQUIRE(v->leases.size() == 8);
  CHECK(v->leases[3].name == "shard-3");
  CHECK(v->leases[3].owner.empty());
  CHECK(v->leases[3].epoch == 0);
  auto other = cluster_store::open(pg_server::shared().url(), 16, o);
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().code() == errc::invalid_argument);
  CHECK_THAT(other.error().message(), Catch::Contains("8 shards"));
  auto existing = cluster_store::open_existing(pg_server::shared().url(), o);
  REQUIRE(existing.has_value());
  CHECK((*existing)->shards() == 8);
  auto none = cluster_store::open_existing(pg_server::shared().url(), fresh());
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code() == errc::not_found);
  CHECK(cluster_store::open(pg_server::shared().url(), 0, fresh()).error().code() ==
        errc::invalid_argument);
}

TEST_CASE("cluster store: members join and rejoin and heartbeat and are declared dead once", "[postgres][cluster]") {
  auto o = fresh();
  auto c = open_cluster(o);
  CHECK(*c->join(member("node1", 7001)) == 1);
  CHECK(*c->join(member("node2", 7002)) == 1);
  REQUIRE(c->heartbeat("node1"));
  auto v = c->view();
  REQUIRE(v.has_value());
  REQUIRE(v->members.size() == 2);
  CHECK(v->members[0].name == "node1");
  CHECK(v->members[0].port == 7001);
  CHECK(v->members[0].roles == std::vector<std::string>{"aggregates", "projections"});
  CHECK(v->members[0].state == "up");
  CHECK(v->members[0].heartbeat_age_ms < 5000);
  // A fresh heartbeat is not declared dead; a stale one is, once.
  CHECK(*c->set_state("node2", "node1", "dead", 60s) == false);
  std::this_thread::sleep_for(300ms);
  CHECK(*c->set_state("node2", "node1", "dead", 200ms) == true);
  CHECK(*c->set_state("node2", "node1", "dead", 200ms) == false);
  auto beat = c->heartbeat("node1");
  REQUIRE_FALSE(beat.has_value());
  CHECK(beat.error().code() == errc::not_found);
  CHECK(*c->join(member("node1", 7003)) == 2);
  REQUIRE(c->heartbeat("node1"));
  auto log = c->recent_changes(10);
  REQUIRE(log.has_value());
  REQUIRE(log->size() == 4);
  CHECK((*log)[0].change == "joined");
  CHECK((*log)[2].change == "dead");
  CHECK((*log)[2].by == "node2");
  CHECK((*log)[2].member == "node1");
  CHECK((*log)[3].change == "joined");
  CHECK(c->join(member("Bad Name", 1)).error().code() == errc::invalid_argument);
}

TEST_CASE("cluster store: a lease goes to one member at a time and its epoch counts owners", "[postgres][cluster]") {
  auto o = fresh();
  auto a = open_cluster(o), b = open_cluster(o);
  auto first = a->claim("node1", {0, 1}, 60s);
  REQUIRE(first.has_value());
  CHECK(grant_of(*first, 0).granted);
  CHECK(grant_of(*first, 0).epoch == 1);
  // Held and unexpired: another member is refused; the owner renews under the same epoch.
  auto refused = b->claim("node2", {0}, 60s);
  REQUIRE(refused.has_value());
  CHECK_FALSE(grant_of(*refused, 0).granted);
  auto renewed = a->claim("node1", {0}, 60s);
  CHECK(grant_of(*renewed, 0).epoch == 1);
  // Released: the next owner gets the next epoch.
  REQUIRE(a->release("node1", {0}));
  auto taken = b->claim("node2", {0}, 60s);
  CHECK(grant_of(*taken, 0).granted);
  CHECK(grant_of(*taken, 0).epoch == 2);
  // Expired: taken over without a release.
  REQUIRE(b->claim("node2", {2}, 100ms));
  std::this_thread::sleep_for(300ms);
  auto over = a->claim("node1", {2}, 60s);
  CHECK(grant_of(*over, 2).granted);
  CHECK(grant_of(*over, 2).epoch == 2);
  // A release by a member that does not hold the lease changes nothing.
  REQUIRE(b->release("node2", {2}));
  auto v = a->view();
  REQUIRE(v.has_value());
  CHECK(v->leases[2].owner == "node1");
  CHECK(v->leases[2].expires_in_ms > 1000);
  // Saga leases get ids after the shards, one per saga type.
  auto s = a->saga_lease("transfer");
  REQUIRE(s.has_value());
  CHECK(*s >= 8);
  CHECK(*b->saga_lease("transfer") == *s);
  CHECK(*b->saga_lease("refund") != *s);
}

TEST_CASE("cluster store: an append with a stale fence stores nothing", "[postgres][cluster]") {
  auto o = fresh();
  auto c = open_cluster(o);
  auto j = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(j.has_value());
  auto& store = **j;
  // Not claimed yet: refused.
  auto unheld = store.append_one(fenced_append("1", 0, 0));
  REQUIRE_FALSE(unheld.has_value());
  CHECK(unheld.error().code() == errc::fenced);
  auto g = grant_of(*c->claim("node1", {0}, 60s), 0);
  REQUIRE(g.granted);
  CHECK(store.append_one(fenced_append("1", 0, g.epoch)).has_value());
  // Another member takes the shard over after the lease expired (the owner was paused):
  // the old owner's appends are refused, the new owner's stored, in one batch.
  REQUIRE(c->claim("node1", {0}, 50ms));
  std::this_thread::sleep_for(200ms);
  auto g2 = grant_of(*c->claim("node2", {0}, 60s), 0);
  REQUIRE(g2.granted);
  CHECK(g2.epoch == g.epoch + 1);
  std::vector<append_request> batch;
  batch.push_back(fenced_append("1", 0, g.epoch));
  batch.push_back(fenced_append("2", 0, g2.epoch));
  batch.push_back(fenced_append("3", -1, 0));
  auto results = store.append(std::move(batch));
  REQUIRE(results.size() == 3);
  REQUIRE_FALSE(results[0].has_value());
  CHECK(results[0].error().code() == errc::fenced);
  CHECK_THAT(results[0].error().message(), Catch::Contains("account-1"));
  REQUIRE(results[1].has_value());
  REQUIRE(results[2].has_value());
  CHECK(*store.stream_version(stream_id{"account", "1"}) == 1);
  CHECK(store.head_position() == 3);
  // Released by its owner: no epoch is good any more until the next claim.
  REQUIRE(c->release("node2", {0}));
  CHECK(store.append_one(fenced_append("2", 0, g2.epoch)).error().code() == errc::fenced);
}

TEST_CASE("cluster store: no append with a released fence commits after the release", "[postgres][cluster]") {
  // The fence is checked under the lease row's share lock, so a release (or takeover)
  // is ordered after every batch in flight that passed the check: once release()
  // returns, everything the old owner will ever store is already committed.
  auto o = fresh();
  auto c = open_cluster(o), d = open_cluster(o);
  auto j = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(j.has_value());
  auto g = grant_of(*c->claim("node1", {1}, 60s), 1);
  REQUIRE(g.granted);
  uint64_t last_stored = 0, stored = 0;
  errc ended = errc::ok;
  std::thread writer([&] {
    for (int n = 0; n < 100000; ++n) {
      auto r = (*j)->append_one(fenced_append("w" + std::to_string(n % 4), 1, g.epoch));
      if (!r) {
        ended = r.error().code();
        return;
      }
      last_stored = r->last_position;
      ++stored;
    }
  });
  std::this_thread::sleep_for(300ms);
  REQUIRE(c->release("node1", {1}));
  auto after_release = (*j)->read_all(1, 1000000);
  REQUIRE(after_release.has_value());
  auto g2 = grant_of(*d->claim("node2", {1}, 60s), 1);
  CHECK(g2.granted);
  writer.join();
  CHECK(ended == errc::fenced);
  CHECK(stored > 0);
  CHECK(last_stored <= after_release->size());
  CHECK(after_release->size() == stored);
}
