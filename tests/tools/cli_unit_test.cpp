// Unit tests of the cairn CLI's pieces: base64, the JSON-lines event format, time formatting.
#include <catch2/catch.hpp>

#include <random>

#include "base64.hpp"
#include "cli.hpp"
#include "event_json.hpp"

using namespace cairn;
using namespace cairn::cli;

namespace {

bytes of(const std::string& s) { return bytes(s.begin(), s.end()); }

std::string decode_error(const std::string& text) {
  auto r = base64_decode(text);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::invalid_argument);
  return r.error().message();
}

std::string import_error(const std::string& line) {
  auto r = parse_import_line(line, true);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::invalid_argument);
  return r.error().message();
}

envelope sample_envelope() {
  envelope e;
  e.stream = stream_id{"account", "42-a b"};
  e.version = 7;
  e.position = 123;
  e.type = "deposited";
  e.schema_version = 3;
  e.timestamp_ns = 1714557600123456789;
  e.meta = {"corr", "cause", {{"zeta", "1"}, {"alpha", "two"}, {"", "empty key"}}};
  e.payload = {0x00, 0x01, 0xac, 0x02, 0xff};
  return e;
}

} // namespace

TEST_CASE("cli: base64 encodes the RFC 4648 test vectors") {
  CHECK(base64_encode(of("")) == "");
  CHECK(base64_encode(of("f")) == "Zg==");
  CHECK(base64_encode(of("fo")) == "Zm8=");
  CHECK(base64_encode(of("foo")) == "Zm9v");
  CHECK(base64_encode(of("foob")) == "Zm9vYg==");
  CHECK(base64_encode(of("fooba")) == "Zm9vYmE=");
  CHECK(base64_encode(of("foobar")) == "Zm9vYmFy");
  CHECK(base64_encode({0xfb, 0xff, 0xbf}) == "+/+/");
  CHECK(*base64_decode("Zm9vYmE=") == of("fooba"));
  CHECK(*base64_decode("Zm9vYg==") == of("foob"));
  CHECK(*base64_decode("+/+/") == bytes{0xfb, 0xff, 0xbf});
  CHECK(base64_decode("")->empty());
}

TEST_CASE("cli: base64 decodes what it encodes, for every length and byte value") {
  std::mt19937 rng(42);
  for (size_t n = 0; n < 300; ++n) {
    bytes data(n);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    auto text = base64_encode(data);
    CHECK(text.size() == (n + 2) / 3 * 4);
    auto back = base64_decode(text);
    REQUIRE(back);
    CHECK(*back == data);
  }
  bytes all(256);
  for (size_t i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  CHECK(*base64_decode(base64_encode(all)) == all);
}

TEST_CASE("cli: base64 decoding rejects malformed input with a reason") {
  CHECK_THAT(decode_error("Zm9"), Catch::Contains("length 3 is not a multiple of 4"));
  CHECK_THAT(decode_error("Zm9v Zg=="), Catch::Contains("multiple of 4"));
  CHECK_THAT(decode_error("Zm9vYm E"), Catch::Contains("' '") || Catch::Contains("0x20"));
  CHECK_THAT(decode_error("Zm9*"), Catch::Contains("'*' at offset 3"));
  CHECK_THAT(decode_error("Zm9\n"), Catch::Contains("byte 0x0a at offset 3"));
  CHECK_THAT(decode_error(std::string("Zm\0v", 4)), Catch::Contains("byte 0x00 at offset 2"));
  CHECK_THAT(decode_error("Zm\xc3\xa9"), Catch::Contains("byte 0xc3"));
  CHECK_THAT(decode_error("Z=9v"), Catch::Contains("'=' padding at offset 1 is not at the end"));
  CHECK_THAT(decode_error("Zg==Zm9v"), Catch::Contains("not at the end"));
  CHECK_THAT(decode_error("===="), Catch::Contains("not at the end"));
  CHECK_THAT(decode_error("Z==="), Catch::Contains("not at the end"));
  CHECK_THAT(decode_error("Zh=="), Catch::Contains("unused bits"));   // "Zg==" is canonical
  CHECK_THAT(decode_error("Zm9="), Catch::Contains("unused bits"));   // "Zm8=" is canonical
  CHECK_THAT(decode_error("Zm9v-_8="), Catch::Contains("'-' at offset 4")); // base64url is not accepted
}

TEST_CASE("cli: base64 decoding never crashes on random input and accepts only canonical text") {
  std::mt19937 rng(7);
  const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n -_\xff";
  size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text(rng() % 13, ' ');
    for (auto& c : text) c = chars[rng() % chars.size()];
    auto r = base64_decode(text);
    if (r) {
      ++accepted;
      CHECK(base64_encode(*r) == text);
    } else {
      CHECK_FALSE(r.error().message().empty());
    }
  }
  CHECK(accepted > 0);
}

