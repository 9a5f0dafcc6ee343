// libFuzzer target for the binary codec. Decodes arbitrary bytes as a rich described
// struct and, through variant_codec, as a bank event whose type name (and schema
// version) come from the first byte. Whatever decodes must survive
// decode(encode(x)) and the JSON round trip unchanged; any failure must be corrupt
// (or not_found for an unknown name). Aborts on any violation.
//
// Build and run from the repository root (clang with libFuzzer, e.g. Debian's clang +
// libclang-rt-14-dev):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined \
//     -fno-sanitize-recover=undefined -Iframework/include -Isamples \
//     tests/fuzz/codec_fuzz.cpp -o codec_fuzz
//   mkdir -p codec_corpus && ./codec_fuzz -max_total_time=60 -max_len=4096 codec_corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <cairn/codec.hpp>
#include <cairn/json_codec.hpp>
#include <cairn/variant_codec.hpp>

#include "bank/account.hpp"

namespace fuzz {

enum class kind : uint8_t { a, b, c };

struct empty {};
struct leaf {
  uint8_t tag = 0;
  int8_t small = 0;
  std::string name;
  std::optional<int32_t> weight;
};
struct record {
  int64_t id = 0;
  uint64_t big = 0;
  uint16_t port = 0;
  bool active = false;
  double score = 0;
  float ratio = 0;
  kind k = kind::a;
  std::string title;
  std::vector<std::string> tags;
  std::vector<bool> flags;
  std::vector<std::vector<int16_t>> grid;
  std::vector<leaf> leaves;
  std::optional<leaf> primary;
  std::optional<std::string> note;
  std::map<std::string, std::vector<int32_t>> index;
  std::map<std::string, leaf> by_name;
  empty none;
};

inline auto describe(cairn::type<empty>) { return cairn::schema<empty>("empty", 1); }
inline auto describe(cairn::type<leaf>) {
  using cairn::field;
  return cairn::schema<leaf>("leaf", 1, field("tag", &leaf::tag), field("small", &leaf::small),
                             field("name", &leaf::name), field("weight", &leaf::weight));
}
inline auto describe(cairn::type<record>) {
  using cairn::field;
  return cairn::schema<record>(
    "record", 1, field("id", &record::id), field("big", &record::big),
    field("port", &record::port), field("active", &record::active),
    field("score", &record::score), field("ratio", &record::ratio), field("k", &record::k),
    field("title", &record::title), field("tags", &record::tags),
    field("flags", &record::flags), field("grid", &record::grid),
    field("leaves", &record::leaves), field("primary", &record::primary),
    field("note", &record::note), field("index", &record::index),
    field("by_name", &record::by_name), field("none", &record::none));
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "codec_fuzz: %s\n", what);
  std::abort();
}

std::string render(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); // bad UTF-8 allowed
}

/// x came out of decode: re-encoding and decoding again must give the same bytes, and
/// a trip through the JSON value must too. The one tolerated JSON change is a NaN's
/// payload (a float's signaling NaN is quieted on its way through double); JSON renders
/// every NaN as null, so then the rendered JSON must match instead.
template <class T>
void check_round_trip(const T& x) {
  auto once = cairn::encode(x);
  auto back = cairn::decode<T>(once);
  if (!back) fail("a decoded value's encoding does not decode");
  if (cairn::encode(*back) != once) fail("decode(encode(x)) differs from x");
  auto j = cairn::to_json(x);
  auto from_json = cairn::from_json<T>(j);
  if (!from_json) fail("a decoded value fails from_json(to_json(x))");
  if (cairn::encode(*from_json) != once && render(cairn::to_json(*from_json)) != render(j))
    fail("the JSON round trip changes a decoded value");
}

} // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. The whole input as a record.
  if (auto r = cairn::decode<fuzz::record>(data, size)) fuzz::check_round_trip(*r);
  else if (r.error().code() != cairn::errc::corrupt) fuzz::fail("record: not corrupt");

  // 2. The first byte picks an event type name and schema version; the rest is the payload.
  if (size == 0) return 0;
  using codec = cairn::variant_codec<bank::account::event_type>;
  static constexpr std::string_view names[] = {"opened", "deposited", "withdrawn", "closed"};
  std::string_view name = names[data[0] % 4];
  uint32_t version = (data[0] & 0x80) ? 2 : 1;
  auto e = codec::decode(name, version, data + 1, size - 1);
  if (!e) {
    auto want = codec::knows(name) ? cairn::errc::corrupt : cairn::errc::not_found;
    if (e.error().code() != want) fuzz::fail("event: unexpected error code");
    return 0;
  }
  if (!codec::knows(name) || version != 1) fuzz::fail("event: decoded with a bad name/version");
  auto encoded = codec::encode(*e);
  if (encoded.type != name || encoded.schema_version != 1) fuzz::fail("event: name changed");
  auto again = codec::decode(encoded);
  if (!again || codec::encode(*again).payload != encoded.payload)
    fuzz::fail("event: decode(encode(x)) differs from x");
  std::visit([](const auto& x) { fuzz::check_round_trip(x); }, *e);
  return 0;
}
