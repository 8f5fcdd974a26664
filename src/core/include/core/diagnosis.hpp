// Understanding an inference server's memory: what should be there, what is a
// leak, what is only page cache. Samples go in, findings with their evidence
// and a recommended action come out. Pure: timestamps come from the caller.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cgroup_memory.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/host_memory.hpp"
#include "core/ollama.hpp"
#include "core/process.hpp"
#include "core/ring.hpp"

namespace mw {

enum class ServerKind { container, host_process };

// An Ollama (or compatible) server memwarden watches.
struct InferenceServer {
  std::string name;  // container name, or "ollama (host, pid N)"
  ServerKind kind = ServerKind::container;
  std::string container_id;     // containers only
  std::int64_t pid = 0;         // main process, host pid
  std::string api_url;          // "http://127.0.0.1:11434"; "" when memwarden found no way to reach it
  std::string api_url_source;   // how it was found: "label memwarden.ollama.url", "published port 11434/tcp", ...
  std::string api_url_problem;  // why api_url cannot be used (a malformed label), one escaped line; "" when it can
  std::map<std::string, std::string> labels;  // containers: memwarden.enable, memwarden.protect, ...
  bool has_memory_limit = false;              // from the engine (HostConfig.Memory > 0)
  std::optional<std::uint64_t> memory_limit;  // bytes, when limited
  // The limit `memwarden optimize` would set on it (the plan of its installed models at its own settings,
  // capped so that the host keeps its reserve; engine::advise_server_limit), and what decided it; filled by the
  // engine for containers without a limit. nullopt with a basis: it could not be planned, and the basis says
  // why; nullopt with no basis: it was not planned (serve with optimize.auto: off).
  std::optional<std::uint64_t> planned_limit;
  std::string planned_basis;
};

// One observation of one server.
struct ServerSample {
  Timestamp at{};
  std::optional<CgroupMemory> memory;              // nullopt: cgroup unreadable this tick
  std::optional<std::vector<OllamaModel>> models;  // /api/ps; nullopt: the API did not answer
  std::optional<Error> api_error;                  // why models is nullopt
  std::vector<ProcessInfo> processes;              // every process in the server's cgroup
};

struct HostSample {
  Timestamp at{};
  std::optional<MemInfo> meminfo;
  std::optional<Pressure> pressure;  // nullopt: no PSI on this kernel, or unreadable this sample
  bool pressure_supported = true;    // false only when the kernel has no PSI
};

// Bytes one sample takes with what it owns (core/footprint.hpp), and the most a sample bounded as the
// sampler bounds it can take (k_max_models_kept, k_max_processes_kept and the field caps; held by unit
// tests; docs/serve.md).
[[nodiscard]] std::size_t footprint(const ServerSample& sample);
inline constexpr std::size_t k_max_sample_footprint = 32U << 10;

using ServerHistory = Ring<ServerSample>;
using HostHistory = Ring<HostSample>;

enum class Severity { info, warning, critical };
[[nodiscard]] const char* to_string(Severity severity);

// What memwarden fix (issue 4) can do about a finding.
enum class Remedy {
  none,
  unload_models,
  restart_server,
  kill_orphans,
  set_memory_limit,
  tune_server,
  free_host_memory
};
[[nodiscard]] const char* to_string(Remedy remedy);

// The detectors, in the order they run.
// `drift` is serve's alone (core/drift.hpp, optimize.auto): run_detectors does not run it.
enum class Detector { idle_bloat, growth, orphan_runner, unlimited, page_cache, api_unreachable, host_pressure, drift };
// "idle-bloat", "growth", "orphan-runner", "unlimited", "page-cache", "api-unreachable", "host-pressure",
// "optimize-drift": the names in reports, metrics, alerts and the journal.
[[nodiscard]] const char* to_string(Detector detector);
[[nodiscard]] std::optional<Detector> parse_detector(std::string_view name);
// Every detector, in the order they run.
inline constexpr std::array<Detector, 8> k_detectors{
    Detector::idle_bloat, Detector::growth,          Detector::orphan_runner, Detector::unlimited,
    Detector::page_cache, Detector::api_unreachable, Detector::host_pressure, Detector::drift};

struct Evidence {
  std::string name;  // "anon_bytes", "slope_mib_per_hour", ...
  double value = 0;
  std::string text;  // the same, for people: "25.1 GiB"
};

struct Finding {
  Detector detector = Detector::idle_bloat;
  Severity severity = Severity::info;
  std::string subject;  // a server's name, or "host"
  std::string summary;  // one sentence with the numbers
  std::vector<Evidence> evidence;
  Remedy remedy = Remedy::none;
  std::string action;  // the recommended action in plain words
  Timestamp window_start{};
  Timestamp window_end{};
};

// Thresholds, each with its default. Documented in docs/diagnose.md.
struct DiagnoseThresholds {
  std::uint64_t base_allowance = 1ULL << 30;  // what an idle server may hold beyond its models

