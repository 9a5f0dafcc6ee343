// Specs for the binary codec, the JSON codec, variant_codec, and aggregates written
// with free decide/evolve functions. The binary format is pinned by docs/encoding.md.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <cairn/codec.hpp>
#include <cairn/json_codec.hpp>
#include <cairn/testkit.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"

using cairn::bytes;
using cairn::errc;
using cairn::field;
using cairn::schema;

namespace codec_spec {

enum class color : uint8_t { red = 1, blue = 200 };
enum class level : int32_t { low = -5, high = 1000000 };

struct empty {};
struct pair { int64_t a = 0; std::string s; };
struct inner { int32_t count = 0; std::string label; };
struct outer { inner in; std::vector<inner> list; std::optional<inner> maybe;
               std::map<std::string, int64_t> totals; empty nothing; };
struct narrow { int8_t small = 0; uint16_t u = 0; bool flag = false; std::optional<uint8_t> opt; };
struct leaf { uint8_t tag = 0; std::string name; std::optional<int32_t> weight; };
struct rich {
  int64_t id = 0; bool active = false; double score = 0; std::string title;
  std::vector<std::string> tags; std::vector<leaf> leaves; std::optional<leaf> primary;
  std::map<std::string, std::vector<int16_t>> index; std::map<std::string, leaf> by_name;
  std::vector<std::optional<uint32_t>> slots; color hue = color::red; empty none;
};
// The worked example of docs/encoding.md.
struct transfer { std::string from; int64_t amount = 0; std::optional<std::string> memo;
                  std::vector<uint16_t> tags; bool urgent = false; };
struct dup_a { int32_t x = 0; };
struct dup_b { int32_t y = 0; };
struct unnamed {};

inline auto describe(cairn::type<empty>) { return schema<empty>("empty", 1); }
inline auto describe(cairn::type<pair>) {
  return schema<pair>("pair", 1, field("a", &pair::a), field("s", &pair::s));
}
inline auto describe(cairn::type<inner>) {
  return schema<inner>("inner", 1, field("count", &inner::count), field("label", &inner::label));
}
inline auto describe(cairn::type<outer>) {
  return schema<outer>("outer", 1, field("in", &outer::in), field("list", &outer::list),
                       field("maybe", &outer::maybe), field("totals", &outer::totals),
                       field("nothing", &outer::nothing));
}
inline auto describe(cairn::type<narrow>) {
  return schema<narrow>("narrow", 1, field("small", &narrow::small), field("u", &narrow::u),
                        field("flag", &narrow::flag), field("opt", &narrow::opt));
}
inline auto describe(cairn::type<leaf>) {
  return schema<leaf>("leaf", 1, field("tag", &leaf::tag), field("name", &leaf::name),
                      field("weight", &leaf::weight));
}
inline auto describe(cairn::type<rich>) {
  return schema<rich>("rich", 3, field("id", &rich::id), field("active", &rich::active),
                      field("score", &rich::score), field("title", &rich::title),
                      field("tags", &rich::tags), field("leaves", &rich::leaves),
                      field("primary", &rich::primary), field("index", &rich::index),
                      field("by_name", &rich::by_name), field("slots", &rich::slots),
                      field("hue", &rich::hue), field("none", &rich::none));
}
inline auto describe(cairn::type<transfer>) {
  return schema<transfer>("transfer", 1, field("from", &transfer::from),
                          field("amount", &transfer::amount), field("memo", &transfer::memo),
                          field("tags", &transfer::tags), field("urgent", &transfer::urgent));
}
// Two types claiming one name, and a type with an empty name: check_names must object.
inline auto describe(cairn::type<dup_a>) { return schema<dup_a>("dup", 1, field("x", &dup_a::x)); }
inline auto describe(cairn::type<dup_b>) { return schema<dup_b>("dup", 1, field("y", &dup_b::y)); }
inline auto describe(cairn::type<unnamed>) { return schema<unnamed>("", 1); }

inline bool operator==(const empty&, const empty&) { return true; }
inline bool operator==(const inner& a, const inner& b) {
  return std::tie(a.count, a.label) == std::tie(b.count, b.label);
}
inline bool operator==(const outer& a, const outer& b) {
  return std::tie(a.in, a.list, a.maybe, a.totals) == std::tie(b.in, b.list, b.maybe, b.totals);
}
inline bool operator==(const leaf& a, const leaf& b) {
  return std::tie(a.tag, a.name, a.weight) == std::tie(b.tag, b.name, b.weight);
}
inline auto tied(const rich& r) {
  return std::tie(r.id, r.active, r.score, r.title, r.tags, r.leaves, r.primary, r.index,
                  r.by_name, r.slots, r.hue, r.none);
}
inline bool operator==(const rich& a, const rich& b) { return tied(a) == tied(b); }

inline outer sample_outer() {
  return outer{inner{3, "x"}, {inner{-1, ""}, inner{70000, "Zürich"}}, inner{0, "m"},
               {{"a", 1}, {"b", -2}}, {}};
}
inline rich sample_rich() {
  return rich{-42, true, 2.5, "hello", {"a", "", "ccc"},
              {leaf{1, "one", 7}, leaf{2, "two", std::nullopt}}, leaf{9, "p", -1},
              {{"k", {1, -1, 300}}, {"z", {}}}, {{"n", leaf{3, "x", 0}}},
              {5u, std::nullopt, 4000000000u}, color::blue, {}};
}

} // namespace codec_spec

