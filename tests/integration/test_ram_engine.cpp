// `memwarden test ram` on the private engine: memwarden imports its own helper as an image, runs each size
// in a container limited to it, and leaves nothing behind.
#include <gtest/gtest.h>

#include <fstream>

#include "engine_support.hpp"

using namespace mw;
using namespace mw::it;

namespace {

std::uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") {
      return kb * 1024;
    }
  }
  return 0;
}

std::size_t test_containers() {
  const auto r = docker({"ps", "-aq", "--filter", "label=memwarden.test=ram"});
  return static_cast<std::size_t>(std::count(r.out.begin(), r.out.end(), '\n'));
}

}  // namespace

TEST(RamTestEngine, EachSizeIsReachedInsideItsLimitAndNothingIsLeft) {
  const auto r = memwarden({"test", "ram", "64M", "160M", "--reserve", "1G", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  EXPECT_EQ(j["image"].get<std::string>().rfind("memwarden/alloc:", 0), 0U) << "memwarden's own image";
  ASSERT_EQ(j["runs"].size(), 2U);
  EXPECT_EQ(j["runs"][0]["reached_bytes"].get<std::uint64_t>(), 64 * k_mib);
  EXPECT_EQ(j["runs"][1]["reached_bytes"].get<std::uint64_t>(), 160 * k_mib);
  for (const auto& run : j["runs"]) {
    EXPECT_EQ(run["stop"], "reached");
    EXPECT_GT(run["min_available_bytes"].get<std::uint64_t>(), 1ULL << 30);
    EXPECT_FALSE(run["oom_killed"].get<bool>());
  }
  EXPECT_EQ(test_containers(), 0U);
}

TEST(RamTestEngine, TheReserveStopsItBeforeTheChunkThatWouldBreakIt) {
  const auto available = mem_available();
  ASSERT_GT(available, 512 * k_mib);
  // A reserve just under what is available now: the first 256 MiB chunk would break it.
  const auto reserve = std::to_string(available - 32 * k_mib);
  const auto r = memwarden({"test", "ram", "256M", "--reserve", reserve, "--json"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["runs"].size(), 1U);
  EXPECT_EQ(j["runs"][0]["stop"], "reserve");
  EXPECT_EQ(j["runs"][0]["reached_bytes"], 0);
  EXPECT_EQ(test_containers(), 0U);
}

TEST(RamTestEngine, ASizeLargerThanTheHostIsRefusedBeforeAnything) {
  const auto r = memwarden({"test", "ram", "1T"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("is more than this host's"), std::string::npos) << r.out;
  EXPECT_EQ(test_containers(), 0U);
}
