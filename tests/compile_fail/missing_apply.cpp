// Must NOT compile: the aggregate has no apply for its `closed` event.
#include <cairn/aggregate.hpp>

struct opened { int x = 0; };
struct closed { int x = 0; };
inline auto describe(cairn::type<opened>) { return cairn::schema<opened>("opened", 1, cairn::field("x", &opened::x)); }
inline auto describe(cairn::type<closed>) { return cairn::schema<closed>("closed", 1, cairn::field("x", &closed::x)); }

struct door {
  using command_type = std::variant<opened>;
  using event_type = std::variant<opened, closed>;
  static constexpr std::string_view category = "door";
  cairn::decision<event_type> decide(const opened& c) const { return c; }
  void apply(const opened&) {}
};

int main() {
  door d;
  cairn::aggregate_traits<door>::evolve(d, door::event_type{closed{}});
  return 0;
}
