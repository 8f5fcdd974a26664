// The CUDA driver API (libcuda.so.1), loaded at run time with dlopen so that memwarden builds and runs without
// CUDA headers or an NVIDIA driver. Only what `memwarden test vram` needs: init, devices, the primary context,
// memory info, allocate, memset, synchronize, free. The few types and codes are restated from cuda.h (x86-64).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace mw::adapters {

using CuResult = int;               // CUresult (an enum; 0 is CUDA_SUCCESS)
using CuDevice = int;               // CUdevice
using CuDevicePtr = std::uint64_t;  // CUdeviceptr (unsigned long long on 64-bit hosts)

// The CUresult codes memwarden tells apart (cuda.h).
namespace cu {
constexpr CuResult success = 0;
constexpr CuResult invalid_value = 1;
constexpr CuResult out_of_memory = 2;
constexpr CuResult not_initialized = 3;
constexpr CuResult deinitialized = 4;
constexpr CuResult stub_library = 34;
constexpr CuResult device_unavailable = 46;
constexpr CuResult no_device = 100;
constexpr CuResult invalid_device = 101;
constexpr CuResult invalid_context = 201;
constexpr CuResult ecc_uncorrectable = 214;
constexpr CuResult nvlink_uncorrectable = 220;
constexpr CuResult illegal_address = 700;
constexpr CuResult context_is_destroyed = 709;
constexpr CuResult hardware_stack_error = 714;
constexpr CuResult launch_failed = 719;
constexpr CuResult not_permitted = 800;
constexpr CuResult unknown = 999;
}  // namespace cu

// What a failed call means for a test that holds memory on the GPU.
enum class CudaFailure {
  out_of_memory,  // CUDA_ERROR_OUT_OF_MEMORY: the GPU has no room for it; the context is fine
  gpu_lost,       // the device or its context is gone or broken (unavailable, ECC, illegal address, launch
                  // failed, not permitted, deinitialized, unknown): what is held may not be freeable
  other,          // anything else (an invalid value, a call in the wrong state)
};
[[nodiscard]] CudaFailure classify_cuda_failure(CuResult code);

struct CudaDriverOptions {
  std::string library;  // the library to dlopen; "" = libcuda.so.1
};

// libcuda loaded and its entry points resolved; every call returns its CUresult unchanged. The library stays
// loaded as long as this object lives. Memory calls resolve only the _v2 names (the unsuffixed ones take
// 32-bit sizes in old drivers), so a library without them is refused at open.
class CudaDriver {
 public:
  // Error{library, dlerror's text or the missing entry point}; nothing is called in the library.
  [[nodiscard]] static Result<CudaDriver> open(const CudaDriverOptions& options);

  CudaDriver(CudaDriver&&) noexcept;
  CudaDriver& operator=(CudaDriver&&) noexcept;
  ~CudaDriver();

  [[nodiscard]] const std::string& library() const;

  [[nodiscard]] CuResult init() const;  // cuInit(0)
  [[nodiscard]] CuResult device_count(int& count) const;
  [[nodiscard]] CuResult device(int ordinal, CuDevice& device) const;
  // cuDeviceGetName, one line; nullopt when it failed.
  [[nodiscard]] std::optional<std::string> device_name(CuDevice device) const;
  // cuDeviceGetPCIBusId ("0000:01:00.0"); nullopt when the library lacks it or it failed.
  [[nodiscard]] std::optional<std::string> pci_bus_id(CuDevice device) const;
  [[nodiscard]] CuResult total_memory(CuDevice device, std::uint64_t& bytes) const;  // cuDeviceTotalMem_v2

  // cuDevicePrimaryCtxRetain + cuCtxSetCurrent; on a failed set the context is released again.
  [[nodiscard]] CuResult retain_primary_context(CuDevice device) const;
  [[nodiscard]] CuResult release_primary_context(CuDevice device) const;  // cuDevicePrimaryCtxRelease(_v2)

  [[nodiscard]] CuResult memory_info(std::uint64_t& free, std::uint64_t& total) const;  // cuMemGetInfo_v2
  [[nodiscard]] CuResult allocate(std::uint64_t bytes, CuDevicePtr& pointer) const;     // cuMemAlloc_v2
  [[nodiscard]] CuResult memset8(CuDevicePtr pointer, unsigned char value, std::uint64_t bytes) const;
  [[nodiscard]] CuResult synchronize() const;              // cuCtxSynchronize
  [[nodiscard]] CuResult free(CuDevicePtr pointer) const;  // cuMemFree_v2

  // "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory", from cuGetErrorName/String where the library has them.
  [[nodiscard]] std::string describe(CuResult code) const;

 private:
  struct State;
  explicit CudaDriver(std::unique_ptr<State> state);
  std::unique_ptr<State> m_state;
};

}  // namespace mw::adapters
