// GPUs as NVML reports them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mw {

struct GpuProcess {
  std::uint32_t pid = 0;                    // host pid (NVML ignores pid namespaces)
  std::optional<std::uint64_t> used_bytes;  // nullopt: NVML could not tell
  std::optional<std::string> container_id;  // from /proc/<pid>/cgroup
};

struct Gpu {
  unsigned index = 0;
  std::string name;
  std::optional<std::uint64_t> memory_total;
  std::optional<std::uint64_t> memory_used;  // includes memory reserved by the driver
  std::optional<std::uint64_t> memory_free;
  std::optional<unsigned> temperature_c;
  std::optional<unsigned> utilisation_pct;  // GPU busy share over the last sample period
  std::optional<unsigned> memory_utilisation_pct;
  std::vector<GpuProcess> processes;
};

enum class GpuAvailability {
  available,   // NVML answered; gpus lists every device (possibly none)
  no_library,  // libnvidia-ml.so.1 could not be loaded: no NVIDIA driver
  failed,      // the library loaded but NVML failed (driver not loaded, no permission, ...)
};

struct GpuReport {
  GpuAvailability availability = GpuAvailability::no_library;
  std::string message;  // why not available, in one line
  std::vector<Gpu> gpus;
};

}  // namespace mw
