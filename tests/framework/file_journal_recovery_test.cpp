// Tests for the file journal's recovery: torn tails, flipped bytes, lost indexes, failed writes.
#include "framework/file_journal_test_support.hpp"

#include <sys/resource.h>

#include <csignal>

using namespace cairn;
using namespace cairn::file_test;
using cairn::conformance::req;
using cairn::conformance::sid;

namespace {

std::vector<envelope> first_n(const std::vector<envelope>& es, size_t n) {
  return std::vector<envelope>(es.begin(), es.begin() + static_cast<std::ptrdiff_t>(n));
}

/// The version the next event of `stream` should get after `es`.
uint64_t next_version(const std::vector<envelope>& es, const stream_id& stream) {
  uint64_t v = 0;
  for (auto& e : es)
    if (e.stream == stream) v = e.version;
  return v + 1;
}

} // namespace

TEST_CASE("file journal: a tail cut mid-record is truncated to the last whole batch",
          "[file][recovery]") {
  temp_dir dir;
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options_for(sync_policy::always));
    before = fill(*j, 10, 3, 4); // the last batch holds positions 28..30
  }
  auto last = segments(dir.path).back();
  auto offsets = record_offsets(last);
  REQUIRE(offsets.size() == 30);
  fs::resize_file(last, fs::file_size(last) - 10);

  log_lines log;
  auto options = options_for(sync_policy::always);
  options.log = log.hook();
  auto j = open_ok(dir.path, options);
  INFO(log.all());
  CHECK(log.contains("truncated the torn tail of " + last.string() + " at offset " +
                     std::to_string(offsets[27])));
  CHECK(fs::file_size(last) == offsets[27]); // the whole unfinished batch is gone
  CHECK(j->head_position() == 27);
  CHECK(conformance::read_all_of(*j) == first_n(before, 27));
  // Appends continue with the right numbers.
  auto s = sid("s", "0");
  auto r = conformance::ok(*j, req(s, expected_version::any, 1));
  CHECK(r.first_position == 28);
  CHECK(r.first_version == next_version(first_n(before, 27), s));
  j.reset();
  auto report = verify_file_journal(dir.path.string());
  REQUIRE(report.has_value());
  CHECK(report->problems.empty());
}

TEST_CASE("file journal: garbage after the last record is truncated and nothing is lost",
          "[file][recovery]") {
  for (bool zeros : {false, true}) {
    INFO((zeros ? "zero bytes" : "random bytes"));
    temp_dir dir;
    std::vector<envelope> before;
    {
      auto j = open_ok(dir.path, options_for(sync_policy::never));
      before = fill(*j, 5, 4, 3);
    }
    auto last = segments(dir.path).back();
    auto size = fs::file_size(last);
    std::vector<uint8_t> junk(777, 0);
    if (!zeros)
      for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 131 + 7);
    append_bytes(last, junk);

    log_lines log;
    auto options = options_for(sync_policy::never);
    options.log = log.hook();
    auto j = open_ok(dir.path, options);
    CHECK(log.contains("dropping 777 bytes"));
    CHECK(fs::file_size(last) == size);
    CHECK(conformance::read_all_of(*j) == before);
    CHECK(conformance::ok(*j, req(sid("s", "1"), expected_version::any, 1)).first_position == 21);
  }
}

TEST_CASE("file journal: a flipped byte in the last record is a torn tail", "[file][recovery]") {
  temp_dir dir;
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options_for(sync_policy::always));
    before = fill(*j, 6, 1, 2);
  }
  auto last = segments(dir.path).back();
  flip_byte(last, fs::file_size(last) - 3);
  log_lines log;
  auto options = options_for(sync_policy::always);
  options.log = log.hook();
  auto j = open_ok(dir.path, options);
  CHECK(log.contains("record checksum mismatch"));
  CHECK(j->head_position() == 5);
  CHECK(conformance::read_all_of(*j) == first_n(before, 5));
}

