// Internals shared by the PostgreSQL journal, snapshot store and tests: opening a pool
// on a prepared schema, and the LISTEN connection that wakes a journal's follower.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "cairn/postgres_journal.hpp"
#include "pg_client.hpp"

namespace cairn::pg {

/// A pool of `links` connections on `options.schema`, created or migrated to `target`.
expected<std::shared_ptr<client>> open_client(const std::string& conninfo,
                                              const postgres_options& options, size_t links,
                                              int target);

/// open_postgres_journal with the schema at version `target` (tests of migrations).
expected<std::shared_ptr<journal>> open_journal_at(const std::string& conninfo,
                                                   const postgres_options& options,
                                                   int target);

namespace testing {
/// While set, every journal read fails with unavailable (tests of failed catch-up reads).
extern std::atomic<bool> fail_reads;
} // namespace testing

/// A connection that LISTENs on one channel and calls `on_wake` for each notification and
/// when it is lost. ensure() (re)connects it; call it from the follower's thread.
class listener_link {
public:
  /// Calls on_wake with the payloads of notifications, or with none when the
  /// connection is lost (the follower then reads the head itself).
  void start(std::shared_ptr<client> c, std::string channel,
             std::function<void(std::vector<std::string>)> on_wake);
  /// Connects and LISTENs if not listening; false if that failed (poll meanwhile).
  bool ensure();
  void stop();

private:
  std::mutex mutex_;
  std::shared_ptr<client> client_;
  std::string channel_;
  std::function<void(std::vector<std::string>)> on_wake_;
  std::shared_ptr<link> link_;
  bool listening_ = false;
};

} // namespace cairn::pg