TEST_CASE("cli: an event survives the JSON-lines round trip") {
  auto e = sample_envelope();
  auto line = event_to_json_line(e, json_fidelity::exact);
  REQUIRE(line);
  CHECK(line->find('\n') == std::string::npos);
  CHECK_THAT(*line, Catch::StartsWith(R"({"position":123,"stream":"account-42-a b","version":7,)"
                                      R"("type":"deposited","schema_version":3,)"
                                      R"("timestamp_ns":1714557600123456789,)"
                                      R"("time":"2024-05-01T10:00:00.123456789Z",)"
                                      R"("metadata":{"correlation_id":"corr","causation_id":"cause",)"
                                      R"("entries":{"zeta":"1","alpha":"two","":"empty key"}},)"
                                      R"("payload_base64":"AAGsAv8="})"));

  auto back = parse_import_line(*line, true);
  REQUIRE(back);
  CHECK(back->stream == e.stream);
  CHECK(back->data.type == e.type);
  CHECK(back->data.schema_version == e.schema_version);
  CHECK(back->data.payload == e.payload);
  auto expected_meta = e.meta;
  expected_meta.entries.emplace_back("imported_timestamp_ns", "1714557600123456789");
  CHECK(back->data.meta == expected_meta);

  // Without keep_timestamp the metadata comes back unchanged.
  auto plain = parse_import_line(*line, false);
  REQUIRE(plain);
  CHECK(plain->data.meta == e.meta);

  // An earlier import's original time wins over this store's commit time.
  e.meta.entries.emplace_back("imported_timestamp_ns", "5");
  auto again = parse_import_line(*event_to_json_line(e, json_fidelity::exact), true);
  REQUIRE(again);
  CHECK(again->data.meta == e.meta);
}

TEST_CASE("cli: import lines need only stream, type and payload_base64") {
  auto r = parse_import_line(R"({"stream":"a-1","type":"t","payload_base64":""})", true);
  REQUIRE(r);
  CHECK(r->stream == stream_id{"a", "1"});
  CHECK(r->data.schema_version == 1);
  CHECK(r->data.payload.empty());
  CHECK(r->data.meta == metadata{});
  // position and time are accepted and ignored; a null version is no version.
  auto ignored = parse_import_line(
    R"({"position":"x","version":null,"time":5,"stream":"a-1","type":"t","payload_base64":"AQ=="})",
    true);
  REQUIRE(ignored);
  CHECK(ignored->data.payload == bytes{1});
  CHECK(ignored->version == 0);
}

