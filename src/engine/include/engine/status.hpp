// `memwarden status`: host, container and GPU memory in one report.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "adapters/docker.hpp"
#include "core/status.hpp"
#include "engine/defaults.hpp"
#include "engine/drift.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

struct StatusOptions {
  probes::HostRoot root;
  std::string docker_host;  // resolved address: flag, $DOCKER_HOST or the default socket
  std::chrono::milliseconds docker_timeout{k_docker_timeout};
  std::string nvml_library;  // "" = the system's libnvidia-ml.so.1
  adapters::ListScope scope = adapters::ListScope::running;
  StatusThresholds thresholds;
  // How an inference server without a limit is planned (its warning names that limit); tests script it.
  PlanServerLimit plan_limit{};  // empty: plan_server_limit
  std::chrono::milliseconds api_timeout{k_api_timeout};
};

// Documented exit codes of `memwarden status` (docs/cli.md).
enum class StatusExit : int {
  ok = 0,        // every source was read
  internal = 1,  // memwarden itself failed
  usage = 2,     // bad command line
  partial = 3,   // report printed, but a source was missing (Docker unreachable, a kernel file unreadable, ...)
};

// Also reports the cgroup layout it found, for --json.
struct StatusResult {
  StatusReport report;
  std::vector<Warning> warnings;
  std::optional<probes::CgroupMode> cgroup_mode;  // nullopt when none was found
};

[[nodiscard]] StatusResult collect_status(const StatusOptions& options);
[[nodiscard]] StatusExit status_exit_code(const StatusResult& result);

// The host's memory: meminfo, PSI (pressure_supported false only when the kernel has none; a file that
// cannot be read is a problem, not "no PSI") and vmstat. What cannot be read goes to `problems`.
[[nodiscard]] HostSnapshot read_host(const probes::HostRoot& root, std::vector<Error>& problems);

}  // namespace mw::engine
