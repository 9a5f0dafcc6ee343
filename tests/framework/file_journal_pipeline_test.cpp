// Tests of the file journal's pipelined group commit (begin_append / finish_append):
// what readers see of a pending batch, segments rolling while batches are pending, one
// fdatasync covering several batches, and batches that store nothing between good ones.
// The checks every store must pass are in conformance/journal_conformance_pipeline.hpp.
//
// The file store's begin_append() waits for the pending batches before it starts a new
// segment, so a test that may roll never keeps a batch unfinished on the thread that
// begins the next one: batches are finished on a thread of their own there.
#include "conformance/journal_conformance.hpp"
#include "framework/file_journal_test_support.hpp"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "cairn/memory_journal.hpp"

using namespace cairn;
using namespace cairn::file_test;
using cairn::conformance::append_results;
using cairn::conformance::ev;
using cairn::conformance::failed;
using cairn::conformance::read_all_of;
using cairn::conformance::req;
using cairn::conformance::sid;
using cairn::conformance::succeeded;
using cairn::conformance::version_of;

namespace {

file_journal_counters counters(const journal& j) {
  auto c = counters_of_file_journal(j);
  REQUIRE(c.has_value());
  return *c;
}

std::vector<append_request> batch_of(append_request a) {
  std::vector<append_request> batch;
  batch.push_back(std::move(a));
  return batch;
}

std::vector<append_request> batch_of(append_request a, append_request b) {
  auto batch = batch_of(std::move(a));
  batch.push_back(std::move(b));
  return batch;
}

void all_ok(const append_results& results, size_t n) {
  REQUIRE(results.size() == n);
  for (auto& r : results) {
    INFO((r ? std::string("ok") : r.error().describe()));
    CHECK(r.has_value());
  }
}

} // namespace

TEST_CASE("file journal pipeline: readers and listeners see a begun batch once it is finished",
          "[file][pipeline]") {
  auto j = fresh_store(options_for(sync_policy::never));
  std::vector<envelope> heard;
  std::string listener_problem;
  j->subscribe([&](const std::vector<envelope>& es) {
    if (listener_problem.empty() && !es.empty())
      listener_problem = conformance::visible_problem(*j, es.back().position);
    heard.insert(heard.end(), es.begin(), es.end());
  });
  auto a = sid("a", "1"), n = sid("n", "1");
  conformance::ok(*j, req(a, expected_version::no_stream, 1));
  auto first = j->begin_append(batch_of(req(a, 1, 2), req(n, expected_version::no_stream, 1)));
  auto second = j->begin_append(batch_of(req(n, 1, 1), req(a, 3, 1)));
  REQUIRE(first);
  REQUIRE(second);
  // Written, not committed: nothing of either batch shows.
  CHECK(j->head_position() == 1);
  CHECK(version_of(*j, a) == 1);
  CHECK(version_of(*j, n) == 0);
  CHECK(conformance::read_stream_of(*j, n).empty());
  CHECK(conformance::sorted_streams(*j) == std::vector<stream_id>{a});
  CHECK(read_all_of(*j).size() == 1);
  CHECK(heard.size() == 1);

  auto r1 = j->finish_append(std::move(first));
  REQUIRE(r1.size() == 2);
  succeeded(r1[0], append_result{2, 3, 2, 3});
  succeeded(r1[1], append_result{1, 1, 4, 4});
  CHECK(j->head_position() == 4); // the first batch, not yet the second
  CHECK(version_of(*j, a) == 3);
  CHECK(version_of(*j, n) == 1);
  CHECK(conformance::sorted_streams(*j) == std::vector<stream_id>{a, n});
  conformance::require_positions(read_all_of(*j), 1, 4);
  REQUIRE(heard.size() == 4);
  CHECK(heard == read_all_of(*j));

  auto r2 = j->finish_append(std::move(second));
  REQUIRE(r2.size() == 2);
  succeeded(r2[0], append_result{2, 2, 5, 5});
  succeeded(r2[1], append_result{4, 4, 6, 6});
  CHECK(j->head_position() == 6);
  CHECK(heard == read_all_of(*j));
  CHECK(listener_problem == "");
}

