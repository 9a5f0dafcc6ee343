// Tests of the file journal after a failed fdatasync (injected with
// fail_next_syncs_for_tests): the batches it leaves unsynced are cut off the file, their
// appenders hear "not stored", the store stops taking appends, and a reopen finds
// exactly what was acknowledged before.
#include "framework/file_journal_test_support.hpp"

#include <cerrno>
#include <chrono>
#include <thread>

#include "file_io.hpp"

using namespace cairn;
using namespace cairn::file_test;
using cairn::conformance::req;
using cairn::conformance::sid;

namespace {

std::vector<append_request> one_request(const std::string& stream, size_t events) {
  std::vector<append_request> batch;
  batch.push_back(req(sid("s", stream), expected_version::any, events, std::string(64, 'p')));
  return batch;
}

void all_not_stored(const std::vector<expected<append_result>>& results, size_t n) {
  REQUIRE(results.size() == n);
  for (auto& r : results) {
    REQUIRE_FALSE(r.has_value());
    CHECK(is_unavailable(r.error()));
    CHECK_THAT(r.error().message(), Catch::Contains("cannot fdatasync"));
    CHECK_THAT(r.error().message(), Catch::Contains("not stored"));
  }
}

/// Resets the injection even when a check fails half-way.
struct no_injected_failures_after {
  ~no_injected_failures_after() { detail::fail_next_syncs_for_tests(0, 0); }
};

} // namespace

TEST_CASE("file journal: a failed fdatasync cuts its batch off, and the store stops",
          "[file][recovery][sync]") {
  no_injected_failures_after reset;
  temp_dir dir;
  log_lines logged;
  auto options = options_for(sync_policy::always);
  options.log = logged.hook();
  auto j = open_ok(dir.path, options);
  auto before = fill(*j, 3, 2, 2);
  size_t heard = 0;
  j->subscribe([&](const std::vector<envelope>& es) { heard += es.size(); });
  auto last = segments(dir.path).back();
  auto size = fs::file_size(last);

  detail::fail_next_syncs_for_tests(1, EIO);
  all_not_stored(j->append(one_request("a", 3)), 1);

  CHECK(heard == 0);
  CHECK(j->head_position() == before.size());
  CHECK(conformance::read_all_of(*j) == before);
  CHECK(fs::file_size(last) == size); // cut back to what was durable
  CHECK(logged.contains("cut"));

  // Stopped: later appends are refused, reads go on.
  auto later = j->append(one_request("b", 1));
  REQUIRE(later.size() == 1);
  REQUIRE_FALSE(later[0].has_value());
  CHECK(is_unavailable(later[0].error()));
  CHECK_THAT(later[0].error().message(), Catch::Contains("reopen it to recover"));
  CHECK(conformance::read_all_of(*j) == before);

  j.reset();
  auto reopened = open_ok(dir.path, options_for(sync_policy::always));
  CHECK(conformance::read_all_of(*reopened) == before);
  CHECK(conformance::version_of(*reopened, sid("s", "a")) == 0);
  CHECK(verify_file_journal(dir.path.string())->problems.empty());
  // It takes appends again, after the last acknowledged position.
  auto r = conformance::ok(*reopened, req(sid("s", "a"), expected_version::no_stream, 2));
  CHECK(r == append_result{1, 2, before.size() + 1, before.size() + 2});
}

TEST_CASE("file journal: a failed fdatasync fails every pending batch, and none comes back",
          "[file][recovery][sync][pipeline]") {
  no_injected_failures_after reset;
  temp_dir dir;
  auto j = open_ok(dir.path, options_for(sync_policy::always));
  auto before = fill(*j, 2, 3, 3);
  auto size = fs::file_size(segments(dir.path).back());

  // Three batches written, none yet synced: the first one's sync fails.
  auto first = j->begin_append(one_request("x", 2));
  auto second = j->begin_append(one_request("y", 1));
  auto third = j->begin_append(one_request("x", 1));
  CHECK(fs::file_size(segments(dir.path).back()) > size);
  detail::fail_next_syncs_for_tests(1, EIO);
  all_not_stored(j->finish_append(std::move(first)), 1);
  all_not_stored(j->finish_append(std::move(second)), 1);
  all_not_stored(j->finish_append(std::move(third)), 1);

  CHECK(fs::file_size(segments(dir.path).back()) == size);
  CHECK(j->head_position() == before.size());
  CHECK(conformance::read_all_of(*j) == before);

  j.reset();
  auto reopened = open_ok(dir.path, options_for(sync_policy::always));
  CHECK(reopened->head_position() == before.size());
  CHECK(conformance::read_all_of(*reopened) == before);
  CHECK(conformance::version_of(*reopened, sid("s", "x")) == 0);
  CHECK(conformance::version_of(*reopened, sid("s", "y")) == 0);
}

TEST_CASE("file journal: under sync interval a failed flush keeps what was acknowledged",
          "[file][recovery][sync]") {
  no_injected_failures_after reset;
  temp_dir dir;
  auto options = options_for(sync_policy::interval);
  options.sync_interval = std::chrono::milliseconds{5};
  auto j = open_ok(dir.path, options);
  auto before = fill(*j, 1, 2, 2);
  auto acknowledged = j->append(one_request("k", 2));
  REQUIRE(acknowledged.size() == 1);
  REQUIRE(acknowledged[0].has_value());
  detail::fail_next_syncs_for_tests(1, EIO);
  // The flusher's sync fails: nothing is cut (it was acknowledged), appends stop.
  expected<append_result> refused = append_result{};
  for (int i = 0; i < 400 && refused.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
    auto r = j->append(one_request("k", 1));
    REQUIRE(r.size() == 1);
    refused = r[0];
  }
  REQUIRE_FALSE(refused.has_value());
  CHECK(is_unavailable(refused.error()));
  CHECK(conformance::version_of(*j, sid("s", "k")) >= 2);
  auto seen = conformance::read_all_of(*j);
  j.reset();
  auto reopened = open_ok(dir.path, options_for(sync_policy::always));
  CHECK(conformance::read_all_of(*reopened) == seen);
}
