#include "engine/vram_test.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "adapters/cuda_driver.hpp"

namespace mw::engine {

namespace {

using adapters::CudaDriver;
using adapters::CudaFailure;
using adapters::CuDevice;
using adapters::CuDevicePtr;
using adapters::CuResult;
namespace cu = adapters::cu;
using Clock = std::chrono::steady_clock;

constexpr unsigned char k_pattern = 0xA5;  // written into every byte: not 0, which a fresh page may already hold

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

bool interrupted(const VramTestOptions& options) {
  return options.stop != nullptr && options.stop->load();
}

// Why a driver call stopped the test: the stop and the driver's words.
void stop_on(const CudaDriver& driver, CuResult rc, const char* call, VramTestResult& result) {
  switch (adapters::classify_cuda_failure(rc)) {
    case CudaFailure::out_of_memory:
      result.stop = VramStop::out_of_memory;
      break;
    case CudaFailure::gpu_lost:
      result.stop = VramStop::gpu_lost;
      break;
    case CudaFailure::other:
      result.stop = VramStop::failed;
      break;
  }
  result.error = fmt::format("{}: {}", call, driver.describe(rc));
}

std::optional<std::uint64_t> free_now(const CudaDriver& driver) {
  std::uint64_t free = 0;
  std::uint64_t total = 0;
  if (driver.memory_info(free, total) != cu::success) {
    return std::nullopt;
  }
  return free;
}

// Allocates and writes chunks until the size, the reserve, a failure or Ctrl-C; every pointer allocated is in
// `held`, written or not.
void allocate_chunks(const CudaDriver& driver, const VramTestOptions& options, std::vector<CuDevicePtr>& held,
                     VramTestResult& result) {
  const auto started = Clock::now();
  while (true) {
    const std::uint64_t next = next_vram_chunk(options.size, result.reached, options.chunk);
    if (next == 0) {
      result.stop = VramStop::reached;
      break;
    }
    if (interrupted(options)) {
      result.stop = VramStop::interrupted;
      break;
    }
    std::uint64_t free = 0;
    std::uint64_t total = 0;
    if (const CuResult rc = driver.memory_info(free, total); rc != cu::success) {
      stop_on(driver, rc, "cuMemGetInfo", result);
      break;
    }
    if (breaks_vram_reserve(free, options.reserve, next)) {
      result.stop = VramStop::reserve;
      break;
    }
    CuDevicePtr pointer = 0;
    if (const CuResult rc = driver.allocate(next, pointer); rc != cu::success) {
      stop_on(driver, rc, "cuMemAlloc", result);
      break;
    }
    held.push_back(pointer);
    const auto write_start = Clock::now();
    if (const CuResult rc = driver.memset8(pointer, k_pattern, next); rc != cu::success) {
      stop_on(driver, rc, "cuMemsetD8", result);
      break;
    }
    if (const CuResult rc = driver.synchronize(); rc != cu::success) {
      stop_on(driver, rc, "cuCtxSynchronize", result);
      break;
    }
    const auto write_end = Clock::now();
    result.write_seconds += seconds_between(write_start, write_end);
    result.seconds = seconds_between(started, write_end);
    result.reached += next;
    ++result.chunks;
  }
}

// Frees every chunk (each one tried, whatever the others did) and notes the first failure.
void free_chunks(const CudaDriver& driver, const std::vector<CuDevicePtr>& held, VramTestResult& result) {
  for (const auto pointer : held) {
    if (const CuResult rc = driver.free(pointer); rc != cu::success) {
      ++result.frees_failed;
      if (!result.cleanup_error) {
        result.cleanup_error = fmt::format("cuMemFree: {}", driver.describe(rc));
      }
    }
  }
}

}  // namespace

std::optional<double> VramTestResult::gb_per_s() const {
  if (write_seconds <= 0 || reached == 0) {
    return std::nullopt;
  }
  return static_cast<double>(reached) / 1e9 / write_seconds;
}

Result<VramTestResult> run_vram_test(const VramTestOptions& options) {
  auto driver = CudaDriver::open(adapters::CudaDriverOptions{options.library});
  if (!driver) {
    return fail("test vram", fmt::format("no CUDA driver ({})", driver.error().message));
  }
  if (const CuResult rc = driver->init(); rc != cu::success) {
    const char* why = rc == cu::no_device      ? "no CUDA-capable GPU"
                      : rc == cu::stub_library ? "a stub libcuda, not the driver's"
                                               : "the CUDA driver did not start";
    return fail("test vram", fmt::format("{}: cuInit: {}", why, driver->describe(rc)));
  }
  int count = 0;
  if (const CuResult rc = driver->device_count(count); rc != cu::success) {
    return fail("test vram", fmt::format("cuDeviceGetCount: {}", driver->describe(rc)));
  }
  if (options.gpu < 0 || options.gpu >= count) {
    return fail("test vram", fmt::format("no GPU {}: CUDA sees {} GPU{} (CUDA_VISIBLE_DEVICES limits which)",
                                         options.gpu, count, count == 1 ? "" : "s"));
  }
  CuDevice device = 0;
  if (const CuResult rc = driver->device(options.gpu, device); rc != cu::success) {
    return fail("test vram", fmt::format("GPU {}: cuDeviceGet: {}", options.gpu, driver->describe(rc)));
  }
  VramTestResult result;
  result.gpu = options.gpu;
  result.size = options.size;
  result.chunk = options.chunk;
  result.reserve = options.reserve;
  result.name = driver->device_name(device);
  result.pci_bus_id = driver->pci_bus_id(device);
  if (const CuResult rc = driver->total_memory(device, result.total); rc != cu::success) {
    return fail("test vram", fmt::format("GPU {}: cuDeviceTotalMem: {}", options.gpu, driver->describe(rc)));
  }

  // Refused before the context is made: the context itself takes memory on the GPU.
  result.refused =
      refuse_vram_size(options.size, result.total, options.reserve, fmt::format("GPU {}", options.gpu), "test vram");
  if (result.refused || options.chunk == 0) {
    if (!result.refused) {
      result.refused = "test vram: a chunk of 0 allocates nothing";
    }
    result.verdict = VramVerdict::not_possible;
    return result;
  }
  if (interrupted(options)) {
    result.stop = VramStop::interrupted;
    result.context_released = true;  // never made
    result.verdict = VramVerdict::interrupted;
    return result;
  }

  if (const CuResult rc = driver->retain_primary_context(device); rc != cu::success) {
    stop_on(*driver, rc, "cuDevicePrimaryCtxRetain", result);
    result.context_released = true;  // never made
    result.verdict = verdict_of(*result.stop);
    return result;
  }
  result.free_before = free_now(*driver);
  std::vector<CuDevicePtr> held;
  // Room for the usual number of chunks; a driver that claims an absurd total cannot make this one huge.
  held.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(vram_chunk_count(options.size, options.chunk), 4096)));
  allocate_chunks(*driver, options, held, result);
  if (!held.empty()) {
    result.free_held = free_now(*driver);
  }
  free_chunks(*driver, held, result);
  result.free_after = free_now(*driver);
  if (const CuResult rc = driver->release_primary_context(device); rc != cu::success) {
    if (!result.cleanup_error) {
      result.cleanup_error = fmt::format("cuDevicePrimaryCtxRelease: {}", driver->describe(rc));
    }
  } else {
    result.context_released = true;
  }
  result.verdict = verdict_of(*result.stop);
  if (result.cleanup_error && result.verdict == VramVerdict::passed) {
    result.verdict = VramVerdict::failed;  // reached, yet not given back cleanly
  }
  return result;
}

}  // namespace mw::engine
