#include <gtest/gtest.h>

#include "core/bytes.hpp"
#include "core/duration.hpp"

using namespace mw;

TEST(ParseSize, BinarySuffixesLikeDockerRun) {
  EXPECT_EQ(parse_size("4G", "x").value(), 4ULL << 30);
  EXPECT_EQ(parse_size("4GiB", "x").value(), 4ULL << 30);
  EXPECT_EQ(parse_size("4gb", "x").value(), 4ULL << 30);
  EXPECT_EQ(parse_size("512M", "x").value(), 512ULL << 20);
  EXPECT_EQ(parse_size("1.5G", "x").value(), 3ULL << 29);
  EXPECT_EQ(parse_size("1048576", "x").value(), 1048576ULL);
  EXPECT_EQ(parse_size("64k", "x").value(), 65536ULL);
  EXPECT_EQ(parse_size("2T", "x").value(), 2ULL << 40);
}

TEST(ParseSize, BadInputNamesItsSource) {
  for (const char* bad : {"", "G", "-1G", "4X", "4 G", "1.2.3G", "99999999999999999999T", "four"}) {
    const auto r = parse_size(bad, "--reserve");
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().source, "--reserve") << bad;
    EXPECT_NE(r.error().line().find("invalid size"), std::string::npos) << r.error().line();
  }
}

TEST(FormatBytes, ThreeSignificantDigits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.00 KiB");
  EXPECT_EQ(format_bytes(638976), "624 KiB");
  EXPECT_EQ(format_bytes(27004866560ULL), "25.2 GiB");
  EXPECT_EQ(format_bytes(26U << 20), "26.0 MiB");
  EXPECT_EQ(format_bytes(1536ULL << 20), "1.50 GiB");
}

TEST(ParseNumbers, WholeStringOnly) {
  EXPECT_EQ(parse_u64("18446744073709551615"), 18446744073709551615ULL);
  EXPECT_FALSE(parse_u64("18446744073709551616"));
  EXPECT_FALSE(parse_u64("12 "));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_FALSE(parse_u64(""));
  EXPECT_EQ(parse_i64("-1"), -1);
  EXPECT_EQ(parse_double("12.50"), 12.5);
  EXPECT_FALSE(parse_double("nan"));
  EXPECT_FALSE(parse_double("1e999"));
}

TEST(ParseDuration, UnitsAndErrors) {
  EXPECT_EQ(parse_duration("2s", "t").value().count(), 2000);
  EXPECT_EQ(parse_duration("2", "t").value().count(), 2000);
  EXPECT_EQ(parse_duration("500ms", "t").value().count(), 500);
  EXPECT_EQ(parse_duration("1.5m", "t").value().count(), 90000);
  EXPECT_EQ(parse_duration("1h", "t").value().count(), 3600000);
  const auto bad = parse_duration("2 weeks", "--timeout");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().line(), "--timeout: invalid duration '2 weeks' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  EXPECT_FALSE(parse_duration("", "t"));
  EXPECT_FALSE(parse_duration("s", "t"));
}
