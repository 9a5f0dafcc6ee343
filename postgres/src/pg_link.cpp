// pg_link: libpq's non-blocking pipeline mode on a Boost.Asio descriptor.
#include "pg_link.hpp"

#include <climits>
#include <cstring>
#include <deque>
#include <map>

#include <boost/asio/post.hpp>

namespace cairn::pg {
namespace {

/// The oldest server we accept (PQserverVersion's numbering).
constexpr int min_server_version = 120000;

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

} // namespace

/// The largest value PostgreSQL accepts in one field or parameter (MaxAllocSize).
constexpr size_t max_param_bytes = 0x3fffffff;

struct link::run_state {
  std::function<void(pipeline_outcome)> done;
  pipeline_outcome out;
  size_t queries = 0;
  bool in_query = false; ///< a result of the current query was seen, its NULL not yet
  std::vector<bool> hidden; ///< per statement sent: a Prepare, whose result is not shown
  size_t seen = 0;          ///< statements whose first result has arrived
  std::vector<std::string> prepares; ///< SQL prepared by this pipeline (forgotten if it fails)
};

/// The pipelines sent and not yet answered, oldest first, and the socket waits in flight.
/// Shared with the waits' handlers, which may run after the link is gone (cancelled).
struct link::run_queue {
  std::deque<std::shared_ptr<run_state>> runs;
  bool alive = true;         ///< false once the link is destroyed
  bool read_waiting = false;
  bool write_waiting = false;
};

namespace {

/// Ends `st` as lost with `why` (the connection's state is unknown).
void fail_run(const std::shared_ptr<link::run_state>& st, const std::string& why, bool timed_out) {
  pipeline_outcome out = std::move(st->out);
  out.error = why;
  out.lost = true;
  out.timed_out = timed_out;
  auto done = std::move(st->done);
  done(std::move(out));
}

} // namespace

expected<std::unique_ptr<link>> link::connect(boost::asio::io_context& io,
                                              const std::string& conninfo,
                                              const postgres_options& options) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (!parsed) {
    std::string why = trimmed(parse_error ? parse_error : "out of memory");
    if (parse_error) PQfreemem(parse_error);
    return error{errc::invalid_argument, "invalid PostgreSQL connection string: " + why};
  }
  std::map<std::string, std::string> given; // what the conninfo sets itself
  for (auto* o = parsed; o->keyword; ++o)
    if (o->val) given[o->keyword] = o->val;
  PQconninfoFree(parsed);
  // Ours come after "dbname" (the expanded conninfo), so each overrides it: add only
  // what the conninfo leaves unset, except connect_timeout (options.connect_timeout
  // is the bound Cairn promises).
  std::vector<std::pair<std::string, std::string>> kv;
  kv.emplace_back("dbname", conninfo);
  // libpq counts whole seconds and treats 1 as 2.
  kv.emplace_back("connect_timeout",
                  std::to_string(std::max<long long>(2, (options.connect_timeout.count() + 999) / 1000)));
  auto fill = [&](const char* key, std::string value) {
    if (!given.count(key)) kv.emplace_back(key, std::move(value));
  };
  fill("application_name", "cairn");
  if (options.keepalive_idle.count() > 0) {
    fill("keepalives", "1");
    fill("keepalives_idle", std::to_string(options.keepalive_idle.count()));
    fill("keepalives_interval", std::to_string(std::max<long long>(1, options.keepalive_interval.count())));
    fill("keepalives_count", std::to_string(std::max(1, options.keepalive_count)));
    auto unacked = options.keepalive_idle + options.keepalive_interval * std::max(1, options.keepalive_count);
    fill("tcp_user_timeout",
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(unacked).count()));
  }
  // Server-side bounds travel in the startup packet (no extra round trip); settings the
  // conninfo's own "options" makes come after ours, so they win.
  std::string server_options;
  auto setting = [&](const char* name, std::chrono::milliseconds v) {
    if (v.count() > 0) server_options += std::string("-c ") + name + "=" + std::to_string(v.count()) + " ";
  };
  setting("statement_timeout", options.statement_timeout);
  setting("lock_timeout", options.lock_timeout);
  setting("idle_in_transaction_session_timeout", options.idle_in_transaction_timeout);
  if (auto it = given.find("options"); it != given.end()) server_options += it->second;
  if (!server_options.empty()) kv.emplace_back("options", server_options);
  std::vector<const char*> keys, values;
  for (auto& [k, v] : kv) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 1);
  if (!conn) return error{errc::unavailable, "cannot connect to PostgreSQL: out of memory"};
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return error{errc::unavailable, "cannot connect to PostgreSQL: " + why};
  }
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr); // "already exists" etc.
  int version = PQserverVersion(conn);
  if (version < min_server_version) {
    PQfinish(conn);
    return error{errc::unavailable, "PostgreSQL server version " + std::to_string(version) +
                                      " is not supported: Cairn needs 12 or newer"};
  }
  if (PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1) {
    std::string why = trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return error{errc::unavailable, "cannot set up the PostgreSQL connection: " + why};
  }
  return std::unique_ptr<link>(new link(io, conn, options.request_timeout));
}

