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
  virtual ~cluster_hooks() = default;

  /// Called by node::send_command for every command, on the sender's thread; keep it
  /// quick. Returns false to run the command on this node (the node goes on as
  /// without a cluster), true if the cluster took it: it forwarded it to the stream's
  /// owner, or holds it until the stream's shard has an owner, and answers
  /// `on_reply` itself (exactly once). When it returns false, `cmd` and `on_reply`
  /// must be left as they came.
  virtual bool take(command_message& cmd, std::function<void(expected<command_reply>)>& on_reply) = 0;

  /// The fence for appends to `stream` by a writer starting on this node now (an
  /// aggregate recovering, a saga manager starting): the lease of the stream's shard
  /// (or of the saga type owning the stream's category) and the epoch this node holds
  /// it under. An inactive token if this node does not hold it: the writer then
  /// refuses its commands with errc::fenced.
  virtual fence_token fence_for(const stream_id& stream) const = 0;
};

} // namespace cairn
