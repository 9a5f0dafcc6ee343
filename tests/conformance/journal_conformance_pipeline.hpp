// Conformance checks of pipelined group commit (journal::begin_append / finish_append):
// versions and positions continue across pending batches, a pipelined run stores what a
// sequential run stores, listeners hear each batch once and in order, and a batch begun
// on one thread may be finished on another while readers look on.
//
// A store may make begin_append() wait until the batches still pending are finished (the
// file store does so before it starts a new segment), so these checks never keep a batch
// unfinished on the thread that begins the next one: pipeline_driver finishes batches on
// a thread of its own. Included by journal_conformance.hpp; its cases are in the list of
// CAIRN_JOURNAL_CONFORMANCE_IMPL there.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conformance/journal_conformance_support.hpp"

namespace cairn::conformance {

using append_results = std::vector<expected<append_result>>;

/// Begins batches on the calling thread and finishes them, in the order begun, on a
/// finisher thread of its own. A batch is held (pending) until release_through() or
/// results() lets it go, so a test decides how many are pending at once. If a
/// begin_append() has been blocked for a while (the store waits for the pending batches,
/// e.g. to roll a segment), the held batches are finished early ("rescued"): that changes
/// how many batches are pending at once, never what a correct store returns.
/// `after_finish(index, results)` runs on the finisher thread right after each
/// finish_append() returns (no Catch2 assertions there: they are not thread-safe).
/// The destructor finishes whatever is still pending, as the contract requires.
class pipeline_driver {
public:
  using finish_hook = std::function<void(size_t, const append_results&)>;

  explicit pipeline_driver(journal& j, finish_hook after_finish = {},
                           std::chrono::milliseconds stall = std::chrono::milliseconds(25))
      : j_(j), after_finish_(std::move(after_finish)), stall_(stall),
        finisher_([this] { run(); }) {}

  ~pipeline_driver() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      released_ = std::numeric_limits<size_t>::max();
    }
    cv_.notify_all();
    finisher_.join();
  }

  pipeline_driver(const pipeline_driver&) = delete;
  pipeline_driver& operator=(const pipeline_driver&) = delete;

  /// begin_append() on the calling thread; returns the batch's index (0, 1, ...).
  size_t begin(std::vector<append_request> batch) {
    size_t n = batch.size();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_begin_ = true;
      begin_since_ = std::chrono::steady_clock::now();
    }
    cv_.notify_all();
    auto pending = j_.begin_append(std::move(batch));
    std::lock_guard<std::mutex> lock(mutex_);
    in_begin_ = false;
    slots_.push_back(slot{std::move(pending), n, {}});
    cv_.notify_all();
    return slots_.size() - 1;
  }

  /// Lets batches 0..index be finished.
  void release_through(size_t index) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released_ = std::max(released_, index + 1);
    }
    cv_.notify_all();
  }

  /// Releases batches 0..index, waits until batch `index` is finished, returns its results.
  append_results results(size_t index) {
    release_through(index);
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return finished_ > index; });
    return std::move(slots_[index].results);
  }

  /// Batches finished early because a begin_append() waited for them.
  size_t rescues() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return rescues_;
  }

private:
  struct slot {
    std::unique_ptr<journal::pending_append> pending;
    size_t size = 0;
    append_results results;
  };

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      bool available = finished_ < slots_.size();
      bool stalled = in_begin_ && std::chrono::steady_clock::now() - begin_since_ >= stall_;
      if (available && (finished_ < released_ || stalled)) {
        if (finished_ >= released_) ++rescues_;
        size_t index = finished_;
        auto pending = std::move(slots_[index].pending);
        size_t size = slots_[index].size;
        lock.unlock();
        append_results results;
        if (pending) results = j_.finish_append(std::move(pending));
        else results.assign(size, error{errc::unavailable, "begin_append returned null"});
        if (after_finish_) after_finish_(index, results);
        lock.lock();
        slots_[index].results = std::move(results);
        ++finished_;
        cv_.notify_all();
        continue;
      }
      if (stopping_ && !available && !in_begin_) return;
      cv_.wait_for(lock, std::chrono::milliseconds(2));
    }
  }

  journal& j_;
  finish_hook after_finish_;
  std::chrono::milliseconds stall_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<slot> slots_; // references stay valid on push_back
  size_t finished_ = 0;    // batches 0..finished_-1 are finished
  size_t released_ = 0;    // batches 0..released_-1 may be finished
  size_t rescues_ = 0;
  bool in_begin_ = false;
  std::chrono::steady_clock::time_point begin_since_{};
  bool stopping_ = false;
  std::thread finisher_; // last: starts after everything above is set up
};

