// memwarden-alloc, the static helper behind `memwarden test ram`, against host readings in a fake /proc:
// it allocates and touches real memory, and stops before the floor breaks.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace {

using mw::test::ProcessResult;
using mw::test::TempDir;

constexpr std::uint64_t k_mib = 1ULL << 20;

struct FakeProc {
  TempDir dir;
  FakeProc(std::uint64_t available_kb, const char* vmstat, const char* pressure) {
    dir.write("meminfo", "MemTotal:       32000000 kB\nMemAvailable:   " + std::to_string(available_kb) + " kB\n");
    if (vmstat != nullptr) {
      dir.write("vmstat", vmstat);
    }
    if (pressure != nullptr) {
      dir.write("pressure/memory", pressure);
    }
  }
};

ProcessResult alloc(const FakeProc& proc, std::vector<std::string> args) {
  args.insert(args.begin(), MEMWARDEN_ALLOC_BIN);
  args.insert(args.end(), {"--proc", proc.dir.path().string()});
  return mw::test::run_process(args);
}

nlohmann::json report(const ProcessResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
  return j;
}

const char* k_vmstat = "pgpgin 1\npswpin 5\npswpout 7\n";
const char* k_calm =
    "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n";

TEST(MemwardenAlloc, ReachesTheSizeAndReportsTheHost) {
  FakeProc proc(20ULL << 20, k_vmstat, k_calm);  // 20 GiB available
  const auto r = alloc(proc, {std::to_string(64 * k_mib), "--chunk", std::to_string(16 * k_mib)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = report(r);
  EXPECT_EQ(j["stop"], "reached");
  EXPECT_EQ(j["reached"].get<std::uint64_t>(), 64 * k_mib);
  EXPECT_EQ(j["min_available"].get<std::uint64_t>(), 20ULL << 30);
  EXPECT_EQ(j["swap_in_pages"], 0);
  EXPECT_EQ(j["psi_full_peak"].get<double>(), 0.0);
}

TEST(MemwardenAlloc, StopsBeforeTheChunkThatWouldBreakTheReserve) {
  FakeProc proc((4ULL << 20) + 8 * 1024, k_vmstat, k_calm);  // 4 GiB + 8 MiB available
  const auto r = alloc(proc, {std::to_string(64 * k_mib), "--chunk", std::to_string(16 * k_mib), "--reserve",
                              std::to_string(4ULL << 30)});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  const auto j = report(r);
  EXPECT_EQ(j["stop"], "reserve");
  EXPECT_EQ(j["reached"], 0) << "nothing allocated";
}

TEST(MemwardenAlloc, StopsOnPressureAndOnUnreadableCounters) {
  FakeProc pressed(20ULL << 20, k_vmstat,
                   "some avg10=80.00 avg60=1 avg300=1 total=9\nfull avg10=40.00 avg60=1 avg300=1 total=9\n");
  auto r = alloc(pressed, {std::to_string(16 * k_mib), "--psi-full-max", "10"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(report(r)["stop"], "pressure");

  FakeProc no_vmstat(20ULL << 20, nullptr, k_calm);
  r = alloc(no_vmstat, {std::to_string(16 * k_mib)});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  const auto j = report(r);
  EXPECT_EQ(j["stop"], "unreadable") << "no swap counter, no floor";

  FakeProc no_psi(20ULL << 20, k_vmstat, nullptr);
  r = alloc(no_psi, {std::to_string(16 * k_mib)});
  EXPECT_EQ(r.exit_code, 0) << "a kernel without PSI still has the other guards\n" << r.out << r.err;
  EXPECT_TRUE(report(r)["psi_full_peak"].is_null()) << "unknown, not 0";
}

TEST(MemwardenAlloc, BadCommandLinesExit2) {
  FakeProc proc(20ULL << 20, k_vmstat, k_calm);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"0"},
                                               {"-5"},
                                               {"12x"},
                                               {"100", "--chunk", "1"},
                                               {"100", "--psi-full-max", "200"},
                                               {"100", "--bogus", "1"}}) {
    const auto r = alloc(proc, args);
    EXPECT_EQ(r.exit_code, 2) << args.front() << "\n" << r.out << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
