// The containers memwarden sees, read one way for every command: connect to the engine (or keep the
// connection), list, inspect, and find each running container's memory cgroup.
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapters/docker.hpp"
#include "core/container.hpp"
#include "core/error.hpp"
#include "core/status.hpp"
#include "engine/defaults.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

struct InventoryOptions {
  probes::HostRoot root;
  std::string docker_host;  // resolved address: flag, $DOCKER_HOST or the default socket
  std::chrono::milliseconds timeout{k_docker_timeout};
  adapters::ListScope scope = adapters::ListScope::running;
  // The most containers inspected; beyond it inference servers (by image or label) go first and the rest
  // are counted in Inventory::left_out.
  std::size_t max_containers = std::numeric_limits<std::size_t>::max();
  // Also read each running container's memory (probes::read_cgroup_memory) as soon as its cgroup is found, on the
  // thread that inspected it, while the other connections wait for the engine (a one-off status).
  bool read_memory = false;
};

// A running container's memory, read with the inventory (InventoryOptions::read_memory).
struct MemoryRead {
  Result<CgroupMemory> memory;
  std::vector<Error> problems;  // optional files that could not be read or made sense of
};

struct Inventory {
  DockerStatus docker;                    // reachable, API version; the error and a hint when not
  std::vector<ContainerMeta> containers;  // in the engine's order
  std::optional<probes::CgroupLayout> layout;
  std::map<std::string, probes::CgroupLocation> cgroups;  // by id: running containers whose cgroup was found
  std::map<std::string, Error> cgroup_errors;             // by id: running containers whose cgroup was not
  std::vector<Error> problems;                            // what could not be read: an inspect, the cgroup layout
  std::size_t left_out = 0;                               // containers over max_containers, not inspected
  std::map<std::string, MemoryRead> memory;               // by id: with read_memory, running containers' cgroups found
};

// Containers are inspected on up to k_max_inspect_connections connections at once: one per
// k_containers_per_connection containers listed, so that 8 or fewer take only the kept connection (and no thread)
// and 25 or more take 4. Each answer keeps its cap (adapters::k_max_inspect_bytes).
inline constexpr std::size_t k_max_inspect_connections = 4;
inline constexpr std::size_t k_containers_per_connection = 8;
[[nodiscard]] std::size_t inspect_connections(std::size_t containers);

// One rule for a container that changes while it is read: one that is gone by the time it is inspected
// (the engine answers 404) is left out without a word, as if the list had been taken a moment later; any
// other failure to inspect is a problem naming the container, and it is left out too. A running container
// whose cgroup cannot be found stays, with the reason in cgroup_errors.
class InventoryReader {
 public:
  explicit InventoryReader(InventoryOptions options) : m_options(std::move(options)) {}

  // Connects when there is no connection (or the last one failed), then reads everything afresh.
  [[nodiscard]] Inventory read();
  // The engine connection of the last successful read, for actions (a restart); null when there is none.
  [[nodiscard]] adapters::DockerClient* client() { return m_client ? &*m_client : nullptr; }
  [[nodiscard]] const InventoryOptions& options() const { return m_options; }

 private:
  InventoryOptions m_options;
  std::optional<adapters::DockerClient> m_client;
};

// A one-off read (status, diagnose, plan).
[[nodiscard]] Inventory read_inventory(const InventoryOptions& options);

}  // namespace mw::engine