/// Equal as stored, timestamps aside (two stores never share them).
inline bool same_event(const envelope& a, const envelope& b) {
  return a.stream == b.stream && a.version == b.version && a.position == b.position &&
         a.type == b.type && a.schema_version == b.schema_version && a.meta == b.meta &&
         a.payload == b.payload;
}

/// "" when both result vectors say the same (successes at the same place, failures
/// with the same code), else what differs first.
inline std::string results_difference(const append_results& a, const append_results& b) {
  if (a.size() != b.size())
    return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].has_value() != b[i].has_value())
      return "request " + std::to_string(i) + ": " +
             (a[i] ? std::string("ok") : a[i].error().describe()) + " vs " +
             (b[i] ? std::string("ok") : b[i].error().describe());
    if (a[i] && !(*a[i] == *b[i]))
      return "request " + std::to_string(i) + ": " +
             Catch::StringMaker<append_result>::convert(*a[i]) + " vs " +
             Catch::StringMaker<append_result>::convert(*b[i]);
    if (!a[i] && a[i].error().code() != b[i].error().code())
      return "request " + std::to_string(i) + ": " + a[i].error().describe() + " vs " +
             b[i].error().describe();
  }
  return {};
}

/// The highest position a batch's results stored, or 0 if none stored anything.
inline uint64_t last_position_of(const append_results& results) {
  uint64_t last = 0;
  for (auto& r : results)
    if (r) last = std::max(last, r->last_position);
  return last;
}

/// After a batch's finish_append() returned: everything up to `through` is readable and
/// counted by head_position(). "" or the problem. Free of Catch2 calls (thread-safe).
inline std::string visible_problem(const journal& j, uint64_t through) {
  if (through == 0) return {};
  if (j.head_position() < through)
    return "head " + std::to_string(j.head_position()) + " is before finished position " +
           std::to_string(through);
  auto es = j.read_all(1, static_cast<size_t>(through));
  if (!es) return "read_all failed: " + es.error().describe();
  if (es->size() != through)
    return "read_all gave " + std::to_string(es->size()) + " of " + std::to_string(through) +
           " finished events";
  for (size_t i = 0; i < es->size(); ++i)
    if ((*es)[i].position != i + 1) return "hole before position " + std::to_string(i + 1);
  return {};
}

