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
#include "engine/config.hpp"

namespace mw::cli {

// The settings themselves live with the daemon that uses them (engine/config.hpp); this file reads and
// writes them as YAML.
using engine::AutoFix;
using engine::NotifyTargetConfig;
using engine::OptimizeAuto;
using engine::ServeConfig;

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

// `config` as a documented YAML configuration; parse_config of it gives `config` back (the source aside, and
// the seed_limit_bytes of a profile that is not built in: the file has no key for it).
// Written from the same key table the reader uses.
[[nodiscard]] std::string config_to_yaml(const ServeConfig& config);
// The table of one section ("" for the top level, "detect", "fix", "history", "notify"; "profiles": the keys
// of each profile, with Profile's defaults) as docs/config.md has it: key, default, meaning; "" for an
// unknown section. A unit test holds the docs to it.
[[nodiscard]] std::string config_reference_table(std::string_view section);
// Every key, as "interval", "detect.reserve", ..., "profiles.NAME.models".
[[nodiscard]] std::vector<std::string> config_keys();

// A documented configuration with every key at its default (packaging/memwarden.yaml).
// parse_config of it gives the defaults.
[[nodiscard]] std::string example_config();

}  // namespace mw::cli
