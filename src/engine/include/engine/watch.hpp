// The always-on watch of `memwarden serve`: samples the host, every container and every inference server
// at an interval, runs the detectors, applies the fix policy to opted-in servers, keeps history, sends
// notifications, and publishes a snapshot after every round. cli/serve.hpp puts the HTTP routes and the
// process (signals, threads) around it.
//
// Threads: the main loop owns the Watch and does all sampling and acting; other threads only read
// snapshots, queue fix requests and Docker events, and wake the loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actions/server_actions.hpp"
#include "adapters/docker.hpp"
#include "adapters/docker_events.hpp"
#include "adapters/journal.hpp"
#include "adapters/notify.hpp"
#include "adapters/sample_store.hpp"
#include "core/rate_limit.hpp"
#include "engine/config.hpp"
#include "engine/fix.hpp"
#include "engine/inventory.hpp"
#include "engine/sampler.hpp"
#include "engine/snapshot.hpp"
#include "probes/cgroup.hpp"
#include "probes/gpu.hpp"

namespace mw::engine {

// What the daemon needs from the world; tests inject fakes.
struct WatchEnvironment {
  probes::HostRoot root;
  Clock& clock;                           // monotonic: sample times for the detectors
  std::function<std::int64_t()> wall_ms;  // unix ms: journal, history, budgets
  std::function<void(const std::string& line)> log;
  // Sends one notification; default: adapters::send_notification with a 5 s time-out.
  std::function<Expected<void, Error>(const adapters::NotifyTarget&, const adapters::Notification&)> send;
  actions::ServerActions* actions = nullptr;  // tests; null: live (or dry-run) actions built per fix
  std::string hostname;
  std::string version;
};

class Watch {
 public:
  Watch(ServeConfig config, WatchEnvironment env);
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Opens the journal and the sample store (problems are logged; the daemon runs without them).
  void open_storage();
  // Lists and inspects running containers, then rediscovers inference servers.
  void refresh_containers();
  // One round: sample, detect, act, record, notify, publish. Handles queued events and fix requests first.
  void tick();

  // Thread-safe: from the Docker event thread.
  void on_docker_event(const adapters::DockerEvent& event);
  void on_docker_stream(bool connected, const std::optional<Error>& why);
  // Thread-safe: no new action starts after this (the one in progress finishes).
  void request_stop();
  // Thread-safe: the newest snapshot (never null after construction).
  [[nodiscard]] std::shared_ptr<const DaemonSnapshot> snapshot() const;
  // Thread-safe: queues a fix of the server named (POST /api/v1/fix); false when too many are queued.
  [[nodiscard]] bool request_fix(const std::string& server);
  // Thread-safe: the sample interval now, whether an action is running, the wall clock.
  [[nodiscard]] Duration interval() const;
  [[nodiscard]] bool acting() const { return m_acting.load(); }
  [[nodiscard]] std::int64_t wall_ms() const { return m_env.wall_ms(); }
  // Writes one line to the log (one line: control characters are escaped).
  void log(const std::string& line) const;
  // Main thread: applies a new configuration. Settings that need a restart (listen, state_dir,
  // docker_host) are kept as they were and logged.
  void reload(ServeConfig config);
  // Wakes the main loop early (an event or a request is waiting). Thread-safe.
  void wake();
  // Main loop: waits until `deadline` (monotonic) or a wake-up. Returns true when woken.
  bool wait_until(Timestamp deadline);

  [[nodiscard]] const ServeConfig& config() const { return m_config; }
  [[nodiscard]] const Sampler& sampler() const { return *m_sampler; }

 private:
  struct Pending {  // filled by other threads, drained by tick()
    std::deque<adapters::DockerEvent> events;
    std::deque<std::string> fix_requests;  // server names
    bool refresh = false;
    bool woken = false;
  };

  void make_sampler();
  void make_inventory();
  [[nodiscard]] std::set<std::string> handle_pending();  // returns the servers a fix was requested for
  void sample_containers(DaemonSnapshot& snap);
  void act(const std::vector<Finding>& findings, const std::set<std::string>& requested);
  void record_history(const DaemonSnapshot& snap);
  // False (said once) while the state directory's file system has less than history.min_free free.
  [[nodiscard]] bool history_has_room();
  void notify_changes(const DaemonSnapshot& snap);
  // True when it went out to every target (or there are none); false when suppressed or failed.
  bool notify(adapters::Notification n, const std::string& key, RateLimiter& limiter);
  void publish(std::shared_ptr<DaemonSnapshot> snap);
  [[nodiscard]] FixOptions fix_options() const;

  ServeConfig m_config;
  WatchEnvironment m_env;
  std::unique_ptr<Sampler> m_sampler;

  // Docker: the client is kept between refreshes and dropped on error.
  std::unique_ptr<InventoryReader> m_inventory;  // keeps the engine connection between refreshes
  std::vector<Error> m_inventory_problems;       // of the last refresh, in every snapshot until the next
  DockerStatus m_docker_status;
  std::vector<ContainerMeta> m_containers;                    // running, from the last refresh
  std::map<std::string, probes::CgroupLocation> m_locations;  // by container id
  std::optional<probes::CgroupLayout> m_layout;
  Timestamp m_last_refresh{0};
  bool m_refreshed_once = false;
  bool m_refresh_next = false;  // a container's cgroup vanished: list again next round
  bool m_said_too_many_containers = false;
  std::string m_own_container_id;
  std::atomic<bool> m_acting{false};
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_stream_connected{false};
  // After an action that ran and did not succeed (or could not be journaled), the server is left alone
  // until this time (monotonic), so a refused drain does not unload and wait again every round.
  std::map<std::string, Timestamp> m_hold_until;  // a fix is running (the main loop is busy, /healthz stays ok)

  std::unique_ptr<probes::GpuReader> m_gpu;  // NVML stays loaded; without it, tried again every 5 minutes
  Timestamp m_gpu_retry{0};

  std::optional<adapters::Journal> m_journal;
  std::optional<adapters::SampleStore> m_store;
  std::optional<Error> m_history_error;
  std::int64_t m_last_maintain_ms = 0;

  // Notification and action state across ticks.
  std::map<std::pair<std::string, std::string>, Severity> m_active;  // (subject, detector) -> severity
  std::set<std::string> m_announced;              // servers whose refusal or dry run was already reported this episode
  std::unique_ptr<RateLimiter> m_limiter;         // findings: once per subject and detector per min_interval
  std::unique_ptr<RateLimiter> m_action_limiter;  // actions and OOM events: their own hourly cap
  std::map<std::pair<std::string, std::string>, Severity> m_told;  // what the receivers last heard, per finding
  std::map<std::pair<std::string, std::string>, std::uint64_t> m_actions;
  std::map<std::pair<std::string, std::string>, std::uint64_t> m_notifications;
  std::uint64_t m_samples_total = 0;
  std::set<std::string> m_logged_problems;

  // Shared with other threads.
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  Pending m_pending;
  std::shared_ptr<const DaemonSnapshot> m_snapshot;
  Duration m_interval{1000};
};

// `env` with the real senders where it leaves them empty: notifications through adapters::send_notification
// (5 s time-out), the log on stderr; every log line escaped to one line.
[[nodiscard]] WatchEnvironment with_defaults(WatchEnvironment env);

}  // namespace mw::engine
