// The cairn command-line tool as a library (target cairn::cli): a program registers
// its aggregate types and runs the tool with them, which gives it every stock
// subcommand plus `state`, an aggregate's state as of a version or a time:
//
//   int main(int argc, char** argv) {
//     cairn::cli::registry types;
//     types.add_aggregate<bank::account>();
//     return cairn::cli::run(argc, argv, types);
//   }
//
// The stock `cairn` binary is run() with no types. Everything here is CAF-free.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/json_codec.hpp"
#include "cairn/temporal.hpp"

namespace cairn::cli {

/// An aggregate's state at one point of its stream, as the tool prints it.
struct rendered_state {
  nlohmann::json state;     ///< the state's JSON rendering (json_codec.hpp)
  uint64_t version = 0;     ///< the last event folded in; 0: the initial state
  int64_t timestamp_ns = 0; ///< that event's commit time; 0 for version 0
};

/// The aggregate types a program built on the tool knows, by stream category.
class registry {
public:
  /// Replays stream `id` of one category up to a version and a commit time
  /// (temporal.hpp's replay_until) and renders the state.
  using replay_fn = std::function<expected<rendered_state>(
    const journal& store, const std::string& id, uint64_t max_version, int64_t max_timestamp_ns)>;

  /// Makes `state` know aggregate A (by its category). A needs a schema
  /// (`describe(cairn::type<A>)`) for its JSON; its events' upcasters are used.
  /// Registering a category again replaces the earlier type.
  template <class A>
  registry& add_aggregate() {
    static_assert(is_described_v<A>,
                  "cairn::cli: `state` prints the aggregate as JSON, so it needs a schema: "
                  "declare describe(cairn::type<A>)");
    add(std::string{aggregate_traits<A>::category()},
        [](const journal& store, const std::string& id, uint64_t max_version,
           int64_t max_timestamp_ns) -> expected<rendered_state> {
          auto past = replay_until<A>(store, id, max_version, max_timestamp_ns);
          if (!past) return std::move(past).error();
          return rendered_state{to_json(past->state), past->version, past->timestamp_ns};
        });
    return *this;
  }

  /// The type-erased form of add_aggregate().
  void add(std::string category, replay_fn replay);

  /// The replay function for a category, or nullptr.
  const replay_fn* find(std::string_view category) const;

  /// The registered categories, in registration order.
  std::vector<std::string> categories() const;

  bool empty() const noexcept { return aggregates_.empty(); }

private:
  std::vector<std::pair<std::string, replay_fn>> aggregates_;
};

/// Runs the tool on a command line, exactly as the `cairn` binary does (docs/cli.md),
/// with `types` for `state`, and returns the process exit code: 0 ok, 1 the operation
/// failed, 2 a usage error. Prints to stdout and stderr; call it once, from main().
int run(int argc, char** argv, const registry& types = registry{});

} // namespace cairn::cli