// An aggregate whose handlers are free functions found by argument-dependent lookup.
namespace tally {
struct add { int64_t n = 0; };
struct reset {};
struct added { int64_t n = 0; };
struct cleared {};
struct counter { // state only: the handlers are the free functions below
  using command_type = std::variant<add, reset>;
  using event_type = std::variant<added, cleared>;
  static constexpr std::string_view category = "counter";
  int64_t total = 0;
};
inline auto describe(cairn::type<add>) { return schema<add>("add", 1, field("n", &add::n)); }
inline auto describe(cairn::type<reset>) { return schema<reset>("reset", 1); }
inline auto describe(cairn::type<added>) {
  return schema<added>("added", 1, field("n", &added::n));
}
inline auto describe(cairn::type<cleared>) { return schema<cleared>("cleared", 1); }
inline auto describe(cairn::type<counter>) {
  return schema<counter>("counter", 1, field("total", &counter::total));
}

inline cairn::decision<counter::event_type> decide(const counter&, const add& c) {
  if (c.n <= 0) return cairn::reject("n must be positive");
  return added{c.n};
}
inline cairn::decision<counter::event_type> decide(const counter& s, const reset&) {
  if (s.total == 0) return cairn::nothing;
  return cleared{};
}
inline counter evolve(const counter& s, const added& e) { return counter{s.total + e.n}; }
inline counter evolve(const counter&, const cleared&) { return counter{}; }
} // namespace tally

using namespace codec_spec;

namespace {

template <class T>
T round_trip(const T& x) {
  auto data = cairn::encode(x);
  auto back = cairn::decode<T>(data);
  if (!back) FAIL("decode failed: " << back.error().message());
  return *back;
}

/// Expects `r` to have failed with `code` and a message; returns the message.
template <class T>
std::string failure(const cairn::expected<T>& r, errc code) {
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().code() == code);
  REQUIRE_FALSE(r.error().message().empty());
  return r.error().message();
}
/// Expects `data` (its own heap block, so ASan sees any over-read) not to decode as T.
template <class T>
std::string corrupt_message(const bytes& data) {
  return failure(cairn::decode<T>(data.data(), data.size()), errc::corrupt);
}
template <class T>
std::string json_error(const nlohmann::json& j) {
  return failure(cairn::from_json<T>(j), errc::invalid_argument);
}

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
bytes varint(uint64_t x) { return cairn::encode(x); }
bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// ---------------------------------------------------------------- binary round trips

TEMPLATE_TEST_CASE("every integer type round-trips its minimum, maximum, zero and one", "",
                   int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t) {
  using lim = std::numeric_limits<TestType>;
  for (TestType v : {lim::min(), lim::max(), TestType(0), TestType(1), TestType(lim::max() / 2)})
    REQUIRE(round_trip(v) == v);
  if constexpr (std::is_signed_v<TestType>) REQUIRE(round_trip(TestType(-1)) == TestType(-1));
}

