// cluster_hooks: what a node asks of the cluster it is a member of (cairn::cluster):
// whether a command runs here or elsewhere, and the fence its appends carry.
// A node without hooks (the default) runs everything itself, unfenced.
#pragma once

#include <functional>
#include <string>

#include "cairn/command.hpp"
#include "cairn/expected.hpp"
#include "cairn/journal.hpp"

namespace cairn {

class cluster_hooks {
public:
  using reply_handler = std::function<void(expected<command_reply>)>;

  virtual ~cluster_hooks() = default;

  /// Called by node::send_command for every command, on the sender's thread; keep it
  /// quick. Returns true if the cluster took the command: it forwards it to the
  /// stream's owner, or holds it until the shard has one, and answers `on_reply`
  /// itself, exactly once. Returns false to run it on this node; it may then have
  /// wrapped `on_reply` (to see the command finish) but left `cmd` as it came.
  virtual bool take(command_message& cmd, reply_handler& on_reply) = 0;

  /// The fence for appends to `stream` by a writer starting on this node now (an
  /// aggregate recovering): the lease of the stream's shard and the epoch this node
  /// holds it under, or an inactive token if this node does not hold it. Aggregates
  /// ask again before each command and stop once the answer changes.
  virtual fence_token fence_for(const stream_id& stream) const = 0;

  /// An aggregate of `stream` stopped because its fence went stale: found before a
  /// command (`by_store` false) or refused by the store (`by_store` true).
  virtual void fenced(const stream_id& stream, bool by_store) = 0;

  /// Saga type `name` was registered on this node. One member of the cluster runs
  /// each saga type: the cluster claims the saga's lease and calls node::run_saga()
  /// on the member that holds it (and node::stop_saga() when it loses it).
  virtual void saga_registered(const std::string& name) = 0;

  /// The fence of saga type `name`'s lease while this member holds it, else inactive.
  virtual fence_token saga_fence(const std::string& name) const = 0;
};

} // namespace cairn
