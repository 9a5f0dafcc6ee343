// postgres_journal: the journal on PostgreSQL. One transaction per batch (group commit):
// lock the head row (the serialisation point that keeps global positions gap-free across
// writers, docs/postgres.md), read the batch's streams' versions, decide each request,
// insert the accepted events with one multi-row INSERT, move the head, NOTIFY, COMMIT.
#include "cairn/postgres_journal.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <optional>
#include <thread>

#include "pg_client.hpp"
#include "pg_rows.hpp"
#include "pg_schema.hpp"
#include "postgres_internal.hpp"

namespace cairn {
namespace {

using namespace pg;

constexpr size_t read_chunk = 8192;

query sql(std::string text) { return query{std::move(text), {}}; }

int64_t clamp(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, uint64_t{INT64_MAX}));
}

/// The bytes an event takes in the batch's arrays (metadata as encode_meta writes it).
size_t event_bytes(const event_data& e) {
  size_t n = e.type.size() + e.payload.size() + 12;
  n += e.meta.correlation_id.size() + e.meta.causation_id.size() + 12;
  for (auto& [k, v] : e.meta.entries) n += k.size() + v.size() + 8;
  return n;
}

size_t request_bytes(const append_request& request) {
  size_t n = request.stream.str().size();
  for (auto& e : request.events) n += event_bytes(e);
  return n;
}

/// The most an append may carry: the largest value PostgreSQL takes is 1 GiB, and the
/// append's events travel in one array per column.
constexpr size_t max_append_bytes_limit = size_t{512} << 20;

/// Why `request` cannot be stored, if it cannot: checked before the batch is sent, so a
/// bad append fails alone and never the batch it came in.
expected<void> check_request(const append_request& request, size_t max_bytes) {
  if (auto valid = request.stream.validate(); !valid) return valid;
  if (!is_text(request.stream.str()))
    return error{errc::invalid_argument,
                 "stream name " + request.stream.str() + " is not UTF-8 text (PostgreSQL "
                 "stores stream names as text)"};
  if (request.events.empty())
    return error{errc::invalid_argument,
                 "append to stream " + request.stream.str() + " has no events"};
  for (size_t i = 0; i < request.events.size(); ++i) {
    const auto& type = request.events[i].type;
    if (type.empty() || !is_text(type))
      return error{errc::invalid_argument,
                   "event " + std::to_string(i) + " of the append to stream " +
                     request.stream.str() +
                     (type.empty() ? " has no type name" : " has a type name that is not UTF-8 text")};
  }
  if (auto bytes = request_bytes(request); bytes > max_bytes)
    return error{errc::invalid_argument,
                 "append to stream " + request.stream.str() + " holds " + std::to_string(bytes) +
                   " bytes of events; the limit is " + std::to_string(max_bytes) +
                   " bytes per append (postgres_options::max_append_bytes, at most 512 MiB: "
                   "PostgreSQL takes at most 1 GiB per value)"};
  return {};
}

/// The head row's position, or corrupt if the row is missing (never taken as 0: positions
/// would restart and every append would collide with stored events).
expected<uint64_t> head_of(const PGresult* r, const std::string& table) {
  if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
    return error{errc::corrupt, "the head row of " + table + " (id = 1) is missing: the store's "
                                "global position is unknown; restore the row with the highest "
                                "stored position (SELECT max(position) FROM the events table)"};
  return static_cast<uint64_t>(get_int8(r, 0, 0));
}

class postgres_journal final : public journal {
public:
  postgres_journal(std::shared_ptr<client> c, const postgres_options& o)
      : client_(std::move(c)), options_(o), t_(o.schema) {}

  ~postgres_journal() override {
    {
      std::lock_guard<std::mutex> lock(follow_mutex_);
      stopping_ = true;
    }
    follow_wake_.notify_all();
    if (follower_.joinable()) follower_.join();
    listen_.stop();
  }

  expected<void> start() {
    auto c = client_->acquire();
    if (!c) return std::move(c).error();
    auto head = c->run(sql("SELECT position FROM " + t_.head + " WHERE id = 1"));
    if (!head.ok()) return error{errc::unavailable, head.error};
    auto position = head_of(head.results[0].get(), t_.head);
    if (!position) return std::move(position).error();
    head_ = published_ = committed_ = *position;
    if (options_.follow_external) listen_.start(client_, t_.channel, [this] { wake_follower(); });
    // Without follow_external the follower only fills gaps left by failed catch-up reads.
    follower_ = std::thread([this] { follow(); });
    return {};
  }

