// The journal's inbox (actors/src/append_inbox.hpp): every append is answered once, in
// order per appender, from callers on any thread and from actors; stopping answers
// the batch being written and fails the rest; a failing store fails whole batches and
// the inbox goes on.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <cairn/file_journal.hpp>
#include <cairn/journal_wrapper.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/node_config.hpp>

#include "append_inbox.hpp"
#include "conformance/journal_conformance_support.hpp"
#include "message_types.hpp"
#include "spawn.hpp"

using namespace cairn;
using cairn::conformance::req;
using cairn::conformance::sid;
using cairn::conformance::temp_dir;

namespace {

/// Appends `request` through `inbox` and waits for its answer.
expected<append_result> append_and_wait(append_inbox& inbox, append_request request) {
  std::promise<expected<append_result>> answer;
  auto got = answer.get_future();
  inbox.submit(std::move(request),
               [&answer](expected<append_result> r) { answer.set_value(std::move(r)); });
  return got.get();
}

/// A store whose append() waits until released, or throws once when told to.
class gated_journal : public journal_wrapper {
public:
  using journal_wrapper::journal_wrapper;
  std::vector<expected<append_result>> append(std::vector<append_request> batch) override {
    ++calls;
    auto held = [&] {
      size_t from = hold_batches_from;
      return hold || (from > 0 && batch.size() >= from);
    };
    while (held()) std::this_thread::sleep_for(std::chrono::milliseconds{1});
    if (throw_next.exchange(false)) throw std::runtime_error("disk on fire");
    return journal_wrapper::append(std::move(batch));
  }
  std::atomic<bool> hold{false};
  std::atomic<size_t> hold_batches_from{0}; ///< also holds batches of at least this many (0: none)
  std::atomic<bool> throw_next{false};
  std::atomic<int> calls{0};
};

} // namespace

TEST_CASE("inbox: appends from many threads are each answered once, in order per stream",
          "[inbox]") {
  temp_dir dir;
  auto store = open_file_journal((dir.path / "events").string());
  REQUIRE(store);
  append_inbox inbox{*store};
  constexpr int threads = 8, per_thread = 150;
  std::vector<std::thread> appenders;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&, t] {
      auto stream = sid("inbox", std::to_string(t));
      for (int i = 0; i < per_thread; ++i) {
        auto r = append_and_wait(inbox, req(stream, static_cast<uint64_t>(i), 1, "1:"));
        if (!r || r->last_version != static_cast<uint64_t>(i + 1)) ++failures;
      }
    });
  }
  for (auto& a : appenders) a.join();
  CHECK(failures == 0);
  CHECK((*store)->head_position() == threads * per_thread);
  auto all = conformance::read_all_of(**store);
  REQUIRE(all.size() == static_cast<size_t>(threads * per_thread));
  CHECK(conformance::snapshot_problem(all, 1) == "");
  // Closed-loop appenders on 8 threads gather: fewer batches than appends.
  CHECK(inbox.batches_written() < static_cast<uint64_t>(threads * per_thread));
  auto counters = counters_of_file_journal(**store);
  REQUIRE(counters);
  CHECK(counters->syncs <= counters->batches);
}

