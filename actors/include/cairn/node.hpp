// node: the facade an application uses. It hosts aggregates and projections on a
// CAF actor system, sends them commands and queries, and stops them cleanly.
// This header stays free of CAF's heavy headers so application code compiles fast.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "cairn/aggregate_model.hpp"
#include "cairn/command.hpp"
#include "cairn/event_feed_stats.hpp"
#include "cairn/event_filter.hpp"
#include "cairn/journal.hpp"
#include "cairn/node_options.hpp"
#include "cairn/parked_event.hpp"
#include "cairn/projection.hpp"
#include "cairn/query.hpp"
#include "cairn/saga_admin.hpp"
#include "cairn/saga_model.hpp"
#include "cairn/saga_options.hpp"
#include "cairn/snapshot_store.hpp"
#include "cairn/temporal.hpp"

namespace caf {
class actor;
class actor_system;
}

namespace cairn {

class node_config;
class cluster_hooks;

/// Receives a command's outcome, on one of the node's scheduler threads: keep it
/// short and never block in it.
using reply_handler = std::function<void(expected<command_reply>)>;

/// Receives one committed event of an event subscription (subscribe_events), on
/// the subscription's actor: one call at a time, in position order. Keep it short;
/// throwing makes the node call it again with the same event later.
using event_handler = std::function<void(const envelope&)>;

class node {
public:
  /// Starts an actor system from `cfg` (which must outlive the node) over `store`,
  /// with snapshots in `snapshots` (none if null).
  node(node_config& cfg, std::shared_ptr<journal> store,
       std::shared_ptr<snapshot_store> snapshots = nullptr);

  /// Attaches to an existing actor system, whose config must have had
  /// cairn::add_message_types() applied (node_config does that). The node
  /// stops only the actors it spawned.
  node(caf::actor_system& sys, std::shared_ptr<journal> store, node_options opts = {},
       std::shared_ptr<snapshot_store> snapshots = nullptr);

  /// Stops every actor of this node (see shutdown()).
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Hosts aggregate type A: commands to category A::category reach one actor per
  /// entity id, spawned on first use. Call before sending A's commands. Errors:
  /// invalid_argument (category already registered, two of A's commands or events
  /// share a type name, or upcasters of its events that check() faults).
  template <class A>
  expected<void> register_aggregate() {
    return register_aggregate<A>(options().aggregates);
  }

  /// As above, with this type's own snapshot and passivation settings.
  template <class A>
  expected<void> register_aggregate(aggregate_options opts) {
    using traits = aggregate_traits<A>;
    for (auto problem : {traits::command_codec::check_names(), traits::event_codec::check_names(),
                         upcasters_of<typename traits::event_type>().check()})
      if (!problem.empty())
        return error{errc::invalid_argument, std::string{traits::category()} + ": " + problem};
    return add_aggregate(make_aggregate_model<A>(), opts);
  }

  /// Hosts projection P: its actor rebuilds the read model from the whole store
  /// (or from its checkpoint, see projection_options), then follows new commits.
  /// Call before querying P. Uses options().projections; a P that cannot save its
  /// read model (projection.hpp) then just runs without checkpoints. Errors:
  /// invalid_argument (name already registered, P::event_types inconsistent with
  /// P's handlers, upcasters of its events that check() faults, or checkpoints
  /// asked for on a node without a snapshot store).
  template <class P>
  expected<void> register_projection() {
    auto opts = options().projections;
    if (!projection_traits<P>::can_checkpoint) {
      opts.checkpoint_every = 0;
      opts.checkpoint_interval = {};
    }
    return register_projection<P>(opts);
  }

