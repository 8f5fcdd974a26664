// `memwarden optimize` (issue 16): the seed's full-optimization sequence. Audit and diagnose, fix the opted-in
// servers that need it, right-size every inference server from the plan of the models it serves and every
// other unlimited container from its stored peak, recommend (and with --recreate apply) the server settings
// that make the models fit, then verify. Every change is journaled with the value before it, and --undo puts
// the previous values back. Reads first (prepare_optimize), changes only what was shown (apply_optimize).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/container.hpp"
#include "core/optimize.hpp"
#include "core/profile.hpp"
#include "engine/defaults.hpp"
#include "engine/fix.hpp"
#include "engine/limit_advice.hpp"
#include "engine/model_test.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

enum class SettingsUse { recommend, recreate };  // --recreate applies the settings by re-creating the server

struct OptimizeOptions {
  probes::HostRoot root;
  std::string docker_host;
  std::chrono::milliseconds docker_timeout{k_docker_timeout};
  std::chrono::milliseconds api_timeout{std::chrono::seconds(5)};
  std::string state_dir;                // the journal and the stored history
  std::vector<std::string> for_models;  // --for
  std::vector<std::string> named;       // containers named on the command line: only these change (consent)
  std::uint64_t reserve = 4ULL << 30;
  std::vector<Profile> profiles;
  std::string nvml_library;
  std::optional<std::uint64_t> vram;  // hypothetical GPU (tests)
  SettingsUse settings = SettingsUse::recommend;
  std::string own_container_id;
  std::chrono::milliseconds ready_wait{std::chrono::seconds(120)};  // a re-created server's API
  std::int64_t now_wall_ms = 0;                                     // for the stored history's span
  // Servers the fix step would act on (a dry run): what they use now is left out of their floor, since the fix
  // comes first and the limit is planned again after it.
  std::vector<std::string> fixing;
};

enum class ChangeKind { limit, settings };
[[nodiscard]] const char* to_string(ChangeKind kind);  // "limit", "settings"

// One container as optimize sees it, and what it decided.
struct OptimizeItem {
  std::string id;
  std::string name;
  bool server = false;                 // an inference server
  bool allowed = false;                // opted in (memwarden.enable=true) or named, not protected, not memwarden's own
  std::string not_allowed;             // why not, when not
  std::optional<std::uint64_t> limit;  // HostConfig.Memory now; nullopt: none
  std::optional<std::int64_t> memory_swap;
  std::optional<std::uint64_t> use;    // working set now
  std::optional<std::uint64_t> floor;  // the lowest safe limit now
  std::string basis;                   // where the wanted limit came from
  LimitDecision decision;
  std::vector<SettingChange> settings;    // servers: the settings that make the models fit
  std::optional<ServerLimitPlan> served;  // servers: the plan of the models
};

struct HostFigures {
  std::optional<std::uint64_t> mem_total;
  std::optional<std::uint64_t> mem_available;
  std::optional<std::uint64_t> swap_used;
};

// A model of --for against the host and its server's new limit.
struct ForModel {
  std::string name;
  std::optional<ModelPlan> plan;
  std::string error;
};

struct OptimizePlan {
  HostFigures host;
  std::uint64_t reserve = 0;
  std::optional<CgroupVersion> cgroup_version;
  std::vector<OptimizeItem> items;  // every running container, servers first
  std::vector<ForModel> for_models;
  std::vector<std::string> problems;  // what could not be read; the rest goes on (exit 3)
  std::vector<std::string> notes;     // what was left out on purpose
  // Σ of the limits after the changes (unlimited containers count their use) against MemTotal − reserve.
  std::uint64_t limits_total = 0;
  std::optional<bool> reserve_holds;  // nullopt: a container's use is unknown (named in problems)
};

// Reads only: the inventory, the host, each server's models and each container's stored history.
[[nodiscard]] Expected<OptimizePlan, Error> prepare_optimize(const OptimizeOptions& options);

