// forwarding: the CAF side of a cluster member. Its endpoint (published over the io
// middleman, TLS when configured) takes batches of commands other members forward;
// one forwarder per peer batches this member's commands for that peer, pipelined, and
// fails them with unavailable when the peer goes down (CAF 0.17 does not).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "cluster_router.hpp"

namespace cairn {

/// Registers the messages members exchange (on every member, under the same names).
void add_cluster_message_types(caf::actor_system_config& cfg);

/// Called when member `name` introduced itself with its endpoint (say_hello).
using hello_handler = std::function<void(const std::string& name, caf::actor endpoint)>;

/// The actor other members forward commands to; it hands them to `router`.
caf::actor spawn_endpoint(caf::actor_system& sys, std::shared_ptr<cluster_router> router,
                          hello_handler on_hello);

/// Tells `remote` (another member's endpoint, just connected to) this member's name
/// and endpoint, so that it forwards over the same connection instead of dialing back:
/// one connection per pair of members.
void say_hello(const caf::actor& remote, const std::string& name, const caf::actor& endpoint);

/// A link to `remote` (another member's endpoint): batches up to `batch` commands or
/// for `delay`, then sends them in one message; replies come back in one message per
/// batch. Once `remote` is down, every command it has not answered gets unavailable.
std::shared_ptr<peer_link> make_peer_link(caf::actor_system& sys, caf::actor remote,
                                          std::string member, size_t batch,
                                          std::chrono::nanoseconds delay);

/// Asks `remote` (an endpoint) for its member name, waiting at most `timeout`.
expected<std::string> ask_member_name(caf::actor_system& sys, const caf::actor& remote,
                                      std::chrono::nanoseconds timeout);

} // namespace cairn