  /// As above, with P's own checkpoint settings. Errors as above, and
  /// invalid_argument if `opts` ask for checkpoints and P cannot save its read model.
  template <class P>
  expected<void> register_projection(projection_options opts) {
    using traits = projection_traits<P>;
    if (auto problem = upcasters_of<typename P::event_type>().check(); !problem.empty())
      return error{errc::invalid_argument, std::string{traits::name()} + ": " + problem};
    if (auto problem = traits::check(); !problem.empty())
      return error{errc::invalid_argument, problem};
    if (opts.checkpoints() && !traits::can_checkpoint)
      return error{errc::invalid_argument,
                   std::string{traits::name()} + ": checkpoints need `bytes save() const` and "
                                                 "`static expected<P> load(const bytes&)`, or "
                                                 "describe(cairn::type<P>)"};
    return add_projection(make_projection_model<P>(), opts);
  }

  /// Resets projection P to its empty read model at position 0 and replays the
  /// whole store into it, while the node keeps serving commands. Queries meanwhile
  /// see the partly rebuilt model unless they ask for a position (which they wait
  /// for as usual): the returned head position is where the rebuild has caught up
  /// with everything committed before the call. With checkpoints on, the empty
  /// model is checkpointed first, so a restart mid-rebuild finishes the rebuild.
  /// Blocks until the projection has reset. Errors: not_found (unregistered),
  /// unavailable (node stopped), timeout (no answer within query_timeout).
  template <class P>
  expected<uint64_t> rebuild_projection() {
    return rebuild_projection(std::string{projection_traits<P>::name()});
  }
  expected<uint64_t> rebuild_projection(const std::string& name);

  /// Runs saga S (saga.hpp): its manager actor resumes from its checkpoint (loading
  /// unfinished instances and re-sending their pending commands), follows every
  /// committed event, and sends the commands its instances decide through this
  /// node's command path. Register S's target aggregates too. Errors:
  /// invalid_argument (name already registered, a name unusable as a stream
  /// category, or type names that clash or use the reserved "cairn." prefix).
  template <class S>
  expected<void> register_saga(saga_options opts = {}) {
    if (auto problem = saga_traits<S>::check_names(); !problem.empty())
      return error{errc::invalid_argument, "saga " + std::string{S::name} + ": " + problem};
    return add_saga(make_saga_model<S>(), opts);
  }

  /// Where saga S's manager has got to (for monitoring, and for tests that wait
  /// for it). Blocks briefly; do not call from inside an actor. Errors: not_found
  /// (unregistered), unavailable (stopped or no answer).
  template <class S>
  expected<saga_status> saga_status_of() {
    return saga_status_of(std::string{S::name});
  }
  expected<saga_status> saga_status_of(const std::string& name);

  /// Saga `name`'s parked instances (saga_records.hpp's saga_parked): those whose
  /// decision could not be carried out. Each waits, durably, for an operator to
  /// retry it (once the cause is fixed, usually by a new build and a restart) or to
  /// close it. Blocks briefly. Errors: not_found (unregistered), unavailable.
  expected<std::vector<parked_saga>> parked_sagas(const std::string& name);
  /// Retries parked instance `key`: it is loaded afresh, processes the inputs it
  /// held, and sends its pending commands again. Errors: not_found (no such saga or
  /// parked instance), unavailable, or the retry's own failure (it stays parked).
  expected<void> retry_saga(const std::string& name, const std::string& key);
  /// Closes parked instance `key` for good: it counts as finished. Errors as above.
  expected<void> close_saga(const std::string& name, const std::string& key,
                            std::string reason = "closed by an operator");

  /// Saga `name`'s parked input events: events it could hand to no instance (its
  /// correlate() threw, the event does not decode or upcast for it, the instance it
  /// routes to cannot be loaded). The saga went on with the others; each waits,
  /// durably, for an operator. Blocks briefly. Errors: not_found, unavailable.
  expected<std::vector<parked_saga_event>> parked_saga_events(const std::string& name);
  /// Retries the parked event at `position` (after a fix, usually a new build and a
  /// restart): routes it again and hands it to its instance, even though later
  /// inputs went first. Errors: not_found (no such saga or parked event),
  /// unavailable, or the retry's own failure (it stays parked, with that reason).
  expected<void> retry_saga_event(const std::string& name, uint64_t position);
  /// Closes (discards) the parked event at `position` for good. Errors as above.
  expected<void> close_saga_event(const std::string& name, uint64_t position,
                                  std::string reason = "closed by an operator");

