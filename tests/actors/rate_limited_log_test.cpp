// rate_limited_log: a warning repeated word for word goes out once per interval, with
// a count of the copies held back.
#include <catch2/catch.hpp>

#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "rate_limited_log.hpp"

using namespace cairn;
using namespace std::chrono_literals;

TEST_CASE("identical warnings are written once per interval, with the number held back") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("rate-limit-test", sink);
  logger.set_pattern("%v");
  rate_limited_log limited(10s, 2);
  auto t0 = rate_limited_log::clock::time_point{} + 1h;

  REQUIRE(limited.log(logger, spdlog::level::warn, "disk full", t0));
  for (int i = 1; i <= 1600; ++i)
    REQUIRE_FALSE(limited.log(logger, spdlog::level::warn, "disk full", t0 + i * 1ms));
  REQUIRE(limited.log(logger, spdlog::level::warn, "another problem", t0 + 2s));
  REQUIRE(limited.log(logger, spdlog::level::warn, "disk full", t0 + 11s));
  REQUIRE(limited.suppressed() == 1600);
  REQUIRE(out.str() == "disk full\nanother problem\n"
                       "disk full (repeated 1600 more times in the last 10 s)\n");

  // It remembers at most two messages: a third one makes it forget the oldest.
  REQUIRE(limited.log(logger, spdlog::level::warn, "third", t0 + 12s));
  REQUIRE(limited.log(logger, spdlog::level::warn, "another problem", t0 + 12s));
  // Below the logger's level nothing is written or counted.
  logger.set_level(spdlog::level::err);
  REQUIRE_FALSE(limited.log(logger, spdlog::level::warn, "quiet", t0 + 13s));
  REQUIRE(limited.suppressed() == 1600);
}
