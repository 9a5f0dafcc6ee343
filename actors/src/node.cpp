// The node facade: owns or attaches to an actor system, spawns the journal,
// routers, projections and the timeout sweepers, and stops them all at shutdown.
#include "cairn/node.hpp"

#include <deque>
#include <mutex>
#include <thread>
#include <shared_mutex>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "append_inbox.hpp"
#include "cairn/cluster_hooks.hpp"
#include "cairn/node_config.hpp"
#include "event_feed.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "node_metrics.hpp"
#include "reply_sink.hpp"
#include "saga_manager.hpp"
#include "spawn.hpp"
#include "store_readers.hpp"

namespace cairn {

namespace {

/// Commands in flight, in send order, for the timeout sweep. Senders add to it
/// under its mutex; its sweeper actor removes answered and expired entries. Every
/// command has the same timeout, so deadlines are in order too.
struct command_lane {
  std::mutex mutex;
  std::deque<std::pair<caf::timestamp, std::shared_ptr<reply_sink>>> pending;
  bool ticking = false; // a sweep is scheduled
};

using sweeper_t = caf::event_based_actor;

constexpr auto sweep_interval = std::chrono::milliseconds{50};

// Timeouts are swept by one periodic tick per lane instead of one timer per
// command: CAF 0.17's clock thread costs a lock and a wake-up per timer.
caf::behavior sweeper(sweeper_t* self, std::shared_ptr<command_lane> lane) {
  return {
    [self, lane](expire_atom) {
      auto now = caf::make_timestamp();
      std::vector<std::shared_ptr<reply_sink>> expired;
      bool again;
      {
        std::lock_guard<std::mutex> guard{lane->mutex};
        auto& q = lane->pending;
        while (!q.empty() && (q.front().second->called() || q.front().first <= now)) {
          if (!q.front().second->called()) expired.push_back(std::move(q.front().second));
          q.pop_front();
        }
        again = lane->ticking = !q.empty();
      }
      for (auto& sink : expired) sink->expire(error{errc::timeout, "no reply to the command in time"});
      if (again) self->delayed_send(self, sweep_interval, expire_atom::value);
    },
  };
}

} // namespace

struct node::impl {
  std::unique_ptr<caf::actor_system> owned;
  std::shared_ptr<metrics::registry> metrics = std::make_shared<metrics::registry>();
  caf::actor_system* sys = nullptr;
  node_options opts;
  std::shared_ptr<journal> store;
  std::shared_ptr<snapshot_store> snapshots;
  journal_handle writer; // the journal: its inbox and actor
  std::shared_ptr<store_readers> readers; // reader threads (null: reads run inline)
  caf::actor reader;                      // the actor through which actors use them
  caf::actor feed; // the event feed's publisher (event_feed.hpp)
  std::vector<std::shared_ptr<command_lane>> lanes; // one per scheduler thread
  std::vector<caf::actor> sweepers;                  // one per lane
  // Commands held now, against opts.max_commands_in_flight (reply_sink.hpp).
  command_slots in_flight = std::make_shared<std::atomic<size_t>>(0);

  std::shared_mutex mutex; // guards the maps and `stopped`
  std::unordered_map<std::string, caf::actor> routers;     // by category
  std::unordered_map<std::string, caf::actor> projections; // by name
  std::unordered_map<std::string, caf::actor> subscriptions; // event handlers, by name
  std::unordered_map<std::string, caf::actor> sagas;         // saga managers, by name
  std::shared_ptr<cluster_hooks> cluster; // null: not a cluster member
  // Registered sagas (on a cluster member they run only where their lease is held).
  std::unordered_map<std::string, std::pair<std::shared_ptr<const saga_model>, saga_options>>
    saga_models;
  bool stopped = false;

  /// The actor of event subscription `name`. Errors: not_found, unavailable (stopped).
  expected<caf::actor> subscription(const std::string& name) {
    std::shared_lock<std::shared_mutex> guard{mutex};
    if (stopped) return error{errc::unavailable, "node is shut down"};
    auto it = subscriptions.find(name);
    if (it == subscriptions.end())
      return error{errc::not_found, "no event subscription named \"" + name + "\""};
    return it->second;
  }