// The changes the plan makes (allowed or not), in the order they are applied: limits first, then settings.
struct PlannedChange {
  ChangeKind kind = ChangeKind::limit;
  const OptimizeItem* item = nullptr;
};
[[nodiscard]] std::vector<PlannedChange> planned_changes(const OptimizePlan& plan, SettingsUse settings);

enum class ChangeOutcome { applied, failed, skipped };
[[nodiscard]] const char* to_string(ChangeOutcome outcome);

struct AppliedChange {
  ChangeKind kind = ChangeKind::limit;
  std::string name;
  ChangeOutcome outcome = ChangeOutcome::skipped;
  std::string detail;  // what happened in plain words
  std::optional<std::int64_t> journal_id;
  std::optional<std::uint64_t> memory_after;  // read back from the engine
  std::optional<std::uint64_t> cgroup_after;  // read back from the cgroup's limit file
};

struct OptimizeApply {
  std::vector<AppliedChange> changes;
  bool interrupted = false;
  std::optional<std::string> journal_problem;  // the journal could not be opened: nothing was changed
};

// Applies the allowed changes of the plan, each journaled before it starts; a container gone or a refusal is
// reported and the rest goes on. Stops between changes when `stop` is set.
[[nodiscard]] OptimizeApply apply_optimize(const OptimizePlan& plan, const OptimizeOptions& options,
                                           const std::atomic<bool>* stop);

// Documented exit codes (docs/optimize.md).
enum class OptimizeExit : int {
  ok = 0,      // nothing to change, the changes listed (without --yes), or every change applied
  failed = 1,  // a change failed or was refused
  usage = 2,
  partial = 3,  // something could not be read or planned (the rest went on); --undo with nothing to undo
  no_fit = 4,   // a --for model does not fit this host
  journal = 6,  // the journal could not be written: nothing was changed
  interrupted = 130,
};
// --undo: every journaled optimize change not undone yet, newest first, put back to its value before: one
// container at a time, all its records at once. Stops between containers when `stop` is set.
struct UndoReport {
  std::vector<AppliedChange> changes;
  std::vector<std::string> notes;  // containers brought back from an interrupted re-create
  bool interrupted = false;
  std::optional<std::string> busy;     // another optimize is changing something now: nothing was undone
  std::optional<std::string> nothing;  // why there was nothing to undo
  std::optional<std::string> journal_problem;
  std::optional<std::int64_t> journal_id;
};
[[nodiscard]] UndoReport undo_optimize(const OptimizeOptions& options, const std::atomic<bool>* stop = nullptr);
[[nodiscard]] OptimizeExit undo_exit(const UndoReport& report);

// Each running container's limit and use, and the host's figures, at one moment: the before/after table.
struct FiguresRow {
  std::string name;
  std::optional<std::uint64_t> limit;  // nullopt: none
  std::optional<std::uint64_t> use;    // working set
};
struct Figures {
  HostFigures host;
  std::vector<FiguresRow> rows;
};
[[nodiscard]] Figures read_figures(const OptimizeOptions& options);

// The whole sequence. `fix` runs step 2 (the fix ladder, live with --yes, else as a dry run) and is given by the
// command, which owns the journal and the actions; `readiness` runs `test model` (plan only) for the --for
// models once the changes are made.
enum class OptimizeMode { show, apply };
struct OptimizeRun {
  std::optional<FixResult> fix;
  Figures before;
  std::optional<OptimizePlan> plan;
  std::optional<Error> plan_error;
  OptimizeApply applied;
  std::optional<Figures> after;
  std::optional<ModelTestResult> readiness;
  std::optional<Error> readiness_error;
  OptimizeMode mode = OptimizeMode::show;
};
[[nodiscard]] OptimizeRun run_optimize(const OptimizeOptions& options, OptimizeMode mode,
                                       const std::function<FixResult()>& fix, const std::atomic<bool>* stop);

[[nodiscard]] OptimizeExit optimize_exit(const OptimizeRun& run);

}  // namespace mw::engine