TEST_CASE("bools and enums round-trip") {
  REQUIRE((round_trip(true) && !round_trip(false)));
  REQUIRE(round_trip(color::blue) == color::blue);
  for (auto l : {level::low, level::high}) REQUIRE(round_trip(l) == l);
}

TEST_CASE("floats and doubles round-trip bit for bit, including negative zero and infinities") {
  constexpr double inf = std::numeric_limits<double>::infinity();
  constexpr double tiny = std::numeric_limits<double>::denorm_min();
  REQUIRE(std::signbit(round_trip(-0.0)));
  REQUIRE(std::signbit(round_trip(-0.0f)));
  REQUIRE(round_trip(inf) == inf);
  auto minus_inf = round_trip(-std::numeric_limits<float>::infinity());
  REQUIRE((std::isinf(minus_inf) && minus_inf < 0));
  REQUIRE(round_trip(tiny) == tiny);
  REQUIRE(round_trip(0.1f) == 0.1f);
  REQUIRE(round_trip(-1e300) == -1e300);
  REQUIRE(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
}

TEST_CASE("strings round-trip when empty, with embedded NULs and with non-ASCII bytes") {
  using namespace std::string_literals;
  for (std::string s : {""s, "a\0b\0"s, "Zürich ✓ 日本"s, "\xff\x80\x00"s, std::string(999, 'q')})
    REQUIRE(round_trip(s) == s);
}

TEST_CASE("vectors, nested vectors, optionals and maps round-trip") {
  REQUIRE(round_trip(std::vector<int32_t>{}).empty());
  REQUIRE(round_trip(std::vector<int32_t>{1, -2, 3}) == std::vector<int32_t>{1, -2, 3});
  std::vector<std::vector<std::string>> vv{{}, {"a", ""}, {"b"}};
  REQUIRE(round_trip(vv) == vv);
  REQUIRE(round_trip(std::optional<int64_t>{}) == std::nullopt);
  REQUIRE(round_trip(std::optional<int64_t>{0}) == std::optional<int64_t>{0});
  REQUIRE(round_trip(std::optional<std::string>{""}) == std::optional<std::string>{""});
  std::map<std::string, std::vector<bool>> m{{"", {}}, {"x", {true, false}}};
  REQUIRE(round_trip(m) == m);
  std::map<std::string, std::optional<double>> mo{{"k", std::nullopt}, {"l", 1.5}};
  REQUIRE(round_trip(mo) == mo);
}

TEST_CASE("described structs round-trip, nested and with zero fields") {
  REQUIRE(round_trip(sample_outer()) == sample_outer());
  REQUIRE(round_trip(outer{}) == outer{});
  REQUIRE(round_trip(sample_rich()) == sample_rich());
  REQUIRE(round_trip(rich{}) == rich{});
  REQUIRE(cairn::encode(empty{}) == bytes{0x00});
  REQUIRE(cairn::decode<empty>(bytes{0x00}).has_value());
}

// ---------------------------------------------------------------- pinned layout

TEST_CASE("the byte layout of small values is pinned") {
  REQUIRE(cairn::encode(pair{-1, "hi"}) == bytes{0x02, 0x01, 0x02, 'h', 'i'});
  REQUIRE(cairn::encode(uint64_t{300}) == bytes{0xAC, 0x02});
  REQUIRE(cairn::encode(int32_t{-64}) == bytes{0x7F});
  REQUIRE(cairn::encode(int32_t{64}) == bytes{0x80, 0x01});
  REQUIRE(cairn::encode(UINT64_MAX) == cat({bytes(9, 0xFF), bytes{0x01}}));
  REQUIRE(cairn::encode(INT64_MIN) == cairn::encode(UINT64_MAX));
  REQUIRE(cairn::encode(true) == bytes{0x01});
  REQUIRE(cairn::encode(color::blue) == bytes{0xC8, 0x01});
  REQUIRE(cairn::encode(1.0) == bytes{0, 0, 0, 0, 0, 0, 0xF0, 0x3F});
  REQUIRE(cairn::encode(-0.0f) == bytes{0, 0, 0, 0x80});
  REQUIRE(cairn::encode(std::optional<int8_t>{}) == bytes{0x00});
  REQUIRE(cairn::encode(std::optional<int8_t>{5}) == bytes{0x01, 0x0A});
  REQUIRE(cairn::encode(std::map<std::string, int64_t>{{"a", 1}}) == bytes{0x01, 0x01, 'a', 0x02});
  REQUIRE(cairn::encode(inner{3, "x"}) == bytes{0x02, 0x06, 0x01, 'x'});
}

TEST_CASE("the worked example of docs/encoding.md encodes to the documented bytes") {
  REQUIRE(cairn::encode(transfer{"ann", -3, std::nullopt, {1, 300}, true}) ==
          bytes{0x05, 0x03, 'a', 'n', 'n', 0x05, 0x00, 0x02, 0x01, 0xAC, 0x02, 0x01});
}

// ---------------------------------------------------------------- decoding errors

TEST_CASE("every truncation of an encoded value is reported as corrupt") {
  auto check_prefixes = [](auto value) {
    using T = decltype(value);
    auto data = cairn::encode(value);
    for (size_t n = 0; n < data.size(); ++n) {
      INFO("prefix of " << n << " of " << data.size() << " bytes");
      auto msg = corrupt_message<T>(bytes(data.begin(), data.begin() + static_cast<long>(n)));
      INFO(msg);
      REQUIRE((has(msg, "truncated") || has(msg, "exceeds")));
    }
  };
  check_prefixes(pair{-1, "hi"});
  check_prefixes(sample_outer());
  check_prefixes(sample_rich());
  check_prefixes(transfer{"ann", -3, std::string{"memo"}, {1, 300}, true});
  check_prefixes(UINT64_MAX);
  check_prefixes(1.5);
}

TEST_CASE("trailing bytes after a value are corrupt") {
  REQUIRE(corrupt_message<pair>(cat({cairn::encode(pair{1, "a"}), bytes{0x00, 0x00}})) ==
          "2 trailing bytes after value");
}

TEST_CASE("a field count that differs from the schema is corrupt and names the type") {
  REQUIRE(corrupt_message<pair>(bytes{0x03, 0x01, 0x02, 'h', 'i', 0x00}) ==
          "pair has 2 fields, the bytes say 3");
  REQUIRE(corrupt_message<pair>(bytes{0x01, 0x01}) == "pair has 2 fields, the bytes say 1");
  REQUIRE(corrupt_message<empty>(bytes{0x01}) == "empty has 0 fields, the bytes say 1");
}

TEST_CASE("a bool byte or optional flag other than 0 or 1 is corrupt") {
  REQUIRE(corrupt_message<bool>(bytes{0x02}) == "bool byte is 2");
  REQUIRE(corrupt_message<narrow>(bytes{0x04, 0x00, 0x00, 0xFF, 0x00}) == "bool byte is 255");
  REQUIRE(corrupt_message<std::optional<int8_t>>(bytes{0x02, 0x00}) == "optional flag is 2");
  REQUIRE(corrupt_message<narrow>(bytes{0x04, 0x00, 0x00, 0x01, 0x02, 0x00}) ==
          "optional flag is 2");
}

TEST_CASE("an integer out of range for its narrower field is corrupt") {
  auto msg = corrupt_message<narrow>(cat({bytes{0x04}, cairn::encode(int64_t{200})}));
  REQUIRE(msg == "integer 200 out of range for its field");
  REQUIRE(corrupt_message<int8_t>(cairn::encode(int64_t{-129})) ==
          "integer -129 out of range for its field");
  REQUIRE(corrupt_message<uint16_t>(varint(70000)) == "integer 70000 out of range for its field");
  REQUIRE(corrupt_message<color>(varint(256)) == "integer 256 out of range for its field");
  REQUIRE(has(corrupt_message<int32_t>(cairn::encode(INT64_MAX)), "out of range"));
  REQUIRE(has(corrupt_message<uint32_t>(varint(UINT64_MAX)), "out of range"));
}

TEST_CASE("over-long and overflowing varints are corrupt") {
  auto eleven = cat({bytes(10, 0x80), bytes{0x00}}); // zero, spelled in 11 bytes
  REQUIRE(corrupt_message<uint64_t>(eleven) == "varint longer than 10 bytes");
  auto too_big = cat({bytes(9, 0xFF), bytes{0x02}}); // 2^64 + ...
  REQUIRE(corrupt_message<uint64_t>(too_big) == "varint overflows 64 bits");
  REQUIRE(corrupt_message<int64_t>(too_big) == "varint overflows 64 bits");
  REQUIRE(corrupt_message<uint64_t>(bytes{0x80, 0x80}) == "truncated varint");
}

TEST_CASE("a huge length prefix is corrupt without allocating for it") {
  auto huge = varint(uint64_t{1} << 40);
  REQUIRE(corrupt_message<std::string>(cat({huge, bytes{'a', 'b', 'c'}})) ==
          "length 1099511627776 exceeds the 3 bytes that remain");
  REQUIRE(has(corrupt_message<std::vector<uint64_t>>(cat({huge, bytes{1, 2, 3}})), "exceeds"));
  REQUIRE(has(corrupt_message<std::vector<rich>>(cat({varint(UINT64_MAX), bytes{0}})), "exceeds"));
  REQUIRE(has(corrupt_message<std::map<std::string, int8_t>>(cat({huge, bytes{0}})), "exceeds"));
  REQUIRE(has(corrupt_message<pair>(cat({bytes{0x02, 0x00}, huge, bytes{'x'}})), "exceeds"));
}

TEST_CASE("a truncated float and a duplicate map key are corrupt") {
  REQUIRE(corrupt_message<double>(bytes{0, 0, 0, 0}) == "truncated floating-point value");
  bytes dup{0x02, 0x01, 'k', 0x02, 0x01, 'k', 0x04};
  REQUIRE(corrupt_message<std::map<std::string, int64_t>>(dup) == "duplicate map key");
}

TEST_CASE("decoding mutated and random bytes never crashes and fails only as corrupt") {
  std::mt19937_64 rng{20240611}; // fully specified engine, no distributions: portable
  auto below = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  rich other = sample_rich();
  other.primary.reset();
  other.by_name = {{"a", leaf{}}, {"b", leaf{7, "bb", 8}}};
  const bytes seeds[] = {cairn::encode(sample_rich()), cairn::encode(rich{}), cairn::encode(other)};
  const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFE, 0xFF};
  size_t ok = 0, corrupt = 0;
  std::string problem;
  for (int i = 0; i < 20000 && problem.empty(); ++i) {
    bytes in = seeds[below(3)];
    if (i % 10 == 9) { // every tenth input is plain random bytes
      in.resize(below(64));
      for (auto& b : in) b = static_cast<uint8_t>(rng());
    }
    for (size_t m = 0, ms = i % 10 == 9 ? 0 : 1 + below(4); m < ms; ++m) {
      size_t at = below(in.size() + 1);
      auto it = in.begin() + static_cast<std::ptrdiff_t>(at);
      switch (below(6)) {
        case 0: if (at < in.size()) *it ^= static_cast<uint8_t>(1u << below(8)); break;
        case 1: if (at < in.size()) *it = interesting[below(sizeof interesting)]; break;
        case 2: in.insert(it, static_cast<uint8_t>(rng())); break;
        case 3: if (at < in.size()) in.erase(it); break;
        case 4: in.resize(at); break;
        default: { // duplicate a slice somewhere
          bytes slice(it, it + static_cast<std::ptrdiff_t>(below(in.size() - at + 1)));
          in.insert(in.begin() + static_cast<std::ptrdiff_t>(below(in.size() + 1)), slice.begin(),
                    slice.end());
        }
      }
    }
    auto r = cairn::decode<rich>(in.data(), in.size());
    if (!r) {
      ++corrupt;
      if (r.error().code() != errc::corrupt || r.error().message().empty())
        problem = "input " + std::to_string(i) + " failed with a code other than corrupt";
      continue;
    }
    ++ok;
    auto again = cairn::encode(*r);
    auto back = cairn::decode<rich>(again);
    if (!back || cairn::encode(*back) != again)
      problem = "input " + std::to_string(i) + " decodes but does not round-trip";
  }
  INFO(problem);
  REQUIRE(problem.empty());
  REQUIRE(ok + corrupt == 20000);
  REQUIRE(ok > 100); // mutations also reach valid values, not only early failures
  REQUIRE(corrupt > 1000);
}