TEST_CASE("inbox: actors get (appended, tag, result) through the journal actor", "[inbox]") {
  node_config cfg;
  caf::actor_system sys{cfg};
  auto store = make_memory_journal();
  auto journal = spawn_journal(sys, store);
  caf::scoped_actor self{sys};
  auto me = caf::actor_cast<caf::actor>(self);
  auto s = sid("inbox", "actor");
  journal.inbox->submit(req(s, 0, 2), me, 7);
  journal.inbox->submit(req(s, 0, 1), me, 8); // a conflict: version 2 by then
  std::map<uint64_t, expected<append_result>> answers;
  for (int i = 0; i < 2; ++i) {
    self->receive(
      [&](appended_atom, uint64_t tag, const append_result& r) { answers.emplace(tag, r); },
      [&](appended_atom, uint64_t tag, const caf::error& e) { answers.emplace(tag, from_caf(e)); },
      caf::after(std::chrono::seconds(10)) >> [&] { FAIL("no answer within 10 s"); });
  }
  REQUIRE(answers.count(7));
  REQUIRE(answers.count(8));
  REQUIRE(answers.at(7));
  CHECK(*answers.at(7) == append_result{1, 2, 1, 2});
  REQUIRE_FALSE(answers.at(8));
  CHECK(answers.at(8).error().code() == errc::conflict);
  // The request form still works, through the same inbox.
  self->request(journal.actor, caf::infinite, append_atom::value, req(s, 2, 1))
    .receive([&](const append_result& r) { CHECK(r == append_result{3, 3, 3, 3}); },
             [&](const caf::error& e) { FAIL(sys.render(e)); });
  caf::anon_send_exit(journal.actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("inbox: stopping answers the batch being written and fails what waits", "[inbox]") {
  auto store = std::make_shared<gated_journal>(make_memory_journal());
  auto inbox = std::make_shared<append_inbox>(store);
  store->hold = true;
  std::promise<expected<append_result>> first;
  auto first_answer = first.get_future();
  inbox->submit(req(sid("inbox", "a"), 0, 1),
                [&](expected<append_result> r) { first.set_value(std::move(r)); });
  while (store->calls == 0) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  // The first batch is in the store's hands; these two wait for the next one.
  std::promise<expected<append_result>> second, third;
  inbox->submit(req(sid("inbox", "b"), 0, 1),
                [&](expected<append_result> r) { second.set_value(std::move(r)); });
  inbox->submit(req(sid("inbox", "c"), 0, 1),
                [&](expected<append_result> r) { third.set_value(std::move(r)); });
  std::thread stopper{[&] { inbox->stop(); }};
  std::this_thread::sleep_for(std::chrono::milliseconds{20});
  store->hold = false;
  stopper.join();
  auto a = first_answer.get();
  REQUIRE(a);
  CHECK(a->last_position == 1);
  for (auto* p : {&second, &third}) {
    auto r = p->get_future().get();
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::unavailable);
  }
  CHECK(store->head_position() == 1);
  // After stop, a submit fails at once.
  auto late = append_and_wait(*inbox, req(sid("inbox", "d"), 0, 1));
  REQUIRE_FALSE(late);
  CHECK(late.error().code() == errc::unavailable);
}

TEST_CASE("inbox: once stopped, it answers the appenders itself, not a replier that is gone",
          "[inbox]") {
  node_config cfg;
  caf::actor_system sys{cfg};
  auto store = std::make_shared<gated_journal>(make_memory_journal());
  auto inbox = std::make_shared<append_inbox>(store);
  // The replier (the journal actor, normally) has stopped: what is sent to it is lost.
  // (An argument, since CAF 0.17's spawn of an argument-less function upsets UBSan.)
  auto gone = sys.spawn([](caf::event_based_actor* self, int) { self->quit(); }, 0);
  inbox->set_replier(gone);
  caf::scoped_actor self{sys};
  auto me = caf::actor_cast<caf::actor>(self);

  // A first batch holds the writer, so that the next 20 appends gather into one batch,
  // large enough to be answered through the replier; that one is held in turn.
  store->hold = true;
  std::promise<expected<append_result>> plug;
  inbox->submit(req(sid("inbox", "plug"), 0, 1),
                [&](expected<append_result> r) { plug.set_value(std::move(r)); });
  while (store->calls == 0) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  constexpr uint64_t appenders = 20;
  for (uint64_t i = 0; i < appenders; ++i)
    inbox->submit(req(sid("inbox", std::to_string(i)), 0, 1), me, i);
  store->hold_batches_from = appenders;
  store->hold = false;
  REQUIRE(plug.get_future().get());
  while (store->calls < 2) std::this_thread::sleep_for(std::chrono::milliseconds{1});

  std::thread stopper{[&] { inbox->stop(); }}; // finishes the held batch
  std::this_thread::sleep_for(std::chrono::milliseconds{20});
  store->hold_batches_from = 0;
  stopper.join();
  std::set<uint64_t> answered;
  for (uint64_t i = 0; i < appenders; ++i)
    self->receive(
      [&](appended_atom, uint64_t tag, const append_result& r) {
        CHECK(r.last_version == 1);
        answered.insert(tag);
      },
      [&](appended_atom, uint64_t, const caf::error& e) { FAIL(sys.render(e)); },
      caf::after(std::chrono::seconds(10)) >> [&] { FAIL("an answer was lost"); });
  CHECK(answered.size() == appenders);
  CHECK(store->head_position() == appenders + 1);
}

TEST_CASE("inbox: a store that throws fails its whole batch and the next batch is written",
          "[inbox]") {
  auto store = std::make_shared<gated_journal>(make_memory_journal());
  append_inbox inbox{store};
  store->throw_next = true;
  auto failed = append_and_wait(inbox, req(sid("inbox", "x"), 0, 1));
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code() == errc::unavailable);
  auto ok = append_and_wait(inbox, req(sid("inbox", "x"), 0, 1));
  REQUIRE(ok);
  CHECK(*ok == append_result{1, 1, 1, 1});
}
