// `memwarden test vram SIZE` (issue 14): allocate SIZE on one GPU through the CUDA driver API (libcuda.so.1,
// loaded with dlopen) in chunks, write every byte of each chunk, and free everything; stop before the GPU's
// free memory would fall under the reserve. Everything is freed and the primary context released whatever
// stopped it: the size, the reserve, an out-of-memory, a lost GPU or Ctrl-C.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/vram_test.hpp"

namespace mw::engine {

struct VramTestOptions {
  std::uint64_t size = 0;
  int gpu = 0;  // the CUDA ordinal (after CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER)
  std::uint64_t reserve = k_vram_default_reserve;
  std::uint64_t chunk = k_vram_default_chunk;
  std::string library;                      // "" = libcuda.so.1
  const std::atomic<bool>* stop = nullptr;  // set by Ctrl-C: the test stops before the next chunk and frees
};

struct VramTestResult {
  int gpu = 0;
  std::optional<std::string> name;        // cuDeviceGetName
  std::optional<std::string> pci_bus_id;  // to match the GPU with nvidia-smi and `memwarden status`
  std::uint64_t total = 0;                // cuDeviceTotalMem
  std::uint64_t size = 0;
  std::uint64_t chunk = 0;
  std::uint64_t reserve = 0;

  std::optional<std::string> refused;        // before anything was allocated (verdict not_possible)
  std::optional<VramStop> stop;              // nullopt when refused
  std::optional<std::string> error;          // the driver's words when a call failed (out of memory, lost, ...)
  std::uint64_t reached = 0;                 // bytes allocated and written
  std::uint64_t chunks = 0;                  // chunks allocated and written
  double seconds = 0;                        // from the first allocation to the last write
  double write_seconds = 0;                  // in cuMemsetD8 and cuCtxSynchronize only
  std::optional<std::uint64_t> free_before;  // cuMemGetInfo with the context made, before the first chunk
  std::optional<std::uint64_t> free_held;    // with everything allocated (nullopt when the GPU did not say)
  std::optional<std::uint64_t> free_after;   // after the frees
  unsigned frees_failed = 0;                 // cuMemFree calls that failed (a lost GPU)
  std::optional<std::string> cleanup_error;  // the first failed free or the failed context release
  bool context_released = false;
  VramVerdict verdict = VramVerdict::failed;

  // Bytes written per second of cuMemsetD8 + cuCtxSynchronize; nullopt when nothing was written.
  [[nodiscard]] std::optional<double> gb_per_s() const;
};

// Error (exit 3, a source missing): no CUDA driver, cuInit failed (no device, a stub library), no GPU of that
// ordinal, or its total memory unknown. Everything else is in the result.
[[nodiscard]] Result<VramTestResult> run_vram_test(const VramTestOptions& options);

}  // namespace mw::engine
