// `memwarden test model`: the pure part — how a measured load is held against the plan, and what an unload that
// does not give the memory back is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mw {

// The error the plan states for its estimate of one model's memory. The plan is an upper bound for a full context:
// a measured figure may be above it by `percent` of the plan or `bytes` (whichever is wider: a small model's runtime
// buffers are a large share of it), and below it by as much, plus what the runtime reserves but fills only as the
// context fills (the KV cache and the compute graph: allocated at the load, touched as requests use them).
// docs/test.md says where these come from.
struct EstimateTolerance {
  double percent = 10.0;
  std::uint64_t bytes = 128ULL << 20;
};
inline constexpr EstimateTolerance k_plan_tolerance{};

// A check that decides the test, or one shown for comparison (the server's own estimate).
enum class CheckRole { decides, compares };

// One estimate held against what was measured.
struct EstimateCheck {
  std::string what;  // "RAM (container)", "VRAM (/api/ps)", ...
  CheckRole role = CheckRole::decides;
  std::uint64_t planned = 0;
  std::uint64_t low = 0;  // the band the plan states: [low, high]
  std::uint64_t high = 0;
  std::optional<std::uint64_t> measured;  // nullopt: could not be measured (no error is given then)
  std::optional<double> error_percent;    // (measured - planned) / planned; nullopt when planned is 0 or unmeasured
  bool within = false;                    // low <= measured <= high (false when unmeasured)
};
// fills_later: the part of `planned` that the runtime fills only as the context is used (0 for a figure the
// server reports, such as size_vram).
[[nodiscard]] EstimateCheck check_estimate(std::string what, std::uint64_t planned,
                                           std::optional<std::uint64_t> measured, CheckRole role = CheckRole::decides,
                                           std::uint64_t fills_later = 0,
                                           EstimateTolerance tolerance = k_plan_tolerance);

// Memory is counted as given back after an unload when what stays above the level before the load is under
// `bytes` or under `percent` of what the load added (the allocator keeps some; the runtime's arenas too).
struct UnloadTolerance {
  double percent = 10.0;
  std::uint64_t bytes = 64ULL << 20;
};
inline constexpr UnloadTolerance k_unload_tolerance{};

enum class UnloadVerdict {
  unknown,   // a figure is missing, or there was no unload
  returned,  // the memory came back
  kept,      // a finding: the server keeps memory with the model unloaded
};
[[nodiscard]] const char* to_string(UnloadVerdict verdict);

// before: anon before the load; loaded: anon with the model loaded; after: anon once /api/ps no longer lists it.
// Anonymous memory only: the weights' page cache stays charged after an unmap until the kernel reclaims it, and
// is not held by the server.
struct UnloadCheck {
  UnloadVerdict verdict = UnloadVerdict::unknown;
  std::optional<std::uint64_t> kept;  // after - before, floored at 0
};
[[nodiscard]] UnloadCheck check_unload(std::optional<std::uint64_t> before, std::optional<std::uint64_t> loaded,
                                       std::optional<std::uint64_t> after,
                                       UnloadTolerance tolerance = k_unload_tolerance);

// `ollama ps`'s PROCESSOR column from /api/ps size and size_vram: "100% CPU", "100% GPU", "48%/52% CPU/GPU".
[[nodiscard]] std::string processor_split(std::uint64_t size, std::uint64_t size_vram);

}  // namespace mw
