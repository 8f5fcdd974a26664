// Sampling inference servers and the host into rings of timestamped samples.
// `memwarden diagnose` runs it over a window; the daemon will run it forever.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adapters/ollama.hpp"
#include "core/clock.hpp"
#include "core/container.hpp"
#include "core/diagnosis.hpp"
#include "core/error.hpp"
#include "engine/defaults.hpp"
#include "engine/inventory.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

// The real monotonic clock (CLOCK_MONOTONIC).
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] Timestamp now() const override;
  void sleep_until(Timestamp until) override;
};

// The most inference servers one sampler watches (containers and host processes), and of them host
// processes (anything on the host can be named `ollama serve`).
inline constexpr std::size_t k_max_servers = 32;
inline constexpr std::size_t k_max_host_servers = 8;

struct SamplerOptions {
  probes::HostRoot root;
  std::string docker_host;
  std::chrono::milliseconds docker_timeout{k_docker_timeout};
  std::chrono::milliseconds api_timeout{k_api_timeout};
  std::vector<std::string> targets;  // container names or id prefixes; empty: every inference server
  std::size_t capacity = 64;         // samples kept per server
};

// One watched server with its history.
struct WatchedServer {
  InferenceServer server;
  std::optional<probes::CgroupLocation> cgroup;
  std::unique_ptr<adapters::OllamaClient> api;  // null when no address is known
  std::string api_version;                      // from /api/version, asked once the API answers
  ServerHistory history;
  // A server whose API did not answer within the time-out is not asked again until api_retry_at (monotonic),
  // 1 s after the first time-out, doubling up to 60 s: a server that never answers costs one wait a minute.
  unsigned api_timeouts = 0;
  Timestamp api_retry_at{};

  explicit WatchedServer(std::size_t capacity) : history(capacity) {}
};

class Sampler {
 public:
  Sampler(SamplerOptions options, Clock& clock);

  // Finds inference servers: containers (through Docker) and `ollama serve` processes on the host.
  // Problems (Docker unreachable, a named target not found) are recorded, not fatal.
  // Returns the inventory it read (diagnose plans the servers without a limit from it).
  Inventory discover();
  // The same from an inventory the caller already read (the daemon keeps one): its running containers
  // and their cgroups. Servers found again keep their history and API client; servers gone are dropped.
  void rediscover(const Inventory& inventory);
  // Adds older samples (oldest first) in front of what is sampled next: a look-back from the history.
  void seed(const std::string& server_name, const std::vector<ServerSample>& samples);
  void seed_host(const std::vector<HostSample>& samples);
  // Forgets a server's samples (after a restart its old memory says nothing about the new process).
  void forget_history(const std::string& server_name);
  // Servers a fix job of the daemon works on: their API is not asked (the job unloads, drains and restarts
  // them, and its drain must not count memwarden's connection as a client); their cgroup still is read.
  void set_fixing(std::set<std::string> server_names) { m_fixing = std::move(server_names); }
  // The limit `memwarden optimize` would set on a server without one, and its basis (engine/drift.hpp); kept
  // across rediscoveries.
  void set_planned_limit(const std::string& server_name, std::optional<std::uint64_t> limit, std::string basis);
  // Problems seen so far; the daemon clears them after reporting.
  void clear_problems() { m_problems.clear(); }
  // Takes one sample of the host and of every server, stamped with the clock's time.
  void sample();

  [[nodiscard]] const std::vector<std::unique_ptr<WatchedServer>>& servers() const { return m_servers; }
  [[nodiscard]] const HostHistory& host() const { return m_host; }
  // The host as the last sample read it (engine::read_host), vmstat included.
  [[nodiscard]] const HostSnapshot& last_host() const { return m_last_host; }
  [[nodiscard]] const std::vector<Error>& problems() const { return m_problems; }
  [[nodiscard]] std::optional<probes::CgroupMode> cgroup_mode() const;
  [[nodiscard]] const std::optional<probes::CgroupLayout>& layout() const { return m_layout; }
  [[nodiscard]] std::vector<ServerState> states() const;

 private:
  void discover_containers(const Inventory& inventory);
  void discover_host_processes();
  void add_server(InferenceServer server, std::optional<probes::CgroupLocation> where);
  void connect_api(WatchedServer& w);
  // The watched server with this identity from before the current discovery, taken out of `m_previous`.
  [[nodiscard]] std::unique_ptr<WatchedServer> take_previous(const InferenceServer& server);
  void note(const Error& problem);  // each distinct problem once
  [[nodiscard]] ServerSample sample_server(WatchedServer& watched);

  SamplerOptions m_options;
  Clock& m_clock;
  bool m_waited_this_round = false;  // an API request already ran into its time-out this sample
  std::size_t m_rounds = 0;          // samples taken: where the next one starts
  std::optional<probes::CgroupLayout> m_layout;
  std::vector<std::unique_ptr<WatchedServer>> m_servers;
  std::vector<std::unique_ptr<WatchedServer>> m_previous;  // during a discovery only
  HostHistory m_host;
  HostSnapshot m_last_host;
  std::vector<Error> m_problems;
  std::set<std::string> m_fixing;
};

}  // namespace mw::engine
