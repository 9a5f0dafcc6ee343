// Tests for the file journal: conformance runs, segments, locking, read-only, stats, CRC-32C.
#include "conformance/journal_conformance.hpp"
#include "conformance/journal_conformance_reopen.hpp"
#include "framework/file_journal_test_support.hpp"

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "cairn/memory_journal.hpp"
#include "crc32c.hpp"

using namespace cairn;
using namespace cairn::file_test;
using cairn::conformance::ev;
using cairn::conformance::req;
using cairn::conformance::sid;

CAIRN_JOURNAL_CONFORMANCE("file sync never",
                          [] { return fresh_store(options_for(sync_policy::never)); })
CAIRN_JOURNAL_CONFORMANCE("file sync always",
                          [] { return fresh_store(options_for(sync_policy::always)); })
// Tiny segments: nearly every batch starts a new segment, so every check reads across them.
CAIRN_JOURNAL_CONFORMANCE("file tiny segments",
                          [] { return fresh_store(options_for(sync_policy::never, 700)); })
CAIRN_JOURNAL_CONFORMANCE("file sync interval", [] {
  auto o = options_for(sync_policy::interval);
  o.sync_interval = std::chrono::milliseconds(5);
  return fresh_store(o);
})

CAIRN_JOURNAL_CONFORMANCE_REOPEN("file sync never", [](const std::string& dir) {
  return open_ok(dir, options_for(sync_policy::never));
})
CAIRN_JOURNAL_CONFORMANCE_REOPEN("file sync always", [](const std::string& dir) {
  return open_ok(dir, options_for(sync_policy::always));
})
CAIRN_JOURNAL_CONFORMANCE_REOPEN("file tiny segments", [](const std::string& dir) {
  return open_ok(dir, options_for(sync_policy::never, 300));
})

TEST_CASE("file journal: segments roll at segment_bytes and reads cross them", "[file]") {
  temp_dir dir;
  auto options = options_for(sync_policy::never, 2048);
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options);
    before = fill(*j, 40, 5, 7);
    REQUIRE(before.size() == 200);
    conformance::require_positions(before, 1, 200);
  }
  auto segs = segments(dir.path);
  CHECK(segs.size() > 5);
  CHECK(segs.front().filename() == "segment-00000000000000000001.log");
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    CHECK(fs::file_size(segs[i]) <= 2048); // batches are small: none overshoots
    auto idx = segs[i];
    CHECK(fs::exists(idx.replace_extension(".idx"))); // sealed segments have an index
  }
  CHECK_FALSE(fs::exists(fs::path(segs.back()).replace_extension(".idx")));

  log_lines log;
  options.log = log.hook();
  auto j = open_ok(dir.path, options);
  INFO(log.all());
  CHECK(log.lines.empty()); // a clean store opens without repairs
  CHECK(j->head_position() == 200);
  CHECK(conformance::read_all_of(*j) == before);
  // Every stream reads back whole, in version order, from any version.
  for (size_t s = 0; s < 7; ++s) {
    auto stream = sid("s", std::to_string(s));
    auto es = conformance::read_stream_of(*j, stream);
    conformance::require_versions(es, 1, es.size());
    for (auto& e : es) CHECK(e == before[e.position - 1]);
    auto tail = conformance::read_stream_of(*j, stream, 10, 7);
    conformance::require_versions(tail, 10, 16);
  }
  // Pages of read_all that start inside one segment and end in another.
  for (uint64_t from = 1; from <= 200; from += 13)
    CHECK(conformance::read_all_of(*j, from, 29) ==
          std::vector<envelope>(before.begin() + (from - 1),
                                before.begin() + std::min<uint64_t>(from - 1 + 29, 200)));
  // Appends continue after the reopen, in the right segment, with the right numbers.
  auto r = conformance::ok(*j, req(sid("s", "3"), expected_version::any, 1));
  CHECK(r.first_position == 201);
  CHECK(r.first_version == conformance::version_of(*j, sid("s", "3")));
  auto report = verify_file_journal(dir.path.string());
  REQUIRE(report.has_value());
  CHECK(report->problems.empty());
  CHECK(report->records == 201);
}

TEST_CASE("file journal: a batch larger than a segment gets a segment of its own", "[file]") {
  temp_dir dir;
  auto j = open_ok(dir.path, options_for(sync_policy::never, 1000));
  conformance::ok(*j, req(sid("a", "1"), expected_version::any, 2));
  std::vector<append_request> batch;
  batch.push_back(req(sid("a", "1"), 2, 30, std::string(100, 'p')));
  batch.push_back(req(sid("b", "1"), expected_version::no_stream, 1));
  for (auto& r : j->append(std::move(batch))) REQUIRE(r.has_value());
  conformance::ok(*j, req(sid("a", "1"), 32, 1));
  CHECK(segments(dir.path).size() == 3); // [2 events] [31 events, about 5 KB] [1 event]
  CHECK(fs::file_size(segments(dir.path)[1]) > 1000);
  CHECK(conformance::read_all_of(*j).size() == 34);
  conformance::require_versions(conformance::read_stream_of(*j, sid("a", "1")), 1, 33);
}

