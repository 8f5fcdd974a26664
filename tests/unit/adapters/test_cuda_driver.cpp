// The CUDA driver adapter against the fake libcuda.so.1 (tests/support/fake_cuda.c): loading, the entry points
// it insists on, the driver's words for a code, and what each failure means for a test holding memory.
#include <gtest/gtest.h>

#include "adapters/cuda_driver.hpp"
#include "fake_cuda_env.hpp"

namespace mw::adapters {
namespace {

constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;

TEST(CudaDriver, AMissingLibraryIsAnErrorNamingIt) {
  const auto driver = CudaDriver::open(CudaDriverOptions{"/nonexistent/libcuda.so.1"});
  ASSERT_FALSE(driver);
  EXPECT_EQ(driver.error().source, "/nonexistent/libcuda.so.1");
  EXPECT_NE(driver.error().message.find("cannot open shared object file"), std::string::npos) << driver.error().message;
}

TEST(CudaDriver, ALibraryWithoutTheDriversEntryPointsIsRefused) {
  const auto driver = CudaDriver::open(CudaDriverOptions{FAKE_NVML_PATH});
  ASSERT_FALSE(driver);
  EXPECT_EQ(driver.error().message, "lacks cuInit (a CUDA driver older than 11.0, or not libcuda)");
}

TEST(CudaDriver, DescribesACodeInTheDriversWords) {
  const test::FakeCudaEnv env;
  const auto driver = CudaDriver::open(CudaDriverOptions{FAKE_CUDA_PATH});
  ASSERT_TRUE(driver) << driver.error().line();
  EXPECT_EQ(driver->library(), FAKE_CUDA_PATH);
  EXPECT_EQ(driver->describe(cu::out_of_memory), "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory");
  EXPECT_EQ(driver->describe(12345), "CUDA error (12345)") << "a code the library does not know";
}

TEST(CudaDriver, CallsBeforeInitAndWithoutAContextFailAsTheDriverSays) {
  const test::FakeCudaEnv env;
  const auto driver = CudaDriver::open(CudaDriverOptions{FAKE_CUDA_PATH});
  ASSERT_TRUE(driver) << driver.error().line();
  ASSERT_EQ(driver->init(), cu::success);
  std::uint64_t free = 0;
  std::uint64_t total = 0;
  EXPECT_EQ(driver->memory_info(free, total), cu::invalid_context) << "no current context yet";
  int count = 0;
  EXPECT_EQ(driver->device_count(count), cu::success);
  EXPECT_EQ(count, 1);
  CuDevice device = -1;
  EXPECT_EQ(driver->device(1, device), cu::invalid_device);
}

TEST(CudaDriver, AllocatesFreesAndReportsFreeMemoryLikeAGpu) {
  const test::FakeCudaEnv env;
  env.set("FAKE_CUDA_TOTAL", std::to_string(8 * k_gib));
  env.set("FAKE_CUDA_CONTEXT_BYTES", std::to_string(300 * k_mib));
  const auto driver = CudaDriver::open(CudaDriverOptions{FAKE_CUDA_PATH});
  ASSERT_TRUE(driver) << driver.error().line();
  ASSERT_EQ(driver->init(), cu::success);
  CuDevice device = -1;
  ASSERT_EQ(driver->device(0, device), cu::success);
  EXPECT_EQ(driver->device_name(device), "NVIDIA GeForce RTX 5070 Ti");
  EXPECT_EQ(driver->pci_bus_id(device), "0000:01:00.0");
  std::uint64_t total = 0;
  ASSERT_EQ(driver->total_memory(device, total), cu::success);
  EXPECT_EQ(total, 8 * k_gib);
  ASSERT_EQ(driver->retain_primary_context(device), cu::success);
  std::uint64_t free = 0;
  ASSERT_EQ(driver->memory_info(free, total), cu::success);
  EXPECT_EQ(free, 8 * k_gib - 300 * k_mib) << "the context takes its share";
  CuDevicePtr pointer = 0;
  ASSERT_EQ(driver->allocate(k_gib, pointer), cu::success);
  EXPECT_NE(pointer, 0U);
  EXPECT_EQ(driver->memset8(pointer, 0xA5, k_gib), cu::success);
  EXPECT_EQ(driver->memset8(pointer, 0xA5, k_gib + 1), cu::invalid_value) << "past the allocation";
  EXPECT_EQ(driver->synchronize(), cu::success);
  std::uint64_t held = 0;
  ASSERT_EQ(driver->memory_info(held, total), cu::success);
  EXPECT_EQ(held, free - k_gib);
  EXPECT_EQ(driver->free(pointer), cu::success);
  EXPECT_EQ(driver->free(pointer), cu::invalid_value) << "freed twice";
  ASSERT_EQ(driver->memory_info(held, total), cu::success);
  EXPECT_EQ(held, free);
  EXPECT_EQ(driver->release_primary_context(device), cu::success);
  EXPECT_EQ(driver->memory_info(held, total), cu::invalid_context);
}

TEST(CudaFailures, OutOfMemoryIsNotALostGpu) {
  EXPECT_EQ(classify_cuda_failure(cu::out_of_memory), CudaFailure::out_of_memory);
  for (const CuResult lost :
       {cu::deinitialized, cu::device_unavailable, cu::ecc_uncorrectable, cu::illegal_address, cu::context_is_destroyed,
        cu::hardware_stack_error, 716, cu::launch_failed, cu::not_permitted, cu::unknown}) {
    EXPECT_EQ(classify_cuda_failure(lost), CudaFailure::gpu_lost) << lost;
  }
  for (const CuResult other : {cu::invalid_value, cu::not_initialized, cu::invalid_context, 713, 720}) {
    EXPECT_EQ(classify_cuda_failure(other), CudaFailure::other) << other;
  }
}

}  // namespace
}  // namespace mw::adapters