inline void pipeline_versions_continue(const journal_factory& make) {
  auto j = make();
  auto a = sid("pa", "1"), b = sid("pb", "1"), c = sid("pc", "1");
  CHECK(ok(*j, req(a, expected_version::no_stream, 2, "a")) == append_result{1, 2, 1, 2});

  std::vector<std::vector<append_request>> batches(5);
  // 1: creates b; a continues from its committed version.
  batches[0].push_back(req(b, expected_version::no_stream, 2, "b1-"));
  batches[0].push_back(req(a, 2, 1, "a1-"));
  // 2: b at a version only pending batch 1 reaches; a by any; creates c.
  batches[1].push_back(req(b, 2, 3, "b2-"));
  batches[1].push_back(req(a, expected_version::any, 1, "a2-"));
  batches[1].push_back(req(c, expected_version::no_stream, 1, "c2-"));
  // 3: stale b (pending batch 2 took it to 5), c exists in a pending batch, then good ones.
  batches[2].push_back(req(b, 2, 1, "stale"));
  batches[2].push_back(req(c, expected_version::no_stream, 1, "stale"));
  batches[2].push_back(req(a, 4, 2, "a3-"));
  batches[2].push_back(req(b, 5, 1, "b3-"));
  // 4: stores nothing: an invalid name, an empty request, two conflicts.
  batches[3].push_back(req(sid("", "1"), expected_version::any, 1, "bad"));
  batches[3].push_back(req(c, expected_version::any, 0));
  batches[3].push_back(req(a, 5, 1, "stale"));
  batches[3].push_back(req(c, 2, 1, "stale"));
  // 5: after the batch that stored nothing, versions go on from batch 3.
  batches[4].push_back(req(c, 1, 1, "c5-"));
  batches[4].push_back(req(a, 6, 1, "a5-"));

  std::vector<append_results> results(batches.size());
  size_t rescues = 0;
  {
    pipeline_driver pipe(*j);
    for (auto& batch : batches) pipe.begin(std::move(batch)); // all pending at once
    for (size_t k = 0; k < results.size(); ++k) {
      results[k] = pipe.results(k);
      INFO("after finishing batch " << k + 1);
      uint64_t through = 0;
      for (size_t i = 0; i <= k; ++i) through = std::max(through, last_position_of(results[i]));
      CHECK(visible_problem(*j, through) == "");
    }
    rescues = pipe.rescues();
  }
  INFO("batches finished early because begin_append waited: " << rescues);
  REQUIRE(results[0].size() == 2);
  succeeded(results[0][0], append_result{1, 2, 3, 4});
  succeeded(results[0][1], append_result{3, 3, 5, 5});
  REQUIRE(results[1].size() == 3);
  succeeded(results[1][0], append_result{3, 5, 6, 8});
  succeeded(results[1][1], append_result{4, 4, 9, 9});
  succeeded(results[1][2], append_result{1, 1, 10, 10});
  REQUIRE(results[2].size() == 4);
  auto stale = failed(results[2][0], errc::conflict);
  CHECK_THAT(stale.message(), Catch::Contains("pb-1"));
  CHECK_THAT(stale.message(), Catch::Contains("5"));
  failed(results[2][1], errc::conflict);
  succeeded(results[2][2], append_result{5, 6, 11, 12});
  succeeded(results[2][3], append_result{6, 6, 13, 13});
  REQUIRE(results[3].size() == 4);
  failed(results[3][0], errc::invalid_argument);
  failed(results[3][1], errc::invalid_argument);
  failed(results[3][2], errc::conflict);
  failed(results[3][3], errc::conflict);
  REQUIRE(results[4].size() == 2);
  succeeded(results[4][0], append_result{2, 2, 14, 14});
  succeeded(results[4][1], append_result{7, 7, 15, 15});

  CHECK(j->head_position() == 15);
  CHECK(version_of(*j, a) == 7);
  CHECK(version_of(*j, b) == 6);
  CHECK(version_of(*j, c) == 2);
  CHECK(sorted_streams(*j) == std::vector<stream_id>{a, b, c});
  auto positions = [](const std::vector<envelope>& es) {
    std::vector<uint64_t> out;
    for (auto& e : es) out.push_back(e.position);
    return out;
  };
  auto as = read_stream_of(*j, a), bs = read_stream_of(*j, b), cs = read_stream_of(*j, c);
  require_versions(as, 1, 7);
  require_versions(bs, 1, 6);
  require_versions(cs, 1, 2);
  CHECK(positions(as) == std::vector<uint64_t>{1, 2, 5, 9, 11, 12, 15});
  CHECK(positions(bs) == std::vector<uint64_t>{3, 4, 6, 7, 8, 13});
  CHECK(positions(cs) == std::vector<uint64_t>{10, 14});
  auto es = read_all_of(*j);
  require_positions(es, 1, 15);
  std::vector<std::string> payloads;
  for (auto& e : es) payloads.push_back(text(e.payload));
  CHECK(payloads == std::vector<std::string>{"a0", "a1", "b1-0", "b1-1", "a1-0", "b2-0", "b2-1",
                                             "b2-2", "a2-0", "c2-0", "a3-0", "a3-1", "b3-0",
                                             "c5-0", "a5-0"});
  for (size_t i = 1; i < es.size(); ++i) CHECK(es[i].timestamp_ns >= es[i - 1].timestamp_ns);
}

