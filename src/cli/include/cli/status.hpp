// `memwarden status`: gather host, container and GPU memory, then print it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/docker.hpp"
#include "core/status.hpp"
#include "probes/host_root.hpp"

namespace mw::cli {

struct StatusOptions {
  probes::HostRoot root;
  std::string docker_host;  // resolved address: flag, $DOCKER_HOST or the default socket
  std::chrono::milliseconds docker_timeout{2000};
  std::string nvml_library;  // "" = the system's libnvidia-ml.so.1
  adapters::ListScope scope = adapters::ListScope::running;
  StatusThresholds thresholds;
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
  std::string cgroup_mode;  // "v1", "hybrid", "v2" or "" when none was found
};

[[nodiscard]] StatusResult collect_status(const StatusOptions& options);

// A table that fits 100 columns; missing values print as "-", never as 0.
[[nodiscard]] std::string render_status_table(const StatusResult& result);
// The documented, stable JSON schema (docs/status-json.md): bytes as integers, unknown as null.
[[nodiscard]] nlohmann::json status_to_json(const StatusResult& result);

[[nodiscard]] StatusExit status_exit_code(const StatusResult& result);

}  // namespace mw::cli