  // idle-bloat: anon above expected + max(margin, margin_fraction × expected) for at least `hold`.
  std::uint64_t bloat_margin = 2ULL << 30;
  double bloat_margin_fraction = 0.5;
  Duration bloat_hold{10'000};

  // growth: Theil–Sen slope of anon with the loaded models unchanged.
  std::size_t growth_min_samples = 8;
  Duration growth_min_span{15'000};
  double growth_min_mib_per_hour = 256.0;
  std::uint64_t growth_min_rise = 32ULL << 20;   // the fit must rise at least this much over the span
  Duration growth_critical_forecast{3'600'000};  // out of memory sooner than this is critical

  // orphan-runner: runner processes holding memory while /api/ps lists no model.
  std::uint64_t orphan_min_rss = 64ULL << 20;
  Duration orphan_hold{2'000};

  // host-pressure
  std::uint64_t reserve = 4ULL << 30;
  std::uint64_t swap_warn = 1ULL << 30;
  double psi_full_avg10_pct = 10.0;

  // page-cache: explained when page cache is at least this share of usage and this large.
  double page_cache_fraction = 0.5;
  std::uint64_t page_cache_min = 256ULL << 20;
};

// Σ over loaded models of (size − size_vram) + the base allowance: the RAM a server should hold.
[[nodiscard]] std::uint64_t expected_ram(const std::vector<OllamaModel>& models, std::uint64_t base_allowance);

// The anon level above which idle-bloat counts: expected + max(margin, margin_fraction × expected).
[[nodiscard]] std::uint64_t bloat_threshold(const std::vector<OllamaModel>& models, const DiagnoseThresholds& t);

// Median of pairwise slopes (Theil–Sen), in y-units per millisecond; nullopt with fewer than 2 distinct times.
struct Point {
  double t_ms;
  double y;
};
[[nodiscard]] std::optional<double> theil_sen_slope(const std::vector<Point>& points);

// The detectors. Each looks at one server's history (and the host's), and
// returns its findings with their evidence; none when healthy.
[[nodiscard]] std::vector<Finding> detect_idle_bloat(const InferenceServer& server, const ServerHistory& history,
                                                     const DiagnoseThresholds& t);
[[nodiscard]] std::vector<Finding> detect_growth(const InferenceServer& server, const ServerHistory& history,
                                                 const HostHistory& host, const DiagnoseThresholds& t);
[[nodiscard]] std::vector<Finding> detect_orphan_runners(const InferenceServer& server, const ServerHistory& history,
                                                         const DiagnoseThresholds& t);
[[nodiscard]] std::vector<Finding> detect_unlimited(const InferenceServer& server, const ServerHistory& history,
                                                    const HostHistory& host, const DiagnoseThresholds& t);
[[nodiscard]] std::vector<Finding> detect_page_cache(const InferenceServer& server, const ServerHistory& history,
                                                     const DiagnoseThresholds& t);
[[nodiscard]] std::vector<Finding> detect_api_unreachable(const InferenceServer& server, const ServerHistory& history);
[[nodiscard]] std::vector<Finding> detect_host_pressure(const HostHistory& host, const DiagnoseThresholds& t);

// Every detector over every server, then the host; ordered by severity (critical first), then subject.
struct ServerState {
  InferenceServer server;
  const ServerHistory* history = nullptr;
};
[[nodiscard]] std::vector<Finding> run_detectors(const std::vector<ServerState>& servers, const HostHistory& host,
                                                 const DiagnoseThresholds& t);

}  // namespace mw
