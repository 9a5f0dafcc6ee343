// postgres_journal: the journal on PostgreSQL. Group commit: each batch is one
// transaction of append_batch() calls (pg_append_batch.hpp), which lock the head row (the
// serialisation point that keeps global positions gap-free across writers,
// docs/postgres.md), decide each append, insert, move the head and NOTIFY. Batches are
// pipelined on the writer's connection; reads run on pooled connections; a follower
// publishes other writers' commits.
#include "cairn/postgres_journal.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <future>
#include <map>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "pg_append_batch.hpp"
#include "pg_client.hpp"
#include "pg_rows.hpp"
#include "pg_schema.hpp"
#include "postgres_internal.hpp"

namespace cairn {
namespace {

using namespace pg;

constexpr size_t read_chunk = 8192;
/// Reads of at least this many events that come back full start reading the next chunk.
constexpr size_t read_ahead_min = 1024;

query sql(std::string text) { return query{std::move(text), {}}; }

int64_t clamp(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, uint64_t{INT64_MAX}));
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
    if (options_.follow_external)
      listen_.start(client_, t_.channel, [this](std::vector<std::string> heads) { notified(heads); });
    // Without follow_external the follower only fills gaps left by failed catch-up reads.
    follower_ = std::thread([this] { follow(); });
    return {};
  }

  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    return finish_append(begin_append(std::move(batch)));
  }

  /// Checks the batch and sends it at once, as one pipeline per transaction, behind the
  /// batches still pending on the writer's connection (the server runs them in order, so
  /// it never waits for us between two batches). Transactions hold at most
  /// max_batch_bytes each (one, normally), so no array nears PostgreSQL's 1 GiB per value.
  std::unique_ptr<pending_append> begin_append(std::vector<append_request> batch) override {
    auto p = std::make_unique<pending>();
    p->results.assign(batch.size(), append_result{});
    size_t limit = std::max<size_t>(1, options_.max_batch_bytes);
    size_t max_bytes = std::min(options_.max_append_bytes, max_append_bytes_limit);
    size_t bytes = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (auto ok = check_request(batch[i], max_bytes); !ok) {
        p->results[i] = std::move(ok).error();
        continue;
      }
      size_t b = request_bytes(batch[i]);
      if (p->txs.empty() || (!p->txs.back().valid.empty() && bytes + b > limit)) {
        p->txs.emplace_back();
        bytes = 0;
      }
      bytes += b;
      p->txs.back().valid.push_back(i);
    }
    p->batch = std::move(batch);
    if (p->txs.empty()) return p;
    // A connection that died while idle (the server restarted) is replaced before
    // anything is sent on it; one that dies with batches in flight fails them.
    if (writer_ && (writer_->raw().broken() || (in_flight_.load() == 0 && !writer_->alive()))) writer_.reset();
    if (!writer_) {
      auto w = client_->dedicated();
      if (!w) {
        p->send_error = w.error();
        return p;
      }
      writer_.emplace(std::move(*w));
    }
    for (auto& tx : p->txs) tx.outcome = writer_->start(transaction_queries(*p, tx));
    ++in_flight_;
    p->counted = true;
    return p;
  }

  std::vector<expected<append_result>> finish_append(std::unique_ptr<pending_append> base) override {
    auto& p = static_cast<pending&>(*base);
    if (p.send_error) {
      for (auto& tx : p.txs)
        for (size_t i : tx.valid) p.results[i] = *p.send_error;
      return std::move(p.results);
    }
    for (auto& tx : p.txs) {
      if (!tx.outcome.valid()) continue;
      auto out = tx.outcome.get();
      if (!out.ok()) {
        fail_transaction(out, t_, p.batch, p.results, tx.valid, true);
        continue;
      }
      commit_results(p, tx, out);
    }
    if (p.counted) --in_flight_;
    return std::move(p.results);
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

  /// A read of a whole chunk (max_count >= read_ahead_min events) also starts reading the
  /// next read_ahead_chunks chunks, each on another connection and thread, so a reader
  /// that walks the store (a projection catching up) finds them fetched and decoded while
  /// it handled this one, and the server sends several at once. Stored events never
  /// change, so a chunk read ahead is as good as one read now.
  expected<std::vector<envelope>> read_all(uint64_t from_position,
                                           size_t max_count) const override {
    std::vector<envelope> out;
    if (max_count == 0) return out;
    std::future<expected<std::vector<envelope>>> ahead;
    {
      std::lock_guard<std::mutex> lock(ahead_mutex_);
      auto it = ahead_.find(from_position);
      if (it != ahead_.end() && it->second.count == max_count) {
        ahead = std::move(it->second.chunk);
        ahead_.erase(it);
      }
    }
    expected<std::vector<envelope>> got = error{errc::unavailable, "not read"};
    if (ahead.valid()) got = ahead.get();
    // A chunk read ahead that failed, or came back short (it may predate later commits),
    // is read again now.
    if (!got || got->size() < max_count) got = read_chunk_at(from_position, max_count);
    if (got && got->size() == max_count && max_count >= read_ahead_min)
      start_read_ahead(got->back().position + 1, max_count);
    return got;
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
  expected<std::vector<envelope>> read_chunk_at(uint64_t from_position, size_t max_count) const {
    return read(query{"SELECT " + std::string(event_columns) + " FROM " + t_.events +
                        " WHERE position >= $1 ORDER BY position LIMIT $2",
                      {param{int8_oid, int8_value(clamp(from_position))},
                       param{int8_oid, int8_value(clamp(max_count))}},
                      true});
  }

  /// Has the read_ahead_chunks chunks from `from_position` on read (each on its own
  /// connection and thread) unless they are already. The chunks are guessed: each starts
  /// where a full one before it ends, as positions are dense. Several readers may walk the
  /// store at once, so chunks are kept by position; beyond a few readers' worth the
  /// farthest behind are dropped, without waiting for them here.
  void start_read_ahead(uint64_t from_position, size_t max_count) const {
    size_t depth = std::min(options_.read_ahead_chunks, options_.read_connections - 1);
    if (depth == 0) return;
    std::lock_guard<std::mutex> lock(ahead_mutex_);
    for (size_t i = 0; i < depth; ++i) {
      uint64_t from = from_position + i * max_count;
      auto it = ahead_.find(from);
      if (it != ahead_.end() && it->second.count == max_count) continue;
      std::future<expected<std::vector<envelope>>> chunk;
      try {
        chunk = std::async(std::launch::async, [this, from, max_count] { return read_chunk_at(from, max_count); });
      } catch (const std::system_error&) {
        return; // no thread to read ahead with: the reader reads when it gets there
      }
      if (it != ahead_.end()) dropped_.push_back(std::move(it->second.chunk));
      ahead_[from] = ahead_chunk{max_count, std::move(chunk)};
    }
    while (ahead_.size() > depth * max_ahead_readers) {
      dropped_.push_back(std::move(ahead_.begin()->second.chunk));
      ahead_.erase(ahead_.begin());
    }
    // Dropped reads finish on their own threads; their futures go once they have.
    auto done = [](auto& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; };
    dropped_.erase(std::remove_if(dropped_.begin(), dropped_.end(), done), dropped_.end());
  }

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

  /// One transaction of a pending batch: its requests (indexes into the batch) in
  /// segments, each a run of consecutive requests in which a stream appears at most once,
  /// and the outcome of its pipeline.
  struct transaction {
    std::vector<size_t> valid;
    std::vector<std::vector<size_t>> rounds; ///< the segments, in request order
    std::future<pipeline_outcome> outcome;
  };

  struct pending final : pending_append {
    std::vector<append_request> batch;
    std::vector<expected<append_result>> results;
    std::vector<transaction> txs;
    std::optional<error> send_error; ///< no connection: nothing was sent
    bool counted = false;            ///< counted in in_flight_
  };

  /// The statements of one transaction: one append_batch() call per segment, ended by
  /// the pipeline's sync, which commits them as one implicit transaction.
  std::vector<query> transaction_queries(const pending& p, transaction& tx) const {
    tx.rounds = segments_of(p.batch, tx.valid);
    int64_t now = now_ns();
    std::vector<query> qs;
    for (auto& round : tx.rounds) qs.push_back(append_batch_call(t_, p.batch, round, now));
    return qs;
  }

  /// Answers the requests of a committed transaction from append_batch()'s results and
  /// publishes its events.
  void commit_results(pending& p, transaction& tx, const pipeline_outcome& out) {
    std::vector<envelope> committed;
    std::optional<uint64_t> before;
    for (size_t r = 0; r < tx.rounds.size(); ++r) {
      auto start = read_segment_answer(out.results[r].get(), p.batch, tx.rounds[r], p.results, committed);
      if (r == 0) before = start;
    }
    // Positions follow the segments, and the requests within each: `committed` is in
    // position order.
    if (committed.empty()) return;
    if (!before) { // the first answer did not say where the batch began: publish from the store
      uint64_t last = committed.back().position, c = committed_.load();
      while (c < last && !committed_.compare_exchange_weak(c, last)) {}
      return wake_follower();
    }
    publish_through(*before, committed);
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
    if (published_ >= last) return;
    // The follower may have published part of ours from the store (it read a head that
    // already counted them): publish only the rest, so no listener sees an event twice.
    auto first_new = std::upper_bound(committed.begin(), committed.end(), published_.load(),
                                      [](uint64_t p, const envelope& e) { return p < e.position; });
    published_ = last;
    raise_head(last);
    if (first_new == committed.begin()) publish(committed);
    else publish(std::vector<envelope>(first_new, committed.end()));
  }

  /// Publishes stored events from published_ + 1 through `through` (publish_mutex_ held);
  /// false if they could not all be read.
  bool catch_up_locked(uint64_t through) {
    while (published_ < through) {
      // Read directly, not through read_all: no reading ahead past `through` (our own
      // commits) while holding the publication lock.
      auto chunk = read_chunk_at(published_ + 1, std::min<uint64_t>(read_chunk, through - published_));
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

  /// A notification's payload is the head after a commit. The follower needs to read
  /// only for a head beyond this journal's own commits: those it publishes itself, with
  /// any other writer's events before them (publish_through).
  void notified(const std::vector<std::string>& heads) {
    uint64_t ours = committed_.load();
    for (auto& h : heads) {
      uint64_t head = 0;
      auto [end, ec] = std::from_chars(h.data(), h.data() + h.size(), head);
      if (ec != std::errc{} || end != h.data() + h.size() || head > ours) return wake_follower();
    }
    if (heads.empty()) wake_follower();
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
      bool listening = options_.follow_external && listen_.ensure();
      {
        std::unique_lock<std::mutex> lock(follow_mutex_);
        auto ready = [this] { return stopping_ || woken_; };
        ms wait = retry.count() > 0 ? retry : options_.follow_external ? options_.poll_interval : ms{0};
        // Not listening (the LISTEN connection is down) and not polling: try it again soon.
        if (options_.follow_external && !listening && wait.count() == 0) wait = ms{1000};
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
  std::optional<lease> writer_; ///< dedicated; used by the thread that begins appends only
  std::atomic<size_t> in_flight_{0}; ///< batches begun and not yet finished
  /// The chunks read ahead by read_all, in position order.
  mutable std::mutex ahead_mutex_;
  struct ahead_chunk {
    size_t count;
    std::future<expected<std::vector<envelope>>> chunk;
  };
  /// Readers walking the store at once whose chunks read_all keeps (more drop the
  /// chunks farthest behind).
  static constexpr size_t max_ahead_readers = 4;
  mutable std::map<uint64_t, ahead_chunk> ahead_; ///< by first position
  /// Reads ahead no one will take, kept until they finish (a future of std::async waits
  /// for its read when destroyed).
  mutable std::vector<std::future<expected<std::vector<envelope>>>> dropped_;

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
  // Reads (the follower's included) share read_connections + 1 pooled connections; the
  // writer has one of its own besides (client::dedicated).
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
