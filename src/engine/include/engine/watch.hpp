// The always-on watch of `memwarden serve`: samples the host, every container and every inference server
// at an interval, runs the detectors, applies the fix policy to opted-in servers, keeps history, sends
// notifications, and publishes a snapshot after every round. cli/serve.hpp puts the HTTP routes and the
// process (signals, threads) around it.
//
// Threads: the main loop owns the Watch and does all sampling, detection and policy; a fix the policy allows
// runs as a job (JobRunner: a thread of its own in the daemon) with its own journal connection, Docker client,
// Ollama client and gauge, and hands its report back to the main loop, so that rounds go on at the interval
// while a fix drains or waits. Other threads only read snapshots, queue fix requests and Docker events, and
// wake the loop.
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
#include <thread>
#include <vector>

#include "actions/server_actions.hpp"
#include "adapters/docker.hpp"
#include "adapters/docker_events.hpp"
#include "adapters/journal.hpp"
#include "adapters/notify.hpp"
#include "adapters/sample_store.hpp"
#include "core/rate_limit.hpp"
#include "engine/config.hpp"
#include "engine/drift.hpp"
#include "engine/fix.hpp"
#include "engine/inventory.hpp"
#include "engine/sampler.hpp"
#include "engine/snapshot.hpp"
#include "probes/cgroup.hpp"
#include "probes/gpu.hpp"

namespace mw::engine {

// Where fix jobs run: the daemon gives each its own thread (ThreadJobRunner); unit tests run them inline
// or when they choose, so that a fake clock is only ever used by one thread at a time.
class JobRunner {
 public:
  virtual ~JobRunner() = default;
  // Runs `job` exactly once: now, later, or on another thread. The job hands in its own result.
  virtual void start(std::function<void()> job) = 0;
  // Returns when every job started has ended.
  virtual void wait_all() = 0;
};

// Runs each job at once, on the caller's thread.
class InlineJobRunner final : public JobRunner {
 public:
  void start(std::function<void()> job) override { job(); }
  void wait_all() override {}
};

// A thread per job; threads that ended are joined when the next job starts, and all at wait_all().
class ThreadJobRunner final : public JobRunner {
 public:
  ThreadJobRunner() = default;
  ~ThreadJobRunner() override;
  ThreadJobRunner(const ThreadJobRunner&) = delete;
  ThreadJobRunner& operator=(const ThreadJobRunner&) = delete;
  void start(std::function<void()> job) override;
  void wait_all() override;

 private:
  struct Running {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> ended;
  };
  std::vector<Running> m_running;
};

// The most fix jobs at once (one per server at most).
inline constexpr std::size_t k_max_fix_jobs = 4;

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
  JobRunner* jobs = nullptr;     // tests; null: a thread per fix job
  PlanServerLimit plan_limit{};  // tests; empty: plan_server_limit (asks each server's API)
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
  // Thread-safe: no new fix job starts after this (running ones go on; see finish_jobs).
  void request_stop();
  // Main loop: waits until every running fix job has ended and takes in their reports (journaled by the
  // jobs themselves; logged, counted and notified here). Rounds may go on meanwhile instead: tick() takes in
  // the reports of jobs that ended.
  void finish_jobs();
  // Thread-safe: the newest snapshot (never null after construction).
  [[nodiscard]] std::shared_ptr<const DaemonSnapshot> snapshot() const;
  // Thread-safe: the next round reads the benchmark runs again (when a new one was stored), without waiting for
  // the minute to pass.
  void request_bench_refresh();
  // Thread-safe: queues a fix of the server named (POST /api/v1/fix); false when too many are queued.
  [[nodiscard]] bool request_fix(const std::string& server);
  // Thread-safe: the sample interval now, the fix jobs running (acting: at least one), the wall clock.
  [[nodiscard]] Duration interval() const;
  [[nodiscard]] std::size_t jobs_running() const { return m_jobs_running.load(); }
  [[nodiscard]] bool acting() const { return jobs_running() > 0; }
  [[nodiscard]] std::int64_t wall_ms() const { return m_env.wall_ms(); }
  // Writes one line to the log (one line: control characters are escaped).
  void log(const std::string& line) const;
  // Main thread: applies a new configuration. Settings that need a restart (listen, state_dir,
  // docker_host) are kept as they were and logged.
  void reload(ServeConfig config);
  // Wakes the main loop early (an event or a request is waiting). Thread-safe.
  void wake();
  // Main loop: waits until `deadline` or a wake-up; returns true when woken. The wait is on std::steady_clock,
  // so `deadline` must come from a clock on its epoch (SteadyClock); a test may only ask whether it was woken.
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

