// What the container engine says about a container (from `docker inspect`).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mw {

struct DeviceRequest {
  std::string driver;
  std::int64_t count = 0;  // -1: all devices
  std::vector<std::string> device_ids;
  std::vector<std::vector<std::string>> capabilities;

  [[nodiscard]] bool requests_gpu() const;
};

struct RestartPolicy {
  std::string name;  // "", "no", "always", "unless-stopped", "on-failure"
  std::int64_t maximum_retry_count = 0;
};

struct ContainerState {
  std::string status;  // "running", "exited", "restarting", ...
  bool running = false;
  bool oom_killed = false;  // the last exit was an OOM kill
  std::int64_t pid = 0;     // host pid of the main process, 0 when not running
  std::optional<std::int64_t> exit_code;
  std::string started_at;  // RFC 3339 as the engine prints it
};

struct ContainerMeta {
  std::string id;  // full 64-hex id
  std::string name;
  std::string image;
  std::map<std::string, std::string> labels;
  // HostConfig.Memory: nullopt when the engine reports 0 (no limit).
  std::optional<std::uint64_t> memory_limit;
  // HostConfig.MemorySwap: memory + swap; -1 unlimited, 0 unset.
  std::optional<std::int64_t> memory_swap;
  std::vector<DeviceRequest> device_requests;
  RestartPolicy restart_policy;
  ContainerState state;
  std::int64_t restart_count = 0;
};

}  // namespace mw
