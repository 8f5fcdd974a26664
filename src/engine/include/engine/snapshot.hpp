// What `memwarden serve` knows after a sample: the one snapshot that /metrics,
// /api/v1/status and /api/v1/findings are rendered from. The daemon builds a new
// one after every sample and swaps it in under a lock; readers copy the pointer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/diagnosis.hpp"
#include "core/remediation.hpp"
#include "core/status.hpp"
#include "engine/bench_history.hpp"
#include "probes/cgroup.hpp"

namespace mw::engine {

// An inference server the daemon watches, with its newest sample.
struct ServedServer {
  InferenceServer server;
  std::string api_version;           // "" when the API never answered
  std::optional<ServerSample> last;  // nullopt before the first sample
  bool fixing = false;               // a fix job works on it: its API was not asked this round
};

// One detector's verdict on one subject, for every (server, detector) pair and ("host", "host-pressure").
struct DetectorState {
  std::string subject;
  Detector detector = Detector::idle_bloat;
  std::optional<Severity> severity;  // nullopt: nothing found
};

struct DaemonSnapshot {
  std::string version;           // memwarden's own
  std::int64_t taken_at_ms = 0;  // wall clock, unix ms, of the sample
  std::uint64_t samples_total = 0;
  double sample_seconds = 0;  // how long the last sample took
  std::uint64_t reserve_bytes = 0;

  StatusReport status;                            // host, Docker, every container (running), GPUs
  std::optional<probes::CgroupMode> cgroup_mode;  // nullopt before the layout is known
  std::vector<ServedServer> servers;
  std::vector<Finding> findings;  // active now, as run_detectors orders them
  std::vector<DetectorState> detectors;

  // Actions since the daemon started: (kind, outcome) -> count.
  std::map<std::pair<FixStep, ActionOutcome>, std::uint64_t> actions;
  // Notifications since start: (target name, "sent" | "failed" | "suppressed") -> count.
  std::map<std::pair<std::string, std::string>, std::uint64_t> notifications;

  bool history_ok = true;              // the sample store accepted the last sample
  std::optional<Error> history_error;  // why not (disk full, ...)

  // The newest benchmark figures of each model (memwarden bench), from the history database: read again at most
  // once a minute, and only when a new run was stored. Empty without runs or without history.
  std::vector<BenchModelFigures> bench;
};

}  // namespace mw::engine
