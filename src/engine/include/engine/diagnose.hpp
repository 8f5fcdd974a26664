// `memwarden diagnose`: sample the servers over a window and run the detectors.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/diagnosis.hpp"
#include "engine/drift.hpp"
#include "engine/sampler.hpp"
#include "probes/cgroup.hpp"

namespace mw::engine {

// Samples memwarden serve stored, to start the window with (`diagnose --lookback`).
struct Lookback {
  Duration span{0};              // 0: none
  std::string state_dir;         // where samples.db lives
  std::int64_t now_wall_ms = 0;  // the wall clock at the start, to place stored samples on the sampler's clock
};

struct DiagnoseOptions {
  SamplerOptions sampler;
  Lookback lookback;
  Duration window{60'000};
  Duration interval{1'000};
  DiagnoseThresholds thresholds;
  std::optional<Severity> stop_on;  // end the window early at the first finding this severe
  // How a server without a limit is planned (its `unlimited` finding recommends that limit); tests script it.
  PlanServerLimit plan_limit{};  // empty: plan_server_limit
};

struct DiagnoseServerSummary {
  InferenceServer server;
  std::string api_version;
  std::optional<ServerSample> last;
};

struct DiagnoseResult {
  std::vector<DiagnoseServerSummary> servers;
  std::vector<Finding> findings;
  // (detector, subject) -> when a finding of it was first produced during the window.
  std::map<std::pair<Detector, std::string>, Timestamp> first_detected;
  std::vector<Error> problems;
  std::size_t samples = 0;
  std::size_t stored_samples = 0;  // taken from the history by --lookback
  Timestamp started{};
  Timestamp ended{};
  Duration interval{0};
  std::optional<probes::CgroupMode> cgroup_mode;  // nullopt: no layout found
  std::uint64_t base_allowance = 0;
};

// Documented exit codes of `memwarden diagnose` (docs/diagnose.md).
// A warning or critical finding wins over `partial`.
enum class DiagnoseExit : int { healthy = 0, internal = 1, usage = 2, partial = 3, warning = 4, critical = 5 };

[[nodiscard]] DiagnoseResult run_diagnose(const DiagnoseOptions& options, Clock& clock);

// What run_diagnose does, keeping the sampler for what comes next (`memwarden fix`): discover, take the
// look-back from the stored history, observe the window, summarise. `spare_samples` leaves room in each ring
// beyond the window.
[[nodiscard]] std::unique_ptr<Sampler> diagnose_window(const DiagnoseOptions& options, Clock& clock,
                                                       DiagnoseResult& result, std::size_t spare_samples);

// Samples `sampler` (already discovered) for the window, running the detectors after every sample;
// fills samples, findings, first_detected, started and ended. Shared with `memwarden fix`.
void observe(Sampler& sampler, const DiagnoseOptions& options, Clock& clock, DiagnoseResult& result);
// Puts the stored samples of the look-back span into the sampler's histories (before observe).
// Problems (no history, unreadable) are added to result.problems.
void seed_from_history(Sampler& sampler, const DiagnoseOptions& options, Clock& clock, DiagnoseResult& result);
// Fills servers, problems and cgroup_mode from the sampler.
void summarise(const Sampler& sampler, DiagnoseResult& result);
// The sampler's capacity for a window.
[[nodiscard]] std::size_t samples_for(const DiagnoseOptions& options);
[[nodiscard]] DiagnoseExit diagnose_exit_code(const DiagnoseResult& result);

}  // namespace mw::engine
