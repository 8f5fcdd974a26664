// Durations typed by people (core/duration) and the strictness of sizes (core/bytes): the same units on the
// command line, in the configuration file and in serve's ?since=, and no malformed value let through.
#include <gtest/gtest.h>

#include <string>

#include "core/bytes.hpp"
#include "core/duration.hpp"

using namespace mw;
using namespace std::chrono_literals;

namespace {

std::chrono::milliseconds ok(std::string_view text) {
  auto d = parse_duration(text, "--since");
  EXPECT_TRUE(d) << text << ": " << (d ? "" : d.error().line());
  return d ? *d : std::chrono::milliseconds(-1);
}

}  // namespace

TEST(ParseDurationUnits, EveryUnit) {
  EXPECT_EQ(ok("250ms"), 250ms);
  EXPECT_EQ(ok("2s"), 2s);
  EXPECT_EQ(ok("2"), 2s);  // a bare number is seconds
  EXPECT_EQ(ok("5m"), 5min);
  EXPECT_EQ(ok("5min"), 5min);
  EXPECT_EQ(ok("1h"), 1h);
  EXPECT_EQ(ok("0s"), 0ms);
  EXPECT_EQ(ok("010s"), 10s);  // decimal
}

TEST(ParseDurationUnits, DaysAsTheConfigurationFileReadsThem) {
  EXPECT_EQ(ok("1d"), 24h);
  EXPECT_EQ(ok("30d"), 30 * 24h);
  EXPECT_EQ(ok("1.5d"), 36h);
  EXPECT_EQ(ok("0.25d"), 6h);
  EXPECT_EQ(ok("11574d"), 11574 * 24h);  // the longest whole number of days under 1e12 ms
  const auto too_long = parse_duration("11575d", "--since");
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().line(), "--since: duration '11575d' is too long");
}

TEST(ParseDurationUnits, FractionsRoundToTheMillisecond) {
  EXPECT_EQ(ok("1.5m"), 90s);
  EXPECT_EQ(ok("0.0004s"), 0ms);
  EXPECT_EQ(ok("0.0005s"), 1ms);
  EXPECT_EQ(ok(".5s"), 500ms);
}

TEST(ParseDurationErrors, MalformedIsRefusedNamingTheSource) {
  for (const char* bad : {"",      "d",      "s",   "ms",  ".",    "..",  "1x",  "1 d",     " 1d",  "1d ", "-1",
                          "-1s",   "-1d",    "+1s", "nan", "nans", "NaN", "inf", "infs",    "-inf", "1e3", "1e3s",
                          "0x10s", "1.2.3s", "1dd", "1sd", "1D",   "1H",  "1w",  "2 weeks", "1h30m"}) {
    const auto r = parse_duration(bad, "--lookback");
    EXPECT_FALSE(r) << "'" << bad << "' was accepted";
    if (!r) {
      EXPECT_EQ(r.error().source, "--lookback") << bad;
      EXPECT_EQ(r.error().line(),
                std::string("--lookback: invalid duration '") + bad + "' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
    }
  }
}

TEST(ParseDurationErrors, OverflowIsTooLong) {
  for (const std::string& bad :
       {std::string("1000000000001ms"), std::string("1000000001s"), std::string("99999999h"),
        std::string("99999999999999999999d"), std::string(400, '9') + "s", "1" + std::string(400, '0') + ".5ms"}) {
    const auto r = parse_duration(bad, "t");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().line(), "t: duration '" + bad + "' is too long");
  }
  EXPECT_EQ(ok("1000000000000ms"), std::chrono::milliseconds(1'000'000'000'000));  // 1e12 ms: the longest
}

TEST(ParseSizeStrict, RefusesSignsNanInfAndExponents) {
  for (const char* bad :
       {"-1", "-1G", "+1G", "nan", "nanG", "NaN", "inf", "infG", "-inf", "1e3", "1e3G", "0x10G", "."}) {
    const auto r = parse_size(bad, "--reserve");
    EXPECT_FALSE(r) << "'" << bad << "' was accepted";
    if (!r) {
      EXPECT_EQ(r.error().source, "--reserve");
      EXPECT_NE(r.error().message.find("invalid size '"), std::string::npos) << r.error().line();
    }
  }
  EXPECT_EQ(parse_size("010G", "x").value(), 10ULL << 30);  // decimal
}

TEST(ParseSizeStrict, OverflowIsTooLargeNeverAWrappedNumber) {
  // 2^63 bytes and above: llround's long long would overflow (it once did from 8 EiB to 16 EiB).
  for (const std::string& bad :
       {std::string("9223372036854775808"), std::string("8388608T"), std::string("10000000T"), std::string("16000000T"),
        std::string("99999999999999999999"), std::string("99999999999999999999T"), std::string(400, '9') + "G"}) {
    const auto r = parse_size(bad, "--ram");
    ASSERT_FALSE(r) << bad << " = " << (r ? std::to_string(*r) : "");
    EXPECT_EQ(r.error().line(), "--ram: invalid size '" + bad + "': too large (use e.g. 4G, 512M, 1.5GiB)");
  }
  EXPECT_EQ(parse_size("8388607T", "x").value(), 8388607ULL << 40);  // just under 8 EiB
}