  /// The manager of saga `name`. Errors: not_found, unavailable (stopped).
  expected<caf::actor> saga(const std::string& name) {
    std::shared_lock<std::shared_mutex> guard{mutex};
    if (stopped) return error{errc::unavailable, "node is shut down"};
    auto it = sagas.find(name);
    if (it == sagas.end()) return error{errc::not_found, "no saga named \"" + name + "\""};
    return it->second;
  }

  void start() {
    if (!set_log_level(opts.log_level))
      log().warn("unknown log level \"{}\", keeping {}", opts.log_level,
                 spdlog::level::to_string_view(log().level()));
    writer = spawn_journal(*sys, store);
    if (opts.metrics) writer.inbox->set_metrics(journal_metrics::make(metrics));
    readers = make_store_readers(*store, opts.store_read_threads);
    if (readers) reader = spawn_reader(*sys, readers);
    feed = spawn_feed_publisher(*sys, store, opts.feed.ring_events, reader);
    auto threads = caf::get_or(sys->config(), "scheduler.max-threads", size_t{2});
    for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) {
      lanes.push_back(std::make_shared<command_lane>());
      sweepers.push_back(sys->spawn(sweeper, lanes.back()));
    }
  }
};

node::node(node_config& cfg, std::shared_ptr<journal> store,
           std::shared_ptr<snapshot_store> snapshots)
  : impl_(std::make_unique<impl>()) {
  impl_->owned = std::make_unique<caf::actor_system>(cfg);
  impl_->sys = impl_->owned.get();
  impl_->opts = cfg.options;
  impl_->store = std::move(store);
  impl_->snapshots = std::move(snapshots);
  impl_->start();
}

node::node(caf::actor_system& sys, std::shared_ptr<journal> store, node_options opts,
           std::shared_ptr<snapshot_store> snapshots)
  : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  impl_->opts = std::move(opts);
  impl_->store = std::move(store);
  impl_->snapshots = std::move(snapshots);
  impl_->start();
}

node::~node() {
  shutdown();
}

expected<void> node::add_aggregate(std::shared_ptr<const aggregate_model> model,
                                   aggregate_options opts) {
  std::string category{model->category()};
  if (auto ok = stream_id{category, "x"}.validate(); !ok) return ok.error();
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
  if (impl_->routers.count(category))
    return error{errc::invalid_argument, "aggregate category " + category + " is already registered"};
  impl_->routers.emplace(category,
                         spawn_router(*impl_->sys, std::move(model), impl_->writer.inbox,
                                      impl_->store, impl_->snapshots, opts,
                                      impl_->opts.metrics
                                        ? command_metrics::make(impl_->metrics, category)
                                        : nullptr,
                                      impl_->reader, impl_->cluster));
  return {};
}

expected<void> node::attach_cluster(std::shared_ptr<cluster_hooks> hooks) {
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
  if (!hooks) return error{errc::invalid_argument, "attach_cluster: no hooks"};
  if (impl_->cluster) return error{errc::invalid_argument, "a cluster is attached already"};
  if (!impl_->routers.empty())
    return error{errc::invalid_argument,
                 "attach the cluster before registering aggregates (their appends carry its fences)"};
  impl_->cluster = std::move(hooks);
  return {};
}

expected<void> node::add_projection(std::shared_ptr<const projection_model> model) {
  auto opts = impl_->opts.projections;
  if (!model->can_checkpoint()) opts = projection_options{};
  return add_projection(std::move(model), opts);
}