TEST_CASE("file journal: reads piece records together across preads and check each one",
          "[file]") {
  temp_dir dir;
  auto j = open_ok(dir.path, options_for(sync_policy::never));
  // Small events around large ones, some several times a pread piece (256 KiB), so that
  // records are cut at the end of a piece and completed by the next pread.
  const size_t sizes[] = {10, 300000, 7, 1u << 20, 5, 5, 700000, 3000000, 1, 90000, 262100};
  std::vector<std::string> payloads;
  for (size_t b = 0; b < 3; ++b) {
    std::vector<append_request> batch;
    for (size_t i = 0; i < 22; ++i) {
      size_t n = payloads.size();
      payloads.push_back(std::to_string(n) + std::string(sizes[n % std::size(sizes)], 'x'));
      batch.push_back({sid("p", std::to_string(n % 3)), expected_version::any,
                       {ev("piece", payloads.back())}});
    }
    for (auto& r : j->append(std::move(batch))) REQUIRE(r.has_value());
  }
  auto all = conformance::read_all_of(*j);
  REQUIRE(all.size() == payloads.size());
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].position == i + 1);
    CHECK(conformance::text(all[i].payload) == payloads[i]);
  }
  for (size_t s = 0; s < 3; ++s) {
    auto es = conformance::read_stream_of(*j, sid("p", std::to_string(s)));
    conformance::require_versions(es, 1, 22);
    for (auto& e : es) CHECK(e == all[e.position - 1]);
  }
  for (uint64_t from = 1; from <= all.size(); from += 5)
    CHECK(conformance::read_all_of(*j, from, 7) ==
          std::vector<envelope>(all.begin() + (from - 1),
                                all.begin() + std::min<uint64_t>(from - 1 + 7, all.size())));

  // Damage far into the segment, past many pieces: reads name the damaged record.
  auto seg = segments(dir.path).front();
  auto offsets = record_offsets(seg);
  REQUIRE(offsets.size() == all.size());
  size_t victim = 40; // a 3 MB record at position 41
  flip_byte(seg, offsets[victim] + 70);
  std::string where = seg.string() + " offset " + std::to_string(offsets[victim]);
  auto bad = j->read_all(1, conformance::all);
  REQUIRE_FALSE(bad.has_value());
  CHECK(is_corrupt(bad.error()));
  CHECK_THAT(bad.error().message(), Catch::Contains(where));
  auto by_stream = j->read_stream(all[victim].stream, 1, conformance::all);
  REQUIRE_FALSE(by_stream.has_value());
  CHECK(is_corrupt(by_stream.error()));
  CHECK_THAT(by_stream.error().message(), Catch::Contains(where));
  CHECK(conformance::read_all_of(*j, 1, victim) ==
        std::vector<envelope>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(victim)));
  CHECK(conformance::read_all_of(*j, victim + 2).size() == all.size() - victim - 1);
}

TEST_CASE("file journal: a second writer is refused with unavailable naming the folder",
          "[file]") {
  temp_dir dir;
  auto first = open_ok(dir.path, options_for(sync_policy::never));
  conformance::ok(*first, req(sid("a", "1"), expected_version::any, 1));
  auto second = open_file_journal(dir.path.string(), options_for(sync_policy::never));
  REQUIRE_FALSE(second.has_value());
  CHECK(is_unavailable(second.error()));
  CHECK_THAT(second.error().message(), Catch::Contains(dir.path.string()));
  CHECK_THAT(second.error().message(), Catch::Contains("LOCK"));
  CHECK(fs::exists(dir.path / "LOCK"));
  first.reset(); // closing releases the lock
  auto third = open_ok(dir.path, options_for(sync_policy::never));
  CHECK(third->head_position() == 1);
}

