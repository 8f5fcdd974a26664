// One duration syntax everywhere: what the configuration file reads (once its own wrapper, which added the
// days that parse_duration lacked) and what parse_duration reads for --since, --lookback and ?since= are
// the same number of milliseconds, and the same texts are refused.
#include <gtest/gtest.h>

#include <string>

#include "cli/config.hpp"
#include "core/duration.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;

namespace {

// detect.bloat_hold takes any duration, 0 included.
std::optional<Duration> from_config(const std::string& text) {
  const auto parsed = parse_config("detect:\n  bloat_hold: \"" + text + "\"\n", "test.yaml");
  if (!parsed) {
    return std::nullopt;
  }
  return parsed->thresholds.bloat_hold;
}

}  // namespace

TEST(DurationUnits, TheConfigurationAndTheCommandLineAgree) {
  for (const char* text : {"0",
                           "0s",
                           "1",
                           "2.5",
                           "500ms",
                           "0.4ms",
                           "0.5ms",
                           "1.5ms",
                           "2s",
                           "1.25s",
                           "5m",
                           "5min",
                           "1.5m",
                           "1h",
                           "0.1h",
                           "1d",
                           "30d",
                           "1.5d",
                           "0.25d",
                           "0.0000001d",
                           "0.3333333333d",
                           "11574d",
                           "11574.074d",
                           "11575d",
                           "1000000000000ms",
                           "1000000000001ms",
                           "010d",
                           ".5d"}) {
    const auto config = from_config(text);
    const auto command_line = parse_duration(text, "--since");
    ASSERT_EQ(config.has_value(), command_line.has_value()) << text;
    if (config) {
      EXPECT_EQ(config->count(), command_line->count()) << text;
    }
  }
}

// Not "1e3d": the configuration's own wrapper reads the days with parse_double, which takes an exponent
// (1000 days); parse_duration refuses exponents in every unit. The wrapper goes once config.cpp calls
// parse_duration itself.
TEST(DurationUnits, BothRefuseTheSameMalformedTexts) {
  for (const char* text : {"", "d", "-1d", "-1", "nan", "nand", "inf", "infd", "1x", "1e3s", "1 d", "1dd", "1D"}) {
    EXPECT_FALSE(from_config(text)) << text;
    EXPECT_FALSE(parse_duration(text, "--since")) << text;
  }
}
