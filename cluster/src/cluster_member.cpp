// cluster_member: starts, joins and leaves a member (cluster_member.hpp).
#include "cairn/cluster_member.hpp"

#include <algorithm>
#include <iterator>
#include <condition_variable>
#include <fstream>
#include <map>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/send.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "cairn/cluster_membership.hpp"
#include "cairn/postgres_journal.hpp"
#include "cluster_router.hpp"
#include "forwarding.hpp"
#include "log.hpp"
#include "message_types.hpp"

namespace cairn {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string openssl_error() {
  char buf[256] = "unknown reason";
  if (auto code = ERR_get_error()) ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

/// Loads the member's certificate, key and CA file the way CAF's openssl module will,
/// so that a broken file is a clear error here instead of an abort in CAF later.
expected<void> check_tls_files(const std::string& cert, const std::string& key,
                               const std::string& cafile) {
  for (auto* f : {&cert, &key, &cafile})
    if (!std::ifstream{*f}) return error{errc::invalid_argument, "cannot read TLS file \"" + *f + "\""};
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx) return error{errc::invalid_argument, "TLS: " + openssl_error()};
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1)
    return error{errc::invalid_argument, "cannot load the certificate \"" + cert +
                                           "\" ([openssl] certificate): " + openssl_error()};
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)
    return error{errc::invalid_argument,
                 "cannot load the key \"" + key + "\" ([openssl] key): " + openssl_error()};
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return error{errc::invalid_argument, "the key \"" + key + "\" does not match the certificate \"" +
                                           cert + "\""};
  if (SSL_CTX_load_verify_locations(ctx.get(), cafile.c_str(), nullptr) != 1)
    return error{errc::invalid_argument, "cannot load the CA file \"" + cafile +
                                           "\" ([openssl] cafile): " + openssl_error()};
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> check{X509_STORE_CTX_new(),
                                                                        X509_STORE_CTX_free};
  if (!check || X509_STORE_CTX_init(check.get(), SSL_CTX_get_cert_store(ctx.get()),
                                    SSL_CTX_get0_certificate(ctx.get()), nullptr) != 1)
    return error{errc::invalid_argument, "TLS: " + openssl_error()};
  if (X509_verify_cert(check.get()) != 1)
    return error{errc::invalid_argument,
                 "the certificate \"" + cert + "\" is not signed by the CA in \"" + cafile + "\": " +
                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(check.get()))};
  return {};
}

expected<void> check_settings(const cluster_settings& c) {
  auto bad = [](std::string what) { return error{errc::invalid_argument, "[cluster] " + what}; };
  if (c.name.empty()) return bad("name is required");
  if (std::any_of(c.name.begin(), c.name.end(), [](char ch) { return ch <= ' ' || ch == 127; }))
    return bad("name must not contain spaces or control characters");
  if (c.postgres_url.empty()) return bad("postgres-url is required");
  if (c.port > 65535) return bad("port must be at most 65535");
  if (c.shards == 0 || c.shards > 65536) return bad("shards must be between 1 and 65536");
  for (auto& r : c.roles)
    if (r != "aggregates" && r != "projections" && r != "sagas")
      return bad("unknown role \"" + r + "\" (roles: aggregates, projections, sagas)");
  if (c.heartbeat_interval.count() <= 0 || c.lease_ttl.count() <= 0 || c.member_timeout.count() <= 0)
    return bad("heartbeat-interval, member-timeout and lease-ttl must be positive");
  if (c.lease_margin >= c.lease_ttl) return bad("lease-margin must be shorter than lease-ttl");
  if (c.forward_batch == 0) return bad("forward-batch must be at least 1");
  return {};
}

class member_impl final : public cluster_member {
public:
  member_impl(cluster_config& cfg, bool tls, std::shared_ptr<journal> store)
      : cfg_(cfg), settings_(cfg.cluster), tls_(tls),
        router_(std::make_shared<cluster_router>(settings_.name,
                                                 static_cast<uint32_t>(settings_.shards),
                                                 settings_.routing_wait)),
        node_(std::make_unique<node>(cfg, std::move(store))) {
    if (auto ok = node_->attach_cluster(router_); !ok)
      throw std::logic_error(ok.error().describe()); // a fresh node: cannot happen
  }

  ~member_impl() override { leave(); }

