// The settings of `memwarden serve`, each with its default (docs/config.md). cli/config.hpp reads and
// writes them as YAML.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "adapters/state_dir.hpp"
#include "core/clock.hpp"
#include "core/diagnosis.hpp"
#include "core/profile.hpp"
#include "core/remediation.hpp"
#include "engine/defaults.hpp"

namespace mw::engine {

// What the daemon does about fixable findings. It only ever acts on opted-in servers.
enum class AutoFix { off, dry_run, on };  // YAML: off | dry-run | on
[[nodiscard]] const char* to_string(AutoFix mode);

// Whether the daemon reports drift from the optimized state (core/drift.hpp): off, or suggest (a finding with the
// command that fixes it; the daemon never changes a limit itself).
enum class OptimizeAuto { off, suggest };  // YAML: off | suggest
[[nodiscard]] const char* to_string(OptimizeAuto mode);

struct NotifyTargetConfig {
  std::string name;
  std::string kind;  // generic | ntfy | discord | slack
  std::string url;   // http:// or https://
};

struct ServeConfig {
  std::string source;  // the file it came from; "" = built-in defaults

  // top level
  Duration interval{1000};                // sample interval, > 0
  std::string listen = "127.0.0.1:9490";  // host:port of the HTTP endpoint
  bool allow_remote = false;              // needed to listen on a non-loopback address
  std::string token_file;                 // "" = no mutating endpoint (POST /api/v1/fix)
  std::string state_dir = adapters::StateDir::k_default_path;
  std::string docker_host;  // "" = $DOCKER_HOST, else unix:///var/run/docker.sock
  Duration docker_timeout{k_docker_timeout};
  Duration api_timeout{k_api_timeout};
  std::string nvml_library;          // "" = libnvidia-ml.so.1
  std::vector<std::string> servers;  // watch only these (names or id prefixes); empty = every inference server

  DiagnoseThresholds thresholds;  // section `detect:`

  // section `fix:`
  FixPolicy policy;  // allow list included
  AutoFix auto_fix = AutoFix::on;
  std::string systemd_unit = "ollama.service";

  // section `optimize:`
  OptimizeAuto optimize_auto = OptimizeAuto::suggest;
  Duration optimize_interval{600'000};  // the drift check's period, > 0

  // section `history:`
  Duration raw_retention{48LL * 3'600'000};
  Duration aggregate_retention{30LL * 86'400'000};
  std::uint64_t history_max_bytes = 256ULL << 20;
  std::uint64_t history_min_free = 64ULL << 20;  // samples stop before the file system is this full

  // section `notify:`
  std::vector<NotifyTargetConfig> notify_targets;
  Duration notify_min_interval{600'000};
  Severity notify_min_severity = Severity::warning;

  // section `profiles:` the deployment profiles the file writes, as overrides of the built-in ones: one
  // named like a built-in starts from it (the keys not written keep its values), a new one from Profile's
  // defaults. In the file's order; at most k_max_profiles.
  std::vector<Profile> profiles;
};

// The most profiles a configuration file may write.
inline constexpr std::size_t k_max_profiles = 64;

// The profiles every command uses: the built-in ones with the configured ones merged in
// (merge_profiles(builtin_profiles(), config.profiles)).
[[nodiscard]] std::vector<Profile> configured_profiles(const ServeConfig& config);

}  // namespace mw::engine
