// query_call: a query on its way to a projection's actor. It runs there, on the
// read model, once the projection has applied the asked position.
#pragma once

#include <cstdint>
#include <memory>

#include "cairn/error.hpp"

namespace cairn {

/// Implemented by the node's typed query helpers. Exactly one of run() or fail() is
/// called; if the call is dropped unanswered (its projection stopped), the
/// destructor of the last reference reports errc::unavailable.
class query_call {
public:
  virtual ~query_call() = default;
  /// Runs on the projection's actor with its read model.
  virtual void run(const void* model) = 0;
  virtual void fail(const error& why) = 0;
};

/// The message form: a shared query_call plus its wait condition.
struct query_job {
  std::shared_ptr<query_call> call;
  uint64_t min_position = 0;
  int64_t timeout_ns = 0;
};

} // namespace cairn
