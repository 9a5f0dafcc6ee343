// test_node: an in-memory node for integration tests.
#include "cairn/test_node.hpp"

#include "cairn/node_config.hpp"

namespace cairn::testkit {

test_node::test_node(size_t threads, std::shared_ptr<journal> store, node_options opts,
                     std::shared_ptr<snapshot_store> snapshots)
  : config_(std::make_unique<node_config>()) {
  config_->set("scheduler.max-threads", threads);
  config_->options = std::move(opts);
  node_ = std::make_unique<node>(*config_, std::move(store), std::move(snapshots));
}

test_node::~test_node() {
  node_.reset(); // stops the actor system before its config goes
}

} // namespace cairn::testkit