TEST_CASE("cli: import lines with missing or malformed fields are rejected with a reason") {
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t"})"), Catch::Equals("missing payload_base64"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","payload":{"amount":5}})"),
             Catch::StartsWith("missing payload_base64: a JSON \"payload\" cannot be imported"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","payload":{},"payload_base64":""})"),
             Catch::Contains("both payload and payload_base64"));
  CHECK_THAT(import_error(R"({"type":"t","payload_base64":""})"), Catch::Equals("missing stream"));
  CHECK_THAT(import_error(R"({"stream":"a-1","payload_base64":""})"), Catch::Equals("missing type"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"","payload_base64":""})"),
             Catch::Contains("type must not be empty"));
  CHECK_THAT(import_error(R"({"stream":"nodash","type":"t","payload_base64":""})"),
             Catch::Contains("has no '-'"));
  CHECK_THAT(import_error(R"({"stream":7,"type":"t","payload_base64":""})"),
             Catch::Contains("stream must be a string, not number"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","payload_base64":"Zm9"})"),
             Catch::Contains("payload_base64: invalid base64: length 3"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","payload_base64":[1]})"),
             Catch::Contains("payload_base64 must be a string"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","schema_version":-1,"payload_base64":""})"),
             Catch::Contains("schema_version must be a non-negative integer"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","schema_version":1.5,"payload_base64":""})"),
             Catch::Contains("schema_version must be a non-negative integer"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","schema_version":4294967296,"payload_base64":""})"),
             Catch::Contains("does not fit in 32 bits"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","timestamp_ns":"now","payload_base64":""})"),
             Catch::Contains("timestamp_ns must be an integer"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","metadata":[],"payload_base64":""})"),
             Catch::Contains("metadata must be an object"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","metadata":{"user":"x"},"payload_base64":""})"),
             Catch::Contains("unknown key \"metadata.user\""));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","metadata":{"entries":{"n":1}},"payload_base64":""})"),
             Catch::Contains("metadata.entries.\"n\" must be a string, not number"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","metadata":{"correlation_id":null},"payload_base64":""})"),
             Catch::Contains("metadata.correlation_id must be a string"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","payload_base64":"","extra":1})"),
             Catch::Contains("unknown key \"extra\""));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","metadata":{"entries":{"k":"1","k":"2"}},"payload_base64":""})"),
             Catch::Contains("key \"k\" appears more than once"));
  CHECK_THAT(import_error(R"({"stream":"a-1","type":"t","type":"u","payload_base64":""})"),
             Catch::Contains("key \"type\" appears more than once"));
  CHECK_THAT(import_error(R"([1,2])"), Catch::Contains("expected a JSON object, got array"));
  CHECK_THAT(import_error(R"({"stream":"a-1",)"), Catch::StartsWith("not valid JSON: "));
  CHECK_THAT(import_error("{\"stream\":\"a-1\",\"type\":\"\xff\",\"payload_base64\":\"\"}"),
             Catch::StartsWith("not valid JSON: "));
}

TEST_CASE("cli: import line parsing never crashes on mangled lines") {
  auto line = *event_to_json_line(sample_envelope(), json_fidelity::exact);
  std::mt19937 rng(11);
  const std::string junk = "{}[]\",:0-9eE.\\ntrufalse\x00\xff";
  size_t accepted = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string mangled = line;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !mangled.empty(); ++k) {
      size_t at = rng() % mangled.size();
      switch (rng() % 3) {
        case 0: mangled[at] = junk[rng() % junk.size()]; break;
        case 1: mangled.erase(at, 1 + rng() % 8); break;
        default: mangled.insert(at, 1, junk[rng() % junk.size()]); break;
      }
    }
    auto r = parse_import_line(mangled, true);
    if (r)
      ++accepted;
    else
      CHECK_FALSE(r.error().message().empty());
  }
  CHECK(accepted < 5000);
}