expected<void> node::add_projection(std::shared_ptr<const projection_model> model,
                                    projection_options opts) {
  std::string name{model->name()};
  if (auto ok = projection_checkpoint_stream(name).validate(); !ok)
    return error{errc::invalid_argument, "projection name: " + ok.error().message()};
  if (opts.checkpoints() && !impl_->snapshots)
    return error{errc::invalid_argument, "projection " + name +
                                           " asks for checkpoints, but the node has no "
                                           "snapshot store to keep them in"};
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
  if (impl_->projections.count(name))
    return error{errc::invalid_argument, "projection " + name + " is already registered"};
  impl_->projections.emplace(name, spawn_projection(*impl_->sys, std::move(model), impl_->store,
                                                    impl_->feed, impl_->snapshots, opts,
                                                    impl_->opts.feed, impl_->opts.query_timeout,
                                                    impl_->reader));
  return {};
}

expected<uint64_t> node::rebuild_projection(const std::string& name) {
  caf::actor target;
  {
    std::shared_lock<std::shared_mutex> guard{impl_->mutex};
    if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
    auto it = impl_->projections.find(name);
    if (it == impl_->projections.end())
      return error{errc::not_found, "no projection named \"" + name + "\""};
    target = it->second;
  }
  expected<uint64_t> result = error{errc::unavailable, "projection " + name + " did not answer"};
  caf::scoped_actor self{*impl_->sys};
  self->request(target, impl_->opts.query_timeout, rebuild_atom::value)
    .receive([&](uint64_t head) { result = head; },
             [&](caf::error& e) { result = from_caf(e); });
  return result;
}

expected<void> node::subscribe_events(std::string name, event_filter filter, event_handler handler,
                                      notification_options opts) {
  if (auto ok = stream_id{"notification", name}.validate(); !ok)
    return error{errc::invalid_argument, "subscription name: " + ok.error().message()};
  if (!handler) return error{errc::invalid_argument, "subscription " + name + " has no handler"};
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
  if (impl_->subscriptions.count(name))
    return error{errc::invalid_argument, "an event subscription named " + name + " exists"};
  // The head is read here, not in the actor: "from the next commit" means after
  // this call, whenever the actor gets to run.
  uint64_t start_after = opts.from_beginning ? 0 : impl_->store->head_position();
  auto actor = spawn_notification(*impl_->sys, name, std::move(filter), std::move(handler), opts,
                                  start_after, impl_->store, impl_->feed, impl_->snapshots,
                                  impl_->opts.feed, impl_->reader);
  impl_->subscriptions.emplace(std::move(name), std::move(actor));
  return {};
}

expected<void> node::unsubscribe_events(const std::string& name) {
  caf::actor target;
  {
    std::unique_lock<std::shared_mutex> guard{impl_->mutex};
    auto it = impl_->subscriptions.find(name);
    if (it == impl_->subscriptions.end())
      return error{errc::not_found, "no event subscription named \"" + name + "\""};
    target = std::move(it->second);
    impl_->subscriptions.erase(it);
  }
  // Wait until it has stopped (and stored its position), so the name can be reused.
  caf::scoped_actor self{*impl_->sys};
  self->monitor(target);
  self->send_exit(target, caf::exit_reason::user_shutdown);
  self->receive([](const caf::down_msg&) {});
  return {};
}

namespace {

/// Asks actor `target` something and waits (up to 30 s) for the answer.
template <class T, class... Ts>
expected<T> ask(caf::actor_system& sys, const caf::actor& target, Ts&&... xs) {
  expected<T> result = error{errc::unavailable, "no answer"};
  caf::scoped_actor self{sys};
  self->request(target, std::chrono::seconds{30}, std::forward<Ts>(xs)...)
    .receive([&](T& answer) { result = std::move(answer); },
             [&](caf::error& e) { result = from_caf(e); });
  return result;
}

} // namespace

expected<std::vector<parked_event>> node::parked_events(const std::string& name) {
  auto target = impl_->subscription(name);
  if (!target) return target.error();
  return ask<std::vector<parked_event>>(*impl_->sys, *target, parked_events_atom::value);
}

