// `memwarden test vram` as a user runs it, against the fake libcuda.so.1 (tests/support/fake_cuda.c) named with
// --cuda-library: what it prints and exits with for a size reached, refused, stopped by the reserve, out of
// memory, a GPU lost mid-test, no driver, bad input and Ctrl-C; and, from the fake's log, that every chunk it
// allocated was handed back and the primary context released.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "fake_cuda_log.hpp"
#include "test_support.hpp"

namespace {

using mw::test::ProcessResult;
using mw::test::TempDir;

constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;

std::string binary() {
  const char* other = std::getenv("MEMWARDEN_TEST_BINARY");
  return other != nullptr && *other != '\0' ? std::string(other) : std::string(MEMWARDEN_BIN);
}

// One run of `memwarden test vram ARGS --cuda-library <fake>` with FAKE_CUDA_* set for it.
struct VramRun {
  TempDir dir;
  std::vector<std::string> env;

  explicit VramRun(std::vector<std::string> more_env = {}) : env(std::move(more_env)) {
    env.push_back("FAKE_CUDA_LOG=" + log().string());
  }
  [[nodiscard]] std::filesystem::path log() const { return dir.path() / "cuda.log"; }
  [[nodiscard]] mw::test::FakeCudaLedger ledger() const { return mw::test::read_fake_cuda_log(log()); }