link::link(boost::asio::io_context& io, PGconn* conn, std::chrono::milliseconds request_timeout)
    : conn_(conn), socket_(io, PQsocket(conn)), timer_(io), request_timeout_(request_timeout),
      queue_(std::make_shared<run_queue>()) {}

link::~link() {
  // Pipelines still in flight (the lease was dropped) end here; waits of this link that
  // fire later find `alive` false and touch nothing else.
  queue_->alive = false;
  auto runs = std::move(queue_->runs);
  queue_->runs.clear();
  for (auto& st : runs) fail_run(st, "cancelled", false);
  boost::system::error_code ignored;
  socket_.release(); // libpq owns the descriptor
  PQfinish(conn_);
}

bool link::check_alive() {
  if (!broken() && queue_->runs.empty() && (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK))
    lost_ = true;
  return !broken();
}

bool link::broken() const { return lost_ || PQstatus(conn_) != CONNECTION_OK; }

void link::async_run(std::vector<query> queries, std::function<void(pipeline_outcome)> done) {
  auto st = std::make_shared<run_state>();
  st->done = std::move(done);
  st->queries = queries.size();
  if (broken()) return fail_run(st, "connection to PostgreSQL lost: the connection to PostgreSQL is closed", false);
  for (auto& q : queries)
    for (auto& p : q.params)
      if (p.value.size() > max_param_bytes) {
        // Refused before anything is sent: the connection stays usable.
        st->out.error = "a parameter of " + std::to_string(p.value.size()) +
                        " bytes exceeds PostgreSQL's limit of " + std::to_string(max_param_bytes) +
                        " bytes per value";
        st->out.sqlstate = "54000"; // program_limit_exceeded
        auto d = std::move(st->done);
        return d(std::move(st->out));
      }
  queue_->runs.push_back(st);
  if (queue_->runs.size() == 1) arm_timer();
  for (auto& q : queries) {
    std::vector<Oid> types;
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (auto& p : q.params) {
      types.push_back(p.type);
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.text ? 0 : 1);
    }
    int n = static_cast<int>(q.params.size());
    bool sent;
    if (q.prepared) {
      auto it = prepared_.find(q.sql);
      if (it == prepared_.end()) {
        // A fresh name each time, so a Prepare that failed never collides with one that
        // the server kept.
        it = prepared_.emplace(q.sql, "cairn_" + std::to_string(++statements_)).first;
        if (!PQsendPrepare(conn_, it->second.c_str(), q.sql.c_str(), n, types.data()))
          return fail_all(trimmed(PQerrorMessage(conn_)));
        st->hidden.push_back(true);
        st->prepares.push_back(q.sql);
      }
      sent = PQsendQueryPrepared(conn_, it->second.c_str(), n, values.data(), lengths.data(),
                                 formats.data(), 1);
    } else {
      sent = PQsendQueryParams(conn_, q.sql.c_str(), n, types.data(), values.data(),
                               lengths.data(), formats.data(), 1);
    }
    if (!sent) return fail_all(trimmed(PQerrorMessage(conn_)));
    st->hidden.push_back(false);
  }
  if (!PQpipelineSync(conn_)) return fail_all(trimmed(PQerrorMessage(conn_)));
  pump();
}