  /// Stores the batch in transactions of at most max_batch_bytes each (one, normally), in
  /// order, so no array of a transaction nears PostgreSQL's 1 GiB per value.
  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    size_t limit = std::max<size_t>(1, options_.max_batch_bytes);
    std::vector<size_t> ends; // where each chunk ends
    size_t bytes = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      size_t b = request_bytes(batch[i]);
      if (i > 0 && bytes + b > limit) {
        ends.push_back(i);
        bytes = 0;
      }
      bytes += b;
    }
    if (ends.empty()) return append_chunk(std::move(batch));
    ends.push_back(batch.size());
    std::vector<expected<append_result>> results;
    results.reserve(batch.size());
    size_t begin = 0;
    for (size_t end : ends) {
      std::vector<append_request> chunk(std::make_move_iterator(batch.begin() + begin),
                                        std::make_move_iterator(batch.begin() + end));
      for (auto& r : append_chunk(std::move(chunk))) results.push_back(std::move(r));
      begin = end;
    }
    return results;
  }

  std::vector<expected<append_result>> append_chunk(std::vector<append_request> batch) {
    std::vector<expected<append_result>> results(batch.size(), append_result{});
    std::vector<size_t> valid;
    size_t max_bytes = std::min(options_.max_append_bytes, max_append_bytes_limit);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (auto ok = check_request(batch[i], max_bytes); !ok) results[i] = std::move(ok).error();
      else valid.push_back(i);
    }
    if (valid.empty()) return results;
    auto fail_all = [&](errc code, const std::string& why) {
      for (size_t i : valid) results[i] = error{code, why};
      return results;
    };
    // Phase 1: take the head lock and the streams' versions. Nothing is committed yet,
    // so a connection found broken here (the server restarted since the last batch) is
    // replaced and the phase tried once more.
    array_builder names(text_oid);
    for (size_t i : valid) names.add(batch[i].stream.str());
    std::vector<query> begin;
    begin.push_back(sql("BEGIN"));
    begin.push_back(sql("SELECT position, last_timestamp FROM " + t_.head +
                        " WHERE id = 1 FOR UPDATE"));
    begin.push_back(query{"SELECT s, COALESCE((SELECT max(version) FROM " + t_.events +
                            " e WHERE e.stream = s), 0) FROM unnest($1::text[]) AS s",
                          {param{text_array_oid, names.value()}}});
    pipeline_outcome started;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!writer_) {
        auto w = client_->acquire();
        if (!w) return fail_all(errc::unavailable, w.error().message());
        writer_.emplace(std::move(*w));
      }
      started = writer_->run(begin);
      if (!started.lost || started.timed_out) break;
      writer_.reset();
    }
    if (!writer_) return fail_all(started.timed_out ? errc::timeout : errc::unavailable,
                                  "PostgreSQL is unavailable: " + started.error);
    auto& w = *writer_;
    if (!started.ok()) return give_up(w, started, batch, results, valid, false);

    const PGresult* head_row = started.results[1].get();
    auto head_position = head_of(head_row, t_.head);
    if (!head_position) {
      auto end = w.run(sql("ROLLBACK"));
      if (end.lost) writer_.reset();
      return fail_all(errc::corrupt, head_position.error().message());
    }
    uint64_t head = *head_position;
    int64_t ts = std::max(now_ns(), get_int8(head_row, 0, 1));
    std::map<std::string, uint64_t> versions;
    const PGresult* vr = started.results[2].get();
    for (int r = 0; r < PQntuples(vr); ++r)
      versions[get_bytes(vr, r, 0)] = static_cast<uint64_t>(get_int8(vr, r, 1));

    // Decide each request in order; a later one sees the earlier ones.
    array_builder pos(int8_oid), stream(text_oid), ver(int8_oid), type(text_oid),
      schema(int8_oid), time(int8_oid), meta(bytea_oid), payload(bytea_oid);
    std::vector<envelope> committed;
    uint64_t next = head;
    for (size_t i : valid) {
      auto& request = batch[i];
      auto name = request.stream.str();
      uint64_t& current = versions[name];
      if (request.expected_version != expected_version::any &&
          request.expected_version != current) {
        results[i] = error{errc::conflict, "expected version " +
                                             std::to_string(request.expected_version) +
                                             ", found " + std::to_string(current) +
                                             " in stream " + name};
        continue;
      }
      uint64_t n = request.events.size();
      results[i] = append_result{current + 1, current + n, next + 1, next + n};
      for (auto& event : request.events) {
        envelope e;
        e.stream = request.stream;
        e.version = ++current;
        e.position = ++next;
        e.timestamp_ns = ts;
        pos.add_int8(clamp(e.position));
        stream.add(name);
        ver.add_int8(clamp(e.version));
        type.add(event.type);
        schema.add_int8(event.schema_version);
        time.add_int8(ts);
        meta.add(encode_meta(event.meta));
        payload.add(event.payload.data(), event.payload.size());
        e.type = std::move(event.type);
        e.schema_version = event.schema_version;
        e.meta = std::move(event.meta);
        e.payload = std::move(event.payload);
        committed.push_back(std::move(e));
      }
    }
    if (committed.empty()) {
      auto end = w.run(sql("ROLLBACK"));
      if (end.lost) writer_.reset();
      return results;
    }

    // Phase 2: store the accepted events and move the head, in the same transaction.
    std::vector<query> commit;
    commit.push_back(query{
      "INSERT INTO " + t_.events + " (" + event_columns +
        ") SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[],"
        " $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[])",
      {param{int8_array_oid, pos.value()}, param{text_array_oid, stream.value()},
       param{int8_array_oid, ver.value()}, param{text_array_oid, type.value()},
       param{int8_array_oid, schema.value()}, param{int8_array_oid, time.value()},
       param{bytea_array_oid, meta.value()}, param{bytea_array_oid, payload.value()}}});
    commit.push_back(query{"UPDATE " + t_.head + " SET position = $1, last_timestamp = $2 WHERE id = 1",
                           {param{int8_oid, int8_value(clamp(next))}, param{int8_oid, int8_value(ts)}}});
    commit.push_back(query{"SELECT pg_notify($1, $2)",
                           {param{text_oid, t_.channel, true},
                            param{text_oid, std::to_string(next), true}}});
    commit.push_back(sql("COMMIT"));
    auto stored = w.run(std::move(commit));
    if (!stored.ok()) return give_up(w, stored, batch, results, valid, true);

    publish_through(head, committed);
    return results;
  }

  expected<std::vector<envelope>> read_stream(const stream_id& s, uint64_t from_version,
                                              size_t max_count) const override {
    std::vector<envelope> out;
    if (max_count == 0) return out;
    return read(query{"SELECT " + std::string(event_columns) + " FROM " + t_.events +
                        " WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3",
                      {param{text_oid, s.str(), true}, param{int8_oid, int8_value(clamp(from_version))},
                       param{int8_oid, int8_value(clamp(max_count))}}});
  }

  expected<std::vector<envelope>> read_all(uint64_t from_position,
                                           size_t max_count) const override {
    std::vector<envelope> out;
    if (max_count == 0) return out;
    return read(query{"SELECT " + std::string(event_columns) + " FROM " + t_.events +
                        " WHERE position >= $1 ORDER BY position LIMIT $2",
                      {param{int8_oid, int8_value(clamp(from_position))},
                       param{int8_oid, int8_value(clamp(max_count))}}});
  }

  expected<uint64_t> stream_version(const stream_id& s) const override {
    auto r = run_read(query{"SELECT COALESCE(max(version), 0) FROM " + t_.events +
                              " WHERE stream = $1",
                            {param{text_oid, s.str(), true}}});
    if (!r) return std::move(r).error();
    return static_cast<uint64_t>(get_int8(r->results[0].get(), 0, 0));
  }

  uint64_t head_position() const override { return head_.load(); }

  bool reads_wait_on_server() const override { return true; }

  expected<std::vector<stream_id>> list_streams() const override {
    auto r = run_read(sql("SELECT DISTINCT stream FROM " + t_.events));
    if (!r) return std::move(r).error();
    std::vector<stream_id> out;
    const PGresult* rows = r->results[0].get();
    for (int i = 0; i < PQntuples(rows); ++i) {
      auto s = stream_id::parse(get_bytes(rows, i, 0));
      if (!s) return error{errc::corrupt, "bad stream name " + get_bytes(rows, i, 0)};
      out.push_back(std::move(*s));
    }
    return out;
  }

