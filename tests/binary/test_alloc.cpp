// memwarden-alloc, the static helper behind `memwarden test ram`, against host readings in a fake /proc:
// it allocates and touches real memory, and stops before the floor breaks.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

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

// Waits (bounded) until the process holds `bytes`: it is past its allocation and holding.
bool holds(int pid, std::uint64_t bytes) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (mw::test::resident_bytes(pid) >= bytes) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(MemwardenAlloc, HoldsTheWholeSizeForTheTimeAsked) {
  FakeProc proc(20ULL << 20, k_vmstat, k_calm);
  const auto r = alloc(proc, {std::to_string(16 * k_mib), "--hold-ms", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = report(r);
  EXPECT_EQ(j["stop"], "reached");
  EXPECT_GE(j["held_seconds"].get<double>(), 0.3);
  EXPECT_LT(j["seconds"].get<double>(), j["held_seconds"].get<double>()) << "the hold is not allocation time";
}

TEST(MemwardenAlloc, TheFloorIsStillCheckedWhileHolding) {
  FakeProc proc(20ULL << 20, k_vmstat, k_calm);
  mw::test::BackgroundProcess helper(
      {MEMWARDEN_ALLOC_BIN, std::to_string(32 * k_mib), "--hold-ms", "60000", "--proc", proc.dir.path().string()});
  ASSERT_TRUE(holds(helper.pid(), 32 * k_mib)) << helper.output();
  proc.dir.write("meminfo", "MemTotal:       32000000 kB\nMemAvailable:   1000000 kB\n");  // under the reserve now
  EXPECT_EQ(helper.wait(), 3) << helper.output();
  const auto j = nlohmann::json::parse(helper.output(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << helper.output();
  EXPECT_EQ(j["stop"], "reserve");
  EXPECT_EQ(j["reached"].get<std::uint64_t>(), 32 * k_mib) << "it was holding";
  EXPECT_LT(j["held_seconds"].get<double>(), 30.0) << "stopped at once, not at the hold's end";
}

TEST(MemwardenAlloc, SigtermWhileHoldingFreesAndReportsInterrupted) {
  FakeProc proc(20ULL << 20, k_vmstat, k_calm);
  mw::test::BackgroundProcess helper(
      {MEMWARDEN_ALLOC_BIN, std::to_string(32 * k_mib), "--hold-ms", "60000", "--proc", proc.dir.path().string()});
  ASSERT_TRUE(holds(helper.pid(), 32 * k_mib)) << helper.output();
  helper.signal(SIGTERM);
  EXPECT_EQ(helper.wait(), 5) << helper.output();
  const auto j = nlohmann::json::parse(helper.output(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << helper.output();
  EXPECT_EQ(j["stop"], "interrupted");
  EXPECT_EQ(j["reached"].get<std::uint64_t>(), 32 * k_mib);
}

TEST(MemwardenAlloc, BadCommandLinesExit2) {
  FakeProc proc(20ULL << 20, k_vmstat, k_calm);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"0"},
                                               {"-5"},
                                               {"12x"},
                                               {"100", "--chunk", "1"},
                                               {"100", "--psi-full-max", "200"},
                                               {"100", "--bogus", "1"},
                                               {"100", "--hold-ms", "x"},
                                               {"100", "--hold-ms", "86400001"}}) {
    const auto r = alloc(proc, args);
    EXPECT_EQ(r.exit_code, 2) << args.front() << "\n" << r.out << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