  // A fix job's report, handed in by the job's thread.
  struct JobResult {
    std::string server;
    ServerFixReport report;
    std::vector<Error> problems;
  };
  // A fix job running, as the main loop knows it.
  struct Job {
    std::vector<Finding> findings;  // the server's findings when it started: shown until it ends
  };

  void make_sampler();
  void make_inventory();
  [[nodiscard]] std::set<std::string> handle_pending();  // returns the servers a fix was requested for
  void sample_containers(DaemonSnapshot& snap);
  void act(const std::vector<Finding>& findings, const std::set<std::string>& requested);
  // Starts a fix job for a decision the policy allowed.
  void start_job(WatchedServer& watched, FixDecision decision, const std::vector<Finding>& findings);
  // Main loop: takes in the reports of jobs that ended.
  void collect_jobs();
  // Logs, counts and notifies a fix's report; after a restart the server's samples are forgotten.
  void take_report(const std::string& name, const ServerFixReport& report);
  // The findings of servers a job works on are those it started from: its samples say nothing while the
  // job owns the server (its API is not asked).
  void hold_findings_of_jobs(std::vector<Finding>& findings) const;
  // optimize.auto: at most every optimize.interval, plans each server container (the `unlimited` finding's
  // limit) and finds drift from the optimized state (m_drift); every round, drops the drift of containers gone
  // and puts the advised limits of containers without one into the snapshot.
  void check_drift(DaemonSnapshot& snap);
  [[nodiscard]] std::vector<Finding> find_drift(const DaemonSnapshot& snap, Timestamp now);
  void record_history(const DaemonSnapshot& snap);
  // Reads each model's newest benchmark figures from the history database: at most every k_bench_read_every_ms
  // (or when asked), and only parsed when a new run was stored since.
  void refresh_bench();
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
  Timestamp m_last_refresh{};
  bool m_refreshed_once = false;
  bool m_refresh_next = false;  // a container's cgroup vanished: list again next round
  bool m_said_too_many_containers = false;
  std::string m_own_container_id;
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_stream_connected{false};
  // After an action that ran and did not succeed (or could not be journaled), the server is left alone
  // until this time (monotonic), so a refused drain does not unload and wait again every round.
  std::map<std::string, Timestamp> m_hold_until;

  // Fix jobs: at most one per server and k_max_fix_jobs in all.
  std::unique_ptr<JobRunner> m_own_runner;  // when the environment gives none
  JobRunner* m_runner = nullptr;
  InlineJobRunner m_in_round;         // dry runs
  std::map<std::string, Job> m_jobs;  // main loop: running, by server name
  std::atomic<std::size_t> m_jobs_running{0};

  std::unique_ptr<probes::GpuReader> m_gpu;  // NVML stays loaded; without it, tried again every 5 minutes
  Timestamp m_gpu_retry{};

  std::optional<adapters::Journal> m_journal;
  std::optional<adapters::SampleStore> m_store;
  std::optional<Error> m_history_error;
  std::int64_t m_last_maintain_ms = 0;
  static constexpr std::int64_t k_bench_read_every_ms = 60'000;
  std::vector<BenchModelFigures> m_bench;  // the newest figures of each model, as read last
  std::int64_t m_bench_newest_id = -1;     // the newest run they were read with (-1: never read)
  std::optional<std::int64_t> m_bench_read_ms;
  std::atomic<bool> m_bench_asked{false};

  // The drift check (optimize.auto): its findings, kept between checks, and when it last ran (monotonic).
  std::vector<Finding> m_drift;
  std::optional<Timestamp> m_drift_at;

  // Notification and action state across ticks.
  std::map<std::pair<std::string, Detector>, Severity> m_active;  // (subject, detector) -> severity
  std::set<std::string> m_announced;              // servers whose refusal or dry run was already reported this episode
  std::unique_ptr<RateLimiter> m_limiter;         // findings: once per subject and detector per min_interval
  std::unique_ptr<RateLimiter> m_action_limiter;  // actions and OOM events: their own hourly cap
  std::map<std::pair<std::string, Detector>, Severity> m_told;  // what the receivers last heard, per finding
  std::map<std::pair<FixStep, ActionOutcome>, std::uint64_t> m_actions;
  std::map<std::pair<std::string, std::string>, std::uint64_t> m_notifications;
  std::uint64_t m_samples_total = 0;
  std::set<std::string> m_logged_problems;

  // Shared with other threads.
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  Pending m_pending;
  std::deque<JobResult> m_job_results;  // ended jobs' reports, not yet taken in
  std::shared_ptr<const DaemonSnapshot> m_snapshot;
  Duration m_interval{1000};
};

// `env` with the real senders where it leaves them empty: notifications through adapters::send_notification
// (5 s time-out), the log on stderr; every log line escaped to one line.
[[nodiscard]] WatchEnvironment with_defaults(WatchEnvironment env);

}  // namespace mw::engine