expected<std::vector<parked_event>> node::retry_parked_events(const std::string& name) {
  auto target = impl_->subscription(name);
  if (!target) return target.error();
  return ask<std::vector<parked_event>>(*impl_->sys, *target, retry_parked_atom::value);
}

expected<void> node::discard_parked_event(const std::string& name, uint64_t position) {
  auto target = impl_->subscription(name);
  if (!target) return target.error();
  auto r = ask<bool>(*impl_->sys, *target, discard_parked_atom::value, position);
  if (!r) return r.error();
  return {};
}

expected<event_feed_stats> node::feed_stats() {
  expected<event_feed_stats> result = error{errc::unavailable, "the event feed did not answer"};
  caf::scoped_actor self{*impl_->sys};
  self->request(impl_->feed, std::chrono::seconds{10}, feed_stats_atom::value)
    .receive([&](event_feed_stats& s) { result = s; },
             [&](caf::error& e) { result = from_caf(e); });
  return result;
}

expected<void> node::add_saga(std::shared_ptr<const saga_model> model, saga_options opts) {
  std::string name{model->name()};
  if (auto ok = stream_id{model->category(), "x"}.validate(); !ok)
    return error{errc::invalid_argument, "saga name: " + ok.error().message()};
  if (auto problem = model->check_names(); !problem.empty())
    return error{errc::invalid_argument, "saga " + name + ": " + problem};
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
  if (impl_->saga_models.count(name))
    return error{errc::invalid_argument, "saga " + name + " is already registered"};
  impl_->saga_models.emplace(name, std::make_pair(model, opts));
  if (impl_->cluster) { // it runs where its lease is held: run_saga()
    auto cluster = impl_->cluster;
    guard.unlock();
    cluster->saga_registered(name);
    return {};
  }
  impl_->sagas.emplace(name, spawn_saga(std::move(model), opts, {}));
  return {};
}

caf::actor node::spawn_saga(std::shared_ptr<const saga_model> model, saga_options opts,
                            fence_token fence) {
  // The manager sends through this node; shutdown() stops it before the node goes.
  auto send = [this](command_message cmd, reply_handler on_reply) {
    send_command(std::move(cmd), std::move(on_reply));
  };
  saga_lease_hold lease;
  if (fence.active()) {
    lease.fence = fence;
    lease.holds = [cluster = impl_->cluster, name = std::string{model->name()}, fence] {
      return cluster->saga_fence(name) == fence;
    };
  }
  return spawn_saga_manager(*impl_->sys, std::move(model), opts, impl_->store, impl_->writer.actor,
                            impl_->feed, impl_->opts.feed, std::move(send), impl_->reader,
                            std::move(lease));
}

expected<void> node::run_saga(const std::string& name, fence_token fence) {
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
  auto it = impl_->saga_models.find(name);
  if (it == impl_->saga_models.end())
    return error{errc::not_found, "no saga named \"" + name + "\""};
  if (auto running = impl_->sagas.find(name); running != impl_->sagas.end()) {
    caf::anon_send_exit(running->second, caf::exit_reason::user_shutdown);
    impl_->sagas.erase(running);
  }
  impl_->sagas.emplace(name, spawn_saga(it->second.first, it->second.second, fence));
  return {};
}

void node::stop_saga(const std::string& name) {
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  auto it = impl_->sagas.find(name);
  if (it == impl_->sagas.end()) return;
  caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
  impl_->sagas.erase(it);
}

expected<saga_status> node::saga_status_of(const std::string& name) {
  caf::actor target;
  {
    std::shared_lock<std::shared_mutex> guard{impl_->mutex};
    if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
    auto it = impl_->sagas.find(name);
    if (it == impl_->sagas.end()) return error{errc::not_found, "no saga named \"" + name + "\""};
    target = it->second;
  }
  expected<saga_status> result = error{errc::unavailable, "saga " + name + " did not answer"};
  caf::scoped_actor self{*impl_->sys};
  self->request(target, std::chrono::seconds{10}, caf::get_atom::value)
    .receive([&](saga_status& s) { result = s; }, [&](caf::error& e) { result = from_caf(e); });
  return result;
}