TEST_CASE("file journal: a read-only open works beside a writer and refreshes", "[file]") {
  temp_dir dir;
  auto writer = open_ok(dir.path, options_for(sync_policy::never, 1500));
  auto written = fill(*writer, 10, 3, 4);
  file_journal_options ro;
  ro.read_only = true;
  auto reader = open_ok(dir.path, ro);
  CHECK(reader->head_position() == 30);
  CHECK(conformance::read_all_of(*reader) == written);
  // Appends after the open are not visible until a refresh, which also follows new segments.
  auto more = fill(*writer, 20, 3, 4);
  CHECK(segments(dir.path).size() > 3);
  CHECK(reader->head_position() == 30);
  CHECK(conformance::read_all_of(*reader).size() == 30);
  auto head = refresh_file_journal(*reader);
  REQUIRE(head.has_value());
  CHECK(*head == 90);
  CHECK(conformance::read_all_of(*reader) == more);
  CHECK(conformance::version_of(*reader, sid("s", "1")) ==
        conformance::version_of(*writer, sid("s", "1")));
  CHECK(conformance::sorted_streams(*reader) == conformance::sorted_streams(*writer));
  CHECK(refresh_file_journal(*reader).value() == 90); // nothing new: no change

  auto refused = reader->append_one(req(sid("a", "1"), expected_version::any, 1));
  REQUIRE_FALSE(refused.has_value());
  CHECK(is_unavailable(refused.error()));
  CHECK_THAT(refused.error().message(), Catch::Contains("read-only"));
  CHECK(writer->head_position() == 90);
  // refresh on a writer is harmless; on another journal type it is an invalid argument.
  CHECK(refresh_file_journal(*writer).value() == 90);
  CHECK(is_invalid_argument(refresh_file_journal(*make_memory_journal()).error()));
}