TEST_CASE("file journal: a batch cut inside, with its later records intact, is a torn tail",
          "[file][recovery]") {
  // As after a crash in which the disk wrote a batch's later pages but not an earlier one.
  temp_dir dir;
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options_for(sync_policy::always));
    before = fill(*j, 4, 3, 3); // the last batch: positions 10..12
  }
  auto last = segments(dir.path).back();
  auto offsets = record_offsets(last);
  auto data = read_file(last);
  std::fill(data.begin() + static_cast<std::ptrdiff_t>(offsets[10]),
            data.begin() + static_cast<std::ptrdiff_t>(offsets[10] + 16), 0);
  write_file(last, data);
  log_lines log;
  auto options = options_for(sync_policy::always);
  options.log = log.hook();
  auto j = open_ok(dir.path, options);
  INFO(log.all());
  CHECK(log.contains("1 intact records after the damage were dropped"));
  CHECK(j->head_position() == 9);
  CHECK(conformance::read_all_of(*j) == first_n(before, 9));
}

TEST_CASE("file journal: damage followed by records written after it was durable is corrupt",
          "[file][recovery]") {
  temp_dir dir;
  {
    auto j = open_ok(dir.path, options_for(sync_policy::always));
    fill(*j, 5, 2, 2);
  }
  auto last = segments(dir.path).back();
  auto offsets = record_offsets(last);
  flip_byte(last, offsets[2] + 60); // position 3, in the second batch of five
  auto size = fs::file_size(last);
  for (auto sync : {sync_policy::always, sync_policy::never}) {
    auto j = open_file_journal(dir.path.string(), options_for(sync));
    REQUIRE_FALSE(j.has_value());
    CHECK(is_corrupt(j.error()));
    CHECK_THAT(j.error().message(),
               Catch::Contains(last.string() + " offset " + std::to_string(offsets[2])));
    CHECK_THAT(j.error().message(), Catch::Contains("made durable"));
    CHECK(fs::file_size(last) == size); // nothing was cut
  }
}

TEST_CASE("file journal: damage in an unsynced tail is cut, with what follows it",
          "[file][recovery]") {
  // Under sync never no record claims anything durable: a crash of the OS may leave any
  // unsynced pages damaged, so the tail from the damage on is dropped (and logged).
  temp_dir dir;
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options_for(sync_policy::never));
    before = fill(*j, 5, 2, 2);
  }
  auto last = segments(dir.path).back();
  flip_byte(last, record_offsets(last)[4] + 60);
  log_lines log;
  auto options = options_for(sync_policy::never);
  options.log = log.hook();
  auto j = open_ok(dir.path, options);
  CHECK(log.contains("5 intact records after the damage were dropped"));
  CHECK(conformance::read_all_of(*j) == first_n(before, 4));
}

