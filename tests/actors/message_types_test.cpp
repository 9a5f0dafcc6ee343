// Every type that crosses actors survives CAF's binary serializer inside a
// caf::message: an unregistered type would fail here, not silently at run time.
#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>

#include <cairn/node_config.hpp>

#include "message_types.hpp"

using namespace cairn;

namespace {

template <class T>
T round_trip(caf::actor_system& sys, const T& value) {
  auto msg = caf::make_message(value);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto err = sink(msg);
  INFO("serializing: " << sys.render(err));
  REQUIRE(!err);
  caf::message back;
  caf::binary_deserializer source{sys, buf};
  err = source(back);
  INFO("deserializing: " << sys.render(err));
  REQUIRE(!err);
  REQUIRE(back.match_elements<T>());
  return back.get_as<T>(0);
}

envelope sample_envelope() {
  envelope e;
  e.stream = {"account", "acc-7"};
  e.version = 3;
  e.position = 99;
  e.type = "deposited";
  e.schema_version = 2;
  e.timestamp_ns = 1'700'000'000'123'456'789;
  e.meta = {"corr-1", "cause-2", {{"user", "ann"}, {"tenant", "t1"}}};
  e.payload = {0x01, 0x00, 0xff, 0x80};
  return e;
}

} // namespace

TEST_CASE("every registered message type survives CAF's binary serializer") {
  node_config cfg;
  caf::actor_system sys{cfg};

  auto env = sample_envelope();
  REQUIRE(round_trip(sys, env) == env);
  REQUIRE(round_trip(sys, env.stream) == env.stream);
  REQUIRE(round_trip(sys, env.meta) == env.meta);
  REQUIRE(round_trip(sys, std::vector<envelope>{env, env}) == std::vector<envelope>{env, env});

  event_data data{"opened", 1, env.meta, {1, 2, 3}};
  REQUIRE(round_trip(sys, data) == data);

  append_request req{env.stream, 41, {data, data}};
  auto req2 = round_trip(sys, req);
  REQUIRE(req2.stream == req.stream);
  REQUIRE(req2.expected_version == 41);
  REQUIRE(req2.events == req.events);

  append_result res{1, 2, 3, 4};
  REQUIRE(round_trip(sys, res) == res);

  command_message cmd{env.stream, "deposit", 1, env.meta, {0x01, 0x0a}, 5};
  auto cmd2 = round_trip(sys, cmd);
  REQUIRE(cmd2.target == cmd.target);
  REQUIRE(cmd2.type == cmd.type);
  REQUIRE(cmd2.schema_version == cmd.schema_version);
  REQUIRE(cmd2.meta == cmd.meta);
  REQUIRE(cmd2.payload == cmd.payload);
  REQUIRE(cmd2.expected_version == 5);

  command_reply reply{7, 1234, 2};
  auto reply2 = round_trip(sys, reply);
  REQUIRE(reply2.version == 7);
  REQUIRE(reply2.position == 1234);
  REQUIRE(reply2.events == 2);
}

TEST_CASE("cairn errors cross CAF as their own category and come back intact") {
  node_config cfg;
  caf::actor_system sys{cfg};
  for (auto code : {errc::rejected, errc::conflict, errc::not_found, errc::timeout,
                    errc::unavailable, errc::corrupt, errc::invalid_argument}) {
    error e{code, "details for " + std::string{to_string(code)}};
    auto ce = to_caf(e);
    REQUIRE(ce.category() == error_category);
    REQUIRE(from_caf(ce) == e);
    // The renderer registered with the config names the code and the message.
    REQUIRE(sys.render(ce).find(std::string{to_string(code)}) != std::string::npos);
    // And the error survives serialization (as it would between nodes).
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    REQUIRE(!sink(ce));
    caf::error back;
    caf::binary_deserializer source{sys, buf};
    REQUIRE(!source(back));
    REQUIRE(from_caf(back) == e);
  }
}

TEST_CASE("CAF's own request errors map to timeout and unavailable") {
  REQUIRE(is_timeout(from_caf(caf::make_error(caf::sec::request_timeout))));
  REQUIRE(is_unavailable(from_caf(caf::make_error(caf::sec::request_receiver_down))));
}
