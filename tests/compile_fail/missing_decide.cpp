// Must NOT compile: the aggregate has no decide for its `close` command. The test
// checks that the compiler's message names the problem and the fix.
#include <cairn/aggregate.hpp>

struct open { int x = 0; };
struct close { int x = 0; };
struct opened { int x = 0; };
inline auto describe(cairn::type<open>) { return cairn::schema<open>("open", 1, cairn::field("x", &open::x)); }
inline auto describe(cairn::type<close>) { return cairn::schema<close>("close", 1, cairn::field("x", &close::x)); }
inline auto describe(cairn::type<opened>) { return cairn::schema<opened>("opened", 1, cairn::field("x", &opened::x)); }

struct door {
  using command_type = std::variant<open, close>;
  using event_type = std::variant<opened>;
  static constexpr std::string_view category = "door";
  cairn::decision<event_type> decide(const open& c) const { return opened{c.x}; }
  void apply(const opened&) {}
};

int main() {
  door d;
  auto result = cairn::aggregate_traits<door>::decide(d, door::command_type{close{}});
  return static_cast<int>(result.events().size());
}
