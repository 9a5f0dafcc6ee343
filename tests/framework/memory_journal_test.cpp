// Tests for the memory journal (via the conformance suite), stream ids, errors and journal_wrapper.
#include "conformance/journal_conformance.hpp"
#include "conformance/journal_conformance_reopen.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_set>

#include "cairn/journal_wrapper.hpp"
#include "cairn/memory_journal.hpp"

using namespace cairn;
using cairn::conformance::ev;
using cairn::conformance::req;
using cairn::conformance::sid;

CAIRN_JOURNAL_CONFORMANCE("memory", [] { return make_memory_journal(); })

// A pass-through wrapper must be indistinguishable from the store it wraps.
CAIRN_JOURNAL_CONFORMANCE("wrapped memory",
                          [] { return std::make_shared<journal_wrapper>(make_memory_journal()); })

// The memory journal cannot survive a reopen; handing back the same instance per
// directory keeps the reopen checks compiled and proves they pass for a correct store.
CAIRN_JOURNAL_CONFORMANCE_REOPEN("memory kept per directory", [](const std::string& dir) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<journal>> open;
  std::lock_guard<std::mutex> lock(mutex);
  auto& j = open[dir];
  if (!j) j = make_memory_journal();
  return j;
})

namespace {

/// Fails every append with `unavailable` while `failing` is set; counts calls.
class unavailable_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  std::atomic<bool> failing{true};
  std::atomic<int> append_calls{0};

  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    ++append_calls;
    if (!failing) return journal_wrapper::append(std::move(batch));
    return std::vector<expected<append_result>>(
      batch.size(), error{errc::unavailable, "injected: disk unplugged"});
  }
};

/// Counts read_stream calls, to observe how read_stream_all chunks its reads.
class counting_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  mutable int read_stream_calls = 0;

  expected<std::vector<envelope>> read_stream(const stream_id& stream, uint64_t from_version,
                                              size_t max_count) const override {
    ++read_stream_calls;
    return journal_wrapper::read_stream(stream, from_version, max_count);
  }
};

/// Returns no results at all: a broken store.
class mute_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  std::vector<expected<append_result>> append(std::vector<append_request>) override { return {}; }
};

} // namespace

TEST_CASE("stream_id parses category and id at the first dash", "[stream_id]") {
  auto a = stream_id::parse("account-42");
  REQUIRE(a.has_value());
  CHECK(a->category == "account");
  CHECK(a->id == "42");
  CHECK(a->str() == "account-42");
  auto b = stream_id::parse("order_line-2024-01-\xc3\xbc");
  REQUIRE(b.has_value());
  CHECK(b->category == "order_line");
  CHECK(b->id == "2024-01-\xc3\xbc");
  std::ostringstream os;
  os << *b;
  CHECK(os.str() == "order_line-2024-01-\xc3\xbc");
}