TEST_CASE("cli: export refuses what JSON cannot hold faithfully, display replaces it") {
  auto e = sample_envelope();
  e.meta.entries = {{"k", "1"}, {"k", "2"}};
  auto dup = event_to_json_line(e, json_fidelity::exact);
  REQUIRE_FALSE(dup);
  CHECK_THAT(dup.error().message(),
             Catch::Contains("position 123: metadata key \"k\" appears more than once"));
  auto shown = event_to_json_line(e, json_fidelity::lossy);
  REQUIRE(shown);
  CHECK_THAT(*shown, Catch::Contains(R"("entries":{"k":"1"})"));

  e.meta.entries = {{"bytes", std::string("\xff\xfe", 2)}};
  auto binary = event_to_json_line(e, json_fidelity::exact);
  REQUIRE_FALSE(binary);
  CHECK_THAT(binary.error().message(), Catch::Contains("position 123:") && Catch::Contains("UTF-8"));
  auto replaced = event_to_json_line(e, json_fidelity::lossy);
  REQUIRE(replaced);
  CHECK_THAT(*replaced, Catch::Contains("\"bytes\":\"\xef\xbf\xbd\xef\xbf\xbd\""));
}

TEST_CASE("cli: times are printed as ISO-8601 UTC with nanoseconds") {
  CHECK(format_time(0) == "1970-01-01T00:00:00.000000000Z");
  CHECK(format_time(1714557600123456789) == "2024-05-01T10:00:00.123456789Z");
  CHECK(format_time(-1) == "1969-12-31T23:59:59.999999999Z");
  CHECK(format_time(951782400000000001) == "2000-02-29T00:00:00.000000001Z");
}

TEST_CASE("cli: times are read back from ISO-8601 UTC or nanoseconds") {
  for (int64_t ns : {int64_t{0}, int64_t{1714557600123456789}, int64_t{-1},
                     int64_t{951782400000000001}})
    CHECK(parse_time(format_time(ns), "--at") == ns);
  CHECK(parse_time("2024-05-01T10:00:00Z", "--at") == 1714557600000000000);
  CHECK(parse_time("2024-05-01T10:00:00.5Z", "--at") == 1714557600500000000);
  CHECK(parse_time("1714557600123456789", "--at") == 1714557600123456789);
  CHECK(parse_time("-5", "--at") == -5);
  for (const char* bad : {"", "-", "yesterday", "2024-05-01", "2024-05-01T10:00:00",
                          "2024-05-01T10:00:00+01:00", "2024-05-01 10:00:00Z",
                          "2024-02-30T00:00:00Z", "2024-05-01T24:00:00Z",
                          "2024-05-01T10:00:00.Z", "2024-05-01T10:00:00.1234567890Z",
                          "2024-05-01T10:00:00Zx"})
    CHECK_THROWS_AS(parse_time(bad, "--at"), usage_error);
  CHECK_THROWS_AS(parse_time("99999999999999999999", "--at"), usage_error);
}

TEST_CASE("cli: the text rendering shows every part of an event and escapes control characters") {
  auto e = sample_envelope();
  e.meta.entries = {{"note", "two\nlines\x1b"}};
  auto text = format_event_text(e);
  CHECK(text == "position 123  account-42-a b  version 7  2024-05-01T10:00:00.123456789Z\n"
                "  type: deposited (schema 3)\n"
                "  correlation_id: corr\n"
                "  causation_id: cause\n"
                "  meta note: two\\nlines\\x1b\n"
                "  payload (5 bytes): 00 01 ac 02 ff\n");
  e.payload.assign(40, 0xab);
  CHECK_THAT(format_event_text(e), Catch::EndsWith("  payload (40 bytes):\n    " +
                                                   to_hex(bytes(32, 0xab)) + "\n    " +
                                                   to_hex(bytes(8, 0xab)) + "\n"));
  CHECK(parse_count("0", "--from") == 0);
  CHECK(parse_count("18446744073709551615", "--from") == UINT64_MAX);
  CHECK_THROWS_AS(parse_count("18446744073709551616", "--from"), usage_error);
  CHECK_THROWS_AS(parse_count("-1", "--from"), usage_error);
  CHECK_THROWS_AS(parse_count("", "--from"), usage_error);
  CHECK_THROWS_AS(parse_count("1x", "--from"), usage_error);
}