  /// Calls `handler` for every committed event that matches `filter`, at least once,
  /// in position order, on an actor of its own. Delivery resumes after the position
  /// stored under "notification-<name>" in the node's snapshot store; with no stored
  /// position (or no snapshot store) it starts where `opts` say. The position is
  /// stored after handling, so a crash may deliver again what was handled since
  /// (never skip it). A handler that throws gets the same event again, after a
  /// backoff, until it succeeds or opts.max_attempts is reached (then the event is
  /// parked with the reason: parked_events lists it, retry_parked_events retries it;
  /// `cairn subscriptions` does the same while the node is down, and the retries it
  /// asks for run when the subscription starts). Errors: invalid_argument (name already subscribed, empty
  /// name or one with control characters, or an empty handler), unavailable (stopped).
  expected<void> subscribe_events(std::string name, event_filter filter, event_handler handler,
                                  notification_options opts = {});

  /// Stops the subscription `name` (storing its position). Errors: not_found.
  expected<void> unsubscribe_events(const std::string& name);

  /// The events subscription `name` gave up on (notification_options::max_attempts),
  /// oldest first, with what the handler threw. Kept in the node's snapshot store
  /// (in memory only without one). Errors: not_found, unavailable.
  expected<std::vector<parked_event>> parked_events(const std::string& name);
  /// Calls the handler again on each parked event, in order (after a fix); returns
  /// those that still fail, which stay parked. Errors: not_found, unavailable.
  expected<std::vector<parked_event>> retry_parked_events(const std::string& name);
  /// Drops the parked event at `position` for good. Errors: not_found, unavailable.
  expected<void> discard_parked_event(const std::string& name, uint64_t position);

  /// What the event feed that projections and subscriptions follow holds and has
  /// done. Blocks briefly; do not call from inside an actor. Errors: unavailable.
  expected<event_feed_stats> feed_stats();

  /// Sends command `cmd` to aggregate A's instance `id` without waiting (the fast
  /// path). `on_reply` gets the new version and position, or an error: rejected,
  /// conflict, not_found (unregistered aggregate), timeout, unavailable.
  template <class A, class C>
  void send(std::string id, const C& cmd, reply_handler on_reply, metadata meta = {}) {
    send_command(make_command<A>(std::move(id), typename A::command_type{cmd}, std::move(meta)),
                 std::move(on_reply));
  }

  /// Sends and waits for the reply. Costs a thread switch each way: use send()
  /// where throughput matters. Never call it from inside an actor or a handler.
  template <class A, class C>
  expected<command_reply> execute(std::string id, const C& cmd, metadata meta = {}) {
    return execute_command(
      make_command<A>(std::move(id), typename A::command_type{cmd}, std::move(meta)));
  }

  /// Runs `fn(const P&)` on projection P's actor once it has applied position
  /// `min_position` (read-your-writes: pass a command_reply's position) and
  /// returns its result. Errors: timeout (position not reached in
  /// node_options::query_timeout), not_found (unregistered), unavailable.
  template <class P, class F>
  auto query(F fn, uint64_t min_position = 0)
    -> expected<std::decay_t<std::invoke_result_t<F, const P&>>> {
    using R = std::decay_t<std::invoke_result_t<F, const P&>>;
    auto prom = std::make_shared<std::promise<expected<R>>>();
    auto fut = prom->get_future();
    query_async<P>(std::move(fn), [prom](expected<R> r) { prom->set_value(std::move(r)); },
                   min_position);
    return fut.get();
  }