// ---------------------------------------------------------------- JSON

TEST_CASE("to_json renders an object keyed by field name, nested") {
  auto j = cairn::to_json(sample_outer());
  REQUIRE((j.is_object() && j.size() == 5));
  REQUIRE(j["in"] == nlohmann::json{{"count", 3}, {"label", "x"}});
  REQUIRE(j["list"].is_array());
  REQUIRE(j["list"][1]["label"] == "Zürich");
  REQUIRE(j["maybe"]["label"] == "m");
  REQUIRE(j["totals"] == nlohmann::json{{"a", 1}, {"b", -2}});
  REQUIRE(j["nothing"] == nlohmann::json::object());
  REQUIRE(cairn::to_json(outer{})["maybe"].is_null());
  REQUIRE(cairn::to_json(sample_rich())["hue"] == 200);
  REQUIRE(cairn::to_json(pair{-1, "hi"}).dump() == R"({"a":-1,"s":"hi"})");
}

TEST_CASE("from_json reads back what to_json wrote, also after a text round trip") {
  auto direct = cairn::from_json<outer>(cairn::to_json(sample_outer()));
  REQUIRE(direct.has_value());
  REQUIRE(*direct == sample_outer());
  auto text = cairn::from_json<rich>(nlohmann::json::parse(cairn::to_json(sample_rich()).dump()));
  REQUIRE(text.has_value());
  REQUIRE(*text == sample_rich());
  auto limits = cairn::from_json<narrow>(nlohmann::json{{"small", -128}, {"u", 65535},
                                                        {"flag", true}, {"opt", nullptr}});
  REQUIRE(limits.has_value());
  REQUIRE(limits->small == -128);
  REQUIRE(limits->u == 65535);
  REQUIRE_FALSE(limits->opt.has_value());
}

