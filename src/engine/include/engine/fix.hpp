// `memwarden fix`: diagnose, then the remediation ladder (unload, drain, restart,
// health wait, verify) on the servers that may be touched, each action journaled.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actions/server_actions.hpp"
#include "adapters/journal.hpp"
#include "core/remediation.hpp"
#include "engine/diagnose.hpp"

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

struct FixStepReport {
  std::string name;    // drain, unload, settle, restart, health_wait, verify
  std::string detail;  // what happened, with numbers
  Duration took{0};
  bool ok = true;
};

struct ServerFixReport {
  InferenceServer server;
  std::vector<Finding> findings;  // the fixable ones
  Verdict verdict;
  adapters::ActionOutcome outcome = adapters::ActionOutcome::refused;
  std::string kind;     // "restart" or "unload" (the deepest step taken or planned)
  std::string message;  // one sentence for people
  std::optional<std::uint64_t> before_anon;
  std::optional<std::uint64_t> after_anon;
  std::vector<FixStepReport> steps;
  std::vector<std::string> plan;  // dry run: each request or command, exactly
  std::optional<std::int64_t> journal_id;
  bool journal_unavailable = false;  // the journal could not record the action, so nothing was done
  Duration total{0};
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
// The policy and the ladder for one server, given the findings of the moment (the daemon calls this after
// each sample). nullopt when no finding of the server is one fix can act on.
[[nodiscard]] std::optional<ServerFixReport> fix_server(const FixOptions& options, FixEnvironment& env,
                                                        Sampler& sampler, WatchedServer& watched,
                                                        const std::vector<Finding>& findings,
                                                        std::vector<Error>& problems);
[[nodiscard]] FixExit fix_exit_code(const FixResult& result);

// memwarden's own container id, from <root>/proc/self/cgroup; "" when not in a container.
[[nodiscard]] std::string own_container_id(const probes::HostRoot& root);

}  // namespace mw::engine
