// The membership loop on a real PostgreSQL server, with short timings: members split the
// shards evenly, a halted member's shards are taken over once its leases expire (and its
// stale fence no longer writes), a rejoining member gets its share back by orderly
// release, and a leaving member hands its shards over at once.
#include <catch2/catch.hpp>

#include <thread>

#include <cairn/cluster_membership.hpp>
#include <cairn/postgres_journal.hpp>

#include "postgres/pg_server.hpp"

using namespace cairn;
using cairn::test::pg_server;
using namespace std::chrono_literals;

namespace {

member_row row(const std::string& name, int age_ms = 0, std::string state = "up",
               std::vector<std::string> roles = {"aggregates"}) {
  member_row m;
  m.name = name;
  m.state = std::move(state);
  m.heartbeat_age_ms = age_ms;
  m.roles = std::move(roles);
  return m;
}

cluster_view view_of(uint32_t shards, std::vector<member_row> members,
                     std::vector<std::string> owners = {}) {
  cluster_view v;
  v.shards = shards;
  v.members = std::move(members);
  for (uint32_t s = 0; s < shards; ++s) {
    lease_row l;
    l.id = static_cast<int32_t>(s);
    l.owner = s < owners.size() ? owners[s] : "";
    v.leases.push_back(l);
  }
  return v;
}

size_t count_of(const std::vector<std::string>& target, const std::string& name) {
  return static_cast<size_t>(std::count(target.begin(), target.end(), name));
}

std::unique_ptr<cluster_membership> start_member(const postgres_options& o, const std::string& name) {
  auto store = cluster_store::open(pg_server::shared().url(), 8, o);
  REQUIRE(store.has_value());
  membership_options m;
  m.self.name = name;
  m.self.host = "127.0.0.1";
  m.self.port = 1;
  m.self.roles = {"aggregates"};
  m.heartbeat_interval = 100ms;
  m.member_timeout = 800ms;
  m.lease_ttl = 800ms;
  m.lease_margin = 200ms;
  auto loop = cluster_membership::start(std::move(*store), m);
  REQUIRE(loop.has_value());
  return std::move(*loop);
}

/// Waits (at most `limit`) until `pred` holds; returns how long it took.
template <class Pred>
std::chrono::milliseconds wait_for(Pred pred, std::chrono::milliseconds limit = 10s) {
  auto start = std::chrono::steady_clock::now();
  while (!pred() && std::chrono::steady_clock::now() - start < limit)
    std::this_thread::sleep_for(20ms);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

} // namespace

TEST_CASE("cluster placement: shards spread evenly over live members with the aggregates role", "[cluster]") {
  auto t = place_shards(view_of(64, {row("a"), row("b"), row("c")}), 3s);
  CHECK(count_of(t, "a") == 22);
  CHECK(count_of(t, "b") == 21);
  CHECK(count_of(t, "c") == 21);
  // Dead, silent, leaving and projection-only members own nothing.
  auto u = place_shards(view_of(8, {row("a"), row("b", 5000), row("c", 0, "dead"),
                                    row("d", 0, "leaving"), row("e", 0, "up", {"projections"})}),
                        3s);
  CHECK(count_of(u, "a") == 8);
  CHECK(count_of(place_shards(view_of(4, {row("x", 0, "dead")}), 3s), "") == 4);
}

TEST_CASE("cluster placement: owners keep their shards and a joiner takes only its share", "[cluster]") {
  std::vector<std::string> owners(12);
  for (size_t s = 0; s < 12; ++s) owners[s] = s % 2 ? "a" : "b";
  auto t = place_shards(view_of(12, {row("a"), row("b"), row("c")}, owners), 3s);
  CHECK(count_of(t, "a") == 4);
  CHECK(count_of(t, "b") == 4);
  CHECK(count_of(t, "c") == 4);
  size_t moved = 0;
  for (size_t s = 0; s < 12; ++s) moved += t[s] != owners[s];
  CHECK(moved == 4); // only the joiner's share moves
}

TEST_CASE("cluster placement: the shard of a stream is a stable hash", "[cluster]") {
  // FNV-1a 64 of "account-42": the value other builds and processes must agree on.
  CHECK(shard_of(stream_id{"account", "42"}, 64) == 55);
  CHECK(shard_of(stream_id{"account", "42"}, 7) == 2);
}

TEST_CASE("cluster membership: failover after a halt and rebalance after a rejoin", "[postgres][cluster]") {
  postgres_options o;
  o.schema = pg_server::fresh_schema();
  auto a = start_member(o, "node-a");
  auto b = start_member(o, "node-b");
  wait_for([&] { return a->held().size() == 4 && b->held().size() == 4; });
  REQUIRE(a->held().size() == 4);
  REQUIRE(b->held().size() == 4);
  // Find a stream on one of a's shards and store an event under a's fence.
  auto j = open_postgres_journal(pg_server::shared().url(), o);
  REQUIRE(j.has_value());
  stream_id on_a{"account", "0"};
  for (int i = 1; !a->fence_for(on_a).active(); ++i) on_a = stream_id{"account", std::to_string(i)};
  auto old_fence = a->fence_for(on_a);
  append_request r{on_a, expected_version::any, {event_data{"opened", 1, {}, {}}}};
  r.fence = old_fence;
  auto first = (*j)->append_one(r);
  INFO((first ? std::string{} : first.error().describe()));
  REQUIRE(first.has_value());

  // a stops without a word (a crash): b takes everything over once a's leases expire.
  a->halt();
  auto took = wait_for([&] { return b->held().size() == 8; });
  INFO("takeover took " << took.count() << " ms");
  REQUIRE(b->held().size() == 8);
  CHECK(took < 5s);
  auto new_fence = b->fence_for(on_a);
  REQUIRE(new_fence.active());
  CHECK(new_fence.epoch > old_fence.epoch);
  // The stale owner's append is refused; the new owner's is stored.
  auto stale = (*j)->append_one(r);
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error().code() == errc::fenced);
  r.fence = new_fence;
  CHECK((*j)->append_one(r).has_value());