  expected<void> join() override;
  void leave() override { stop(true); }
  void halt() override { stop(false); }
  node& local() override { return *node_; }
  cluster_status status() const override;

private:
  caf::expected<caf::actor> connect(const std::string& host, uint16_t port) {
    auto& sys = node_->system();
    if (tls_) return caf::openssl::remote_actor(sys, host, port);
    return sys.middleman().remote_actor(host, port);
  }
  expected<void> check_peers_accept_us(cluster_store& store);
  void connect_loop();
  void stop(bool orderly);
  void run_sagas_held_here();
  void stop_aggregates_of_lost_shards();

  cluster_config& cfg_;
  const cluster_settings settings_;
  const bool tls_;
  std::shared_ptr<cluster_router> router_;
  std::unique_ptr<node> node_;
  std::unique_ptr<cluster_membership> membership_;
  std::atomic<cluster_membership*> membership_ptr_{nullptr}; // set once joined
  caf::actor endpoint_;
  uint16_t port_ = 0;
  std::thread connector_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool left_ = false;
  std::map<std::string, fence_token> sagas_running_; // membership thread only
  std::vector<uint32_t> held_before_;                 // membership thread only
};

/// The aggregates of shards this member held at the last round and holds no more (it
/// handed them off, or it was paused or cut off and another member took them) stop:
/// they find out now instead of at their next command, and free their memory.
void member_impl::stop_aggregates_of_lost_shards() {
  auto membership = membership_ptr_.load();
  if (!membership) return;
  auto held = membership->held();
  std::vector<uint32_t> lost;
  std::set_difference(held_before_.begin(), held_before_.end(), held.begin(), held.end(),
                      std::back_inserter(lost));
  held_before_ = std::move(held);
  if (lost.empty()) return;
  log().info("cluster: this member no longer holds {} shards; stopping their aggregates",
             lost.size());
  auto shards = membership->shards();
  node_->stop_aggregates([lost, shards](const stream_id& stream) {
    return std::binary_search(lost.begin(), lost.end(), shard_of(stream, shards));
  });
}

/// Runs each saga type whose lease this member holds, under that lease's fence, and
/// stops those whose lease it lost (after every membership round).
void member_impl::run_sagas_held_here() {
  auto membership = membership_ptr_.load();
  if (!membership) return;
  for (auto& [name, fence] : membership->sagas()) {
    auto& running = sagas_running_[name];
    if (fence.active() && !(running == fence)) {
      if (auto ok = node_->run_saga(name, fence); ok) {
        log().info("cluster: saga {} runs on this member (lease {}, epoch {})", name, fence.lease,
                   fence.epoch);
        running = fence;
      }
    } else if (!fence.active() && running.active()) {
      log().info("cluster: saga {} stops on this member: its lease moved or lapsed", name);
      node_->stop_saga(name);
      running = {};
    }
  }
}

/// With TLS, a member proves before joining that a live member accepts its
/// certificate: one signed by another CA is refused here, with a clear error, instead
/// of owning shards nobody can forward to. Only a failed handshake counts as refusal; a
/// member that is busy or gone is skipped (and asked again, a few times, if it was the
/// only one).
expected<void> member_impl::check_peers_accept_us(cluster_store& store) {
  std::string refused;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto view = store.view();
    if (!view) return std::move(view).error();
    bool asked = false;
    for (auto& m : view->members) {
      if (m.name == settings_.name || m.state != "up" ||
          m.heartbeat_age_ms > duration_cast<milliseconds>(settings_.member_timeout).count())
        continue;
      asked = true;
      auto remote = connect(m.host, m.port);
      if (remote) {
        auto name = ask_member_name(node_->system(), *remote, std::chrono::seconds{5});
        if (name) { // and this connection is the pair's link from now on
          say_hello(*remote, settings_.name, endpoint_);
          router_->set_peer(m.name, make_peer_link(node_->system(), std::move(*remote), m.name,
                                                   settings_.forward_batch, settings_.forward_delay));
          return {};
        }
        log().warn("cluster: member {} at {}:{} did not answer ({}); asking another",
                   m.name, m.host, m.port, name.error().describe());
        continue;
      }
      if (remote.error() == caf::sec::disconnect_during_handshake)
        refused = "the TLS handshake with member " + m.name + " at " + m.host + ":" +
                  std::to_string(m.port) + " failed";
      else
        log().warn("cluster: member {} at {}:{} is listed as up but not reachable ({})", m.name,
                   m.host, m.port, caf::to_string(remote.error()));
    }
    if (!refused.empty() || !asked) break;
    std::this_thread::sleep_for(milliseconds{500}); // everyone busy or going: ask again
  }
  if (refused.empty()) return {}; // the first member, or none reachable: nothing to prove
  return error{errc::unavailable,
               "cannot join the cluster: " + refused +
                 (tls_ ? " (TLS: is this member's certificate signed by the cluster's CA, and "
                         "its [openssl] cafile the cluster's CA?)"
                       : "")};
}