TEST_CASE("file journal pipeline: segments roll while batches are pending", "[file][pipeline]") {
  auto policy = GENERATE(sync_policy::never, sync_policy::always, sync_policy::interval);
  INFO("sync " << to_string(policy));
  temp_dir dir;
  auto options = options_for(policy, 1024);
  options.sync_interval = std::chrono::milliseconds(2);
  constexpr size_t batches = 300, depth = 2, streams = 7;
  std::vector<envelope> before;
  size_t total = 0, begun = 0;
  file_journal_counters counted;
  {
    auto j = open_ok(dir.path, options);
    std::mutex heard_mutex;
    std::vector<envelope> heard;
    std::string listener_problem;
    j->subscribe([&](const std::vector<envelope>& es) {
      // Called once the batch is committed: readers see it already.
      std::string problem;
      if (es.empty()) problem = "a listener was called with no events";
      else problem = conformance::visible_problem(*j, es.back().position);
      std::lock_guard<std::mutex> lock(heard_mutex);
      if (listener_problem.empty()) listener_problem = problem;
      heard.insert(heard.end(), es.begin(), es.end());
    });

    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::pair<std::unique_ptr<journal::pending_append>, size_t>> queue;
    bool produced_all = false;
    std::string consumer_problem;
    size_t stored = 0;
    // Producer: exact expected versions everywhere, so a version judged against the
    // committed store instead of the pending batches shows up as a conflict.
    std::thread producer([&] {
      std::map<stream_id, uint64_t> versions;
      for (size_t b = 0; b < batches; ++b) {
        std::vector<append_request> batch;
        for (size_t r = 0; r < 1 + b % 4; ++r) {
          auto s = sid("r", std::to_string((b * 3 + r) % streams));
          uint64_t& v = versions[s];
          size_t size = 1 + (b + r) % 3;
          append_request request{s, v == 0 ? expected_version::no_stream : v, {}};
          for (size_t i = 0; i < size; ++i)
            request.events.push_back(ev("rolled", std::to_string(size) + ":" + std::to_string(i) +
                                                    "/" + std::string(20 + (b * 7 + i) % 50, 'p')));
          v += size;
          total += size;
          batch.push_back(std::move(request));
        }
        size_t n = batch.size();
        auto pending = j->begin_append(std::move(batch));
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return queue.size() < depth; });
        queue.emplace_back(std::move(pending), n);
        ++begun;
        cv.notify_all();
      }
      std::lock_guard<std::mutex> lock(mutex);
      produced_all = true;
      cv.notify_all();
    });
    std::thread consumer([&] {
      uint64_t last = 0;
      for (;;) {
        std::unique_ptr<journal::pending_append> pending;
        size_t n = 0;
        {
          std::unique_lock<std::mutex> lock(mutex);
          cv.wait(lock, [&] { return !queue.empty() || produced_all; });
          if (queue.empty()) return;
          pending = std::move(queue.front().first);
          n = queue.front().second;
          queue.pop_front();
          cv.notify_all();
        }
        std::string problem;
        if (!pending) problem = "begin_append returned null";
        auto results = pending ? j->finish_append(std::move(pending)) : append_results{};
        if (problem.empty() && results.size() != n) problem = "wrong number of results";
        for (auto& r : results) {
          if (!r) {
            if (problem.empty()) problem = r.error().describe();
            continue;
          }
          if (r->first_position != last + 1 && problem.empty())
            problem = "position " + std::to_string(r->first_position) + " after " +
                      std::to_string(last);
          last = r->last_position;
          stored += r->last_position - r->first_position + 1;
        }
        if (problem.empty()) problem = conformance::visible_problem(*j, last);
        if (problem.empty()) {
          std::lock_guard<std::mutex> lock(heard_mutex);
          if (heard.size() != last)
            problem = "listeners heard " + std::to_string(heard.size()) + " of " +
                      std::to_string(last) + " finished events";
        }
        if (consumer_problem.empty()) consumer_problem = problem;
      }
    });
    producer.join();
    consumer.join();

    CHECK(consumer_problem == "");
    CHECK(listener_problem == "");
    CHECK(begun == batches);
    CHECK(stored == total);
    before = read_all_of(*j);
    REQUIRE(before.size() == total);
    CHECK(conformance::snapshot_problem(before, 1) == "");
    CHECK(j->head_position() == total);
    for (size_t s = 0; s < streams; ++s) {
      auto es = conformance::read_stream_of(*j, sid("r", std::to_string(s)));
      conformance::require_versions(es, 1, es.size());
      for (auto& e : es) CHECK(e == before[e.position - 1]);
    }
    {
      std::lock_guard<std::mutex> lock(heard_mutex);
      CHECK(heard == before);
    }
    counted = counters(*j);
  }
  CHECK(counted.batches == batches);
  if (policy == sync_policy::never) CHECK(counted.syncs == 0);
  if (policy == sync_policy::always) {
    CHECK(counted.syncs > 0);
    CHECK(counted.syncs <= batches);
  }
  auto segs = segments(dir.path);
  CHECK(segs.size() > 50); // many rolls

  auto report = verify_file_journal(dir.path.string());
  REQUIRE(report.has_value());
  CHECK(report->problems == std::vector<std::string>{});
  CHECK(report->records == total);
  CHECK(report->streams == streams);

  log_lines log;
  options.log = log.hook();
  auto j = open_ok(dir.path, options);
  INFO(log.all());
  CHECK(log.lines.empty()); // nothing to repair
  CHECK(j->head_position() == total);
  CHECK(read_all_of(*j) == before);
  // Appends go on from there, pipelined too.
  auto s0 = sid("r", "0");
  uint64_t v0 = version_of(*j, s0);
  auto pending = j->begin_append(batch_of(req(s0, v0, 2)));
  auto results = j->finish_append(std::move(pending));
  REQUIRE(results.size() == 1);
  succeeded(results[0], append_result{v0 + 1, v0 + 2, total + 1, total + 2});
}