private:
  expected<std::vector<envelope>> read(const query& q) const {
    auto r = run_read(q);
    if (!r) return std::move(r).error();
    std::vector<envelope> out;
    if (auto ok = decode_events(r->results[0].get(), out); !ok) return std::move(ok).error();
    return out;
  }

  /// Runs a read on a pooled connection; a connection found broken (the server restarted
  /// since it was last used) is replaced and the read tried once more. A read that got
  /// no answer within request_timeout is not retried: it fails with errc::timeout.
  expected<pipeline_outcome> run_read(const query& q) const {
    if (testing::fail_reads.load()) return error{errc::unavailable, "PostgreSQL read failed: injected by a test"};
    pipeline_outcome r;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto c = client_->acquire();
      if (!c) return std::move(c).error();
      r = c->run(q);
      if (r.ok()) return r;
      if (!r.lost || r.timed_out) break;
    }
    return error{r.timed_out ? errc::timeout : errc::unavailable, "PostgreSQL read failed: " + r.error};
  }

  /// Ends a failed transaction and fails every valid request of the batch, each with
  /// the most precise error known.
  std::vector<expected<append_result>>& give_up(lease& w, const pipeline_outcome& out,
                                                const std::vector<append_request>& batch,
                                                std::vector<expected<append_result>>& results,
                                                const std::vector<size_t>& valid,
                                                bool committing) {
    auto fail = [&](errc code, const std::string& why) -> std::vector<expected<append_result>>& {
      for (size_t i : valid) results[i] = error{code, why};
      return results;
    };
    if (out.lost) {
      writer_.reset();
      errc code = out.timed_out ? errc::timeout : errc::unavailable;
      if (committing)
        return fail(code, "the connection to PostgreSQL broke while committing; the batch may "
                          "or may not be stored (read the streams to know): " + out.error);
      return fail(code, "PostgreSQL is unavailable: " + out.error);
    }
    auto end = w.run(sql("ROLLBACK"));
    if (end.lost) writer_.reset();
    if (out.sqlstate == "23505") return unique_violation(out, batch, results, valid);
    if (out.sqlstate == "55P03")
      return fail(errc::timeout, "nothing stored: the head row stayed locked longer than "
                                 "postgres_options::lock_timeout (a stuck writer holds it?): " + out.error);
    if (out.sqlstate == "57014")
      return fail(errc::timeout, "nothing stored: the batch ran longer than "
                                 "postgres_options::statement_timeout: " + out.error);
    return fail(errc::unavailable, "PostgreSQL refused the batch; nothing of it was stored: " + out.error);
  }

  /// A unique violation: someone stored events without taking the head lock (an import
  /// tool, a writer of another program), since with it versions and positions are free.
  /// Nothing of the batch is stored. The appends to the stream whose version was taken
  /// get `conflict`; the others are valid and get `unavailable` (retry them); a taken
  /// position means the head row is behind the events: `corrupt`.
  std::vector<expected<append_result>>& unique_violation(
    const pipeline_outcome& out, const std::vector<append_request>& batch,
    std::vector<expected<append_result>>& results, const std::vector<size_t>& valid) {
    std::string bypass = "a writer that did not take Cairn's head lock stored events in " + t_.events;
    if (out.constraint.size() >= 5 && out.constraint.compare(out.constraint.size() - 5, 5, "_pkey") == 0) {
      for (size_t i : valid)
        results[i] = error{errc::corrupt, "nothing stored: " + bypass + " without moving the head "
                                          "row, so the next positions are taken (set the head "
                                          "row's position to the highest stored one): " + out.error};
      return results;
    }
    // "... DETAIL:  Key (stream, version)=(<stream>, <version>) already exists."
    std::string taken;
    auto open = out.error.find("=(");
    auto close = out.error.rfind(") already exists");
    if (open != std::string::npos && close != std::string::npos && close > open + 2) {
      auto key = out.error.substr(open + 2, close - open - 2);
      if (auto comma = key.rfind(", "); comma != std::string::npos) taken = key.substr(0, comma);
    }
    for (size_t i : valid) {
      if (taken.empty() || batch[i].stream.str() == taken)
        results[i] = error{errc::conflict, "nothing stored: " + bypass + (taken.empty() ? "" : ", stream " + taken) +
                                             ", taking a version this append expected to write; "
                                             "reload the stream and retry: " + out.error};
      else
        results[i] = error{errc::unavailable, "nothing stored: this append was valid but its batch "
                                              "was refused because " + bypass + ", stream " + taken +
                                              "; retry it: " + out.error};
    }
    return results;
  }

  /// Publishes `committed` (positions after `before`), first any other writers' events
  /// between what was published last and `before`, so listeners see every event, once,
  /// in order. If that gap cannot be read now, nothing is published: ours are stored, and
  /// the follower publishes the gap and ours from the store once reads succeed.
  void publish_through(uint64_t before, const std::vector<envelope>& committed) {
    uint64_t last = committed.back().position;
    uint64_t c = committed_.load();
    while (c < last && !committed_.compare_exchange_weak(c, last)) {}
    std::lock_guard<std::mutex> lock(publish_mutex_);
    if (published_ < before && !catch_up_locked(before)) return wake_follower();
    if (published_ < last) {
      published_ = last;
      raise_head(last);
      publish(committed);
    }
  }

  /// Publishes stored events from published_ + 1 through `through` (publish_mutex_ held);
  /// false if they could not all be read.
  bool catch_up_locked(uint64_t through) {
    while (published_ < through) {
      auto chunk = read_all(published_ + 1, std::min<uint64_t>(read_chunk, through - published_));
      if (!chunk || chunk->empty() || chunk->front().position != published_ + 1) return false;
      published_ = chunk->back().position;
      raise_head(published_);
      publish(*chunk);
    }
    return true;
  }

  void raise_head(uint64_t p) {
    uint64_t h = head_.load();
    while (h < p && !head_.compare_exchange_weak(h, p)) {}
  }

  void wake_follower() {
    {
      std::lock_guard<std::mutex> lock(follow_mutex_);
      woken_ = true;
    }
    follow_wake_.notify_all();
  }

  /// The follower: on a notification (or every poll_interval) reads the head row and
  /// publishes other writers' commits up to it. It also publishes what publish_through
  /// could not (a failed read of a gap), retrying with back-off until it succeeds.
  void follow() {
    using ms = std::chrono::milliseconds;
    ms retry{0};
    for (;;) {
      if (options_.follow_external) listen_.ensure();
      {
        std::unique_lock<std::mutex> lock(follow_mutex_);
        auto ready = [this] { return stopping_ || woken_; };
        ms wait = retry.count() > 0 ? retry : options_.follow_external ? options_.poll_interval : ms{0};
        if (wait.count() > 0)
          follow_wake_.wait_for(lock, wait, ready);
        else
          follow_wake_.wait(lock, ready);
        if (stopping_) return;
        woken_ = false;
      }
      uint64_t target = committed_.load();
      if (options_.follow_external) {
        auto r = run_read(sql("SELECT position FROM " + t_.head + " WHERE id = 1"));
        if (r) {
          if (auto stored = head_of(r->results[0].get(), t_.head)) target = std::max(target, *stored);
        }
      }
      if (target <= published_.load()) {
        retry = ms{0};
        continue;
      }
      std::lock_guard<std::mutex> lock(publish_mutex_);
      retry = catch_up_locked(target) ? ms{0} : std::min(ms{1000}, std::max(ms{50}, retry * 2));
    }
  }

  std::shared_ptr<client> client_;
  postgres_options options_;
  tables t_;
  std::optional<lease> writer_; ///< used by the appending thread only
  std::atomic<uint64_t> head_{0};
  std::mutex publish_mutex_;
  std::atomic<uint64_t> published_{0}; ///< written under publish_mutex_
  std::atomic<uint64_t> committed_{0}; ///< the last position this journal committed

  std::mutex follow_mutex_;
  std::condition_variable follow_wake_;
  bool woken_ = false, stopping_ = false;
  std::thread follower_;
  listener_link listen_;
};

} // namespace