expected<std::vector<parked_saga>> node::parked_sagas(const std::string& name) {
  auto target = impl_->saga(name);
  if (!target) return target.error();
  return ask<std::vector<parked_saga>>(*impl_->sys, *target, saga_parked_atom::value);
}

expected<void> node::retry_saga(const std::string& name, const std::string& key) {
  auto target = impl_->saga(name);
  if (!target) return target.error();
  auto r = ask<bool>(*impl_->sys, *target, saga_retry_atom::value, key);
  if (!r) return r.error();
  return {};
}

expected<void> node::close_saga(const std::string& name, const std::string& key,
                                std::string reason) {
  auto target = impl_->saga(name);
  if (!target) return target.error();
  auto r = ask<bool>(*impl_->sys, *target, saga_close_atom::value, key, std::move(reason));
  if (!r) return r.error();
  return {};
}

expected<std::vector<parked_saga_event>> node::parked_saga_events(const std::string& name) {
  auto target = impl_->saga(name);
  if (!target) return target.error();
  return ask<std::vector<parked_saga_event>>(*impl_->sys, *target,
                                             saga_parked_events_atom::value);
}

expected<void> node::retry_saga_event(const std::string& name, uint64_t position) {
  auto target = impl_->saga(name);
  if (!target) return target.error();
  auto r = ask<bool>(*impl_->sys, *target, saga_retry_event_atom::value, position);
  if (!r) return r.error();
  return {};
}

expected<void> node::close_saga_event(const std::string& name, uint64_t position,
                                      std::string reason) {
  auto target = impl_->saga(name);
  if (!target) return target.error();
  auto r = ask<bool>(*impl_->sys, *target, saga_close_event_atom::value, position,
                     std::move(reason));
  if (!r) return r.error();
  return {};
}

void node::send_command(command_message cmd, reply_handler on_reply) {
  // Set once, before any aggregate exists, so reading it unlocked is safe.
  if (impl_->cluster && impl_->cluster->take(cmd, on_reply)) return;
  send_here(std::move(cmd), std::move(on_reply));
}

void node::send_here(command_message cmd, reply_handler on_reply) {
  // Straight to the router, one-way: a sender's commands to one aggregate stay in
  // order (CAF delivers in order between two parties; router and aggregate are
  // FIFO). The lane of the sending thread keeps the command for the timeout sweep,
  // and shutdown() answers whatever is left in the lanes.
  std::shared_ptr<reply_sink> sink;
  caf::actor router;
  bool start_sweep = false;
  size_t lane = 0;
  {
    std::shared_lock<std::shared_mutex> guard{impl_->mutex};
    if (impl_->stopped) {
      guard.unlock();
      return on_reply(error{errc::unavailable, "node is shut down"});
    }
    auto it = impl_->routers.find(cmd.target.category);
    if (it == impl_->routers.end()) {
      guard.unlock();
      return on_reply(error{errc::not_found, "no aggregate registered for category \"" +
                                               cmd.target.category + "\""});
    }
    router = it->second;
    if (auto limit = impl_->opts.max_commands_in_flight;
        limit > 0 && impl_->in_flight->fetch_add(1, std::memory_order_acq_rel) >= limit) {
      impl_->in_flight->fetch_sub(1, std::memory_order_acq_rel);
      guard.unlock();
      return on_reply(error{errc::unavailable,
                            "overloaded: the node holds " + std::to_string(limit) +
                              " commands in flight, its limit (max_commands_in_flight); "
                              "retry later or send fewer at once"});
    }
    sink = std::make_shared<reply_sink>(
      std::move(on_reply), impl_->opts.metrics,
      impl_->opts.max_commands_in_flight > 0 ? impl_->in_flight : nullptr);
    auto& lanes = impl_->lanes;
    lane = std::hash<std::thread::id>{}(std::this_thread::get_id()) % lanes.size();
    std::lock_guard<std::mutex> lane_guard{lanes[lane]->mutex};
    lanes[lane]->pending.emplace_back(caf::make_timestamp() + impl_->opts.command_timeout, sink);
    start_sweep = !lanes[lane]->ticking;
    lanes[lane]->ticking = true;
  }
  if (start_sweep)
    caf::delayed_anon_send(impl_->sweepers[lane], sweep_interval, expire_atom::value);
  caf::anon_send(router, command_atom::value, std::move(cmd), command_sink{std::move(sink)});
}