expected<void> member_impl::join() {
  auto& sys = node_->system();
  endpoint_ = spawn_endpoint(sys, router_, [this](const std::string& name, caf::actor peer) {
    // A member that dialed us: forward to it over its connection.
    router_->set_peer(name, make_peer_link(node_->system(), std::move(peer), name,
                                           settings_.forward_batch, settings_.forward_delay));
    log().info("cluster: member {} linked to us", name);
  });
  auto port = static_cast<uint16_t>(settings_.port);
  auto published = tls_ ? caf::openssl::publish(endpoint_, port, settings_.host.c_str(), true)
                        : sys.middleman().publish(endpoint_, port, settings_.host.c_str(), true);
  if (!published)
    return error{errc::unavailable, "cannot listen on " + settings_.host + ":" +
                                      std::to_string(port) + ": " + sys.render(published.error())};
  port_ = *published;
  postgres_options pg;
  pg.schema = settings_.postgres_schema;
  auto store = cluster_store::open(settings_.postgres_url, static_cast<uint32_t>(settings_.shards), pg);
  if (!store) return std::move(store).error();
  if (auto ok = check_peers_accept_us(**store); !ok) return ok;
  membership_options opts;
  opts.self = member_row{settings_.name, settings_.host, port_, settings_.roles};
  opts.heartbeat_interval = duration_cast<milliseconds>(settings_.heartbeat_interval);
  opts.member_timeout = duration_cast<milliseconds>(settings_.member_timeout);
  opts.lease_ttl = duration_cast<milliseconds>(settings_.lease_ttl);
  opts.lease_margin = duration_cast<milliseconds>(settings_.lease_margin);
  auto bound = std::min(settings_.handoff_timeout, settings_.lease_ttl / 2);
  opts.before_release = [router = router_, bound](const std::vector<uint32_t>& shards) {
    router->drain(shards, bound);
  };
  auto membership = cluster_membership::start(std::move(*store), std::move(opts), [this] {
    router_->wake();
    stop_aggregates_of_lost_shards();
    run_sagas_held_here();
  });
  if (!membership) return std::move(membership).error();
  membership_ = std::move(*membership);
  membership_ptr_ = membership_.get();
  router_->attach(node_.get(), membership_.get());
  connector_ = std::thread([this] { connect_loop(); });
  log().info("cluster: member {} joined, endpoint on {}:{}{}", settings_.name, settings_.host,
             port_, tls_ ? " (TLS)" : " (no TLS)");
  return {};
}

/// Keeps a link to every live member with the aggregates role, reconnecting when one
/// went down or came back as a new incarnation (CAF does not reconnect by itself).
/// One connection per pair of members: of two members with that role, the one with the
/// smaller name dials and says hello; the other forwards over that connection (two
/// members dialing each other made CAF drop and redo their TLS connections).
void member_impl::connect_loop() {
  bool owns_shards = settings_.has_role("aggregates");
  std::map<std::string, std::string> reported; // member -> last failure logged
  std::unique_lock<std::mutex> guard{mutex_};
  while (!stopping_) {
    guard.unlock();
    for (auto& m : membership_->live_members()) {
      if (m.name == settings_.name ||
          std::find(m.roles.begin(), m.roles.end(), "aggregates") == m.roles.end())
        continue;
      // A restarted member listens anew: the old connection closes and its link dies.
      if (auto link = router_->peer(m.name); link && link->alive()) continue;
      if (owns_shards && m.name < settings_.name) continue; // it dials us
      auto remote = connect(m.host, m.port);
      if (!remote) {
        auto why = caf::to_string(remote.error());
        if (reported[m.name] != why)
          log().warn("cluster: cannot connect to member {} at {}:{}: {}", m.name, m.host, m.port, why);
        reported[m.name] = why;
        continue;
      }
      reported.erase(m.name);
      say_hello(*remote, settings_.name, endpoint_);
      router_->set_peer(m.name, make_peer_link(node_->system(), std::move(*remote), m.name,
                                               settings_.forward_batch, settings_.forward_delay));
      log().info("cluster: linked to member {} (incarnation {})", m.name, m.incarnation);
    }
    guard.lock();
    wake_.wait_for(guard, milliseconds{100}, [this] { return stopping_; });
  }
}