TEST_CASE("file journal pipeline: one fdatasync covers the batches written before it",
          "[file][pipeline]") {
  auto j = fresh_store(options_for(sync_policy::always));
  auto s = sid("s", "1");
  size_t sent = 0;
  auto next = [&] {
    return batch_of(req(s, sent++, 1), req(sid("o", "1"), expected_version::any, 2));
  };
  conformance::ok(*j, req(s, expected_version::no_stream, 1));
  sent = 1;
  auto c0 = counters(*j);

  // Begin 2, finish 2: the first finish syncs both.
  {
    auto p1 = j->begin_append(next());
    auto p2 = j->begin_append(next());
    all_ok(j->finish_append(std::move(p1)), 2);
    all_ok(j->finish_append(std::move(p2)), 2);
  }
  auto c1 = counters(*j);
  CHECK(c1.batches - c0.batches == 2);
  CHECK(c1.syncs - c0.syncs == 1);
  CHECK(c1.bytes > c0.bytes);

  // Begin 3, finish 3: still one.
  {
    auto p1 = j->begin_append(next());
    auto p2 = j->begin_append(next());
    auto p3 = j->begin_append(next());
    all_ok(j->finish_append(std::move(p1)), 2);
    all_ok(j->finish_append(std::move(p2)), 2);
    all_ok(j->finish_append(std::move(p3)), 2);
  }
  auto c2 = counters(*j);
  CHECK(c2.batches - c1.batches == 3);
  CHECK(c2.syncs - c1.syncs == 1);

  // Interleaved: begin 1, begin 2, finish 1 (syncs 1 and 2), begin 3, finish 2 (covered),
  // finish 3 (syncs 3).
  {
    auto p1 = j->begin_append(next());
    auto p2 = j->begin_append(next());
    all_ok(j->finish_append(std::move(p1)), 2);
    auto p3 = j->begin_append(next());
    all_ok(j->finish_append(std::move(p2)), 2);
    all_ok(j->finish_append(std::move(p3)), 2);
  }
  auto c3 = counters(*j);
  CHECK(c3.batches - c2.batches == 3);
  CHECK(c3.syncs - c2.syncs == 2);

  // Unpipelined: one sync per batch.
  for (int i = 0; i < 3; ++i) all_ok(j->append(next()), 2);
  auto c4 = counters(*j);
  CHECK(c4.batches - c3.batches == 3);
  CHECK(c4.syncs - c3.syncs == 3);

  // A batch that stores nothing writes and syncs nothing.
  auto nothing = j->begin_append(batch_of(req(s, 0, 1)));
  auto results = j->finish_append(std::move(nothing));
  REQUIRE(results.size() == 1);
  failed(results[0], errc::conflict);
  auto c5 = counters(*j);
  CHECK(c5.batches == c4.batches);
  CHECK(c5.syncs == c4.syncs);
  CHECK(c5.bytes == c4.bytes);

  CHECK(version_of(*j, s) == sent);
  conformance::require_positions(read_all_of(*j), 1, 1 + 3 * (sent - 1));

  // Under sync never nothing is synced; other journals have no counters.
  auto never = fresh_store(options_for(sync_policy::never));
  auto p1 = never->begin_append(batch_of(req(s, expected_version::any, 1)));
  auto p2 = never->begin_append(batch_of(req(s, expected_version::any, 1)));
  all_ok(never->finish_append(std::move(p1)), 1);
  all_ok(never->finish_append(std::move(p2)), 1);
  CHECK(counters(*never).batches == 2);
  CHECK(counters(*never).syncs == 0);
  auto memory = make_memory_journal();
  auto none = counters_of_file_journal(*memory);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code() == errc::invalid_argument);
}

