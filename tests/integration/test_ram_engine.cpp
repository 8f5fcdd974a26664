// `memwarden test ram` on the private engine: memwarden imports its own helper as an image, runs each size
// in a container limited to it, and leaves nothing behind.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/ram_test.hpp"
#include "engine_support.hpp"

using namespace mw;
using namespace mw::it;

namespace {

std::uint64_t meminfo(const std::string& wanted) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == wanted) {
      return kb * 1024;
    }
  }
  return 0;
}
std::uint64_t mem_available() {
  return meminfo("MemAvailable:");
}
std::uint64_t mem_total() {
  return meminfo("MemTotal:");
}

std::size_t test_containers() {
  const auto r = docker({"ps", "-aq", "--filter", "label=memwarden.test=ram"});
  return static_cast<std::size_t>(std::count(r.out.begin(), r.out.end(), '\n'));
}

}  // namespace

TEST(RamTestEngine, OneGigabyteIsReachedInsideItsLimitAndNothingIsLeft) {
  const auto r = memwarden({"test", "ram", "1G", "--reserve", "1G", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  EXPECT_EQ(j["image"].get<std::string>().rfind("memwarden/alloc:", 0), 0U) << "memwarden's own image";
  ASSERT_EQ(j["runs"].size(), 1U);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["reached"], true);
  EXPECT_EQ(run["reached_bytes"].get<std::uint64_t>(), 1024 * k_mib);
  EXPECT_EQ(run["container_limit_bytes"].get<std::uint64_t>(), engine::ram_test_limit(1024 * k_mib));
  EXPECT_EQ(run["stop"], "reached");
  EXPECT_GT(run["min_available_bytes"].get<std::uint64_t>(), 1ULL << 30);
  EXPECT_LT(run["min_available_bytes"].get<std::uint64_t>(), mem_available() + 512 * k_mib)
      << "read with the gigabyte held";
  EXPECT_FALSE(run["oom_killed"].get<bool>());
  EXPECT_EQ(test_containers(), 0U);
}

TEST(RamTestEngine, AFloorAboveWhatIsFreeStopsItEarlyAndFreesTheMemory) {
  const auto before = mem_available();
  ASSERT_GT(before, 3ULL << 30);
  // 384 MiB above the reserve: the first 256 MiB chunk fits, and a later one would break it. The size is the
  // most the host may be asked for with that reserve (MemTotal less it), so it is not refused first. (Where
  // MemAvailable follows allocations late, as in some sandboxes, it stops a chunk or two later.)
  const auto reserve = before - 384 * k_mib;
  const auto size = mem_total() - reserve;
  ASSERT_GE(size, 512 * k_mib) << "room for two chunks";
  const auto r = memwarden({"test", "ram", std::to_string(size), "--reserve", std::to_string(reserve), "--json"});
  EXPECT_EQ(r.exit_code, 4) << "not possible on this host\n" << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["runs"].size(), 1U);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["stop"], "reserve");
  EXPECT_EQ(run["reached"], false);
  const auto reached = run["reached_bytes"].get<std::uint64_t>();
  EXPECT_GE(reached, 256 * k_mib) << "the first chunk fitted";
  EXPECT_LT(reached, size) << "stopped early";
  EXPECT_EQ(run["swap_in_pages"], 0);
  EXPECT_EQ(test_containers(), 0U) << "the container, and with its cgroup the memory, is gone";
}

TEST(RamTestEngine, ASizeAboveTheContainersLimitIsNotReachedAndTheOomIsSaid) {
  const auto r = memwarden({"test", "ram", "256M", "--container-limit", "128M", "--json"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["runs"].size(), 1U);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["reached"], false);
  EXPECT_TRUE(run["error"].is_null()) << "not a crash: " << run.dump();
  const auto stop = run["stop"].get<std::string>();
  EXPECT_TRUE(stop == "oom-killed" || stop == "allocation-failed") << stop;
  EXPECT_EQ(test_containers(), 0U);
}

TEST(RamTestEngine, ASizeLargerThanTheHostIsRefusedBeforeAnything) {
  const auto r = memwarden({"test", "ram", "1T"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("is more than this host's"), std::string::npos) << r.out;
  EXPECT_EQ(test_containers(), 0U);
}