TEST_CASE("stream_id parse rejects malformed names with a message naming them", "[stream_id]") {
  auto no_dash = stream_id::parse("foo");
  REQUIRE_FALSE(no_dash.has_value());
  CHECK(is_invalid_argument(no_dash.error()));
  CHECK(no_dash.error().message() == "stream name \"foo\" has no '-' between category and id");
  for (std::string bad : {"-42", "account-", "acc ount-1", "caf\xc3\xa9-1", "account-a\tb", ""}) {
    INFO(bad);
    auto r = stream_id::parse(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(is_invalid_argument(r.error()));
  }
  CHECK_THAT(stream_id::parse("acc ount-1").error().message(), Catch::Contains("\"acc ount\""));
  CHECK_THAT(stream_id::parse("account-a\tb").error().message(), Catch::Contains("a\\x09b"));
}

TEST_CASE("stream_id validate enforces the naming rules", "[stream_id]") {
  CHECK(stream_id{"a", "b"}.validate().has_value());
  CHECK(stream_id{"A_z9", "x y-z/\xe2\x9c\x93"}.validate().has_value());
  CHECK(stream_id{"a", std::string(1022, 'x')}.validate().has_value());
  auto too_long = stream_id{"a", std::string(1023, 'x')}.validate();
  REQUIRE_FALSE(too_long.has_value());
  CHECK_THAT(too_long.error().message(), Catch::Contains("1025 bytes"));
  CHECK(too_long.error().message().size() < 200); // the name is cut in the message
  CHECK_FALSE(stream_id{"", "1"}.validate().has_value());
  CHECK_FALSE(stream_id{"a-b", "1"}.validate().has_value());
  CHECK_FALSE(stream_id{"a", ""}.validate().has_value());
  CHECK_FALSE(stream_id{"a", std::string("x\0y", 3)}.validate().has_value());
  CHECK_FALSE(stream_id{"a", "x\x7f"}.validate().has_value());
}

TEST_CASE("stream_id equality ordering and hashing agree", "[stream_id]") {
  std::unordered_set<stream_id> set{{"a", "1"}, {"a", "1"}, {"a", "2"}, {"b", "1"}};
  CHECK(set.size() == 3);
  CHECK(stream_id{"a", "1"} == stream_id{"a", "1"});
  CHECK(stream_id{"a", "1"} != stream_id{"a", "2"});
  CHECK(stream_id{"a", "z"} < stream_id{"b", "a"});
  CHECK(std::hash<stream_id>{}({"a", "1"}) == std::hash<stream_id>{}({"a", "1"}));
}

TEST_CASE("errors describe themselves and answer their predicates", "[error]") {
  CHECK(to_string(errc::ok) == "ok");
  CHECK(to_string(errc::rejected) == "rejected");
  CHECK(to_string(errc::conflict) == "conflict");
  CHECK(to_string(errc::not_found) == "not_found");
  CHECK(to_string(errc::timeout) == "timeout");
  CHECK(to_string(errc::unavailable) == "unavailable");
  CHECK(to_string(errc::corrupt) == "corrupt");
  CHECK(to_string(errc::invalid_argument) == "invalid_argument");
  CHECK(to_string(static_cast<errc>(200)) == "unknown");

  error e{errc::conflict, "expected version 7, found 9 in stream account-42"};
  CHECK(e.describe() == "conflict: expected version 7, found 9 in stream account-42");
  std::ostringstream os;
  os << e;
  CHECK(os.str() == e.describe());
  CHECK(error{errc::timeout, ""}.describe() == "timeout");
  CHECK(static_cast<bool>(e));
  CHECK_FALSE(static_cast<bool>(error{}));
  CHECK(is_conflict(e));
  CHECK_FALSE(is_rejected(e));
  CHECK(is_rejected(error{errc::rejected, "x"}));
  CHECK(is_not_found(error{errc::not_found, "x"}));
  CHECK(is_timeout(error{errc::timeout, "x"}));
  CHECK(is_unavailable(error{errc::unavailable, "x"}));
  CHECK(is_corrupt(error{errc::corrupt, "x"}));
  CHECK(is_invalid_argument(error{errc::invalid_argument, "x"}));
  CHECK(e == error{errc::conflict, e.message()});
  CHECK(e != error{errc::conflict, "other"});
}

TEST_CASE("expected holds a value or an error", "[error]") {
  expected<int> v = 5;
  REQUIRE(v.has_value());
  CHECK(*v == 5);
  expected<int> f = error{errc::not_found, "no such thing"};
  REQUIRE_FALSE(f.has_value());
  CHECK(f.error().describe() == "not_found: no such thing");
  expected<void> done;
  CHECK(done.has_value());
  expected<void> failed = error{errc::corrupt, "bad bytes"};
  CHECK_FALSE(failed.has_value());
  CHECK(is_corrupt(failed.error()));
}

TEST_CASE("journal_wrapper can inject unavailable appends", "[journal_wrapper]") {
  auto store = make_memory_journal();
  auto faulty = std::make_shared<unavailable_journal>(store);
  size_t heard = 0;
  faulty->subscribe([&](const std::vector<envelope>& es) { heard += es.size(); });

  auto r = faulty->append_one(req(sid("account", "1"), expected_version::no_stream, 2));
  REQUIRE_FALSE(r.has_value());
  CHECK(is_unavailable(r.error()));
  CHECK_THAT(r.error().message(), Catch::Contains("injected"));
  std::vector<append_request> batch;
  batch.push_back(req(sid("a", "1"), expected_version::any, 1));
  batch.push_back(req(sid("b", "1"), expected_version::any, 1));
  auto results = faulty->append(std::move(batch));
  REQUIRE(results.size() == 2);
  for (auto& res : results) CHECK(is_unavailable(res.error()));
  CHECK(store->head_position() == 0);
  CHECK(heard == 0);

  faulty->failing = false;
  auto ok = faulty->append_one(req(sid("account", "1"), expected_version::no_stream, 2));
  REQUIRE(ok.has_value());
  CHECK(ok->last_position == 2);
  CHECK(faulty->head_position() == 2);
  CHECK(store->stream_version(sid("account", "1")).value() == 2);
  CHECK(heard == 2); // subscriptions go to the wrapped store
  CHECK(faulty->append_calls == 3);
}

TEST_CASE("append_one reports a store that returns the wrong number of results",
          "[journal]") {
  mute_journal broken(make_memory_journal());
  auto r = broken.append_one(req(sid("a", "1"), expected_version::any, 1));
  REQUIRE_FALSE(r.has_value());
  CHECK(is_unavailable(r.error()));
}

TEST_CASE("read_stream_all reads in chunks of 4096", "[journal]") {
  auto store = make_memory_journal();
  counting_journal counting(store);
  auto s = sid("s", "1");
  std::vector<append_request> batch;
  for (int i = 0; i < 2; ++i) batch.push_back(req(s, expected_version::any, 4096));
  for (auto& r : store->append(std::move(batch))) REQUIRE(r.has_value());
  auto all = read_stream_all(counting, s);
  REQUIRE(all.has_value());
  CHECK(all->size() == 8192);
  CHECK(counting.read_stream_calls == 3); // 4096 + 4096 + an empty one
  counting.read_stream_calls = 0;
  auto tail = read_stream_all(counting, s, 4097);
  REQUIRE(tail.has_value());
  CHECK(tail->front().version == 4097);
  CHECK(counting.read_stream_calls == 2);
  counting.read_stream_calls = 0;
  CHECK(read_stream_all(counting, s, 0)->size() == 8192);
}

TEST_CASE("memory journal: a listener may unsubscribe itself while being called",
          "[memory]") {
  auto j = make_memory_journal();
  journal::subscription self = 0;
  int calls = 0;
  self = j->subscribe([&](const std::vector<envelope>&) {
    ++calls;
    j->unsubscribe(self);
  });
  j->append_one(req(sid("s", "1"), expected_version::any, 1));
  j->append_one(req(sid("s", "1"), expected_version::any, 1));
  CHECK(calls == 1);
}

TEST_CASE("memory journal: separate instances share nothing", "[memory]") {
  auto a = make_memory_journal(), b = make_memory_journal();
  REQUIRE(a->append_one(req(sid("s", "1"), expected_version::any, 3)).has_value());
  CHECK(a->head_position() == 3);
  CHECK(b->head_position() == 0);
  CHECK(b->list_streams()->empty());
}

TEST_CASE("memory journal: a batch shares one commit timestamp", "[memory]") {
  auto j = make_memory_journal();
  std::vector<append_request> batch;
  batch.push_back(req(sid("a", "1"), expected_version::any, 2));
  batch.push_back(append_request{sid("b", "1"), expected_version::any, {ev("x")}});
  j->append(std::move(batch));
  auto es = j->read_all(1, 10).value();
  REQUIRE(es.size() == 3);
  CHECK(es[0].timestamp_ns == es[2].timestamp_ns);
}