TEST_CASE("from_json errors are invalid_argument and name the JSON path") {
  auto j = cairn::to_json(sample_outer());
  j["in"]["count"] = "three";
  REQUIRE(json_error<outer>(j) == "$.in.count: expected an integer, got string");
  j = cairn::to_json(sample_outer());
  j["list"][1]["count"] = 1.5;
  REQUIRE(json_error<outer>(j) == "$.list[1].count: expected an integer, got number");
  j = cairn::to_json(sample_outer());
  j["totals"]["b"] = nullptr;
  REQUIRE(json_error<outer>(j) == "$.totals.b: expected an integer, got null");
  REQUIRE(json_error<outer>(nlohmann::json::array()) == "$: expected an object, got array");
}

TEST_CASE("from_json rejects a missing field and an unknown extra field") {
  auto j = cairn::to_json(sample_outer());
  j["in"].erase("label");
  REQUIRE(json_error<outer>(j) == "$.in: missing field \"label\"");
  j = cairn::to_json(sample_outer());
  j["extra"] = 1;
  REQUIRE(json_error<outer>(j).rfind("$: unknown fields", 0) == 0);
}

TEST_CASE("from_json rejects out-of-range integers and negatives for unsigned fields") {
  nlohmann::json j{{"small", 200}, {"u", 1}, {"flag", false}, {"opt", nullptr}};
  REQUIRE(json_error<narrow>(j) == "$.small: integer out of range");
  j["small"] = -129;
  REQUIRE(json_error<narrow>(j) == "$.small: integer out of range");
  j["small"] = 0;
  j["u"] = 65536;
  REQUIRE(json_error<narrow>(j) == "$.u: integer out of range");
  j["u"] = -1;
  REQUIRE(json_error<narrow>(j) == "$.u: expected a non-negative integer");
  j["u"] = 1;
  j["opt"] = 256;
  REQUIRE(json_error<narrow>(j) == "$.opt: integer out of range");
  REQUIRE(json_error<int64_t>(nlohmann::json(UINT64_MAX)) == "$: integer out of range");
}

