// Saga checkpoints stay small however many instances are open: a position and a
// low-water mark, from which a restart finds the open instances in their own streams.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <cairn/codec.hpp>
#include <cairn/saga_process.hpp>
#include <cairn/test_node.hpp>

#include "actors/eventually.hpp"
#include "actors/waiter_saga.hpp"
#include "bank/account.hpp"

using namespace cairn;
using cairn::test::eventually;
using cairn::test::waiter_saga;
using cairn::testkit::test_node;

namespace {

/// The last checkpoint stored for saga "waiter".
envelope last_checkpoint(journal& store) {
  auto cp = saga_checkpoint_stream("waiter");
  auto v = store.stream_version(cp);
  REQUIRE(v);
  REQUIRE(*v > 0);
  auto last = store.read_stream(cp, *v, 1);
  REQUIRE(last);
  REQUIRE(last->size() == 1);
  return last->front();
}

} // namespace

TEST_CASE("a saga checkpoint does not grow with the open instances, and a restart finds them all") {
  constexpr size_t open_instances = 3000;
  auto store = make_memory_journal();
  saga_options opts;
  opts.checkpoint_interval = std::chrono::milliseconds{10};
  size_t small_checkpoint = 0;
  {
    test_node n{2, store};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->register_saga<waiter_saga>(opts));
    REQUIRE(n->execute<bank::account>("first", bank::open{"o"}));
    REQUIRE(eventually([&] {
      auto s = n->saga_status_of<waiter_saga>();
      return s && s->open == 1 && s->checkpointed >= 1;
    }));
    small_checkpoint = last_checkpoint(*store).payload.size();
    for (size_t i = 1; i < open_instances; ++i)
      REQUIRE(n->execute<bank::account>("acc-" + std::to_string(i), bank::open{"o"}));
    auto head = store->head_position();
    REQUIRE(eventually([&] {
      auto s = n->saga_status_of<waiter_saga>();
      return s && s->open == open_instances && s->checkpointed >= head - 1;
    }));
  }
  auto cp = last_checkpoint(*store);
  REQUIRE(cp.schema_version == 2);
  INFO("checkpoint payload: " << cp.payload.size() << " bytes; with one instance open: "
                              << small_checkpoint);
  REQUIRE(cp.payload.size() <= small_checkpoint + 4); // varints grow a little, never per instance
  REQUIRE(cp.payload.size() < 32);
  auto decoded = decode<saga_checkpoint>(cp.payload);
  REQUIRE(decoded);
  REQUIRE(decoded->reload.empty());
  REQUIRE(decoded->low_water > 0);
  REQUIRE(decoded->low_water <= decoded->position);

  test_node n{2, store}; // finds the open instances from the low-water mark
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_saga<waiter_saga>(opts));
  REQUIRE(eventually([&] {
    auto s = n->saga_status_of<waiter_saga>();
    return s && s->open == open_instances;
  }));
  // And they are live: a new instance still starts, the old ones do not start twice.
  REQUIRE(n->execute<bank::account>("late", bank::open{"o"}));
  REQUIRE(eventually([&] {
    auto s = n->saga_status_of<waiter_saga>();
    return s && s->open == open_instances + 1;
  }));
  REQUIRE(read_stream_all(*store, {"saga_waiter", "first"})->size() == 1);
}

TEST_CASE("a version 1 checkpoint that lists its open instances is still read") {
  auto store = make_memory_journal();
  {
    test_node n{2, store};
    REQUIRE(n->register_aggregate<bank::account>());
    REQUIRE(n->register_saga<waiter_saga>());
    REQUIRE(n->execute<bank::account>("a", bank::open{"o"}));
    REQUIRE(eventually([&] {
      auto s = n->saga_status_of<waiter_saga>();
      return s && s->open == 1;
    }));
  }
  // As an older Cairn stored it: every open instance by name, at the head.
  saga_checkpoint_v1 old{store->head_position(), {"a"}};
  auto s = schema_of<saga_checkpoint_v1>();
  REQUIRE(store->append_one({saga_checkpoint_stream("waiter"), expected_version::any,
                             {event_data{std::string{s.name}, s.version, {}, encode(old)}}}));
  test_node n{2, store};
  REQUIRE(n->register_aggregate<bank::account>());
  REQUIRE(n->register_saga<waiter_saga>());
  REQUIRE(eventually([&] {
    auto st = n->saga_status_of<waiter_saga>();
    return st && st->open == 1;
  }));
}
