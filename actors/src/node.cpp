// The node facade: owns or attaches to an actor system, spawns the journal,
// routers, projections and dispatchers, and stops them all at shutdown.
#include "cairn/node.hpp"

#include <deque>
#include <shared_mutex>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "cairn/node_config.hpp"
#include "log.hpp"
#include "message_types.hpp"
#include "spawn.hpp"

namespace cairn {

namespace {

/// Calls the handler exactly once: with the reply, or with unavailable if the
/// message carrying it is dropped (its actor stopped) before any reply.
struct once_handler {
  reply_handler fn;
  bool called = false;
  void operator()(expected<command_reply> r) {
    if (called) return;
    called = true;
    try {
      fn(std::move(r));
    } catch (const std::exception& ex) {
      log().error("a command reply handler threw: {}", ex.what());
    }
  }
  ~once_handler() {
    if (!called) (*this)(error{errc::unavailable, "the node stopped before replying"});
  }
};

/// Pending commands in send order, for the timeout sweep. Every command has the
/// same timeout, so deadlines are in order too.
struct dispatcher_state {
  static inline const char* name = "cairn.dispatcher";
  std::deque<std::pair<caf::timestamp, std::shared_ptr<once_handler>>> pending;
  bool ticking = false;
};

using dispatcher_t = caf::stateful_actor<dispatcher_state>;

constexpr auto sweep_interval = std::chrono::milliseconds{50};

// (The unused index avoids spawning with no arguments: CAF 0.17 then binds a
// reference to a null tuple pointer, which UBSan rightly reports.)
caf::behavior dispatcher(dispatcher_t* self, size_t /*index*/) {
  // Timeouts are swept by one periodic tick per dispatcher instead of one timer
  // per request: CAF 0.17's clock thread costs a lock and a wake-up per timer.
  return {
    [self](dispatch_atom, const caf::actor& router, command_message& cmd, int64_t timeout_ns,
           reply_callback& cb) {
      auto handler = std::make_shared<once_handler>();
      handler->fn = std::move(cb.fn);
      auto& st = self->state;
      st.pending.emplace_back(caf::make_timestamp() + caf::timespan{timeout_ns}, handler);
      if (!st.ticking) {
        st.ticking = true;
        self->delayed_send(self, sweep_interval, expire_atom::value);
      }
      self->request(router, caf::infinite, command_atom::value, std::move(cmd))
        .then([handler](command_reply& r) { (*handler)(std::move(r)); },
              [handler](caf::error& e) { (*handler)(from_caf(e)); });
    },
    [self](expire_atom) {
      auto& st = self->state;
      auto now = caf::make_timestamp();
      while (!st.pending.empty() &&
             (st.pending.front().second->called || st.pending.front().first <= now)) {
        (*st.pending.front().second)(error{errc::timeout, "no reply to the command in time"});
        st.pending.pop_front();
      }
      st.ticking = !st.pending.empty();
      if (st.ticking) self->delayed_send(self, sweep_interval, expire_atom::value);
    },
  };
}

} // namespace

caf::actor spawn_dispatcher(caf::actor_system& sys, size_t index) {
  return sys.spawn(dispatcher, index);
}

struct node::impl {
  std::unique_ptr<caf::actor_system> owned;
  caf::actor_system* sys = nullptr;
  node_options opts;
  std::shared_ptr<journal> store;
  std::shared_ptr<snapshot_store> snapshots;
  caf::actor journal_actor;
  std::vector<caf::actor> dispatchers;

  std::shared_mutex mutex; // guards the maps and `stopped`
  std::unordered_map<std::string, caf::actor> routers;     // by category
  std::unordered_map<std::string, caf::actor> projections; // by name
  bool stopped = false;

  void start() {
    if (!set_log_level(opts.log_level))
      log().warn("unknown log level \"{}\", keeping {}", opts.log_level,
                 spdlog::level::to_string_view(log().level()));
    journal_actor = spawn_journal(*sys, store);
    auto threads = caf::get_or(sys->config(), "scheduler.max-threads", size_t{2});
    for (size_t i = 0; i < std::max<size_t>(1, threads); ++i)
      dispatchers.push_back(spawn_dispatcher(*sys, i));
    log().debug("node started with {} dispatchers", dispatchers.size());
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
                         spawn_router(*impl_->sys, std::move(model), impl_->journal_actor,
                                      impl_->store, impl_->snapshots, opts));
  return {};
}

expected<void> node::add_projection(std::shared_ptr<const projection_model> model) {
  std::string name{model->name()};
  std::unique_lock<std::shared_mutex> guard{impl_->mutex};
  if (impl_->stopped) return error{errc::unavailable, "node is shut down"};
  if (impl_->projections.count(name))
    return error{errc::invalid_argument, "projection " + name + " is already registered"};
  impl_->projections.emplace(name, spawn_projection(*impl_->sys, std::move(model), impl_->store,
                                                    impl_->journal_actor, impl_->opts.query_timeout));
  return {};
}

void node::send_command(command_message cmd, reply_handler on_reply) {
  caf::actor router;
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
  }
  // One dispatcher per target keeps a sender's commands to one aggregate in order
  // (CAF delivers in order between any two actors; the router and aggregate are FIFO).
  auto& d = impl_->dispatchers[std::hash<stream_id>{}(cmd.target) % impl_->dispatchers.size()];
  caf::anon_send(d, dispatch_atom::value, std::move(router), std::move(cmd),
                 static_cast<int64_t>(impl_->opts.command_timeout.count()),
                 reply_callback{std::move(on_reply)});
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
  }
  for (auto& d : impl_->dispatchers) actors.push_back(d);
  actors.push_back(impl_->journal_actor);
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
  log().debug("node stopped");
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