TEST_CASE("from_json accepts non-negative integers built in code and vectors of bools") {
  nlohmann::json j{{"small", 1}, {"u", 5}, {"flag", true}, {"opt", 7}}; // signed JSON numbers
  auto r = cairn::from_json<narrow>(j);
  REQUIRE(r.has_value());
  REQUIRE(r->u == 5);
  auto flags = cairn::from_json<std::vector<bool>>(nlohmann::json{true, false});
  REQUIRE(flags.has_value());
  REQUIRE(*flags == std::vector<bool>{true, false});
  REQUIRE(r->opt == std::optional<uint8_t>{7});
}

// ---------------------------------------------------------------- variant_codec

using bank_events = cairn::variant_codec<bank::account::event_type>;

TEST_CASE("variant_codec names alternatives and encodes name, version, metadata, payload") {
  REQUIRE(bank_events::type_name(bank::deposited{5}) == "deposited");
  REQUIRE(bank_events::type_name(bank::opened{"ann"}) == "opened");
  REQUIRE(bank_events::knows("withdrawn"));
  REQUIRE_FALSE(bank_events::knows("deposit"));
  cairn::metadata meta{"corr-1", "cause-1", {{"user", "ann"}}};
  auto e = bank_events::encode(bank::deposited{150}, meta);
  REQUIRE(e.type == "deposited");
  REQUIRE(e.schema_version == 1);
  REQUIRE(e.meta == meta);
  REQUIRE(e.payload == bytes{0x01, 0xAC, 0x02});
}

