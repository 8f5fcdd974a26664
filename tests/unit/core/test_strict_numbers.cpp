// The strict parsers behind every numeric command-line option (core/text): decimal only, whole string,
// in range, finite. Issue 11: "-1" once wrapped to "unlimited", "010" was read as 8, "nan" was accepted.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "core/text.hpp"

using namespace mw;

TEST(ParseUnsigned, DecimalWithinTheRange) {
  EXPECT_EQ(parse_unsigned("0", 0, 1000, "--budget").value(), 0U);
  EXPECT_EQ(parse_unsigned("3", 0, 1000, "--budget").value(), 3U);
  EXPECT_EQ(parse_unsigned("1000", 0, 1000, "--budget").value(), 1000U);
  EXPECT_EQ(parse_unsigned("1", 1, 1, "x").value(), 1U);
  constexpr auto k_max = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(parse_unsigned("18446744073709551615", 0, k_max, "x").value(), k_max);
}

TEST(ParseUnsigned, LeadingZerosAreDecimalNeverOctal) {
  EXPECT_EQ(parse_unsigned("010", 0, 1000, "--budget").value(), 10U);
  EXPECT_EQ(parse_unsigned("0008", 0, 1000, "--budget").value(), 8U);  // not an octal error either
  EXPECT_EQ(parse_unsigned("00", 0, 1000, "--budget").value(), 0U);
}

TEST(ParseUnsigned, RefusesWithOneLineNamingTheOption) {
  const auto r = parse_unsigned("-1", 0, 1000, "--budget");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().line(), "--budget: '-1' is not a whole number from 0 to 1000");
  EXPECT_EQ(r.error().source, "--budget");
}

TEST(ParseUnsigned, RefusesSignsBasesSpacesAndFractions) {
  for (const char* bad : {"",   "-1", "-0", "+1",    "0x10",  "0X10", "0b1", "0o7",  "1e3", "1.0", "1.",
                          ".5", " 1", "1 ", "1_000", "1,000", "nan",  "inf", "-inf", "ten", "١"}) {
    const auto r = parse_unsigned(bad, 0, 1000, "--limit");
    EXPECT_FALSE(r) << "'" << bad << "' was accepted";
    if (!r) {
      EXPECT_EQ(r.error().line(), fmt::format("--limit: '{}' is not a whole number from 0 to 1000", bad));
    }
  }
}

TEST(ParseUnsigned, RefusesOutOfRangeAndOverflow) {
  EXPECT_FALSE(parse_unsigned("1001", 0, 1000, "x"));
  EXPECT_FALSE(parse_unsigned("0", 1, 256, "x"));
  EXPECT_FALSE(parse_unsigned("257", 1, 256, "x"));
  constexpr auto k_max = std::numeric_limits<std::uint64_t>::max();
  EXPECT_FALSE(parse_unsigned("18446744073709551616", 0, k_max, "x"));  // 2^64
  EXPECT_FALSE(parse_unsigned("99999999999999999999", 0, k_max, "x"));
  const auto r = parse_unsigned("99999999999999999999", 0, 1000, "--budget");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().line(), "--budget: '99999999999999999999' is not a whole number from 0 to 1000");
  EXPECT_FALSE(parse_unsigned(std::string(400, '9'), 0, k_max, "x"));
}

TEST(ParseFiniteDouble, DecimalWithinTheRange) {
  EXPECT_DOUBLE_EQ(parse_finite_double("256", 0.1, 1048576, "--growth-min").value(), 256.0);
  EXPECT_DOUBLE_EQ(parse_finite_double("0.5", 0.1, 1048576, "x").value(), 0.5);
  EXPECT_DOUBLE_EQ(parse_finite_double(".5", 0.1, 1048576, "x").value(), 0.5);
  EXPECT_DOUBLE_EQ(parse_finite_double("0.1", 0.1, 1048576, "x").value(), 0.1);
  EXPECT_DOUBLE_EQ(parse_finite_double("1048576", 0.1, 1048576, "x").value(), 1048576.0);
  EXPECT_DOUBLE_EQ(parse_finite_double("010", 0.1, 1048576, "x").value(), 10.0);
  EXPECT_DOUBLE_EQ(parse_finite_double("0010.50", 0.1, 1048576, "x").value(), 10.5);
}

TEST(ParseFiniteDouble, RefusesNanInfSignsExponentsAndHex) {
  for (const char* bad : {"",    ".",   "nan",  "NaN",   "-nan",  "inf", "infinity", "-inf", "-1",     "-0.5", "+1",
                          "1e3", "1E3", "0x10", "0x1p3", "1.2.3", " 1",  "1 ",       "1,5",  "256MiB", "ten"}) {
    const auto r = parse_finite_double(bad, 0.1, 1048576, "--growth-min");
    EXPECT_FALSE(r) << "'" << bad << "' was accepted";
    if (!r) {
      EXPECT_EQ(r.error().line(), fmt::format("--growth-min: '{}' is not a number from 0.1 to 1048576", bad));
    }
  }
}

TEST(ParseFiniteDouble, RefusesOutOfRangeAndOverflow) {
  EXPECT_FALSE(parse_finite_double("0", 0.1, 1048576, "x"));
  EXPECT_FALSE(parse_finite_double("0.09", 0.1, 1048576, "x"));
  EXPECT_FALSE(parse_finite_double("1048576.5", 0.1, 1048576, "x"));
  EXPECT_FALSE(parse_finite_double("1" + std::string(400, '0'), 0, std::numeric_limits<double>::max(), "x"));
  EXPECT_FALSE(parse_finite_double("0." + std::string(400, '0') + "1", 0.1, 1, "x"));
}
