// pg_link: one libpq connection in non-blocking pipeline mode, driven by Boost.Asio on
// Cairn's PostgreSQL I/O thread. Internal to cairn::postgres.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <libpq-fe.h>

#include "cairn/expected.hpp"
#include "cairn/postgres_journal.hpp"

namespace cairn::pg {

struct result_deleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
/// One statement's result (always in binary format).
using result = std::unique_ptr<PGresult, result_deleter>;

/// One parameter, sent in binary format (or text when `text` is set).
struct param {
  Oid type = 0;
  std::string value;
  bool text = false;
};

/// One statement of a pipeline.
struct query {
  std::string sql;
  std::vector<param> params;
  /// Run as a prepared statement (prepared on the connection the first time it runs
  /// there, in the same pipeline): for a statement sent again and again, it saves the
  /// server parsing and planning it each time.
  bool prepared = false;
};

/// Types of the parameters we send.
inline constexpr Oid int8_oid = 20, text_oid = 25, bytea_oid = 17, int4_oid = 23;
inline constexpr Oid int4_array_oid = 1007;
inline constexpr Oid int8_array_oid = 1016, text_array_oid = 1009, bytea_array_oid = 1001;

/// What a pipeline produced: one result per query, or the error that stopped it.
/// `lost` says the connection broke, so the outcome of a COMMIT in flight is unknown.
struct pipeline_outcome {
  std::vector<result> results;
  std::string error;      ///< empty if every statement succeeded
  std::string sqlstate;   ///< of the first failed statement
  std::string constraint; ///< of the first failed statement, if the server named one
  bool lost = false;      ///< the connection failed (not just a statement)
  bool timed_out = false; ///< lost because no answer came within request_timeout
  bool ok() const { return error.empty(); }
};

class link {
public:
  /// Connects (blocking the calling thread, at most options.connect_timeout), with TCP
  /// keepalives and the server-side timeouts of `options` (each only where `conninfo`
  /// does not set it), checks the server's version and switches to non-blocking
  /// pipeline mode. Errors name what is wrong.
  static expected<std::unique_ptr<link>> connect(boost::asio::io_context& io,
                                                 const std::string& conninfo,
                                                 const postgres_options& options);
  ~link();
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  /// Sends `queries` as one pipeline (ended by a sync: one implicit transaction unless
  /// they BEGIN one) and calls `done` with their results. Call on the I/O thread only.
  /// Pipelines may be sent while earlier ones are still in flight: the server runs them
  /// in order and each `done` runs in that order. Without an answer within
  /// request_timeout the connection is given up and every pipeline in flight gets a
  /// lost, timed-out outcome; so does any in flight when the connection fails.
  void async_run(std::vector<query> queries, std::function<void(pipeline_outcome)> done);

  /// Waits for server messages without a pipeline in flight (LISTEN): `on_notify` runs
  /// for each batch of notifications, `on_lost` once if the connection fails. I/O thread.
  void async_listen(std::function<void(std::vector<std::string>)> on_notify,
                    std::function<void()> on_lost);

  bool broken() const;
  /// False if the server closed the connection (read without waiting). I/O thread, with
  /// no pipeline in flight.
  bool check_alive();
  int server_version() const { return PQserverVersion(conn_); }

  struct run_state; ///< one pipeline in flight
  struct run_queue;

private:
  link(boost::asio::io_context& io, PGconn* conn, std::chrono::milliseconds request_timeout);
  void arm_timer();
  void wait(boost::asio::posix::stream_descriptor::wait_type what);
  void pump();
  void read();
  void finish(const std::shared_ptr<run_state>& st);
  /// The connection is given up: every pipeline in flight ends as lost.
  void fail_all(const std::string& why, bool timed_out = false);

  PGconn* conn_;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds request_timeout_;
  std::atomic<bool> lost_{false};
  std::map<std::string, std::string> prepared_; ///< SQL -> statement name, I/O thread
  uint64_t statements_ = 0;                     ///< names given so far
  std::shared_ptr<run_queue> queue_;
};

/// Binary encoders and decoders for parameters and result columns.
void put_u32(std::string& out, uint32_t v);
void put_u64(std::string& out, uint64_t v);
std::string int8_value(int64_t v);
/// Builds a one-dimensional array of non-null elements in PostgreSQL's binary format.
class array_builder {
public:
  explicit array_builder(Oid element) : element_(element) {}
  void add(const void* data, size_t size);
  void add(const std::string& s) { add(s.data(), s.size()); }
  void add_int8(int64_t v);
  void add_int4(int32_t v);
  size_t size() const { return count_; }
  /// The finished value (header plus elements).
  std::string value() const;

private:
  Oid element_;
  size_t count_ = 0;
  std::string body_;
};
int64_t get_int8(const PGresult* r, int row, int col);
std::string get_bytes(const PGresult* r, int row, int col);
/// A one-dimensional bigint[] value without NULLs (empty if it is anything else).
std::vector<int64_t> get_int8_array(const PGresult* r, int row, int col);

/// Quotes an identifier (schema name) for SQL text.
std::string quote_ident(const std::string& name);

} // namespace cairn::pg
