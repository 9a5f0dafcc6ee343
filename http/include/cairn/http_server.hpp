// http_server: a node's HTTP API (library cairn::http, docs/http.md). Commands in
// their JSON form, named queries with read-your-writes, the global event stream as
// Server-Sent Events, health, readiness and metrics; on Asio threads of its own.
//
//   cairn::http_server http{node, cfg.http};
//   http.expose_aggregate<bank::account>();
//   http.add_query<bank::balances>("balance", [](const bank::balances& b,
//                                                const cairn::query_params& q) { ... });
//   if (auto ok = http.start(); !ok) ...
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "cairn/http_options.hpp"
#include "cairn/json_codec.hpp"
#include "cairn/node.hpp"

namespace cairn {

/// A query's URL parameters, decoded, without `at_least`.
using query_params = std::map<std::string, std::string>;

namespace detail {

/// Parses `data` as the alternative of Variant whose type name is `type`: nullopt
/// if none has that name, else the value or an invalid_argument error.
template <class Variant, size_t... I>
std::optional<expected<Variant>> variant_from_json(const std::string& type,
                                                   const nlohmann::json& data,
                                                   std::index_sequence<I...>) {
  std::optional<expected<Variant>> out;
  auto try_one = [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (out || schema_of<T>().name != type) return;
    auto x = from_json<T>(data);
    if (x) out.emplace(Variant{std::in_place_type<T>, std::move(*x)});
    else out.emplace(std::move(x).error());
  };
  (try_one(static_cast<std::variant_alternative_t<I, Variant>*>(nullptr)), ...);
  return out;
}

template <class T>
expected<nlohmann::json> as_json_result(T&& x) {
  if constexpr (std::is_same_v<std::decay_t<T>, expected<nlohmann::json>>) return std::forward<T>(x);
  else return nlohmann::json(std::forward<T>(x));
}

} // namespace detail

class http_server {
public:
  /// Turns a command's JSON form into a command for stream `category`-`id`.
  /// Errors: not_found (no command of that type), invalid_argument (bad data).
  using command_parser = std::function<expected<command_message>(
    std::string id, const std::string& type, const nlohmann::json& data, metadata meta)>;
  /// Renders an event's payload as JSON; nullopt if it cannot (the stream then
  /// carries the payload as base64).
  using event_renderer = std::function<std::optional<nlohmann::json>(const envelope&)>;
  /// Runs a named query and hands its JSON result to `done` (on any thread).
  using query_runner =
    std::function<void(node&, const query_params&, uint64_t at_least,
                       std::function<void(expected<nlohmann::json>)> done)>;

  /// Serves `n`, which must outlive the server. Nothing listens before start().
  http_server(node& n, http_options opts);
  /// Stops (see stop()).
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Accepts aggregate A's commands at POST /commands/{A::category}/{id} and
  /// renders A's events as JSON on the event stream. Register A on the node too.
  template <class A>
  http_server& expose_aggregate() {
    using traits = aggregate_traits<A>;
    using cmd_t = typename traits::command_type;
    using ev_t = typename traits::event_type;
    std::string category{traits::category()};
    add_command_parser(category, [category](std::string id, const std::string& type,
                                            const nlohmann::json& data,
                                            metadata meta) -> expected<command_message> {
      auto cmd = detail::variant_from_json<cmd_t>(
        type, data, std::make_index_sequence<std::variant_size_v<cmd_t>>{});
      if (!cmd) return error{errc::not_found, category + " has no command \"" + type + "\""};
      if (!*cmd) return std::move(*cmd).error();
      return make_command<A>(std::move(id), **cmd, std::move(meta));
    });
    add_event_renderer(category, [](const envelope& e) -> std::optional<nlohmann::json> {
      auto ev = variant_codec<ev_t>::decode(e);
      if (!ev) return std::nullopt;
      return std::visit([](const auto& x) { return to_json(x); }, *ev);
    });
    return *this;
  }

  /// Serves GET /queries/{name}?...: `fn(const P&, const query_params&)` runs on
  /// projection P's actor and returns nlohmann::json or expected<nlohmann::json>
  /// (invalid_argument becomes 400, not_found 404). `at_least=N` waits until P has
  /// applied position N, as node::query does. P also counts for GET /ready.
  template <class P, class F>
  http_server& add_query(std::string name, F fn) {
    std::string projection{projection_traits<P>::name()};
    watch_projection(projection);
    add_query_runner(std::move(name),
                     [fn](node& n, const query_params& params, uint64_t at_least,
                          std::function<void(expected<nlohmann::json>)> done) {
                       n.query_async<P>(
                         [fn, params](const P& p) { return detail::as_json_result(fn(p, params)); },
                         [done](expected<expected<nlohmann::json>> r) {
                           if (!r) return done(std::move(r).error());
                           done(std::move(*r));
                         },
                         at_least);
                     });
    return *this;
  }

  /// GET /ready also waits for projection P to reach the store's head.
  template <class P>
  http_server& watch_projection() {
    watch_projection(std::string{projection_traits<P>::name()});
    return *this;
  }

  /// Checks the options (validate()), binds and starts the I/O threads. Errors:
  /// invalid_argument (options), unavailable (cannot listen or load TLS files).
  expected<void> start();

  /// The port it listens on (after start()).
  uint16_t port() const;

  /// Closes the listener and joins the I/O threads: nothing is served after it.
  /// Open connections close when the server is destroyed (or, for requests still
  /// waiting for the node, once it answers). Idempotent.
  void stop();

  const http_options& options() const;

  /// Connections open now (event streams included).
  size_t connections() const;

  /// Type-erased forms of the registrations above; call them before start().
  void add_command_parser(std::string category, command_parser parse);
  void add_event_renderer(std::string category, event_renderer render);
  void add_query_runner(std::string name, query_runner run);
  void watch_projection(std::string projection);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace cairn
