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
  std::optional<double> power_w;  // board power draw (nvmlDeviceGetPowerUsage)
  // nvmlClocksEventReasons bits (NVML_CLOCKS_EVENT_REASON_*, formerly ..._THROTTLE_REASON_*): why the clocks are
  // held down now, e.g. 0x20 software thermal slowdown, 0x40 hardware slowdown, 0x4 software power cap.
  std::optional<std::uint64_t> throttle_reasons;
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
