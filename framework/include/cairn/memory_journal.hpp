// memory_journal: an in-process event store for tests and samples. Nothing survives
// the process. Thread-safe per the journal contract.
#pragma once

#include <memory>

#include "cairn/journal.hpp"

namespace cairn {

/// Creates an empty in-memory journal.
std::shared_ptr<journal> make_memory_journal();

} // namespace cairn