/// A deterministic workload: mixed streams, multi-event requests, stale and right
/// expected versions, no_stream, any, invalid names, empty requests.
inline std::vector<std::vector<append_request>> pipeline_workload(uint32_t seed, size_t batches) {
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  std::map<stream_id, uint64_t> model; // what a correct store's versions become
  std::vector<std::vector<append_request>> out(batches);
  for (auto& batch : out) {
    size_t requests = 1 + pick(8);
    for (size_t r = 0; r < requests; ++r) {
      auto s = sid("w" + std::to_string(pick(3)), std::to_string(pick(4)));
      uint64_t& v = model[s];
      uint32_t kind = pick(100);
      size_t n = 1 + pick(4);
      uint64_t expected = v;
      bool stores = true;
      if (kind < 45) {
        expected = v; // right
      } else if (kind < 60) {
        expected = expected_version::any;
      } else if (kind < 70) {
        expected = expected_version::no_stream;
        stores = v == 0;
      } else if (kind < 85) {
        expected = v + 1 + pick(3); // ahead: conflict
        if (v > 0 && pick(2)) expected = v - 1; // behind: conflict
        stores = false;
      } else if (kind < 92) {
        s = sid("bad-name", std::to_string(pick(4))); // '-' in the category: invalid
        stores = false;
      } else {
        n = 0; // no events: invalid
        stores = false;
      }
      append_request request{s, expected, {}};
      for (size_t i = 0; i < n; ++i) {
        auto e = ev("t" + std::to_string(pick(3)),
                    std::to_string(r) + "/" + std::to_string(i) + ":" +
                      std::string(pick(60), static_cast<char>('a' + pick(26))));
        e.schema_version = 1 + pick(2);
        if (pick(4) == 0) e.meta.correlation_id = "corr-" + std::to_string(pick(1000));
        request.events.push_back(std::move(e));
      }
      if (stores) v += n;
      batch.push_back(std::move(request));
    }
  }
  return out;
}

inline void pipeline_equals_sequential(const journal_factory& make) {
  auto workload = pipeline_workload(20240917, 60);
  auto sequential = make();
  auto pipelined = make();
  std::vector<append_results> want, got(workload.size());
  for (auto batch : workload) want.push_back(sequential->append(std::move(batch)));
  size_t rescues = 0;
  {
    // Depth 2: batch k + 1 is begun before batch k is finished.
    pipeline_driver pipe(*pipelined);
    for (size_t k = 0; k < workload.size(); ++k) {
      pipe.begin(workload[k]);
      if (k > 0) got[k - 1] = pipe.results(k - 1);
    }
    got.back() = pipe.results(workload.size() - 1);
    rescues = pipe.rescues();
  }
  INFO("batches finished early because begin_append waited: " << rescues);
  size_t successes = 0, conflicts = 0, invalid = 0;
  for (size_t k = 0; k < workload.size(); ++k) {
    INFO("batch " << k);
    CHECK(results_difference(want[k], got[k]) == "");
    for (auto& r : want[k]) {
      if (r) ++successes;
      else if (r.error().code() == errc::conflict) ++conflicts;
      else if (r.error().code() == errc::invalid_argument) ++invalid;
    }
  }
  // The workload exercises every outcome.
  CHECK(successes > 50);
  CHECK(conflicts > 10);
  CHECK(invalid > 5);
  auto expected_events = read_all_of(*sequential), stored = read_all_of(*pipelined);
  REQUIRE(stored.size() == expected_events.size());
  require_positions(stored, 1, stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    INFO("position " << i + 1);
    CHECK(same_event(stored[i], expected_events[i]));
  }
  CHECK(pipelined->head_position() == sequential->head_position());
  auto streams = sorted_streams(*sequential);
  CHECK(sorted_streams(*pipelined) == streams);
  for (auto& s : streams) {
    INFO("stream " << s);
    CHECK(version_of(*pipelined, s) == version_of(*sequential, s));
    auto a = read_stream_of(*pipelined, s), b = read_stream_of(*sequential, s);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(same_event(a[i], b[i]));
  }
}