namespace pg {

std::atomic<bool> testing::fail_reads{false};

expected<std::shared_ptr<client>> open_client(const std::string& conninfo,
                                              const postgres_options& options, size_t links,
                                              int schema_version_target) {
  if (auto valid = check_schema_name(options.schema); !valid) return std::move(valid).error();
  auto c = client::open(conninfo, options, links);
  if (!c) return std::move(c).error();
  auto conn = (*c)->acquire();
  if (!conn) return std::move(conn).error();
  if (auto ready = prepare_schema(*conn, options.schema, schema_version_target); !ready)
    return std::move(ready).error();
  return c;
}

expected<std::shared_ptr<journal>> open_journal_at(const std::string& conninfo,
                                                   const postgres_options& options,
                                                   int schema_version_target) {
  // The writer keeps one connection for good; reads need at least one more.
  if (options.read_connections < 1)
    return error{errc::invalid_argument,
                 "postgres_options::read_connections must be at least 1 (reads need a "
                 "connection besides the writer's)"};
  auto c = open_client(conninfo, options, options.read_connections + 1, schema_version_target);
  if (!c) return std::move(c).error();
  auto j = std::make_shared<postgres_journal>(std::move(*c), options);
  if (auto started = j->start(); !started) return std::move(started).error();
  return std::shared_ptr<journal>(std::move(j));
}

} // namespace pg

expected<std::shared_ptr<journal>> open_postgres_journal(const std::string& conninfo,
                                                         const postgres_options& options) {
  return pg::open_journal_at(conninfo, options, postgres_schema_version);
}

} // namespace cairn