  ProcessResult run(std::vector<std::string> args, const std::string& library = FAKE_CUDA_PATH) const {
    args.insert(args.begin(), {binary(), "test", "vram"});
    args.insert(args.end(), {"--cuda-library", library});
    return mw::test::run_process(args, env);
  }
};

nlohmann::json parse(const ProcessResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
  return j;
}

void expect_all_given_back(const mw::test::FakeCudaLedger& ledger) {
  EXPECT_FALSE(ledger.allocated.empty()) << ledger.text();
  EXPECT_TRUE(ledger.every_allocation_freed()) << ledger.text();
  EXPECT_EQ(ledger.retained, 1) << ledger.text();
  EXPECT_EQ(ledger.released, 1) << ledger.text();
  EXPECT_EQ(ledger.unload, "held=0 contexts=0") << ledger.text();
}

TEST(TestVram, ReachesTheSizeAndPrintsTheGpuAndTheFigures) {
  const VramRun v;
  const auto r = v.run({"1G"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("GPU 0: NVIDIA GeForce RTX 5070 Ti (0000:01:00.0), 16.0 GiB; reserve 512 MiB, chunks of "
                       "256 MiB\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("FREE BEFORE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reached\n"), std::string::npos) << r.out;
  expect_all_given_back(v.ledger());
}

TEST(TestVram, JsonHasEveryFigure) {
  const VramRun v;
  const auto r = v.run({"1G", "--chunk", "300M", "--gpu-reserve", "1G", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse(r);
  EXPECT_EQ(j["gpu"]["ordinal"], 0);
  EXPECT_EQ(j["gpu"]["name"], "NVIDIA GeForce RTX 5070 Ti");
  EXPECT_EQ(j["gpu"]["pci_bus_id"], "0000:01:00.0");
  EXPECT_EQ(j["gpu"]["total_bytes"], 16 * k_gib);
  EXPECT_EQ(j["size_bytes"], k_gib);
  EXPECT_EQ(j["chunk_bytes"], 300 * k_mib);
  EXPECT_EQ(j["gpu_reserve_bytes"], k_gib);
  EXPECT_EQ(j["reached"], true);
  EXPECT_TRUE(j["refused"].is_null());
  EXPECT_EQ(j["stop"], "reached");
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_EQ(j["reached_bytes"], k_gib);
  EXPECT_EQ(j["chunks"], 4) << "three of 300 MiB and 124 MiB";
  EXPECT_TRUE(j["seconds"].is_number());
  EXPECT_TRUE(j["write_seconds"].is_number());
  EXPECT_TRUE(j["gb_per_s"].is_number());
  EXPECT_EQ(j["free_before_bytes"], 16 * k_gib - 256 * k_mib);
  EXPECT_TRUE(j["free_held_bytes"].is_number());
  EXPECT_EQ(j["free_after_bytes"], j["free_before_bytes"]);
  EXPECT_EQ(j["frees_failed"], 0);
  EXPECT_TRUE(j["cleanup_error"].is_null());
  EXPECT_EQ(j["context_released"], true);
  EXPECT_EQ(j["exit_code"], 0);
  expect_all_given_back(v.ledger());
}

TEST(TestVram, ASizeLargerThanTheGpuIsRefusedBeforeAnythingIsAllocated) {
  const VramRun v;
  const auto r = v.run({"16G"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("test vram: 16.0 GiB is more than GPU 0's 16.0 GiB less the 512 MiB reserve\n"),
            std::string::npos)
      << r.out;
  const auto ledger = v.ledger();
  EXPECT_EQ(ledger.retained, 0) << ledger.text();
  EXPECT_TRUE(ledger.allocated.empty()) << ledger.text();
}

TEST(TestVram, TheReserveStopsItAndThatIsNotPossible) {
  const VramRun v({"FAKE_CUDA_USED=" + std::to_string(14 * k_gib)});
  const auto r = v.run({"4G", "--json"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  const auto j = parse(r);
  EXPECT_EQ(j["stop"], "reserve");
  EXPECT_EQ(j["reached"], false);
  EXPECT_EQ(j["reached_bytes"], 5 * 256 * k_mib);
  EXPECT_EQ(j["free_held_bytes"], 512 * k_mib);
  EXPECT_EQ(j["exit_code"], 4);
  expect_all_given_back(v.ledger());
}

TEST(TestVram, OutOfMemoryMidTestIsNotPossible) {
  const VramRun v({"FAKE_CUDA_OOM_AT=2"});
  const auto r = v.run({"1G"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("out-of-memory\n  cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory\n"), std::string::npos)
      << r.out;
  expect_all_given_back(v.ledger());
}

TEST(TestVram, AGpuLostMidTestFailsWithWhatWasReachedAndTriesEveryFree) {
  const VramRun v({"FAKE_CUDA_LOST_AT=3"});
  const auto r = v.run({"2G", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto j = parse(r);
  EXPECT_EQ(j["stop"], "gpu-lost");
  EXPECT_EQ(j["reached_bytes"], 512 * k_mib);
  EXPECT_EQ(j["frees_failed"], 3);
  EXPECT_EQ(j["context_released"], false);
  EXPECT_TRUE(j["free_after_bytes"].is_null());
  EXPECT_EQ(j["exit_code"], 1);
  const auto ledger = v.ledger();
  EXPECT_EQ(ledger.allocated.size(), 3U);
  EXPECT_TRUE(ledger.every_allocation_tried()) << ledger.text();
  EXPECT_EQ(ledger.release_tried, 1) << ledger.text();
}

TEST(TestVram, NoDriverIsOneLineAndExit3) {
  const VramRun v;
  auto r = v.run({"1G"}, "/nonexistent/libcuda.so.1");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "memwarden: test vram: no CUDA driver (/nonexistent/libcuda.so.1: cannot open shared object file: No "
            "such file or directory)\n");
  r = v.run({"1G", "--json"}, "/nonexistent/libcuda.so.1");
  EXPECT_EQ(r.exit_code, 3);
  const auto j = parse(r);
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_NE(j["error"].get<std::string>().find("no CUDA driver"), std::string::npos);
}

TEST(TestVram, NoGpuIsExit3) {
  const VramRun none({"FAKE_CUDA_DEVICES=0"});
  auto r = none.run({"1G"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err,
            "memwarden: test vram: no CUDA-capable GPU: cuInit: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device "
            "is detected\n");
  const VramRun one;
  r = one.run({"1G", "--gpu", "1"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "memwarden: test vram: no GPU 1: CUDA sees 1 GPU (CUDA_VISIBLE_DEVICES limits which)\n");
}

TEST(TestVram, BadInputIsRefusedWithExit2) {
  const VramRun v;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"0"}, "memwarden: SIZE: '0' is 0: nothing to test\n"},
      {{"-1G"}, "memwarden: SIZE: invalid size '-1G': no number (use e.g. 4G, 512M, 1.5GiB)\n"},
      {{"lots"}, "memwarden: SIZE: invalid size 'lots': no number (use e.g. 4G, 512M, 1.5GiB)\n"},
      {{"1G", "--chunk", "0"}, "memwarden: --chunk: must be at least 1M\n"},
      {{"1G", "--gpu", "x"}, "memwarden: --gpu: 'x' is not a whole number from 0 to 1023\n"},
      {{"1G", "--gpu-reserve", "-5"},
       "memwarden: --gpu-reserve: invalid size '-5': no number (use e.g. 4G, 512M, "
       "1.5GiB)\n"},
  };
  for (const auto& [args, line] : cases) {
    const auto r = v.run(args);
    EXPECT_EQ(r.exit_code, 2) << args.front() << "\n" << r.out << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, line);
  }
  EXPECT_TRUE(v.ledger().lines.empty()) << "the driver is not even loaded";
}

TEST(TestVram, CtrlCMidAllocationFreesEverythingAndExits130) {
  const VramRun v;
  for (const auto& e : v.env) {
    const auto eq = e.find('=');
    setenv(e.substr(0, eq).c_str(), e.substr(eq + 1).c_str(), 1);
  }
  setenv("FAKE_CUDA_MEMSET_MS", "200", 1);  // 16 chunks: about 3 s unless stopped
  mw::test::BackgroundProcess p({binary(), "test", "vram", "4G", "--cuda-library", FAKE_CUDA_PATH});
  unsetenv("FAKE_CUDA_MEMSET_MS");
  unsetenv("FAKE_CUDA_LOG");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (v.ledger().memsets < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(v.ledger().memsets, 2) << p.output();
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 130) << p.output();
  EXPECT_NE(p.output().find("interrupted\n"), std::string::npos) << p.output();
  const auto ledger = v.ledger();
  EXPECT_LT(ledger.allocated.size(), 16U) << "stopped before the size";
  expect_all_given_back(ledger);
}

}  // namespace