  // a comes back (a new incarnation): b hands half back by releasing.
  a.reset(); // halted: no leave
  auto again = start_member(o, "node-a");
  wait_for([&] { return again->held().size() == 4 && b->held().size() == 4; });
  CHECK(again->held().size() == 4);
  CHECK(b->held().size() == 4);

  // b leaves in order: a gets all 8 without waiting for leases to expire.
  b->leave();
  auto handed = wait_for([&] { return again->held().size() == 8; });
  CHECK(again->held().size() == 8);
  INFO("handover after leave took " << handed.count() << " ms");
  auto status = cluster_store::open_existing(pg_server::shared().url(), o);
  REQUIRE(status.has_value());
  auto v = (*status)->view();
  REQUIRE(v.has_value());
  REQUIRE(v->members.size() == 2);
  CHECK(v->members[0].incarnation == 2);
  CHECK(v->members[1].state == "left");
  auto log = (*status)->recent_changes(100);
  REQUIRE(log.has_value());
  bool declared_dead = false;
  for (auto& c : *log) declared_dead = declared_dead || (c.member == "node-a" && c.change == "dead");
  CHECK(declared_dead);
  // Each member logs what it saw: node-b saw node-a go (halted) and come back as
  // incarnation 2; node-a saw node-b up after it rejoined.
  auto saw = [&](const std::string& by, const std::string& member, const std::string& change,
                 const std::string& detail = "") {
    for (auto& c : *log)
      if (c.by == by && c.member == member && c.change == change && (detail.empty() || c.detail == detail))
        return true;
    return false;
  };
  CHECK(saw("node-b", "node-a", "seen gone"));
  CHECK(saw("node-b", "node-a", "seen up", "incarnation 2"));
  CHECK(saw("node-a", "node-b", "seen up"));
}
