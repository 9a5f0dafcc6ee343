// The journal conformance suite: checks every event store (memory, file, PostgreSQL) must pass.
//
// Use from a test file, with a string literal name and a factory for a fresh empty store:
//   CAIRN_JOURNAL_CONFORMANCE("memory", [] { return cairn::make_memory_journal(); })
// Durable stores also run the reopen checks in conformance/journal_conformance_reopen.hpp.
// Test names contain no commas, brackets or quotes so ctest discovery can pass them on.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "conformance/journal_conformance_support.hpp"
#include "conformance/journal_conformance_pipeline.hpp"

namespace cairn::conformance {

inline void empty_store(const journal_factory& make) {
  auto j = make();
  auto s = sid("account", "1");
  CHECK(j->head_position() == 0);
  CHECK(version_of(*j, s) == 0);
  CHECK(read_stream_of(*j, s).empty());
  CHECK(read_all_of(*j, 0).empty());
  CHECK(read_all_of(*j, 1).empty());
  CHECK(sorted_streams(*j).empty());
  auto whole = read_stream_all(*j, s);
  REQUIRE(whole.has_value());
  CHECK(whole->empty());
}

inline void first_append(const journal_factory& make) {
  auto j = make();
  auto a = sid("account", "1"), b = sid("account", "2");
  CHECK(ok(*j, req(a, expected_version::no_stream, 3)) == append_result{1, 3, 1, 3});
  CHECK(ok(*j, req(b, expected_version::no_stream, 1)) == append_result{1, 1, 4, 4});
  CHECK(ok(*j, req(a, 3, 2)) == append_result{4, 5, 5, 6});
  CHECK(j->head_position() == 6);
  CHECK(version_of(*j, a) == 5);
  CHECK(version_of(*j, b) == 1);
  auto es = read_stream_of(*j, a);
  require_versions(es, 1, 5);
  for (auto& e : es) CHECK(e.stream == a);
  CHECK(es[3].position == 5);
  CHECK(text(es[3].payload) == "e0");
}

inline void no_stream_conflict(const journal_factory& make) {
  auto j = make();
  auto s = sid("order", "7");
  ok(*j, req(s, expected_version::no_stream, 2));
  auto res = j->append_one(req(s, expected_version::no_stream, 1));
  failed(res, errc::conflict);
  CHECK_THAT(res.error().message(), Catch::Contains("order-7"));
  CHECK(j->head_position() == 2);
  CHECK(version_of(*j, s) == 2);
}

inline void stale_version_conflict(const journal_factory& make) {
  auto j = make();
  auto s = sid("account", "42");
  ok(*j, req(s, expected_version::no_stream, 23));
  for (uint64_t expected : {uint64_t{17}, uint64_t{22}, uint64_t{24}}) {
    auto res = j->append_one(req(s, expected, 3, "stale"));
    failed(res, errc::conflict);
    CHECK_THAT(res.error().message(), Catch::Contains(std::to_string(expected)));
    CHECK_THAT(res.error().message(), Catch::Contains("23"));
    CHECK_THAT(res.error().message(), Catch::Contains("account-42"));
  }
  CHECK(j->head_position() == 23);
  CHECK(version_of(*j, s) == 23);
  auto es = read_all_of(*j);
  REQUIRE(es.size() == 23);
  for (auto& e : es) CHECK(text(e.payload).rfind("stale", 0) == std::string::npos);
}

inline void any_version(const journal_factory& make) {
  auto j = make();
  auto s = sid("cart", "x");
  CHECK(ok(*j, req(s, expected_version::any, 2)) == append_result{1, 2, 1, 2});
  CHECK(ok(*j, req(s, expected_version::any, 1)) == append_result{3, 3, 3, 3});
  CHECK(version_of(*j, s) == 3);
}

inline void atomic_contiguous(const journal_factory& make) {
  auto j = make();
  auto a = sid("a", "1"), b = sid("b", "1");
  ok(*j, req(b, expected_version::any, 1));
  auto r = ok(*j, req(a, expected_version::any, 5, "a"));
  ok(*j, req(b, expected_version::any, 1));
  CHECK(r == append_result{1, 5, 2, 6});
  auto es = read_all_of(*j, r.first_position, 5);
  require_positions(es, 2, 6);
  require_versions(es, 1, 5);
  for (size_t i = 0; i < es.size(); ++i) {
    CHECK(es[i].stream == a);
    CHECK(text(es[i].payload) == "a" + std::to_string(i));
  }
  // A request with one bad event stores none of its events.
  append_request bad{a, expected_version::any, {ev("fine"), ev(""), ev("fine")}};
  auto res = j->append_one(bad);
  failed(res, errc::invalid_argument);
  CHECK(j->head_position() == 7);
  CHECK(version_of(*j, a) == 5);
}

inline void mixed_batch(const journal_factory& make) {
  auto j = make();
  auto a = sid("a", "1"), b = sid("b", "1"), d = sid("d", "1");
  std::vector<append_request> batch;
  batch.push_back(req(a, expected_version::no_stream, 2));
  batch.push_back(req(b, 5, 1));  // b is empty: conflict
  batch.push_back(req(sid("bad-category", "1"), expected_version::any, 1));
  batch.push_back(req(d, expected_version::no_stream, 1));
  batch.push_back(req(d, expected_version::any, 0)); // no events
  auto results = j->append(std::move(batch));
  REQUIRE(results.size() == 5);
  succeeded(results[0], append_result{1, 2, 1, 2});
  failed(results[1], errc::conflict);
  failed(results[2], errc::invalid_argument);
  succeeded(results[3], append_result{1, 1, 3, 3});
  failed(results[4], errc::invalid_argument);
  CHECK(j->head_position() == 3);
  require_positions(read_all_of(*j), 1, 3);
  CHECK(version_of(*j, b) == 0);
  CHECK(sorted_streams(*j) == std::vector<stream_id>{a, d});
  CHECK(j->append({}).empty());
}

inline void batch_sees_earlier(const journal_factory& make) {
  auto j = make();
  auto s = sid("s", "1");
  std::vector<append_request> batch;
  batch.push_back(req(s, expected_version::no_stream, 2));
  batch.push_back(req(s, 2, 1));
  batch.push_back(req(s, 2, 1)); // stale now
  batch.push_back(req(s, expected_version::any, 1));
  batch.push_back(req(s, expected_version::no_stream, 1));
  auto results = j->append(std::move(batch));
  REQUIRE(results.size() == 5);
  REQUIRE(results[0].has_value());
  succeeded(results[1], append_result{3, 3, 3, 3});
  failed(results[2], errc::conflict);
  succeeded(results[3], append_result{4, 4, 4, 4});
  failed(results[4], errc::conflict);
  CHECK(version_of(*j, s) == 4);
  require_versions(read_stream_of(*j, s), 1, 4);
}

inline void read_stream_ranges(const journal_factory& make) {
  auto j = make();
  auto s = sid("s", "1"), other = sid("o", "1");
  for (int i = 0; i < 10; ++i) {
    ok(*j, req(s, expected_version::any, 1, "s" + std::to_string(i + 1) + "-"));
    ok(*j, req(other, expected_version::any, 1));
  }
  auto tail = read_stream_of(*j, s, 4);
  require_versions(tail, 4, 10);
  CHECK(text(tail.front().payload) == "s4-0");
  CHECK(tail.front().position == 7);
  require_versions(read_stream_of(*j, s, 4, 3), 4, 6);
  require_versions(read_stream_of(*j, s, 10, 3), 10, 10);
  CHECK(read_stream_of(*j, s, 0) == read_stream_of(*j, s, 1));
  CHECK(read_stream_of(*j, s, 11).empty());
  CHECK(read_stream_of(*j, s, std::numeric_limits<uint64_t>::max()).empty());
  CHECK(read_stream_of(*j, s, 1, 0).empty());
  CHECK(read_stream_of(*j, sid("s", "2")).empty());
}

inline void read_all_ranges(const journal_factory& make) {
  auto j = make();
  std::vector<stream_id> order;
  for (int round = 0; round < 4; ++round)
    for (const char* c : {"x", "y", "z"}) {
      ok(*j, req(sid(c, "1"), expected_version::any, 1));
      order.push_back(sid(c, "1"));
    }
  auto es = read_all_of(*j);
  require_positions(es, 1, 12);
  for (size_t i = 0; i < es.size(); ++i) {
    CHECK(es[i].stream == order[i]);
    CHECK(es[i].version == i / 3 + 1);
  }
  require_positions(read_all_of(*j, 5, 3), 5, 7);
  require_positions(read_all_of(*j, 11, 100), 11, 12);
  CHECK(read_all_of(*j, 0) == es);
  CHECK(read_all_of(*j, 13).empty());
  CHECK(read_all_of(*j, std::numeric_limits<uint64_t>::max()).empty());
  CHECK(read_all_of(*j, 1, 0).empty());
}

inline void invalid_arguments(const journal_factory& make) {
  auto j = make();
  std::vector<stream_id> bad = {
    sid("", "1"),         sid("acc-ount", "1"),     sid("acc ount", "1"),
    sid("caf\xc3\xa9", "1"), sid("account", ""),      sid("account", "a\nb"),
    sid("account", "a\x7f"), sid("a", std::string(1023, 'x')), // 1025 bytes in all
  };
  for (auto& s : bad) {
    INFO("stream " << s.str().substr(0, 40));
    auto res = j->append_one(req(s, expected_version::any, 1));
    failed(res, errc::invalid_argument);
  }
  auto empty = j->append_one(req(sid("account", "1"), expected_version::any, 0));
  failed(empty, errc::invalid_argument);
  auto untyped =
    j->append_one(append_request{sid("account", "1"), expected_version::any, {ev("")}});
  failed(untyped, errc::invalid_argument);
  CHECK(j->head_position() == 0);
  CHECK(sorted_streams(*j).empty());
  // Edge cases that are valid: '-' and UTF-8 in the id, a name of exactly 1024 bytes.
  ok(*j, req(sid("order_2", "2024-01-\xc3\xbc"), expected_version::no_stream, 1));
  ok(*j, req(sid("a", std::string(1022, 'x')), expected_version::no_stream, 1));
  CHECK(j->head_position() == 2);
}

/// A fence on a lease nobody holds is refused (fenced where the store keeps leases,
/// invalid_argument where it keeps none) and stores nothing; its batch goes on.
inline void unheld_fence_refused(const journal_factory& make) {
  auto j = make();
  auto a = sid("account", "1"), b = sid("account", "2");
  auto fenced = req(a, expected_version::no_stream, 2);
  fenced.fence = fence_token{7, 3};
  std::vector<append_request> batch;
  batch.push_back(fenced);
  batch.push_back(req(b, expected_version::no_stream, 1));
  auto results = j->append(std::move(batch));
  REQUIRE(results.size() == 2);
  REQUIRE_FALSE(results[0].has_value());
  CHECK((results[0].error().code() == errc::fenced ||
         results[0].error().code() == errc::invalid_argument));
  CHECK_THAT(results[0].error().message(), Catch::Contains("account-1"));
  REQUIRE(results[1].has_value());
  CHECK(*results[1] == append_result{1, 1, 1, 1});
  CHECK(version_of(*j, a) == 0);
  CHECK(j->head_position() == 1);
}

inline void round_trip(const journal_factory& make) {
  auto j = make();
  auto s = sid("doc", "\xe2\x9c\x93-a-b");
  std::vector<event_data> events(4);
  events[0].type = "all_bytes";
  for (int b = 0; b < 256; ++b) events[0].payload.push_back(static_cast<uint8_t>(b));
  events[0].meta = {"corr-1", "cause-1", {{"user", "ann"}, {"", ""}, {"user", "bob"}}};
  events[0].meta.entries.emplace_back("tenant", std::string("t\0x", 3)); // embedded NUL
  events[1].type = "empty_payload";
  events[1].schema_version = 7;
  events[2].type = "large_\xc3\xa9v\xc3\xa9nement";
  events[2].schema_version = std::numeric_limits<uint32_t>::max();
  events[2].payload.assign(100000, 0xab);
  events[2].meta.correlation_id = std::string(300, 'c');
  events[3].type = "x";
  events[3].meta.causation_id = "only causation";
  std::vector<envelope> heard;
  j->subscribe(
    [&](const std::vector<envelope>& es) { heard.insert(heard.end(), es.begin(), es.end()); });
  ok(*j, append_request{s, expected_version::no_stream, events});
  auto by_stream = read_stream_of(*j, s);
  CHECK(read_all_of(*j) == by_stream);
  CHECK(heard == by_stream);
  REQUIRE(by_stream.size() == events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = by_stream[i];
    CHECK(e.stream == s);
    CHECK(e.type == events[i].type);
    CHECK(e.schema_version == events[i].schema_version);
    CHECK(e.payload == events[i].payload);
    CHECK(e.meta == events[i].meta);
  }
  REQUIRE(by_stream[0].meta.find("user"));
  CHECK(*by_stream[0].meta.find("user") == "ann");
  CHECK(sorted_streams(*j) == std::vector<stream_id>{s});
}

inline void timestamps(const journal_factory& make) {
  auto j = make();
  int64_t before = now_ns();
  for (int i = 0; i < 20; ++i) {
    ok(*j, req(sid("t", std::to_string(i % 3)), expected_version::any, 1 + i % 2));
    if (i % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int64_t after = now_ns();
  auto es = read_all_of(*j);
  REQUIRE(es.size() == 30);
  constexpr int64_t slack = int64_t{60} * 1000 * 1000 * 1000; // clock skew allowance
  for (size_t i = 0; i < es.size(); ++i) {
    CHECK(es[i].timestamp_ns >= before - slack);
    CHECK(es[i].timestamp_ns <= after + slack);
    if (i > 0) CHECK(es[i].timestamp_ns >= es[i - 1].timestamp_ns);
  }
  CHECK(es.back().time() >= es.front().time());
}

inline void listeners_in_order(const journal_factory& make) {
  auto j = make();
  std::vector<envelope> heard1, heard2;
  size_t calls = 0;
  bool empty_call = false;
  j->subscribe([&](const std::vector<envelope>& es) {
    ++calls;
    empty_call = empty_call || es.empty();
    heard1.insert(heard1.end(), es.begin(), es.end());
  });
  j->subscribe(
    [&](const std::vector<envelope>& es) { heard2.insert(heard2.end(), es.begin(), es.end()); });
  auto a = sid("a", "1");
  ok(*j, req(a, expected_version::no_stream, 2));
  CHECK(heard1.size() == 2); // delivered before append returns
  std::vector<append_request> batch;
  batch.push_back(req(a, 2, 1));
  batch.push_back(req(a, 0, 1)); // conflict
  batch.push_back(req(sid("b", "1"), expected_version::any, 3));
  batch.push_back(req(sid("", "1"), expected_version::any, 1)); // invalid
  j->append(std::move(batch));
  size_t calls_before_failures = calls;
  CHECK_FALSE(j->append_one(req(a, 1, 1)).has_value());
  CHECK_FALSE(j->append_one(req(a, expected_version::any, 0)).has_value());
  CHECK(calls == calls_before_failures);
  CHECK_FALSE(empty_call);
  auto stored = read_all_of(*j);
  REQUIRE(stored.size() == 6);
  CHECK(heard1 == stored);
  CHECK(heard2 == stored);
}

inline void unsubscribe_stops(const journal_factory& make) {
  auto j = make();
  size_t a_count = 0, b_count = 0;
  auto ha = j->subscribe([&](const std::vector<envelope>& es) { a_count += es.size(); });
  auto hb = j->subscribe([&](const std::vector<envelope>& es) { b_count += es.size(); });
  CHECK(ha != hb);
  ok(*j, req(sid("s", "1"), expected_version::any, 2));
  j->unsubscribe(ha);
  j->unsubscribe(ha + hb + 1000); // unknown handle: harmless
  ok(*j, req(sid("s", "1"), expected_version::any, 3));
  CHECK(a_count == 2);
  CHECK(b_count == 5);
  j->unsubscribe(hb);
  ok(*j, req(sid("s", "1"), expected_version::any, 1));
  CHECK(b_count == 5);
}

inline void listener_may_read(const journal_factory& make) {
  auto j = make();
  bool checked = false;
  j->subscribe([&](const std::vector<envelope>& es) {
    CHECK_FALSE(es.empty());
    if (es.empty()) return;
    CHECK(j->head_position() >= es.back().position);
    CHECK(read_all_of(*j, es.front().position, es.size()) == es);
    CHECK(version_of(*j, es.back().stream) >= es.back().version);
    checked = true;
  });
  ok(*j, req(sid("s", "1"), expected_version::any, 2));
  CHECK(checked);
}

inline void list_streams(const journal_factory& make) {
  auto j = make();
  std::vector<stream_id> expected{sid("a", "1"), sid("a", "2"), sid("b", "1-2")};
  for (int round = 0; round < 3; ++round)
    for (auto& s : expected) ok(*j, req(s, expected_version::any, 1));
  CHECK_FALSE(j->append_one(req(sid("c", "1"), 5, 1)).has_value());
  CHECK(sorted_streams(*j) == expected);
}

inline void concurrent_readers(const journal_factory& make) {
  auto j = make();
  constexpr size_t total = 2000;
  std::atomic<bool> done{false};
  std::atomic<size_t> passes{0};
  std::vector<std::string> problems(3);
  // Each reader keeps its first problem and goes on until done, so the passes count moves.
  auto reader = [&](std::string& first_problem) {
    for (size_t pass = 0; !done.load(); ++pass) {
      auto problem = reader_pass_problem(*j, pass, 97, "c", 4);
      if (first_problem.empty()) first_problem = problem;
      passes.fetch_add(1);
      std::this_thread::yield();
    }
  };
  std::vector<std::thread> readers;
  for (auto& problem : problems) readers.emplace_back(reader, std::ref(problem));
  size_t written = 0, n = 0;
  bool all_ok = true;
  while (written < total) {
    std::vector<append_request> batch;
    for (size_t r = 0; r < 4 && written < total; ++r, ++n) {
      size_t size = std::min<size_t>(1 + n % 7, total - written);
      append_request request{sid("c", std::to_string(n % 4)), expected_version::any, {}};
      for (size_t i = 0; i < size; ++i)
        request.events.push_back(ev("tick", std::to_string(size) + ":" + std::to_string(i)));
      batch.push_back(std::move(request));
      written += size;
    }
    for (auto& r : j->append(std::move(batch))) all_ok = all_ok && r.has_value();
  }
  // Let the readers make a few passes over the complete store too.
  for (size_t seen = passes.load(); passes.load() < seen + readers.size();)
    std::this_thread::yield();
  done = true;
  for (auto& t : readers) t.join();
  CHECK(all_ok);
  for (auto& problem : problems) CHECK(problem == "");
  auto es = read_all_of(*j);
  REQUIRE(es.size() == total);
  CHECK(snapshot_problem(es, 1) == "");
}

inline void read_stream_all_helper(const journal_factory& make) {
  auto j = make();
  auto big = sid("big", "1"), exact = sid("exact", "1");
  for (size_t done = 0; done < 9000; done += 500) {
    std::vector<append_request> batch;
    batch.push_back(req(big, expected_version::any, 500));
    if (done <= 4000) batch.push_back(req(exact, expected_version::any, done < 4000 ? 500 : 96));
    for (auto& r : j->append(std::move(batch))) REQUIRE(r.has_value());
  }
  REQUIRE(version_of(*j, exact) == 4096);
  auto whole = read_stream_all(*j, big);
  REQUIRE(whole.has_value());
  require_versions(*whole, 1, 9000);
  auto from = read_stream_all(*j, big, 4000);
  REQUIRE(from.has_value());
  require_versions(*from, 4000, 9000);
  auto exactly = read_stream_all(*j, exact);
  REQUIRE(exactly.has_value());
  require_versions(*exactly, 1, 4096);
  for (auto& e : *exactly) REQUIRE(e.stream == exact);
  auto none = read_stream_all(*j, sid("none", "1"));
  REQUIRE(none.has_value());
  CHECK(none->empty());
}

} // namespace cairn::conformance

#define CAIRN_CONFORMANCE_CAT2(a, b) a##b
#define CAIRN_CONFORMANCE_CAT(a, b) CAIRN_CONFORMANCE_CAT2(a, b)
#define CAIRN_CONFORMANCE_CASE(store, factory, check, sentence)                                   \
  TEST_CASE(store ": " sentence, "[journal][conformance]") {                                      \
    ::cairn::conformance::check(factory);                                                         \
  }

/// Defines the conformance TEST_CASEs for a store. `store` must be a string literal;
/// the rest is a callable returning std::shared_ptr<cairn::journal> for a fresh empty store.
#define CAIRN_JOURNAL_CONFORMANCE(store, ...)                                                     \
  CAIRN_JOURNAL_CONFORMANCE_IMPL(                                                                 \
    store, CAIRN_CONFORMANCE_CAT(cairn_conformance_factory_, __LINE__), __VA_ARGS__)

#define CAIRN_JOURNAL_CONFORMANCE_IMPL(s, f, ...)                                                 \
  static const ::cairn::conformance::journal_factory f{__VA_ARGS__};                              \
  CAIRN_CONFORMANCE_CASE(s, f, empty_store, "an empty store has no events or streams")            \
  CAIRN_CONFORMANCE_CASE(s, f, first_append, "versions and positions start at 1 and count up")    \
  CAIRN_CONFORMANCE_CASE(s, f, no_stream_conflict,                                                \
                         "no_stream on an existing stream is a conflict")                         \
  CAIRN_CONFORMANCE_CASE(s, f, stale_version_conflict,                                            \
                         "a stale expected version is a conflict and stores nothing")             \
  CAIRN_CONFORMANCE_CASE(s, f, any_version, "expected version any skips the check")               \
  CAIRN_CONFORMANCE_CASE(s, f, atomic_contiguous,                                                 \
                         "a multi-event append is atomic and contiguous")                         \
  CAIRN_CONFORMANCE_CASE(s, f, mixed_batch, "a mixed batch stores only its successful requests")  \
  CAIRN_CONFORMANCE_CASE(s, f, batch_sees_earlier,                                                \
                         "a later request in a batch sees the earlier ones")                      \
  CAIRN_CONFORMANCE_CASE(s, f, read_stream_ranges,                                                \
                         "read_stream honours from_version and max_count")                        \
  CAIRN_CONFORMANCE_CASE(s, f, read_all_ranges, "read_all returns global order from a position")  \
  CAIRN_CONFORMANCE_CASE(s, f, invalid_arguments,                                                 \
                         "bad stream names and empty appends are invalid arguments")              \
  CAIRN_CONFORMANCE_CASE(s, f, unheld_fence_refused,                                              \
                         "an append fenced with a lease nobody holds stores nothing")             \
  CAIRN_CONFORMANCE_CASE(s, f, round_trip,                                                        \
                         "type and schema version and metadata and payload round-trip exactly")   \
  CAIRN_CONFORMANCE_CASE(s, f, timestamps,                                                        \
                         "timestamps are plausible and never decrease with position")             \
  CAIRN_CONFORMANCE_CASE(s, f, listeners_in_order,                                                \
                         "listeners get each committed event once and in order")                  \
  CAIRN_CONFORMANCE_CASE(s, f, unsubscribe_stops, "unsubscribe stops delivery")                   \
  CAIRN_CONFORMANCE_CASE(s, f, listener_may_read, "a listener may read the store it listens to")  \
  CAIRN_CONFORMANCE_CASE(s, f, list_streams, "list_streams names every stream with events")       \
  CAIRN_CONFORMANCE_CASE(s, f, concurrent_readers,                                                \
                         "concurrent readers never see holes or partial requests")                \
  CAIRN_CONFORMANCE_CASE(s, f, read_stream_all_helper,                                            \
                         "read_stream_all reads past one chunk")                                  \
  CAIRN_CONFORMANCE_PIPELINE_CASE(s, f, pipeline_versions_continue,                               \
                                  "begun batches continue the versions of pending ones")          \
  CAIRN_CONFORMANCE_PIPELINE_CASE(s, f, pipeline_equals_sequential,                               \
                                  "a pipelined run stores what a sequential run stores")          \
  CAIRN_CONFORMANCE_PIPELINE_CASE(s, f, pipeline_listeners,                                       \
                                  "listeners hear pipelined batches once and in order")           \
  CAIRN_CONFORMANCE_PIPELINE_CASE(s, f, pipeline_threads,                                         \
                                  "batches finished on another thread stay consistent")
