// `memwarden deploy PROFILE|MODEL...` (issue 13): a model server whose memory limit comes from the plan,
// admitted only when the host can hold it beside what runs already, created through the Engine API, and
// started and waited for; a re-deploy keeps the old container until the new one answers. `export compose`
// uses the same preparation (prepare_deployment), so both give the same numbers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/container.hpp"
#include "core/deploy.hpp"
#include "core/plan.hpp"
#include "engine/plan.hpp"

namespace mw::engine {

// Whether the GPU of a hypothetical --vram goes into the spec when --gpus is not given: not for a real
// deployment (the host may have none), yes for an export written for another machine.
enum class GpuDefault { host, from_plan };

struct DeployOptions {
  PlanOptions plan;                  // the host root, --ram/--vram, the reserve, where models are found, docker_host
  std::vector<Profile> profiles;     // the built-in ones with the configuration's
  std::vector<std::string> targets;  // one profile, or one or more models (a profile made from "standard")
  std::string name;                  // --name; "" = the profile's
  std::optional<std::uint64_t> ctx;
  std::optional<std::uint32_t> parallel;
  std::optional<GpuRequest> gpus;  // nullopt: every GPU when the host has one, else none
  std::optional<std::uint16_t> port;
  NetworkKind network = NetworkKind::bridge;
  std::string bind_address = "127.0.0.1";
  bool exclusive = false;  // --exclusive (a profile in exclusive mode is exclusive anyway)
  GpuDefault gpu_default = GpuDefault::host;
};

// Everything decided before anything is changed.
struct PreparedDeployment {
  DeploySpec spec;
  std::optional<ModelPlan> plan;        // of the model that sets the limit
  std::vector<std::string> host_notes;  // where the host's figures came from
  HostBudget host;
  Admission admission;
  // The container of the same name, when there is one, and whether memwarden made it.
  std::optional<ContainerMeta> existing;
  // Running inference servers an exclusive deployment stops (unprotected ones only).
  std::vector<ContainerMeta> to_stop;
  std::vector<std::string> problems;     // what could not be read (containers, the port check); the rest goes on
  std::vector<std::string> store_notes;  // which store volume and why
  std::uint64_t headroom_percent = PlanSettings{}.headroom_percent;  // for the limits of the plan's suggestions
};

// Why a deployment cannot go ahead.
enum class DeployExit : int {
  ok = 0,
  failed = 1,   // the engine refused or failed; what was made was removed, the old container restored
  usage = 2,    // bad command line, unknown profile or model, name taken, port in use, image absent, no --yes
  partial = 3,  // a model could not be sized
  no_room = 4,  // the models do not fit, or the host cannot hold the limit beside the others (admission)
};

struct DeployError {
  DeployExit exit = DeployExit::usage;
  std::vector<std::string> lines;  // what went wrong and what would help, one line each
};

// The profile for `targets`: the named profile, or the models as a profile made from "standard" (named after
// the first model); the command line's --ctx, --parallel, --port and --gpus none applied.
[[nodiscard]] Expected<Profile, DeployError> resolve_profile(const DeployOptions& options);

// Plans, reads the engine's containers and volumes, chooses the store volume and the GPUs, checks the name
// and the port, and runs admission control. Reads only.
[[nodiscard]] Expected<PreparedDeployment, DeployError> prepare_deployment(const DeployOptions& options);

// The lines that say what would make room when admission refused (the containers to stop and what each
// frees, a smaller context or quantization from the plan), or why the models do not fit.
[[nodiscard]] std::vector<std::string> admission_advice(const PreparedDeployment& prepared);

enum class Confirm { no, yes };
enum class Existing { keep_foreign, replace };

struct RunOptions {
  std::chrono::milliseconds api_wait{std::chrono::seconds(120)};  // for the new server's API to answer
  std::chrono::seconds stop_timeout{30};
  Confirm confirm = Confirm::no;               // --yes: stop the other servers of an exclusive deployment
  Existing existing = Existing::keep_foreign;  // --replace: a container memwarden did not make
  std::string state_dir;                       // the journal's directory
};

struct DeployStep {
  std::string name;  // "stop", "rename", "create", "start", "wait_api", "remove_old", "rollback"
  std::string detail;
  bool ok = false;
};

struct DeployReport {
  std::string container_id;
  std::string api_url;
  std::vector<DeployStep> steps;
  std::vector<std::string> stopped;  // servers stopped for an exclusive deployment
  std::optional<std::int64_t> journal_id;
};

// What must hold before anything changes, checked again by run_deployment: admission, a foreign container of
// that name only with --replace, an exclusive deployment only with --yes, the image present. deploy --dry-run
// reports them the same way.
[[nodiscard]] Expected<void, DeployError> preflight(const PreparedDeployment& prepared, const DeployOptions& options,
                                                    const RunOptions& run);

// Creates, starts and waits for the server; a re-deploy renames the old one to NAME-old first and removes it
// once the new one answers, or brings it back when the new one fails. Journals what it did.
[[nodiscard]] Expected<DeployReport, DeployError> run_deployment(const PreparedDeployment& prepared,
                                                                 const DeployOptions& options, const RunOptions& run);

// `deploy --load`: each model loaded, and what the server and the container report beside the plan.
struct LoadComparison {
  std::string model;
  std::optional<std::uint64_t> size;             // /api/ps size
  std::optional<std::uint64_t> size_vram;        // /api/ps size_vram
  std::optional<std::uint64_t> container_bytes;  // the container's memory (anon + page cache) after the load
  std::uint64_t planned_ram = 0;                 // the plan's RAM side
  std::uint64_t planned_vram = 0;
  std::uint64_t limit = 0;
  std::optional<std::string> error;
  double load_seconds = 0;
};
[[nodiscard]] std::vector<LoadComparison> load_and_compare(const PreparedDeployment& prepared,
                                                           const DeployReport& report, const DeployOptions& options);

// `deploy --restore`: undoes every exclusive deployment not undone yet: stops the exclusive servers still
// running (only with Confirm::yes) and starts what they stopped; journaled as `restore`, done once it succeeds.
struct RestoreReport {
  std::vector<std::string> stopped;  // exclusive servers stopped first (with --yes)
  std::vector<std::string> started;
  std::vector<std::string> failed;     // "name: why"
  std::optional<std::string> nothing;  // why there was nothing to restore
};
[[nodiscard]] Expected<RestoreReport, DeployError> restore_stopped(const std::string& docker_host,
                                                                   const std::string& state_dir, Confirm confirm);

}  // namespace mw::engine