inline void pipeline_listeners(const journal_factory& make) {
  auto j = make();
  std::mutex mutex;
  std::vector<envelope> heard;
  std::vector<std::string> problems;
  auto note = [&](std::string p) {
    if (problems.size() < 20) problems.push_back(std::move(p));
  };
  size_t calls = 0;
  j->subscribe([&](const std::vector<envelope>& es) {
    // Listeners hear committed events: readers already see them.
    uint64_t head = j->head_position();
    std::lock_guard<std::mutex> lock(mutex);
    ++calls;
    if (es.empty()) note("a listener was called with no events");
    else if (head < es.back().position)
      note("a listener heard position " + std::to_string(es.back().position) +
           " while the head was " + std::to_string(head));
    for (auto& e : es) {
      if (e.position != heard.size() + 1)
        note("heard position " + std::to_string(e.position) + " after " +
             std::to_string(heard.size()));
      heard.push_back(e);
    }
  });
  uint64_t finished_through = 0; // finisher thread only
  auto after_finish = [&](size_t index, const append_results& results) {
    finished_through = std::max(finished_through, last_position_of(results));
    // Read the store outside the listener's mutex: a store may call listeners under
    // a lock of its own that its reads take too.
    auto p = visible_problem(*j, finished_through);
    std::lock_guard<std::mutex> lock(mutex);
    if (heard.size() < finished_through)
      note("after finishing batch " + std::to_string(index) + " listeners heard " +
           std::to_string(heard.size()) + " events, not all " + std::to_string(finished_through));
    if (!p.empty()) note("after finishing batch " + std::to_string(index) + ": " + p);
  };
  auto workload = pipeline_workload(7, 30);
  size_t rescues = 0;
  {
    // Depth 3: up to three batches pending at once.
    pipeline_driver pipe(*j, after_finish);
    for (size_t k = 0; k < workload.size(); ++k) {
      pipe.begin(std::move(workload[k]));
      if (k >= 2) pipe.results(k - 2);
    }
    pipe.results(workload.size() - 1);
    rescues = pipe.rescues();
  }
  INFO("batches finished early because begin_append waited: " << rescues);
  auto stored = read_all_of(*j);
  REQUIRE(stored.size() > 50);
  std::lock_guard<std::mutex> lock(mutex);
  for (auto& p : problems) CHECK(p == "");
  CHECK(calls > 0);
  CHECK(heard == stored);
}

