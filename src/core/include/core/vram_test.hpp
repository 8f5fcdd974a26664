// `memwarden test vram` (issue 14): the pure part of a VRAM test. The size is allocated in chunks; before each
// chunk the GPU's free memory is checked against the reserve; a size the GPU cannot give even empty is refused
// before anything is allocated; what stopped the test becomes its verdict. The driver calls are elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mw {

constexpr std::uint64_t k_vram_default_chunk = 256ULL << 20;    // --chunk
constexpr std::uint64_t k_vram_default_reserve = 512ULL << 20;  // --gpu-reserve

enum class VramStop {
  reached,        // the whole size was allocated and written
  reserve,        // the next chunk would take the GPU's free memory under the reserve
  out_of_memory,  // the driver refused an allocation (CUDA_ERROR_OUT_OF_MEMORY)
  gpu_lost,       // the GPU or its context failed mid-test (unavailable, ECC, illegal address, ...)
  interrupted,    // Ctrl-C or SIGTERM
  failed,         // another driver error mid-test
};
[[nodiscard]] const char* to_string(VramStop stop);  // "reached", "reserve", "out-of-memory", "gpu-lost", ...

// Issue 14's exit codes: 0 passed, 4 not possible on this host, 3 a source missing; 1 a failure, 130 interrupted.
enum class VramVerdict {
  passed,          // reached
  not_possible,    // refused as larger than the GPU, stopped by the reserve, out of memory
  source_missing,  // no driver, cuInit failed, no such GPU
  failed,          // the GPU was lost, or another driver error
  interrupted,
};
[[nodiscard]] VramVerdict verdict_of(VramStop stop);
[[nodiscard]] int exit_code_of(VramVerdict verdict);

// The next chunk when `reached` of `size` is held: min(chunk, size - reached); 0 when the size is reached.
[[nodiscard]] std::uint64_t next_vram_chunk(std::uint64_t size, std::uint64_t reached, std::uint64_t chunk);
// How many chunks the size takes (the last one may be smaller).
[[nodiscard]] std::uint64_t vram_chunk_count(std::uint64_t size, std::uint64_t chunk);

// Before a chunk of `next_chunk` bytes with `free` bytes free on the GPU: true when it would take free memory
// under `reserve`.
[[nodiscard]] bool breaks_vram_reserve(std::uint64_t free, std::uint64_t reserve, std::uint64_t next_chunk);

// A size the GPU cannot give even empty (more than its total less the reserve, or 0): why, in one line naming
// `source` and the GPU; nullopt when it may be tried.
[[nodiscard]] std::optional<std::string> refuse_vram_size(std::uint64_t size, std::uint64_t total,
                                                          std::uint64_t reserve, const std::string& gpu,
                                                          const std::string& source);

}  // namespace mw
