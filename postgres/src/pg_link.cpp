// pg_link: libpq's non-blocking pipeline mode on a Boost.Asio descriptor.
#include "pg_link.hpp"

#include <cstring>

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

struct link::run_state {
  std::function<void(pipeline_outcome)> done;
  pipeline_outcome out;
  size_t queries = 0;
  bool in_query = false; ///< a result of the current query was seen, its NULL not yet
};

expected<std::unique_ptr<link>> link::connect(boost::asio::io_context& io,
                                              const std::string& conninfo,
                                              std::chrono::milliseconds timeout) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (!parsed) {
    std::string why = trimmed(parse_error ? parse_error : "out of memory");
    if (parse_error) PQfreemem(parse_error);
    return error{errc::invalid_argument, "invalid PostgreSQL connection string: " + why};
  }
  PQconninfoFree(parsed);
  // libpq counts whole seconds and treats 1 as 2.
  auto seconds = std::to_string(std::max<long long>(2, (timeout.count() + 999) / 1000));
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {conninfo.c_str(), seconds.c_str(), "cairn", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
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
  return std::unique_ptr<link>(new link(io, conn));
}

link::link(boost::asio::io_context& io, PGconn* conn)
    : conn_(conn), socket_(io, PQsocket(conn)) {}

link::~link() {
  boost::system::error_code ignored;
  socket_.release(); // libpq owns the descriptor
  PQfinish(conn_);
}

bool link::broken() const { return lost_ || PQstatus(conn_) != CONNECTION_OK; }

void link::async_run(std::vector<query> queries, std::function<void(pipeline_outcome)> done) {
  auto st = std::make_shared<run_state>();
  st->done = std::move(done);
  st->queries = queries.size();
  if (broken()) return finish(st, "the connection to PostgreSQL is closed");
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
    if (!PQsendQueryParams(conn_, q.sql.c_str(), static_cast<int>(q.params.size()),
                           types.data(), values.data(), lengths.data(), formats.data(), 1))
      return finish(st, trimmed(PQerrorMessage(conn_)));
  }
  if (!PQpipelineSync(conn_)) return finish(st, trimmed(PQerrorMessage(conn_)));
  flush(st);
}

void link::flush(std::shared_ptr<run_state> st) {
  for (;;) {
    int r = PQflush(conn_);
    if (r == 0) return read(st);
    if (r < 0) return finish(st, trimmed(PQerrorMessage(conn_)));
    // Take what the server already sent, so it never blocks on us while we send.
    if (!PQconsumeInput(conn_)) return finish(st, trimmed(PQerrorMessage(conn_)));
    socket_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                       [this, st](const boost::system::error_code& ec) {
                         if (ec == boost::asio::error::operation_aborted)
                           return st->done(pipeline_outcome{{}, "cancelled", {}, true});
                         if (ec) return finish(st, ec.message());
                         flush(st);
                       });
    return;
  }
}

void link::read(std::shared_ptr<run_state> st) {
  for (;;) {
    if (PQisBusy(conn_)) {
      socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this, st](const boost::system::error_code& ec) {
                           if (ec == boost::asio::error::operation_aborted)
                             return st->done(pipeline_outcome{{}, "cancelled", {}, true});
                           if (ec) return finish(st, ec.message());
                           if (!PQconsumeInput(conn_))
                             return finish(st, trimmed(PQerrorMessage(conn_)));
                           read(st);
                         });
      return;
    }
    PGresult* raw = PQgetResult(conn_);
    if (!raw) {
      if (PQstatus(conn_) != CONNECTION_OK) return finish(st, trimmed(PQerrorMessage(conn_)));
      if (!st->in_query) {
        // Nothing between two queries: wait for more rather than spin.
        if (!PQconsumeInput(conn_)) return finish(st, trimmed(PQerrorMessage(conn_)));
        if (!PQisBusy(conn_)) {
          socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                             [this, st](const boost::system::error_code& ec) {
                               if (ec == boost::asio::error::operation_aborted)
                                 return st->done(pipeline_outcome{{}, "cancelled", {}, true});
                               if (ec) return finish(st, ec.message());
                               if (!PQconsumeInput(conn_))
                                 return finish(st, trimmed(PQerrorMessage(conn_)));
                               read(st);
                             });
          return;
        }
      }
      st->in_query = false;
      continue;
    }
    result r(raw);
    auto status = PQresultStatus(raw);
    if (status == PGRES_PIPELINE_SYNC) return finish(st);
    if (st->in_query) continue; // a second result of one query (not used by Cairn)
    st->in_query = true;
    if (status == PGRES_FATAL_ERROR && st->out.error.empty()) {
      st->out.error = trimmed(PQresultErrorMessage(raw));
      const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
      st->out.sqlstate = state ? state : "";
    }
    if (PQstatus(conn_) != CONNECTION_OK) return finish(st, trimmed(PQerrorMessage(conn_)));
    st->out.results.push_back(std::move(r));
  }
}

void link::finish(std::shared_ptr<run_state> st, std::string lost_error) {
  if (!lost_error.empty() || PQstatus(conn_) != CONNECTION_OK) {
    lost_ = true;
    st->out.lost = true;
    if (lost_error.empty()) lost_error = "the connection to PostgreSQL was lost";
    st->out.error = "connection to PostgreSQL lost: " + lost_error;
  } else if (st->out.error.empty() && st->out.results.size() != st->queries) {
    st->out.error = "PostgreSQL answered " + std::to_string(st->out.results.size()) +
                    " of " + std::to_string(st->queries) + " statements";
  }
  auto done = std::move(st->done);
  done(std::move(st->out));
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