void member_impl::stop(bool orderly) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (left_) return;
    left_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  if (connector_.joinable()) connector_.join();
  // Hands every shard off (the router drains them), releases them, leaves; or, halting,
  // keeps everything as it is.
  if (membership_) {
    if (orderly) membership_->leave();
    else membership_->halt();
  }
  membership_ptr_ = nullptr;
  router_->stop();
  router_->attach(node_.get(), nullptr);
  if (endpoint_) {
    if (port_ != 0) node_->system().middleman().unpublish(endpoint_, port_);
    caf::anon_send_exit(endpoint_, caf::exit_reason::user_shutdown);
  }
  node_->shutdown();
  membership_.reset();
  endpoint_ = nullptr;
}

cluster_status member_impl::status() const {
  cluster_status s;
  s.self = settings_.name;
  s.port = port_;
  if (membership_) {
    for (auto& m : membership_->live_members())
      if (std::find(m.roles.begin(), m.roles.end(), "aggregates") != m.roles.end())
        s.live_members.push_back(m.name);
    std::sort(s.live_members.begin(), s.live_members.end());
    s.owned_shards = membership_->held();
    s.all_shards_owned = membership_->all_shards_owned();
    std::map<std::string, size_t> owned;
    for (auto& m : s.live_members) owned[m] = 0;
    for (uint32_t shard = 0; shard < membership_->shards(); ++shard) ++owned[membership_->owner_of(shard)];
    auto members = s.live_members.size();
    s.balanced = s.all_shards_owned && members > 0 && owned.size() == members;
    for (auto& [name, count] : owned)
      s.balanced = s.balanced && count >= membership_->shards() / members &&
                   count <= (membership_->shards() + members - 1) / members;
  }
  auto& c = router_->counters();
  s.forwarded = c.forwarded;
  s.received = c.received;
  s.rerouted = c.rerouted;
  s.fenced_local = c.fenced_local;
  s.fenced_store = c.fenced_store;
  return s;
}

} // namespace

expected<std::unique_ptr<cluster_member>> cluster_member::start(cluster_config& cfg) {
  if (auto ok = check_settings(cfg.cluster); !ok) return ok.error();
  const auto& cert = cfg.openssl_certificate;
  const auto& key = cfg.openssl_key;
  const auto& ca = cfg.openssl_cafile;
  bool any = !cert.empty() || !key.empty() || !ca.empty();
  bool all = !cert.empty() && !key.empty() && !ca.empty();
  if (any && !all)
    return error{errc::invalid_argument,
                 "incomplete TLS configuration: [openssl] needs certificate, key and cafile "
                 "together (missing:" +
                   std::string{cert.empty() ? " certificate" : ""} + (key.empty() ? " key" : "") +
                   (ca.empty() ? " cafile" : "") + ")"};
  if (!any && !cfg.cluster.insecure)
    return error{errc::invalid_argument,
                 "refusing to start: no TLS certificates configured ([openssl] certificate, key "
                 "and cafile); set insecure = true in [cluster] to run without TLS"};
  if (all) {
    if (auto ok = check_tls_files(cert, key, ca); !ok) return ok.error();
  } else {
    log().warn("cluster member {}: running WITHOUT TLS (insecure = true): traffic between "
               "members is neither encrypted nor authenticated; use it on loopback or in tests only",
               cfg.cluster.name);
  }
  postgres_options pg;
  pg.schema = cfg.cluster.postgres_schema;
  auto store = open_postgres_journal(cfg.cluster.postgres_url, pg);
  if (!store) return std::move(store).error();
  return std::unique_ptr<cluster_member>{new member_impl(cfg, all, std::move(*store))};
}

} // namespace cairn