expected<command_reply> node::execute_command(command_message cmd) {
  auto prom = std::make_shared<std::promise<expected<command_reply>>>();
  auto fut = prom->get_future();
  send_command(std::move(cmd), [prom](expected<command_reply> r) { prom->set_value(std::move(r)); });
  return fut.get();
}

void node::send_query(std::string_view projection, query_job job) {
  caf::actor target;
  {
    std::shared_lock<std::shared_mutex> guard{impl_->mutex};
    if (impl_->stopped) {
      guard.unlock();
      return job.call->fail(error{errc::unavailable, "node is shut down"});
    }
    auto it = impl_->projections.find(std::string{projection});
    if (it == impl_->projections.end()) {
      guard.unlock();
      return job.call->fail(error{errc::not_found, "no projection named \"" +
                                                     std::string{projection} + "\""});
    }
    target = it->second;
  }
  caf::anon_send(target, query_atom::value, std::move(job));
}

void node::shutdown() {
  std::vector<caf::actor> actors;
  {
    std::unique_lock<std::shared_mutex> guard{impl_->mutex};
    if (impl_->stopped) return;
    impl_->stopped = true;
    for (auto& kv : impl_->routers) actors.push_back(kv.second);
    for (auto& kv : impl_->projections) actors.push_back(kv.second);
    for (auto& kv : impl_->subscriptions) actors.push_back(kv.second);
    for (auto& kv : impl_->sagas) actors.push_back(kv.second);
  }
  for (auto& d : impl_->sweepers) actors.push_back(d);
  actors.push_back(impl_->feed);
  actors.push_back(impl_->writer.actor);
  if (impl_->reader) actors.push_back(impl_->reader);
  {
    caf::scoped_actor self{*impl_->sys};
    for (auto& a : actors) {
      self->monitor(a);
      self->send_exit(a, caf::exit_reason::user_shutdown);
    }
    size_t down = 0;
    bool timed_out = false;
    while (down < actors.size() && !timed_out) {
      self->receive([&](const caf::down_msg&) { ++down; },
                    caf::after(std::chrono::seconds(10)) >> [&] { timed_out = true; });
    }
    if (timed_out)
      log().error("shutdown: {} of {} actors did not stop within 10 s", actors.size() - down,
                  actors.size());
  }
  // Commands nobody answered (their messages died with the actors) fail now.
  for (auto& lane : impl_->lanes) {
    std::deque<std::pair<caf::timestamp, std::shared_ptr<reply_sink>>> left;
    {
      std::lock_guard<std::mutex> guard{lane->mutex};
      left.swap(lane->pending);
    }
    for (auto& entry : left)
      (*entry.second)(error{errc::unavailable, "the node stopped before replying"});
  }
  log().debug("node stopped");
}

std::string node::metrics_text() const {
  metrics_sources from{*impl_->metrics, *impl_->store, impl_->feed, {}, {}};
  {
    std::shared_lock<std::shared_mutex> guard{impl_->mutex};
    if (impl_->stopped) from.feed = nullptr;
    else {
      from.projections.assign(impl_->projections.begin(), impl_->projections.end());
      from.sagas.assign(impl_->sagas.begin(), impl_->sagas.end());
    }
  }
  return render_node_metrics(*impl_->sys, from);
}

const std::shared_ptr<journal>& node::store() const {
  return impl_->store;
}

caf::actor_system& node::system() {
  return *impl_->sys;
}

const node_options& node::options() const {
  return impl_->opts;
}

} // namespace cairn
