// A consumer's own cairn-style tool, built against the installed cairn::cli: every stock
// subcommand, plus `state` for the consumer's counter aggregate.
#include <cstdint>
#include <string_view>
#include <variant>

#include <cairn/cli_tool.hpp>
#include <cairn/decision.hpp>
#include <cairn/schema.hpp>

namespace shop {

struct add { uint64_t by = 0; };
struct added { uint64_t by = 0; };

struct counter {
  using command_type = std::variant<add>;
  using event_type = std::variant<added>;
  static constexpr std::string_view category = "counter";

  uint64_t count = 0;

  cairn::decision<event_type> decide(const add& c) const { return added{c.by}; }
  void apply(const added& e) { count += e.by; }
};

inline auto describe(cairn::type<counter>) {
  return cairn::schema<counter>("counter", 1, cairn::field("count", &counter::count));
}
inline auto describe(cairn::type<add>) {
  return cairn::schema<add>("add", 1, cairn::field("by", &add::by));
}
inline auto describe(cairn::type<added>) {
  return cairn::schema<added>("added", 1, cairn::field("by", &added::by));
}

} // namespace shop

int main(int argc, char** argv) {
  cairn::cli::registry types;
  types.add_aggregate<shop::counter>();
  return cairn::cli::run(argc, argv, types);
}