void link::arm_timer() {
  if (request_timeout_.count() <= 0) return;
  timer_.expires_after(request_timeout_);
  auto front = queue_->runs.front();
  auto q = queue_;
  timer_.async_wait([this, q, front](const boost::system::error_code& ec) {
    if (ec || !q->alive || q->runs.empty() || q->runs.front() != front) return;
    fail_all("no answer within " + std::to_string(request_timeout_.count()) +
               " ms (postgres_options::request_timeout); the connection is given up",
             true);
  });
}

void link::wait(boost::asio::posix::stream_descriptor::wait_type what) {
  bool reading = what == boost::asio::posix::stream_descriptor::wait_read;
  bool& waiting = reading ? queue_->read_waiting : queue_->write_waiting;
  if (waiting) return;
  waiting = true;
  auto q = queue_;
  socket_.async_wait(what, [this, q, reading](const boost::system::error_code& ec) {
    (reading ? q->read_waiting : q->write_waiting) = false;
    if (!q->alive || q->runs.empty()) return; // the link is gone or has nothing in flight
    if (ec) return fail_all(ec == boost::asio::error::operation_aborted ? "cancelled" : ec.message());
    if (reading && !PQconsumeInput(conn_)) return fail_all(trimmed(PQerrorMessage(conn_)));
    pump();
  });
}

void link::pump() {
  // Send what libpq still holds; while it cannot, the server may be waiting for us to
  // read (libpq's advice: take input, then try again), which the read side below does.
  if (!queue_->write_waiting) {
    int r = PQflush(conn_);
    if (r < 0) return fail_all(trimmed(PQerrorMessage(conn_)));
    if (r == 1) {
      if (!PQconsumeInput(conn_)) return fail_all(trimmed(PQerrorMessage(conn_)));
      wait(boost::asio::posix::stream_descriptor::wait_write);
    }
  }
  read();
}

void link::read() {
  auto& runs = queue_->runs;
  while (!runs.empty()) {
    auto& st = runs.front();
    if (PQisBusy(conn_)) return wait(boost::asio::posix::stream_descriptor::wait_read);
    PGresult* raw = PQgetResult(conn_);
    if (!raw) {
      if (PQstatus(conn_) != CONNECTION_OK) return fail_all(trimmed(PQerrorMessage(conn_)));
      if (!st->in_query) {
        // Nothing between two queries: wait for more rather than spin.
        if (!PQconsumeInput(conn_)) return fail_all(trimmed(PQerrorMessage(conn_)));
        if (!PQisBusy(conn_)) return wait(boost::asio::posix::stream_descriptor::wait_read);
      }
      st->in_query = false;
      continue;
    }
    result r(raw);
    auto status = PQresultStatus(raw);
    if (status == PGRES_PIPELINE_SYNC) {
      auto done = std::move(runs.front());
      runs.pop_front();
      timer_.cancel();
      if (!runs.empty()) arm_timer();
      finish(done);
      continue;
    }
    if (st->in_query) continue; // a second result of one query (not used by Cairn)
    st->in_query = true;
    bool hidden = st->seen < st->hidden.size() && st->hidden[st->seen];
    ++st->seen;
    if (status == PGRES_FATAL_ERROR && st->out.error.empty()) {
      st->out.error = trimmed(PQresultErrorMessage(raw));
      const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
      st->out.sqlstate = state ? state : "";
      const char* constraint = PQresultErrorField(raw, PG_DIAG_CONSTRAINT_NAME);
      st->out.constraint = constraint ? constraint : "";
    }
    if (PQstatus(conn_) != CONNECTION_OK) return fail_all(trimmed(PQerrorMessage(conn_)));
    if (!hidden) st->out.results.push_back(std::move(r));
  }
}

