// `memwarden test vram` against the fake libcuda.so.1 (tests/support/fake_cuda.c), which tracks its allocations
// like a GPU: the size reached in chunks, refusals before anything is allocated, the reserve, an out-of-memory
// and a lost GPU mid-test; and in every case each chunk is handed back and the primary context released.
#include <gtest/gtest.h>

#include <atomic>

#include "engine/vram_test.hpp"
#include "fake_cuda_env.hpp"

namespace mw::engine {
namespace {

constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;
constexpr std::uint64_t k_total = 16 * k_gib;  // the fake's default
constexpr std::uint64_t k_context = 256 * k_mib;

VramTestOptions options(std::uint64_t size) {
  VramTestOptions o;
  o.size = size;
  o.library = FAKE_CUDA_PATH;
  return o;
}

void expect_all_given_back(const test::FakeCudaLedger& ledger) {
  EXPECT_TRUE(ledger.every_allocation_freed()) << ledger.text();
  EXPECT_EQ(ledger.retained, 1) << ledger.text();
  EXPECT_EQ(ledger.released, 1) << ledger.text();
  EXPECT_EQ(ledger.unload, "held=0 contexts=0") << ledger.text();
}

TEST(VramTest, ReachesTheSizeInChunksThenFreesEverything) {
  const test::FakeCudaEnv env;
  const auto result = run_vram_test(options(k_gib + 100 * k_mib));
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->stop, VramStop::reached);
  EXPECT_EQ(result->verdict, VramVerdict::passed);
  EXPECT_EQ(result->reached, k_gib + 100 * k_mib);
  EXPECT_EQ(result->chunks, 5U) << "four of 256 MiB and the 100 MiB left";
  EXPECT_EQ(result->name, "NVIDIA GeForce RTX 5070 Ti");
  EXPECT_EQ(result->pci_bus_id, "0000:01:00.0");
  EXPECT_EQ(result->total, k_total);
  EXPECT_EQ(result->free_before, k_total - k_context);
  EXPECT_EQ(result->free_held, k_total - k_context - (k_gib + 100 * k_mib));
  EXPECT_EQ(result->free_after, result->free_before);
  EXPECT_TRUE(result->context_released);
  EXPECT_EQ(result->frees_failed, 0U);
  EXPECT_FALSE(result->error);
  EXPECT_GT(result->write_seconds, 0.0);
  EXPECT_TRUE(result->gb_per_s().has_value());

  const auto ledger = env.ledger();
  EXPECT_EQ(ledger.allocated.size(), 5U);
  EXPECT_EQ(ledger.memsets, 5);
  expect_all_given_back(ledger);
  EXPECT_NE(ledger.text().find("cuMemAlloc_v2 104857600 "), std::string::npos) << "the last chunk is smaller";
}

TEST(VramTest, ASizeLargerThanTheGpuLessItsReserveIsRefusedBeforeAnythingIsAllocated) {
  const test::FakeCudaEnv env;
  auto o = options(k_total - 512 * k_mib + 1);
  const auto result = run_vram_test(o);
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->refused, "test vram: 15.5 GiB is more than GPU 0's 16.0 GiB less the 512 MiB reserve");
  EXPECT_EQ(result->verdict, VramVerdict::not_possible);
  EXPECT_FALSE(result->stop);
  const auto ledger = env.ledger();
  EXPECT_EQ(ledger.retained, 0) << "not even the context: it takes memory too\n" << ledger.text();
  EXPECT_TRUE(ledger.allocated.empty());
}

TEST(VramTest, StopsBeforeTheChunkThatWouldTakeFreeMemoryUnderTheReserve) {
  const test::FakeCudaEnv env;
  env.set("FAKE_CUDA_USED", std::to_string(14 * k_gib));  // others hold 14 GiB: 1.75 GiB free with the context
  const auto result = run_vram_test(options(4 * k_gib));
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->stop, VramStop::reserve);
  EXPECT_EQ(result->verdict, VramVerdict::not_possible);
  EXPECT_EQ(result->reached, 5 * 256 * k_mib) << "1.75 GiB free less the 512 MiB reserve";
  EXPECT_EQ(result->free_held, 512 * k_mib) << "exactly the reserve left";
  EXPECT_EQ(result->free_after, result->free_before);
  expect_all_given_back(env.ledger());
}

TEST(VramTest, AnOutOfMemoryMidTestIsNotPossibleAndFreesWhatWasHeld) {
  const test::FakeCudaEnv env;
  env.set("FAKE_CUDA_OOM_AT", "3");
  const auto result = run_vram_test(options(2 * k_gib));
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->stop, VramStop::out_of_memory);
  EXPECT_EQ(result->verdict, VramVerdict::not_possible);
  EXPECT_EQ(result->reached, 512 * k_mib);
  EXPECT_EQ(result->error, "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory");
  const auto ledger = env.ledger();
  EXPECT_EQ(ledger.allocated.size(), 2U);
  EXPECT_EQ(ledger.alloc_failed.size(), 1U);
  expect_all_given_back(ledger);
}

