// The facts behind `memwarden status`, and the plain-words warnings drawn from them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/cgroup_memory.hpp"
#include "core/container.hpp"
#include "core/error.hpp"
#include "core/gpu.hpp"
#include "core/host_memory.hpp"

namespace mw {

struct HostSnapshot {
  std::optional<MemInfo> meminfo;    // nullopt: /proc/meminfo unreadable (see problems)
  std::optional<Pressure> pressure;  // nullopt: no PSI on this kernel, or unreadable
  bool pressure_supported = false;   // the kernel has /proc/pressure/memory
  std::optional<VmStat> vmstat;
};

struct ContainerSnapshot {
  ContainerMeta meta;
  std::optional<CgroupMemory> memory;  // nullopt: cgroup not found or unreadable
  std::optional<Error> memory_error;
  // Running and without a limit: the limit `memwarden optimize` would set (inference servers: the plan of their
  // installed models, core/drift.hpp advise_server_limit), and its basis, or why there is no number (then
  // advised_limit is nullopt). Both empty for containers with a limit, and where nobody planned.
  std::optional<std::uint64_t> advised_limit;
  std::string advised_basis;
};

struct DockerStatus {
  bool reachable = false;
  std::string endpoint;     // "unix:///var/run/docker.sock"
  std::string api_version;  // negotiated, e.g. "1.41"
  std::optional<Error> error;
  std::string hint;  // what to do about the error
};

struct StatusReport {
  HostSnapshot host;
  DockerStatus docker;
  std::vector<ContainerSnapshot> containers;
  GpuReport gpu;
  std::vector<Error> problems;  // sources that could not be read; the rest of the report stands
};

struct StatusThresholds {
  std::uint64_t reserve_bytes = 4ULL << 30;    // RAM kept for the monitoring stack
  std::uint64_t swap_warn_bytes = 1ULL << 30;  // swap in use above this is worth a word
  double psi_full_avg10_pct = 10.0;            // share of time all tasks stalled on memory
  double near_limit_pct = 90.0;                // working set this close to the limit
};

enum class WarningKind {
  unlimited_container,
  near_limit,
  oom_killed,
  swap_in_use,
  low_available,
  memory_pressure,
};

struct Warning {
  WarningKind kind;
  std::string subject;  // "host" or a container name
  std::string text;     // one sentence with the numbers
};

[[nodiscard]] const char* to_string(WarningKind kind);

// Largest working set first; containers whose working set is unknown go last, by name.
void sort_by_working_set(std::vector<ContainerSnapshot>& containers);

[[nodiscard]] std::vector<Warning> evaluate_status(const StatusReport& report, const StatusThresholds& thresholds);

}  // namespace mw