TEST_CASE("file journal pipeline: batches that store nothing do not disturb later versions",
          "[file][pipeline]") {
  auto policy = GENERATE(sync_policy::never, sync_policy::always);
  INFO("sync " << to_string(policy));
  temp_dir dir;
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options_for(policy));
    std::vector<envelope> heard;
    size_t calls = 0;
    j->subscribe([&](const std::vector<envelope>& es) {
      ++calls;
      heard.insert(heard.end(), es.begin(), es.end());
    });
    auto a = sid("a", "1"), b = sid("b", "1"), c = sid("c", "1");
    std::vector<std::vector<append_request>> batches(5);
    // 1: a 1..2 @1..2, b 1 @3
    batches[0] =
      batch_of(req(a, expected_version::no_stream, 2), req(b, expected_version::no_stream, 1));
    // 2: fails whole: every request invalid
    batches[1] = batch_of(req(sid("", "1"), expected_version::any, 1), req(a, 2, 0));
    batches[1].push_back(append_request{a, 2, {ev("")}}); // an event with no type
    // 3: a 3 @4, b 2..3 @5..6 (versions only pending batch 1 reaches)
    batches[2] = batch_of(req(a, 2, 1), req(b, 1, 2));
    // 4: only conflicts, each judged against the pending batches
    batches[3] = batch_of(req(a, 2, 1), req(b, expected_version::no_stream, 1));
    batches[3].push_back(req(c, 1, 1));
    // 5: a 4 @7, c 1 @8
    batches[4] = batch_of(req(a, 3, 1), req(c, expected_version::no_stream, 1));

    std::vector<std::unique_ptr<journal::pending_append>> pending;
    for (auto& batch : batches) {
      pending.push_back(j->begin_append(std::move(batch)));
      REQUIRE(pending.back());
    }
    CHECK(j->head_position() == 0);
    CHECK(heard.empty());
    std::vector<append_results> results;
    std::vector<uint64_t> head_after = {3, 3, 6, 6, 8};
    for (size_t k = 0; k < pending.size(); ++k) {
      results.push_back(j->finish_append(std::move(pending[k])));
      INFO("after finishing batch " << k + 1);
      CHECK(j->head_position() == head_after[k]);
      CHECK(heard.size() == head_after[k]); // heard during finish_append, not before
      CHECK(read_all_of(*j).size() == head_after[k]);
    }
    CHECK(calls == 3); // the batches that stored nothing were not published
    REQUIRE(results[0].size() == 2);
    succeeded(results[0][0], append_result{1, 2, 1, 2});
    succeeded(results[0][1], append_result{1, 1, 3, 3});
    REQUIRE(results[1].size() == 3);
    for (auto& r : results[1]) failed(r, errc::invalid_argument);
    REQUIRE(results[2].size() == 2);
    succeeded(results[2][0], append_result{3, 3, 4, 4});
    succeeded(results[2][1], append_result{2, 3, 5, 6});
    REQUIRE(results[3].size() == 3);
    for (auto& r : results[3]) failed(r, errc::conflict);
    REQUIRE(results[4].size() == 2);
    succeeded(results[4][0], append_result{4, 4, 7, 7});
    succeeded(results[4][1], append_result{1, 1, 8, 8});
    CHECK(version_of(*j, a) == 4);
    CHECK(version_of(*j, b) == 3);
    CHECK(version_of(*j, c) == 1);
    CHECK(counters(*j).batches == 3); // batches 2 and 4 wrote nothing
    before = read_all_of(*j);
    CHECK(heard == before);

    // A read-only store beside the writer fails whole batches, pipelined too, and the
    // writer's next batch goes on as before.
    auto ro_options = options_for(policy);
    ro_options.read_only = true;
    auto ro = open_ok(dir.path, ro_options);
    auto ro1 = ro->begin_append(batch_of(req(a, 4, 1)));
    auto w = j->begin_append(batch_of(req(a, 4, 1), req(b, 3, 1)));
    auto ro2 = ro->begin_append(batch_of(req(c, 1, 1)));
    for (auto& r : ro->finish_append(std::move(ro1))) failed(r, errc::unavailable);
    auto written = j->finish_append(std::move(w));
    for (auto& r : ro->finish_append(std::move(ro2))) failed(r, errc::unavailable);
    REQUIRE(written.size() == 2);
    succeeded(written[0], append_result{5, 5, 9, 9});
    succeeded(written[1], append_result{4, 4, 10, 10});
    auto refreshed = refresh_file_journal(*ro);
    REQUIRE(refreshed.has_value());
    CHECK(*refreshed == 10);
    before = read_all_of(*j);
    CHECK(read_all_of(*ro) == before);
  }
  auto report = verify_file_journal(dir.path.string());
  REQUIRE(report.has_value());
  CHECK(report->problems == std::vector<std::string>{});
  CHECK(report->records == 10);
  auto j = open_ok(dir.path, options_for(policy));
  CHECK(read_all_of(*j) == before);
  CHECK(version_of(*j, sid("a", "1")) == 5);
}