TEST_CASE("file journal: a flipped byte in a sealed segment is corruption naming file and offset",
          "[file][recovery]") {
  temp_dir dir;
  auto options = options_for(sync_policy::never, 1024);
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options);
    before = fill(*j, 20, 2, 3);
  }
  auto segs = segments(dir.path);
  REQUIRE(segs.size() >= 3);
  auto sealed = segs[1];
  auto offsets = record_offsets(sealed);
  REQUIRE(offsets.size() >= 2);
  // The segment's first record, whose position is in the file name, gets damaged.
  uint64_t damaged_position = std::stoull(sealed.filename().string().substr(8, 20));
  flip_byte(sealed, offsets[0] + 60);
  std::string where = sealed.string() + " offset " + std::to_string(offsets[0]);

  SECTION("the full check on open (the default) refuses to open") {
    auto j = open_file_journal(dir.path.string(), options);
    REQUIRE_FALSE(j.has_value());
    CHECK(is_corrupt(j.error()));
    CHECK_THAT(j.error().message(), Catch::Contains(where));
  }
  SECTION("without its index the segment is scanned and the open refused") {
    fs::remove(fs::path(sealed).replace_extension(".idx"));
    auto j = open_file_journal(dir.path.string(), options);
    REQUIRE_FALSE(j.has_value());
    CHECK(is_corrupt(j.error()));
    CHECK_THAT(j.error().message(), Catch::Contains(where));
  }
  SECTION("with the full check off the open trusts the index, and reads and verify find the damage") {
    auto trusting = options;
    trusting.verify_on_open = false;
    auto j = open_ok(dir.path, trusting);
    auto all = j->read_all(1, conformance::all);
    REQUIRE_FALSE(all.has_value());
    CHECK(is_corrupt(all.error()));
    CHECK_THAT(all.error().message(), Catch::Contains(where));
    auto stream = before[damaged_position - 1].stream;
    auto by_stream = j->read_stream(stream, 1, conformance::all);
    REQUIRE_FALSE(by_stream.has_value());
    CHECK_THAT(by_stream.error().message(), Catch::Contains(where));
    // Events elsewhere still read fine.
    CHECK(conformance::read_all_of(*j, 1, damaged_position - 1) ==
          first_n(before, damaged_position - 1));
    j.reset();
    auto report = verify_file_journal(dir.path.string());
    REQUIRE(report.has_value());
    REQUIRE(report->problems.size() >= 1);
    CHECK_THAT(report->problems.front(), Catch::Contains(where));
    CHECK(report->records == before.size() - 1); // it went on after the damage
  }
  SECTION("damage in the last record of a sealed segment fails the index spot check") {
    flip_byte(sealed, offsets[0] + 60); // undo the first flip
    flip_byte(sealed, fs::file_size(sealed) - 2);
    auto j = open_file_journal(dir.path.string(), options);
    REQUIRE_FALSE(j.has_value());
    CHECK(is_corrupt(j.error()));
    CHECK_THAT(j.error().message(),
               Catch::Contains(sealed.string() + " offset " + std::to_string(offsets.back())));
  }
}

TEST_CASE("file journal: missing or damaged index files are rebuilt", "[file][recovery]") {
  temp_dir dir;
  auto options = options_for(sync_policy::never, 1024);
  std::vector<envelope> before;
  {
    auto j = open_ok(dir.path, options);
    before = fill(*j, 20, 2, 3);
  }
  auto indexes = files_ending(dir.path, ".idx");
  REQUIRE(indexes.size() >= 4);
  auto good = read_file(indexes[3]);
  fs::remove(indexes[0]);
  flip_byte(indexes[1], 45);
  fs::resize_file(indexes[2], fs::file_size(indexes[2]) / 2);
  write_file(indexes[3], {'h', 'e', 'l', 'l', 'o'});

  log_lines log;
  options.log = log.hook();
  {
    auto j = open_ok(dir.path, options);
    INFO(log.all());
    for (size_t i = 0; i < 4; ++i)
      CHECK(log.contains("rebuilt the index of " +
                         fs::path(indexes[i]).replace_extension(".log").string()));
    CHECK(conformance::read_all_of(*j) == before);
  }
  CHECK(read_file(indexes[3]) == good); // rebuilt byte for byte
  log.lines.clear();
  auto j = open_ok(dir.path, options);
  CHECK(log.lines.empty());
  CHECK(conformance::read_all_of(*j) == before);
}

TEST_CASE("file journal: an interrupted segment creation is repaired", "[file][recovery]") {
  for (size_t header_bytes : {size_t{0}, size_t{10}}) {
    temp_dir dir;
    std::vector<envelope> before;
    {
      auto j = open_ok(dir.path, options_for(sync_policy::never));
      before = fill(*j, 3, 2, 2);
    }
    auto next = dir.path / "segment-00000000000000000007.log";
    write_file(next, std::vector<uint8_t>(header_bytes, 'C'));
    file_journal_options ro;
    ro.read_only = true;
    CHECK(open_ok(dir.path, ro)->head_position() == 6); // a reader waits for the header
    log_lines log;
    auto options = options_for(sync_policy::never);
    options.log = log.hook();
    auto j = open_ok(dir.path, options);
    CHECK(log.contains("rewrote the header of " + next.string()));
    CHECK(conformance::ok(*j, req(sid("s", "0"), expected_version::any, 1)).first_position == 7);
    CHECK(record_offsets(next).size() == 1);
    j.reset();
    CHECK(verify_file_journal(dir.path.string())->problems.empty());
  }
}