TEST_CASE("variant_codec decodes a payload by its type name") {
  auto r = bank_events::decode(bank_events::encode(bank::withdrawn{7}));
  REQUIRE(r.has_value());
  REQUIRE(std::get<bank::withdrawn>(*r).amount == 7);
  auto payload = cairn::encode(bank::opened{"bob"});
  auto o = bank_events::decode("opened", 1, payload.data(), payload.size());
  REQUIRE(o.has_value());
  REQUIRE(std::get<bank::opened>(*o).owner == "bob");
}

TEST_CASE("variant_codec reports unknown names, other schema versions and bad payloads") {
  auto payload = cairn::encode(bank::deposited{1});
  auto unknown = bank_events::decode("closed", 1, payload.data(), payload.size());
  REQUIRE(failure(unknown, errc::not_found) == "unknown type \"closed\"");
  auto version = bank_events::decode("deposited", 2, payload.data(), payload.size());
  REQUIRE(has(failure(version, errc::corrupt), "schema version 1, stored event has version 2"));
  bytes bad{0x01, 0x80};
  auto broken = bank_events::decode("deposited", 1, bad.data(), bad.size());
  REQUIRE(failure(broken, errc::corrupt) == "cannot decode deposited: truncated varint");
}

TEST_CASE("variant_codec check_names finds duplicate and empty type names") {
  REQUIRE(bank_events::check_names().empty());
  REQUIRE(cairn::variant_codec<std::variant<dup_a, pair, dup_b>>::check_names() ==
          "two types share the name \"dup\"");
  REQUIRE(cairn::variant_codec<std::variant<pair, unnamed>>::check_names() ==
          "a type has an empty name");
}

// ---------------------------------------------------------------- free-function aggregates

TEST_CASE("an aggregate with free decide and evolve functions works through the test kit") {
  using cairn::testkit::given;
  using namespace tally;
  REQUIRE(given<counter>().when(add{3}).then(added{3}));
  auto out = given<counter>(added{2}, added{5}).when(add{1});
  REQUIRE(out.then(added{1}));
  REQUIRE(out.state().total == 8);
  REQUIRE(given<counter>().when(add{0}).then_rejected("positive"));
  REQUIRE(given<counter>().when(reset{}).then_nothing());
  auto cleared_out = given<counter>(added{4}).when(reset{});
  REQUIRE(cleared_out.then(cleared{}));
  REQUIRE(cleared_out.state().total == 0);
}

TEST_CASE("aggregate_traits dispatches to free functions directly") {
  using traits = cairn::aggregate_traits<tally::counter>;
  tally::counter s;
  traits::evolve(s, tally::added{6});
  REQUIRE(s.total == 6);
  auto d = traits::decide(s, tally::add{2});
  REQUIRE_FALSE(d.rejected());
  REQUIRE(d.events().size() == 1);
  REQUIRE(std::get<tally::added>(d.events()[0]).n == 2);
}
