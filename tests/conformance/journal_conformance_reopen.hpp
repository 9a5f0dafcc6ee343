// Durability checks of the journal conformance suite, for stores that persist in a directory.
//
// Use from a test file, with a string literal name and a function opening the store kept in
// `dir` (an existing directory, empty on first open; std::string -> shared_ptr<journal>):
//   CAIRN_JOURNAL_CONFORMANCE_REOPEN("file", [](const std::string& dir) { return open(dir); })
#pragma once

#include "conformance/journal_conformance.hpp"

namespace cairn::conformance {

inline void survives_reopen(const reopen_factory& open) {
  temp_dir dir;
  std::vector<envelope> before;
  {
    auto j = open(dir.path.string());
    REQUIRE(j);
    std::vector<append_request> batch;
    batch.push_back(req(sid("a", "1"), expected_version::no_stream, 3));
    batch.push_back(req(sid("b", "1"), 4, 1)); // conflict: must not be stored
    batch.push_back(req(sid("b", "2"), expected_version::no_stream, 2));
    j->append(std::move(batch));
    append_request meta{sid("a", "1"), 3, {ev("with_meta", std::string("\0\xff", 2))}};
    meta.events[0].schema_version = 3;
    meta.events[0].meta = {"corr", "cause", {{"k", "v"}}};
    ok(*j, meta);
    before = read_all_of(*j);
    REQUIRE(before.size() == 6);
  }
  auto j = open(dir.path.string());
  REQUIRE(j);
  CHECK(read_all_of(*j) == before);
  CHECK(j->head_position() == 6);
  CHECK(version_of(*j, sid("a", "1")) == 4);
  CHECK(version_of(*j, sid("b", "1")) == 0);
  CHECK(sorted_streams(*j) == std::vector<stream_id>{sid("a", "1"), sid("b", "2")});
}

inline void reopen_continues(const reopen_factory& open) {
  temp_dir dir;
  {
    auto j = open(dir.path.string());
    ok(*j, req(sid("a", "1"), expected_version::no_stream, 2));
    ok(*j, req(sid("b", "1"), expected_version::no_stream, 1));
  }
  auto j = open(dir.path.string());
  auto conflict = j->append_one(req(sid("a", "1"), expected_version::no_stream, 1));
  failed(conflict, errc::conflict);
  CHECK(ok(*j, req(sid("a", "1"), 2, 2)) == append_result{3, 4, 4, 5});
  auto es = read_all_of(*j);
  require_positions(es, 1, 5);
  CHECK(es.back().timestamp_ns >= es.front().timestamp_ns);
}

} // namespace cairn::conformance

/// Defines the durability TEST_CASEs for a store that persists in a directory.
/// `open` is a callable (const std::string& dir) -> std::shared_ptr<cairn::journal>.
#define CAIRN_JOURNAL_CONFORMANCE_REOPEN(store, ...)                                              \
  CAIRN_JOURNAL_CONFORMANCE_REOPEN_IMPL(                                                          \
    store, CAIRN_CONFORMANCE_CAT(cairn_conformance_reopen_, __LINE__), __VA_ARGS__)

#define CAIRN_JOURNAL_CONFORMANCE_REOPEN_IMPL(s, f, ...)                                          \
  static const ::cairn::conformance::reopen_factory f{__VA_ARGS__};                               \
  CAIRN_CONFORMANCE_CASE(s, f, survives_reopen, "committed events survive reopening")             \
  CAIRN_CONFORMANCE_CASE(s, f, reopen_continues,                                                  \
                         "a reopened store continues versions and positions")