TEST_CASE("file journal: a missing segment is corruption, not a silent gap", "[file][recovery]") {
  temp_dir dir;
  {
    auto j = open_ok(dir.path, options_for(sync_policy::never, 1024));
    fill(*j, 20, 2, 3);
  }
  auto segs = segments(dir.path);
  REQUIRE(segs.size() >= 3);
  fs::remove(segs[1]);
  auto j = open_file_journal(dir.path.string(), options_for(sync_policy::never, 1024));
  REQUIRE_FALSE(j.has_value());
  CHECK(is_corrupt(j.error()));
  CHECK_THAT(j.error().message(), Catch::Contains(segs[2].string()));
  auto report = verify_file_journal(dir.path.string());
  REQUIRE(report.has_value());
  REQUIRE_FALSE(report->problems.empty());
  CHECK_THAT(report->problems.front(), Catch::Contains("starts at position"));
}

TEST_CASE("file journal: verify and statistics on a damaged store", "[file][recovery]") {
  temp_dir dir;
  {
    auto j = open_ok(dir.path, options_for(sync_policy::never));
    fill(*j, 4, 3, 2);
  }
  auto last = segments(dir.path).back();
  auto offsets = record_offsets(last);
  fs::resize_file(last, fs::file_size(last) - 4); // the last batch (10..12) is torn
  auto stats = file_journal_statistics(dir.path.string());
  REQUIRE(stats.has_value());
  CHECK(stats->events == 9);
  CHECK(stats->bytes == fs::file_size(last));
  auto report = verify_file_journal(dir.path.string());
  REQUIRE(report.has_value());
  REQUIRE(report->problems.size() == 2); // the cut record, then the unfinished batch
  CHECK_THAT(report->problems[0], Catch::Contains("offset " + std::to_string(offsets[11])));
  CHECK_THAT(report->problems[1], Catch::Contains("offset " + std::to_string(offsets[9])));
  CHECK_THAT(report->problems[1], Catch::Contains("incomplete"));
  CHECK(report->records == 11);
}

TEST_CASE("file journal: a failed write stores nothing and the store goes on", "[file][recovery]") {
  temp_dir dir;
  auto j = open_ok(dir.path, options_for(sync_policy::never));
  auto before = fill(*j, 2, 2, 2);
  size_t heard = 0;
  j->subscribe([&](const std::vector<envelope>& es) { heard += es.size(); });
  auto last = segments(dir.path).back();
  auto size = fs::file_size(last);

  // Make the next write fail part-way: the file may grow by only 100 bytes.
  struct rlimit old{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = old;
  tight.rlim_cur = size + 100;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &tight) == 0);
  std::vector<append_request> batch;
  batch.push_back(req(sid("s", "0"), expected_version::any, 3, std::string(200, 'a')));
  batch.push_back(req(sid("n", "1"), expected_version::no_stream, 2, std::string(200, 'b')));
  auto results = j->append(std::move(batch));
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);

  REQUIRE(results.size() == 2);
  for (auto& r : results) {
    REQUIRE_FALSE(r.has_value());
    CHECK(is_unavailable(r.error()));
    CHECK_THAT(r.error().message(), Catch::Contains("not stored"));
  }
  CHECK(heard == 0);
  CHECK(j->head_position() == 4);
  CHECK(conformance::read_all_of(*j) == before);
  CHECK(conformance::version_of(*j, sid("n", "1")) == 0);
  CHECK(conformance::sorted_streams(*j).size() == 2);
  CHECK(fs::file_size(last) == size); // rolled back

  auto r = conformance::ok(*j, req(sid("n", "1"), expected_version::no_stream, 2));
  CHECK(r == append_result{1, 2, 5, 6});
  CHECK(heard == 2);
  j.reset();
  auto reopened = open_ok(dir.path, options_for(sync_policy::never));
  CHECK(reopened->head_position() == 6);
  CHECK(verify_file_journal(dir.path.string())->problems.empty());
}
