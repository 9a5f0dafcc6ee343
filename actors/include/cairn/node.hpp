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
#include "cairn/journal.hpp"
#include "cairn/node_options.hpp"
#include "cairn/projection.hpp"
#include "cairn/query.hpp"
#include "cairn/snapshot_store.hpp"

namespace caf {
class actor_system;
}

namespace cairn {

class node_config;

/// Receives a command's outcome, on one of the node's scheduler threads: keep it
/// short and never block in it.
using reply_handler = std::function<void(expected<command_reply>)>;

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
  /// invalid_argument (category already registered, or two of A's commands or
  /// events share a type name).
  template <class A>
  expected<void> register_aggregate() {
    return register_aggregate<A>(options().aggregates);
  }

  /// As above, with this type's own snapshot and passivation settings.
  template <class A>
  expected<void> register_aggregate(aggregate_options opts) {
    using traits = aggregate_traits<A>;
    for (auto problem : {traits::command_codec::check_names(), traits::event_codec::check_names()})
      if (!problem.empty())
        return error{errc::invalid_argument, std::string{traits::category()} + ": " + problem};
    return add_aggregate(make_aggregate_model<A>(), opts);
  }

  /// Hosts projection P: its actor rebuilds the read model from the whole store,
  /// then follows new commits. Call before querying P. Errors: invalid_argument
  /// (name already registered).
  template <class P>
  expected<void> register_projection() {
    return add_projection(make_projection_model<P>());
  }

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

  /// Type-erased forms of the calls above.
  void send_command(command_message cmd, reply_handler on_reply);
  expected<command_reply> execute_command(command_message cmd);
  void send_query(std::string_view projection, query_job job);
  expected<void> add_aggregate(std::shared_ptr<const aggregate_model> model,
                               aggregate_options opts);
  expected<void> add_projection(std::shared_ptr<const projection_model> model);

  /// Stops routers (and their aggregates), projections and the journal actor, and
  /// waits until they have terminated. Commands still in flight fail with
  /// unavailable. Idempotent; called by the destructor.
  void shutdown();

  /// The store this node writes to.
  const std::shared_ptr<journal>& store() const;

  /// The actor system (for applications that add their own actors).
  caf::actor_system& system();

  const node_options& options() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace cairn
