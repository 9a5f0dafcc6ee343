// pg_client: a pool of pg_links served by one Boost.Asio I/O thread. Callers lease a
// connection and run pipelines on it; the caller waits, the I/O thread talks to the server.
#pragma once

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "pg_link.hpp"

namespace cairn::pg {

class client;

/// A connection taken from the pool; goes back on destruction (or is dropped if broken).
/// A dedicated one (client::dedicated) is outside the pool and is dropped instead.
class lease {
public:
  lease(client* owner, std::unique_ptr<link> l, bool pooled = true)
      : owner_(owner), link_(std::move(l)), pooled_(pooled) {}
  lease(lease&&) = default;
  lease& operator=(lease&&) = delete;
  ~lease();

  /// Runs `queries` as one pipeline on this connection and waits for the outcome.
  pipeline_outcome run(std::vector<query> queries);
  pipeline_outcome run(query q);
  /// Sends `queries` as one pipeline without waiting: the outcome comes through the
  /// future. Pipelines started one after the other on a lease run in that order.
  std::future<pipeline_outcome> start(std::vector<query> queries);
  link& raw() { return *link_; }
  /// False if the server has closed this idle connection (no round trip: a read that
  /// does not wait, on the I/O thread). Call with no pipeline in flight on it.
  bool alive();
  /// Gives the connection up instead of returning it (its state is unknown).
  void discard();

private:
  client* owner_;
  std::unique_ptr<link> link_;
  bool pooled_;
};

class client {
public:
  /// Starts the I/O thread and connects once, so a bad conninfo fails here. Links are
  /// set up with `options`' timeouts and keepalives.
  static expected<std::shared_ptr<client>> open(std::string conninfo,
                                                const postgres_options& options,
                                                size_t max_links);
  ~client();

  /// A connection: an idle one, a new one, or the next one returned, waiting at most
  /// request_timeout for one to be returned (then errc::timeout naming the pool size).
  /// After a failed connect, further attempts within the back-off fail at once with the
  /// same error (the back-off doubles from 50 ms up to 2 s and resets on success).
  expected<lease> acquire();

  /// A connection outside the pool (for LISTEN), with the same back-off.
  expected<std::unique_ptr<link>> connect();

  /// A connection of its own for one user (the journal's writer), outside the pool, so
  /// that readers holding every pooled connection never keep it waiting.
  expected<lease> dedicated();

  boost::asio::io_context& io() { return io_; }
  const std::string& conninfo() const { return conninfo_; }

private:
  friend class lease;
  client(std::string conninfo, const postgres_options& options, size_t max_links);
  void give_back(std::unique_ptr<link> l);
  void forget();

  std::string conninfo_;
  postgres_options options_;
  size_t max_links_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;

  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<link>> idle_;
  size_t links_ = 0; ///< leased plus idle
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
  error last_error_;
};

} // namespace cairn::pg
