// Sampling inference servers and the host into rings of timestamped samples.
// `memwarden diagnose` runs it over a window; the daemon will run it forever.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/ollama.hpp"
#include "core/clock.hpp"
#include "core/container.hpp"
#include "core/diagnosis.hpp"
#include "core/error.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_root.hpp"

namespace mw::cli {

// The real monotonic clock (CLOCK_MONOTONIC).
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] Timestamp now() const override;
  void sleep_until(Timestamp until) override;
};

struct SamplerOptions {
  probes::HostRoot root;
  std::string docker_host;
  std::chrono::milliseconds docker_timeout{2000};
  std::chrono::milliseconds api_timeout{2000};
  std::vector<std::string> targets;  // container names or id prefixes; empty: every inference server
  std::size_t capacity = 64;         // samples kept per server
};

// One watched server with its history.
struct WatchedServer {
  InferenceServer server;
  std::optional<probes::CgroupLocation> cgroup;
  std::unique_ptr<adapters::OllamaClient> api;  // null when no address is known
  std::string api_version;                      // from /api/version at discovery
  ServerHistory history;

  explicit WatchedServer(std::size_t capacity) : history(capacity) {}
};

class Sampler {
 public:
  Sampler(SamplerOptions options, Clock& clock);

  // Finds inference servers: containers (through Docker) and `ollama serve` processes on the host.
  // Problems (Docker unreachable, a named target not found) are recorded, not fatal.
  void discover();
  // Takes one sample of the host and of every server, stamped with the clock's time.
  void sample();

  [[nodiscard]] const std::vector<std::unique_ptr<WatchedServer>>& servers() const { return m_servers; }
  [[nodiscard]] const HostHistory& host() const { return m_host; }
  [[nodiscard]] const std::vector<Error>& problems() const { return m_problems; }
  [[nodiscard]] std::optional<probes::CgroupMode> cgroup_mode() const;
  [[nodiscard]] std::vector<ServerState> states() const;

 private:
  void discover_containers();
  void discover_host_processes();
  void add_server(InferenceServer server, std::optional<probes::CgroupLocation> where);
  void note(const Error& problem);  // each distinct problem once
  [[nodiscard]] ServerSample sample_server(WatchedServer& watched);

  SamplerOptions m_options;
  Clock& m_clock;
  std::optional<probes::CgroupLayout> m_layout;
  std::vector<std::unique_ptr<WatchedServer>> m_servers;
  HostHistory m_host;
  std::vector<Error> m_problems;
};

}  // namespace mw::cli
