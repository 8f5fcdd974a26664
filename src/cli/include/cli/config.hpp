// The configuration file of `memwarden serve` (YAML, docs/config.md): every
// setting with its default, and a parser that reports every mistake at once,
// each with its file, line and column.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/diagnosis.hpp"
#include "core/expected.hpp"
#include "core/remediation.hpp"

namespace mw::cli {

// What the daemon does about fixable findings. It only ever acts on opted-in servers.
enum class AutoFix { off, dry_run, on };  // YAML: off | dry-run | on
[[nodiscard]] const char* to_string(AutoFix mode);

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
  std::string state_dir = "/var/lib/memwarden";
  std::string docker_host;  // "" = $DOCKER_HOST, else unix:///var/run/docker.sock
  Duration docker_timeout{2000};
  Duration api_timeout{2000};
  std::string nvml_library;          // "" = libnvidia-ml.so.1
  std::vector<std::string> servers;  // watch only these (names or id prefixes); empty = every inference server

  DiagnoseThresholds thresholds;  // section `detect:`

  // section `fix:`
  FixPolicy policy;  // allow list included
  AutoFix auto_fix = AutoFix::on;
  std::string systemd_unit = "ollama.service";

  // section `history:`
  Duration raw_retention{48LL * 3'600'000};
  Duration aggregate_retention{30LL * 86'400'000};
  std::uint64_t history_max_bytes = 256ULL << 20;
  std::uint64_t history_min_free = 64ULL << 20;  // samples stop before the file system is this full

  // section `notify:`
  std::vector<NotifyTargetConfig> notify_targets;
  Duration notify_min_interval{600'000};
  Severity notify_min_severity = Severity::warning;
};

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 = no position
  int column = 0;  // 1-based
  std::string message;

  // "file:line:column: message", or "file: message" when there is no position.
  [[nodiscard]] std::string text() const;
};

using ConfigResult = Expected<ServeConfig, std::vector<ConfigError>>;

// The largest configuration file memwarden reads.
inline constexpr std::size_t k_max_config_bytes = 1U << 20;

// Parses a configuration; `file_name` names it in errors and becomes ServeConfig::source.
// Every error is collected (unknown keys, wrong types, bad values), in document order.
// An empty document means all defaults.
[[nodiscard]] ConfigResult parse_config(std::string_view yaml, const std::string& file_name);

// Reads and parses `file`; a file that cannot be read gives one ConfigError naming it.
[[nodiscard]] ConfigResult load_config(const std::filesystem::path& file);

// `config` as a documented YAML configuration; parse_config of it gives `config` back (source aside).
[[nodiscard]] std::string config_to_yaml(const ServeConfig& config);

// A documented configuration with every key at its default (packaging/memwarden.yaml).
// parse_config of it gives the defaults.
[[nodiscard]] std::string example_config();

}  // namespace mw::cli