inline void pipeline_threads(const journal_factory& make) {
  auto j = make();
  constexpr size_t total = 2000;
  constexpr size_t depth = 2;
  std::atomic<bool> done{false};
  std::atomic<size_t> passes{0};
  std::vector<std::string> reader_problems(3);

  auto reader = [&](std::string& first_problem) {
    for (size_t pass = 0; !done.load(); ++pass) {
      auto problem = reader_pass_problem(*j, pass, 61, "q", 5);
      if (first_problem.empty()) first_problem = problem;
      passes.fetch_add(1);
      std::this_thread::yield();
    }
  };

  // The producer begins batches and hands them over; the consumer finishes them.
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::pair<std::unique_ptr<journal::pending_append>, size_t>> queue;
  bool produced_all = false;
  std::string producer_problem, consumer_problem;
  size_t batches = 0;

  auto producer = [&] {
    std::map<stream_id, uint64_t> versions; // every request names its exact version
    size_t written = 0, n = 0;
    while (written < total) {
      std::vector<append_request> batch;
      for (size_t r = 0; r < 5 && written < total; ++r, ++n) {
        size_t size = std::min<size_t>(1 + n % 6, total - written);
        auto s = sid("q", std::to_string(n % 5));
        uint64_t& v = versions[s];
        append_request request{s, v == 0 ? expected_version::no_stream : v, {}};
        for (size_t i = 0; i < size; ++i)
          request.events.push_back(ev("tick", std::to_string(size) + ":" + std::to_string(i)));
        v += size;
        batch.push_back(std::move(request));
        written += size;
      }
      if (n % 23 == 0) batch.push_back(req(sid("q", "0"), 1, 1)); // always stale by now
      size_t count = batch.size();
      auto pending = j->begin_append(std::move(batch));
      if (!pending && producer_problem.empty()) producer_problem = "begin_append returned null";
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait(lock, [&] { return queue.size() < depth; });
      queue.emplace_back(std::move(pending), count);
      ++batches;
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(mutex);
    produced_all = true;
    cv.notify_all();
  };
  size_t stored_events = 0, conflicts = 0;
  auto consumer = [&] {
    uint64_t last_position = 0;
    for (;;) {
      std::unique_ptr<journal::pending_append> pending;
      size_t count = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return !queue.empty() || produced_all; });
        if (queue.empty()) return;
        pending = std::move(queue.front().first);
        count = queue.front().second;
        queue.pop_front();
        cv.notify_all();
      }
      if (!pending) continue;
      auto results = j->finish_append(std::move(pending));
      std::string problem;
      if (results.size() != count) problem = "finish_append gave the wrong number of results";
      for (size_t i = 0; i < results.size() && problem.empty(); ++i) {
        if (results[i]) {
          if (results[i]->first_position != last_position + 1)
            problem = "positions jump from " + std::to_string(last_position) + " to " +
                      std::to_string(results[i]->first_position);
          last_position = results[i]->last_position;
          stored_events += results[i]->last_position - results[i]->first_position + 1;
        } else if (results[i].error().code() == errc::conflict && i + 1 == results.size()) {
          ++conflicts; // the stale request at the end of some batches
        } else {
          problem = "request failed: " + results[i].error().describe();
        }
      }
      if (problem.empty()) problem = visible_problem(*j, last_position);
      if (consumer_problem.empty()) consumer_problem = problem;
    }
  };

  std::vector<std::thread> readers;
  for (auto& problem : reader_problems) readers.emplace_back(reader, std::ref(problem));
  std::thread consumer_thread(consumer);
  std::thread producer_thread(producer);
  producer_thread.join();
  consumer_thread.join();
  for (size_t seen = passes.load(); passes.load() < seen + readers.size();)
    std::this_thread::yield();
  done = true;
  for (auto& t : readers) t.join();

  CHECK(producer_problem == "");
  CHECK(consumer_problem == "");
  for (auto& problem : reader_problems) CHECK(problem == "");
  CHECK(stored_events == total);
  CHECK(conflicts > 0);
  CHECK(batches > 50);
  auto es = read_all_of(*j);
  REQUIRE(es.size() == total);
  CHECK(snapshot_problem(es, 1) == "");
  CHECK(j->head_position() == total);
  for (size_t s = 0; s < 5; ++s) {
    auto stream = read_stream_of(*j, sid("q", std::to_string(s)));
    require_versions(stream, 1, stream.size());
  }
}

} // namespace cairn::conformance

/// A pipelining case: tagged [pipeline] too, so the threaded ones can be run on their own.
#define CAIRN_CONFORMANCE_PIPELINE_CASE(store, factory, check, sentence)                          \
  TEST_CASE(store ": " sentence, "[journal][conformance][pipeline]") {                            \
    ::cairn::conformance::check(factory);                                                         \
  }
