// `memwarden fix`: diagnose, then the remediation ladder (unload, drain, restart,
// health wait, verify) on the servers that may be touched, each action journaled.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actions/command.hpp"
#include "actions/server_actions.hpp"
#include "adapters/docker.hpp"
#include "adapters/journal.hpp"
#include "adapters/ollama.hpp"
#include "core/remediation.hpp"
#include "engine/defaults.hpp"
#include "engine/diagnose.hpp"
#include "probes/cgroup.hpp"

namespace mw::engine {

enum class RunMode { live, dry_run };

struct FixOptions {
  DiagnoseOptions diagnose;  // which servers, the observation window, thresholds
  FixPolicy policy;
  Selection selection = Selection::automatic;  // --all, or servers named on the command line
  RunMode mode = RunMode::live;
  std::string own_container_id;  // never acted on
};

// What the fix run needs from the world, injectable for tests.
struct FixEnvironment {
  Clock& clock;
  std::function<std::int64_t()> wall_ms;  // unix ms, for the journal and budgets
  actions::ServerActions& actions;
  adapters::Journal* journal = nullptr;                      // required for live runs
  std::function<bool(const std::string& question)> confirm;  // for servers that did not opt in
};

// Whether FixTools connects to Docker for restarts.
enum class DockerUse { connect, none };

// The actions a fix acts through, and what they need: live (a Docker client when asked for, a process
// runner for systemd units) or dry-run. `memwarden fix` and serve's fix jobs set them up the same way.
// Not movable: the live actions point at the members.
class FixTools {
 public:
  struct Options {
    RunMode mode = RunMode::live;
    DockerUse docker = DockerUse::connect;
    std::string docker_host;
    std::chrono::milliseconds docker_timeout{k_docker_timeout};
    std::chrono::milliseconds api_timeout{k_api_timeout};
    std::string systemd_unit;  // for `ollama serve` on the host
  };
  // A Docker that cannot be reached is not an error here: it goes to `problems` (when given), and the
  // restart step reports it.
  explicit FixTools(const Options& options, std::vector<Error>* problems = nullptr);
  FixTools(const FixTools&) = delete;
  FixTools& operator=(const FixTools&) = delete;

  [[nodiscard]] actions::ServerActions& actions() { return *m_chosen; }

 private:
  actions::ProcessRunner m_runner;
  std::optional<adapters::DockerClient> m_docker;
  std::optional<actions::LiveActions> m_live;
  std::optional<actions::DryRunActions> m_dry;
  actions::ServerActions* m_chosen = nullptr;
};

struct FixStepReport {
  LadderStep step = LadderStep::unload;
  std::string detail;  // what happened, with numbers
  Duration took{0};
  bool ok = true;
};

struct ServerFixReport {
  InferenceServer server;
  std::vector<Finding> findings;  // the fixable ones
  Verdict verdict;
  ActionOutcome outcome = ActionOutcome::refused;
  std::optional<FixStep> kind;  // the deepest step taken or planned; nullopt before one is known
  std::string message;          // one sentence for people
  std::optional<std::uint64_t> before_anon;
  std::optional<std::uint64_t> after_anon;
  std::vector<FixStepReport> steps;
  std::vector<std::string> plan;  // dry run: each request or command, exactly
  std::optional<std::int64_t> journal_id;
  bool journal_unavailable = false;  // the journal could not record the action, so nothing was done
  Duration total{0};
};

// A decision of the policy on one server (decide_fix). With `first` set the policy allows a fix and
// run_ladder acts on the report; without it the report is final (left alone, no journal).
struct FixDecision {
  ServerFixReport report;
  std::optional<FixStep> first;     // the ladder's first step: unload, or straight to the restart
  std::vector<OllamaModel> loaded;  // the models the newest sample listed: the ones to unload
};

// What the ladder reads again of the server it works on.
struct ServerReading {
  std::optional<std::uint64_t> anon;               // nullopt: the cgroup could not be read
  std::optional<std::vector<OllamaModel>> models;  // nullopt: the API did not answer
};

// The ladder's only way to look at its server (settle, verify). `memwarden fix` and a job of
// `memwarden serve` alike give it a LiveGauge: the cgroup through probes and /api/ps through a client
// of its own, never a Sampler that another thread uses.
class ServerGauge {
 public:
  virtual ~ServerGauge() = default;
  // The server's anonymous memory and loaded models now.
  [[nodiscard]] virtual ServerReading measure() = 0;
  // Drops its kept-alive API connection, so that the drain does not count memwarden as a client.
  virtual void disconnect() = 0;
};

// Reads the server's cgroup (located again when the container's cgroup is gone: restarted, recreated) and
// asks its /api/ps through a client of its own.
class LiveGauge final : public ServerGauge {
 public:
  // Without a layout, the host's is detected from `root`.
  LiveGauge(probes::HostRoot root, std::optional<probes::CgroupLayout> layout, InferenceServer server,
            std::optional<probes::CgroupLocation> cgroup, std::chrono::milliseconds api_timeout);
  [[nodiscard]] ServerReading measure() override;
  void disconnect() override;

 private:
  probes::HostRoot m_root;
  std::optional<probes::CgroupLayout> m_layout;
  InferenceServer m_server;
  std::optional<probes::CgroupLocation> m_cgroup;
  std::unique_ptr<adapters::OllamaClient> m_api;  // null without a usable address
};

struct FixResult {
  DiagnoseResult diagnosis;
  std::vector<ServerFixReport> servers;  // servers with a fixable finding
  std::vector<Error> problems;
};

// Documented exit codes of `memwarden fix` (docs/fix.md).
enum class FixExit : int {
  ok = 0,  // nothing to fix, or every fix verified
  internal = 1,
  usage = 2,
  partial = 3,     // nothing fixable found, but a source was missing
  left_alone = 4,  // something needed fixing and policy left it (not opted in, cooldown, budget, declined, drain)
  failed = 5,      // an action failed or did not verify (the API did not come back, the container vanished)
  journal = 6,     // the journal could not be written: nothing was done
};

[[nodiscard]] FixResult run_fix(const FixOptions& options, FixEnvironment& env);
// The policy for one server, given the findings of the moment and its newest sample (`last`): opt-in,
// protect, self, cooldown and budget from env.journal's past actions, the question for servers that did
// not opt in (env.confirm). Acts on nothing. nullopt when no finding of the server is one a fix acts on.
[[nodiscard]] std::optional<FixDecision> decide_fix(const FixOptions& options, FixEnvironment& env,
                                                    const InferenceServer& server, const ServerReading& last,
                                                    const std::vector<Finding>& findings, std::vector<Error>& problems);
// The ladder for a decision with `first` set: unload, settle, drain, restart, health wait, verify; each
// step journaled in env.journal (a live run needs one). `gauge` measures the server again.
void run_ladder(const FixOptions& options, FixEnvironment& env, ServerGauge& gauge, FixDecision& decision);
// decide_fix, then run_ladder with a LiveGauge, for a server of `sampler` (whose own API connection to it is
// closed first, so that the drain does not wait for it).
[[nodiscard]] std::optional<ServerFixReport> fix_server(const FixOptions& options, FixEnvironment& env,
                                                        Sampler& sampler, WatchedServer& watched,
                                                        const std::vector<Finding>& findings,
                                                        std::vector<Error>& problems);
[[nodiscard]] FixExit fix_exit_code(const FixResult& result);

// memwarden's own container id, from <root>/proc/self/cgroup; "" when not in a container.
[[nodiscard]] std::string own_container_id(const probes::HostRoot& root);

}  // namespace mw::engine