  /// Like query() but hands the result to `on_result` on the projection's thread.
  template <class P, class F, class Handler>
  void query_async(F fn, Handler on_result, uint64_t min_position = 0) {
    using R = std::decay_t<std::invoke_result_t<F, const P&>>;
    struct call final : query_call {
      F fn;
      Handler handler;
      bool done = false;
      call(F f, Handler h) : fn(std::move(f)), handler(std::move(h)) {}
      void run(const void* model) override {
        done = true;
        // The query runs on the projection's actor: an exception from it becomes
        // the caller's error instead of stopping the projection.
        std::optional<expected<R>> result;
        try {
          result.emplace(fn(*static_cast<const P*>(model)));
        } catch (const std::exception& ex) {
          result.emplace(error{errc::invalid_argument, std::string{"the query threw: "} + ex.what()});
        }
        handler(std::move(*result));
      }
      void fail(const error& why) override {
        done = true;
        handler(expected<R>{why});
      }
      ~call() override {
        if (!done) handler(expected<R>{error{errc::unavailable, "projection stopped"}});
      }
    };
    send_query(projection_traits<P>::name(),
               query_job{std::make_shared<call>(std::move(fn), std::move(on_result)),
                         min_position, 0});
  }

  /// The state of aggregate A's instance `id` right after its event `version`, or as
  /// of `time`, replayed from store() on the calling thread (temporal.hpp). Errors:
  /// not_found (unknown stream, or a version beyond the stream's), invalid_argument
  /// (malformed id), corrupt (an event that does not decode or upcast).
  template <class A>
  expected<A> state_at(const std::string& id, uint64_t version) const {
    return cairn::state_at<A>(*store(), id, version);
  }
  template <class A>
  expected<A> state_as_of(const std::string& id, std::chrono::system_clock::time_point time) const {
    return cairn::state_as_of<A>(*store(), id, time);
  }

  /// Makes this node a member of a cluster (cairn::cluster does it; applications do
  /// not): from then on send_command() asks `hooks` whether a command runs here, and
  /// aggregates fence their appends with hooks->fence_for(). Call it before
  /// registering aggregates. Errors: invalid_argument (aggregates registered already,
  /// or a cluster attached already), unavailable (stopped).
  expected<void> attach_cluster(std::shared_ptr<cluster_hooks> hooks);

  /// Runs `cmd` on this node without asking the cluster: for commands the cluster
  /// has routed here.
  void send_here(command_message cmd, reply_handler on_reply);

  /// On a cluster member: starts the manager of saga `name` (registered with
  /// register_saga), its appends fenced with `fence`; cairn::cluster calls it on the
  /// member holding the saga's lease. Errors: not_found (unregistered), unavailable.
  expected<void> run_saga(const std::string& name, fence_token fence);
  /// Stops saga `name`'s manager on this node (its lease moved). Idempotent.
  void stop_saga(const std::string& name);

  /// Type-erased forms of the calls above.
  void send_command(command_message cmd, reply_handler on_reply);
  expected<command_reply> execute_command(command_message cmd);
  void send_query(std::string_view projection, query_job job);
  expected<void> add_aggregate(std::shared_ptr<const aggregate_model> model,
                               aggregate_options opts);
  expected<void> add_projection(std::shared_ptr<const projection_model> model);
  expected<void> add_saga(std::shared_ptr<const saga_model> model, saga_options opts);
  expected<void> add_projection(std::shared_ptr<const projection_model> model,
                                projection_options opts);

  /// Stops routers (and their aggregates), projections, event subscriptions, the
  /// event feed and the journal actor, and
  /// waits until they have terminated. Commands still in flight fail with
  /// unavailable. Idempotent; called by the destructor.
  void shutdown();

  /// The node's metrics in Prometheus text exposition format (0.0.4): commands per
  /// category and outcome, command latency, live aggregates, journal batch sizes, the
  /// store's own (fdatasync latency), projection and saga positions and lag, the
  /// event feed. Asks the projections, sagas and feed for their state, so it blocks
  /// briefly: call it from an ordinary thread (an HTTP handler), not from an actor.
  /// docs/metrics.md lists every metric.
  std::string metrics_text() const;

  /// The store this node writes to.
  const std::shared_ptr<journal>& store() const;

  /// The actor system (for applications that add their own actors).
  caf::actor_system& system();

  const node_options& options() const;

private:
  caf::actor spawn_saga(std::shared_ptr<const saga_model> model, saga_options opts,
                        fence_token fence);

  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace cairn
