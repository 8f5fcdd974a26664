// What the container engine says about a container (from `docker inspect`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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

// A published port: NetworkSettings.Ports["11434/tcp"][i].
struct PortBinding {
  std::string container_port;  // "11434/tcp"
  std::string host_ip;         // "0.0.0.0", "::", "127.0.0.1" or ""
  std::string host_port;       // "11434"
};

// A volume or bind mount (inspect's Mounts[]).
struct ContainerMount {
  std::string type;         // "volume", "bind", "tmpfs"
  std::string name;         // the volume's name ("" for a bind mount)
  std::string source;       // the host path
  std::string destination;  // the path inside the container
};

// The host path behind `container_path` (absolute, inside the container) through the mount with the
// longest destination that holds it; nullopt when no volume or bind mount does (a tmpfs, or the
// container's own layer).
[[nodiscard]] std::optional<std::string> host_path_through_mounts(const std::vector<ContainerMount>& mounts,
                                                                  std::string_view container_path);

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
  std::string network_mode;               // HostConfig.NetworkMode: "bridge", "host", "none", ...
  std::vector<PortBinding> ports;         // published ports
  std::vector<std::string> ip_addresses;  // NetworkSettings.Networks.*.IPAddress, non-empty ones
  // Config.Env entries that tune inference servers (OLLAMA_*, LLAMA_ARG_*, CUDA_VISIBLE_DEVICES);
  // other variables are not kept, since they may hold secrets.
  std::map<std::string, std::string> server_env;
  std::vector<ContainerMount> mounts;
};

// What memwarden keeps of a container the engine describes (docs/serve.md, "Memory"): a daemon holds
// this for every running container, so each part has a count and a length.
struct ContainerBounds {
  static constexpr std::size_t labels = 32;               // memwarden.* labels first, then by key
  static constexpr std::size_t label_key_bytes = 128;     // a longer key is dropped
  static constexpr std::size_t label_value_bytes = 1024;  // memwarden.* labels; a longer value is dropped
  static constexpr std::size_t other_label_value_bytes = 256;
  static constexpr std::size_t server_env = 16;
  static constexpr std::size_t list_entries = 16;  // mounts, ports, addresses, device requests
  static constexpr std::size_t text_bytes = 512;   // a longer name, image, path or env value is cut
};

// Drops and cuts what is over ContainerBounds; returns how many entries were dropped or cut.
std::size_t bound_container(ContainerMeta& meta);
// The same for the labels of a container list entry.
std::size_t bound_labels(std::map<std::string, std::string>& labels);
// Bytes one ContainerMeta takes with what it owns (core/footprint.hpp).
[[nodiscard]] std::size_t footprint(const ContainerMeta& meta);
// The most a bounded ContainerMeta can take (held by unit tests; docs/serve.md).
inline constexpr std::size_t k_max_container_footprint = 96U << 10;

}  // namespace mw
