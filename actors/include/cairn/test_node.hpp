// test_node: a node on an in-memory store with a small scheduler, for application
// integration tests (usable from Catch2 or any other framework).
#pragma once

#include <cstddef>
#include <memory>

#include "cairn/memory_journal.hpp"
#include "cairn/node.hpp"

namespace cairn::testkit {

class test_node {
public:
  /// A node with `threads` scheduler threads over `store` (a fresh memory journal by
  /// default), logging only warnings, with `opts` and optional snapshots.
  explicit test_node(size_t threads = 2, std::shared_ptr<journal> store = make_memory_journal(),
                     node_options opts = quiet(), std::shared_ptr<snapshot_store> snapshots = nullptr);

  /// Default options with log level "warn".
  static node_options quiet() {
    node_options o;
    o.log_level = "warn";
    return o;
  }
  ~test_node();

  node& get() { return *node_; }
  node* operator->() { return node_.get(); }
  node& operator*() { return *node_; }
  journal& store() { return *node_->store(); }

private:
  std::unique_ptr<node_config> config_;
  std::unique_ptr<node> node_;
};

} // namespace cairn::testkit