void link::finish(const std::shared_ptr<run_state>& st) {
  // A failed pipeline may have failed its Prepare: prepare again (under a new name) next time.
  if (!st->out.error.empty())
    for (auto& sql : st->prepares) prepared_.erase(sql);
  if (st->out.error.empty() && st->out.results.size() != st->queries)
    st->out.error = "PostgreSQL answered " + std::to_string(st->out.results.size()) +
                    " of " + std::to_string(st->queries) + " statements";
  auto done = std::move(st->done);
  done(std::move(st->out));
}

void link::fail_all(const std::string& why, bool timed_out) {
  lost_ = true;
  timer_.cancel();
  boost::system::error_code ignored;
  socket_.cancel(ignored);
  auto runs = std::move(queue_->runs);
  queue_->runs.clear();
  for (auto& st : runs) fail_run(st, "connection to PostgreSQL lost: " + why, timed_out);
}

void link::async_listen(std::function<void(std::vector<std::string>)> on_notify,
                        std::function<void()> on_lost) {
  socket_.async_wait(
    boost::asio::posix::stream_descriptor::wait_read,
    [this, on_notify = std::move(on_notify), on_lost = std::move(on_lost)](
      const boost::system::error_code& ec) mutable {
      if (ec == boost::asio::error::operation_aborted) return;
      if (ec || !PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) {
        lost_ = true;
        return on_lost();
      }
      std::vector<std::string> payloads;
      while (PGnotify* n = PQnotifies(conn_)) {
        payloads.emplace_back(n->extra ? n->extra : "");
        PQfreemem(n);
      }
      if (!payloads.empty()) on_notify(std::move(payloads));
      async_listen(std::move(on_notify), std::move(on_lost));
    });
}

void put_u32(std::string& out, uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}

void put_u64(std::string& out, uint64_t v) {
  put_u32(out, static_cast<uint32_t>(v >> 32));
  put_u32(out, static_cast<uint32_t>(v));
}

std::string int8_value(int64_t v) {
  std::string out;
  put_u64(out, static_cast<uint64_t>(v));
  return out;
}

void array_builder::add(const void* data, size_t size) {
  put_u32(body_, static_cast<uint32_t>(size));
  body_.append(static_cast<const char*>(data), size);
  ++count_;
}

void array_builder::add_int4(int32_t v) {
  put_u32(body_, 4);
  put_u32(body_, static_cast<uint32_t>(v));
  ++count_;
}

void array_builder::add_int8(int64_t v) {
  put_u32(body_, 8);
  put_u64(body_, static_cast<uint64_t>(v));
  ++count_;
}

std::string array_builder::value() const {
  std::string out;
  out.reserve(20 + body_.size());
  put_u32(out, 1); // dimensions
  put_u32(out, 0); // no NULLs
  put_u32(out, element_);
  put_u32(out, static_cast<uint32_t>(count_));
  put_u32(out, 1); // lower bound
  out += body_;
  return out;
}

int64_t get_int8(const PGresult* r, int row, int col) {
  auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  uint64_t v = 0;
  int len = PQgetlength(r, row, col);
  for (int i = 0; i < len; ++i) v = (v << 8) | p[i];
  if (len == 4 && (v & 0x80000000u)) v |= 0xffffffff00000000ull; // int4 sign
  return static_cast<int64_t>(v);
}

std::vector<int64_t> get_int8_array(const PGresult* r, int row, int col) {
  std::vector<int64_t> out;
  auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  size_t len = static_cast<size_t>(PQgetlength(r, row, col));
  auto u32 = [&](size_t at) {
    return (uint32_t{p[at]} << 24) | (uint32_t{p[at + 1]} << 16) | (uint32_t{p[at + 2]} << 8) | p[at + 3];
  };
  // Header: dimensions, has-NULLs flag, element type, then per dimension size and lower bound.
  if (len < 12 || u32(0) != 1 || u32(4) != 0 || len < 20) return out;
  size_t n = u32(12), at = 20;
  if (len != at + n * 12) return out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i, at += 12) {
    if (u32(at) != 8) return {};
    out.push_back(static_cast<int64_t>((uint64_t{u32(at + 4)} << 32) | u32(at + 8)));
  }
  return out;
}

std::string get_bytes(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

} // namespace cairn::pg
