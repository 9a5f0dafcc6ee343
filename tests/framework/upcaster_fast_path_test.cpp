// Only old events pay for upcasting: reading an event stored at its current schema
// version allocates nothing more than decoding it does, with upcasters declared.
// Its own executable, because it counts allocations by replacing operator new (or, under
// AddressSanitizer, with the sanitizer's allocation hook).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <new>

#include <cairn/aggregate_model.hpp>
#include <cairn/upcaster.hpp>

#include "framework/versioned_wallet.hpp"

namespace {
thread_local size_t allocations = 0;
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer owns operator new; count through its allocation hook instead
// (declared as in the sanitizer's allocator_interface.h, which GCC does not ship).
extern "C" int __sanitizer_install_malloc_and_free_hooks(
  void (*malloc_hook)(const volatile void*, size_t), void (*free_hook)(const volatile void*));
namespace {
void count_allocation(const volatile void*, size_t) { ++allocations; }
void ignore_free(const volatile void*) {}
[[maybe_unused]] const int hooks_installed =
  __sanitizer_install_malloc_and_free_hooks(count_allocation, ignore_free);
} // namespace
#else
// GCC pairs the inlined malloc/free with new/delete and warns; they do match here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc{};
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
#endif

using namespace cairn;
using namespace versioned;

TEST_CASE("decoding a current event allocates nothing, though upcasters are declared") {
  REQUIRE_FALSE(upcasters_of<wallet::event_type>().empty()); // built before counting
  auto current = as_stored(stored(withdrawn{3}), 1);
  int64_t sum = 0;
  size_t before = allocations;
  for (int i = 0; i < 1000; ++i) {
    auto ok = decode_each<wallet::event_type>(current, [&](const wallet::event_type& ev) {
      sum += std::get<withdrawn>(ev).cents;
    });
    if (!ok) FAIL(ok.error().describe());
  }
  size_t during = allocations - before;
  REQUIRE(sum == 3000);
  REQUIRE(during == 0);

  // The counter does see the old path's work.
  auto old = as_stored(stored(deposited_v2{5}), 2);
  before = allocations;
  REQUIRE(decode_each<wallet::event_type>(old, [](const wallet::event_type&) {}));
  REQUIRE(allocations - before > 0);
}

TEST_CASE("aggregate replay of current events allocates nothing per event") {
  detail::typed_aggregate_instance<wallet> instance;
  REQUIRE(instance.replay(as_stored(stored(opened{"ann"}), 1)));
  REQUIRE(instance.replay(as_stored(stored(deposited{100000, "EUR"}), 2)));
  std::vector<envelope> withdrawals;
  for (uint64_t v = 3; v < 1003; ++v) withdrawals.push_back(as_stored(stored(withdrawn{1}), v));
  size_t before = allocations;
  for (auto& e : withdrawals)
    if (!instance.replay(e)) FAIL("replay failed");
  size_t during = allocations - before;
  REQUIRE(during == 0);
  REQUIRE(instance.version() == 1002);
  REQUIRE(instance.state().balance == 100000 - 1000);
}