TEST(VramTest, AGpuLostMidTestIsReportedWithWhatWasReachedAndEveryFreeIsStillTried) {
  const test::FakeCudaEnv env;
  env.set("FAKE_CUDA_LOST_AT", "3");  // the third cuMemsetD8 loses the GPU; every later call fails
  const auto result = run_vram_test(options(2 * k_gib));
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->stop, VramStop::gpu_lost);
  EXPECT_EQ(result->verdict, VramVerdict::failed);
  EXPECT_EQ(result->reached, 512 * k_mib) << "the two chunks written before";
  EXPECT_EQ(result->error,
            "cuMemsetD8: CUDA_ERROR_DEVICE_UNAVAILABLE (46): CUDA-capable device(s) is/are busy or unavailable");
  EXPECT_EQ(result->frees_failed, 3U);
  EXPECT_EQ(result->cleanup_error,
            "cuMemFree: CUDA_ERROR_DEVICE_UNAVAILABLE (46): CUDA-capable device(s) is/are busy or unavailable");
  EXPECT_FALSE(result->context_released);
  EXPECT_FALSE(result->free_after) << "a lost GPU does not say: unknown, not 0";
  const auto ledger = env.ledger();
  EXPECT_EQ(ledger.allocated.size(), 3U);
  EXPECT_TRUE(ledger.every_allocation_tried()) << ledger.text();
  EXPECT_EQ(ledger.release_tried, 1) << ledger.text();
}

TEST(VramTest, AnIllegalAddressIsALostGpuToo) {
  const test::FakeCudaEnv env;
  env.set("FAKE_CUDA_LOST_AT", "1");
  env.set("FAKE_CUDA_LOST_CODE", "700");
  const auto result = run_vram_test(options(k_gib));
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->stop, VramStop::gpu_lost);
  EXPECT_EQ(result->reached, 0U);
  const auto ledger = env.ledger();
  EXPECT_EQ(ledger.allocated.size(), 1U) << "the first chunk was allocated, its write lost the GPU\n" << ledger.text();
  EXPECT_TRUE(ledger.every_allocation_tried()) << ledger.text();
}

TEST(VramTest, NoRoomForTheContextIsOutOfMemoryWithNothingAllocated) {
  const test::FakeCudaEnv env;
  env.set("FAKE_CUDA_USED", std::to_string(k_total - 100 * k_mib));
  const auto result = run_vram_test(options(k_gib));
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->stop, VramStop::out_of_memory);
  EXPECT_EQ(result->verdict, VramVerdict::not_possible);
  EXPECT_EQ(result->reached, 0U);
  EXPECT_FALSE(result->free_before);
  EXPECT_TRUE(env.ledger().allocated.empty());
}

TEST(VramTest, Ctrl_CBeforeTheFirstChunkMakesNoContext) {
  const test::FakeCudaEnv env;
  const std::atomic<bool> stop{true};
  auto o = options(k_gib);
  o.stop = &stop;
  const auto result = run_vram_test(o);
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->stop, VramStop::interrupted);
  EXPECT_EQ(result->verdict, VramVerdict::interrupted);
  EXPECT_EQ(env.ledger().retained, 0);
}

TEST(VramTest, TheSecondGpuByItsOrdinal) {
  const test::FakeCudaEnv env;
  env.set("FAKE_CUDA_DEVICES", "2");
  auto o = options(k_gib);
  o.gpu = 1;
  const auto result = run_vram_test(o);
  ASSERT_TRUE(result) << result.error().line();
  EXPECT_EQ(result->name, "NVIDIA Fake GPU 1");
  EXPECT_EQ(result->pci_bus_id, "0000:02:00.0");
  EXPECT_EQ(result->stop, VramStop::reached);
}

TEST(VramTest, AMissingSourceIsAnError) {
  const test::FakeCudaEnv env;
  auto o = options(k_gib);
  o.library = "/nonexistent/libcuda.so.1";
  auto result = run_vram_test(o);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().line(),
            "test vram: no CUDA driver (/nonexistent/libcuda.so.1: cannot open shared object file: No such file or "
            "directory)");

  env.set("FAKE_CUDA_DEVICES", "0");
  result = run_vram_test(options(k_gib));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().line(),
            "test vram: no CUDA-capable GPU: cuInit: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected");

  env.set("FAKE_CUDA_DEVICES", "2");
  o = options(k_gib);
  o.gpu = 2;
  result = run_vram_test(o);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().line(), "test vram: no GPU 2: CUDA sees 2 GPUs (CUDA_VISIBLE_DEVICES limits which)");
}

}  // namespace
}  // namespace mw::engine