TEST_CASE("file journal: a reader refreshing while the writer appends sees whole batches",
          "[file]") {
  temp_dir dir;
  auto writer = open_ok(dir.path, options_for(sync_policy::never, 4000));
  file_journal_options ro;
  ro.read_only = true;
  auto reader = open_ok(dir.path, ro);
  std::atomic<bool> done{false};
  std::string problem;
  std::atomic<size_t> refreshes{0};
  std::thread follower([&] {
    uint64_t seen = 0;
    while (problem.empty()) {
      bool last_round = done.load();
      auto head = refresh_file_journal(*reader);
      ++refreshes;
      if (!head) {
        problem = head.error().describe();
        break;
      }
      if (*head < seen) problem = "the head went back";
      auto es = reader->read_all(1, conformance::all);
      if (!es) problem = es.error().describe();
      else if (es->size() != *head) problem = "read_all disagrees with the head";
      else if (auto p = conformance::snapshot_problem(*es, 1); !p.empty()) problem = p;
      seen = *head;
      if (last_round) break;
    }
  });
  size_t written = 0;
  for (size_t n = 0; written < 1500; ++n) {
    size_t size = 1 + n % 9;
    append_request request{sid("c", std::to_string(n % 5)), expected_version::any, {}};
    for (size_t i = 0; i < size; ++i)
      request.events.push_back(ev("tick", std::to_string(size) + ":" + std::to_string(i)));
    conformance::ok(*writer, std::move(request));
    written += size;
    // Halfway, let the follower refresh at least twice while writes are still
    // to come, however the threads get scheduled.
    if (written >= 750 && written - size < 750) {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
      while (refreshes < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
  }
  done = true;
  follower.join();
  CHECK(problem == "");
  CHECK(refreshes > 1);
  CHECK(reader->head_position() == written);
  CHECK(segments(dir.path).size() > 10);
  CHECK(conformance::read_all_of(*reader) == conformance::read_all_of(*writer));
}

TEST_CASE("file journal: a read-only open changes nothing and needs the folder", "[file]") {
  temp_dir dir;
  file_journal_options ro;
  ro.read_only = true;
  auto missing = open_file_journal((dir.path / "nothing-here").string(), ro);
  REQUIRE_FALSE(missing.has_value());
  CHECK(is_not_found(missing.error()));
  CHECK_FALSE(fs::exists(dir.path / "nothing-here"));
  auto empty = open_ok(dir.path, ro); // an existing empty folder is an empty store
  CHECK(empty->head_position() == 0);
  CHECK(fs::is_empty(dir.path));
  {
    auto writer = open_ok(dir.path, options_for(sync_policy::never));
    fill(*writer, 3, 2, 2);
  }
  // A torn tail is left alone by a reader (only a writer truncates it).
  auto last = segments(dir.path).back();
  auto size = fs::file_size(last);
  fs::resize_file(last, size - 5);
  auto reader = open_ok(dir.path, ro);
  CHECK(reader->head_position() == 4);
  CHECK(fs::file_size(last) == size - 5);
  CHECK_FALSE(fs::exists(dir.path / "segment-00000000000000000001.idx"));
}

TEST_CASE("file journal: statistics and verify describe a sound store", "[file]") {
  temp_dir dir;
  int64_t before = now_ns();
  {
    auto j = open_ok(dir.path, options_for(sync_policy::never, 4096));
    fill(*j, 30, 4, 9);
  }
  auto stats = file_journal_statistics(dir.path.string());
  REQUIRE(stats.has_value());
  CHECK(stats->events == 120);
  CHECK(stats->head_position == 120);
  CHECK(stats->streams == 9);
  auto segs = segments(dir.path);
  CHECK(stats->segments == segs.size());
  uint64_t bytes = 0;
  for (auto& s : segs) bytes += fs::file_size(s);
  CHECK(stats->bytes == bytes);
  CHECK(stats->first_timestamp_ns >= before - int64_t{60'000'000'000});
  CHECK(stats->last_timestamp_ns >= stats->first_timestamp_ns);

  std::vector<std::pair<uint64_t, uint64_t>> progress;
  auto report = verify_file_journal(dir.path.string(), [&](uint64_t done, uint64_t total) {
    progress.emplace_back(done, total);
  });
  REQUIRE(report.has_value());
  CHECK(report->problems.empty());
  CHECK(report->records == 120);
  CHECK(report->streams == 9);
  CHECK(report->bytes == bytes);
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.back() == std::make_pair(bytes, bytes));

  auto missing = file_journal_statistics((dir.path / "absent").string());
  REQUIRE_FALSE(missing.has_value());
  CHECK(is_not_found(missing.error()));
  CHECK(is_not_found(verify_file_journal((dir.path / "absent").string()).error()));
}

TEST_CASE("file journal: options are checked", "[file]") {
  temp_dir dir;
  auto zero = open_file_journal(dir.path.string(), options_for(sync_policy::never, 0));
  REQUIRE_FALSE(zero.has_value());
  CHECK(is_invalid_argument(zero.error()));
  auto huge = open_file_journal(dir.path.string(), options_for(sync_policy::never, 1ull << 40));
  CHECK(is_invalid_argument(huge.error()));
  auto o = options_for(sync_policy::interval);
  o.sync_interval = std::chrono::milliseconds(0);
  CHECK(is_invalid_argument(open_file_journal(dir.path.string(), o).error()));
  CHECK(is_invalid_argument(open_file_journal("", {}).error()));
  CHECK(parse_sync_policy("always").value() == sync_policy::always);
  CHECK(parse_sync_policy("interval").value() == sync_policy::interval);
  CHECK(parse_sync_policy("never").value() == sync_policy::never);
  CHECK(is_invalid_argument(parse_sync_policy("sometimes").error()));
  CHECK(std::string(to_string(sync_policy::interval)) == "interval");
}

TEST_CASE("file journal: an oversized event is an invalid argument, the rest is stored",
          "[file]") {
  temp_dir dir;
  auto j = open_ok(dir.path, options_for(sync_policy::never));
  std::vector<append_request> batch;
  batch.push_back(req(sid("a", "1"), expected_version::any, 1));
  append_request big{sid("b", "1"), expected_version::any, {ev("huge")}};
  big.events[0].payload.resize((64u << 20) + 1);
  batch.push_back(std::move(big));
  batch.push_back(req(sid("c", "1"), expected_version::any, 1));
  auto results = j->append(std::move(batch));
  REQUIRE(results.size() == 3);
  conformance::succeeded(results[0], append_result{1, 1, 1, 1});
  conformance::failed(results[1], errc::invalid_argument);
  CHECK_THAT(results[1].error().message(), Catch::Contains("64 MiB"));
  conformance::succeeded(results[2], append_result{1, 1, 2, 2});
}

TEST_CASE("file journal: timestamps keep increasing across a reopen into a fresh segment",
          "[file]") {
  temp_dir dir;
  auto options = options_for(sync_policy::never, 200);
  int64_t last = 0;
  {
    auto j = open_ok(dir.path, options);
    fill(*j, 3, 1, 1);
    last = conformance::read_all_of(*j).back().timestamp_ns;
  }
  auto j = open_ok(dir.path, options);
  conformance::ok(*j, req(sid("s", "0"), expected_version::any, 1));
  CHECK(conformance::read_all_of(*j).back().timestamp_ns >= last);
}

TEST_CASE("crc32c matches the standard check values in both implementations", "[file][crc]") {
  const std::string check = "123456789";
  CHECK(detail::crc32c(check.data(), check.size()) == 0xE3069283u);
  CHECK(detail::crc32c_portable(check.data(), check.size()) == 0xE3069283u);
  CHECK(detail::crc32c(nullptr, 0) == 0u);
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff);
  CHECK(detail::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu); // RFC 3720 B.4
  CHECK(detail::crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  std::mt19937 rng(7);
  std::vector<uint8_t> data(4096 + 13);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t start : {0, 1, 3, 7}) {
    for (size_t n : {0, 1, 7, 8, 9, 63, 64, 1000, 4096}) {
      INFO("start " << start << " size " << n);
      uint32_t portable = detail::crc32c_portable(data.data() + start, n);
      CHECK(detail::crc32c(data.data() + start, n) == portable);
      // Continuing a CRC over two pieces gives the CRC of the whole.
      uint32_t half = detail::crc32c(data.data() + start, n / 2);
      CHECK(detail::crc32c(data.data() + start + n / 2, n - n / 2, half) == portable);
    }
  }
}
