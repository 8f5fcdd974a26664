// The command line as data: parse_command_line turns memwarden's arguments into one typed command (the
// engine's option structs, filled in) or a usage error, and reads nothing but its arguments and the
// Environment it is given. main.cpp runs the command.
//
// Every default lives once, in these structs or in the engine's option structs they hold; the help text
// shows those values. docs/cli.md describes the options, their ranges and the usage errors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "adapters/state_dir.hpp"
#include "cli/config.hpp"
#include "cli/deploy_export.hpp"
#include "cli/exports.hpp"
#include "cli/history.hpp"
#include "core/clock.hpp"
#include "core/expected.hpp"
#include "engine/bench.hpp"
#include "engine/deploy.hpp"
#include "engine/diagnose.hpp"
#include "engine/fix.hpp"
#include "engine/model_test.hpp"
#include "engine/optimize.hpp"
#include "engine/plan.hpp"
#include "engine/ram_test.hpp"
#include "engine/status.hpp"
#include "engine/vram_test.hpp"
#include "probes/host_root.hpp"

namespace mw::cli {

// "memwarden --version" prints "memwarden <this>".
[[nodiscard]] std::string_view program_version();

// The configuration file serve and notify read when no --config is given (serve: only if it exists).
inline constexpr const char* k_default_config_file = "/etc/memwarden/memwarden.yaml";

// What the parser may know of the process's surroundings, read by the caller (main) and injected, so that
// parsing is pure. An unset variable is "".
struct Environment {
  std::string docker_host;            // $DOCKER_HOST: the Docker address when no --docker-host is given
  std::string ollama_models;          // $OLLAMA_MODELS: where plan looks for the Ollama model store
  std::string home;                   // $HOME: plan's ~/.ollama/models
  std::filesystem::path working_dir;  // a relative plan --models-dir is relative to it
  std::int64_t now_wall_ms = 0;       // the wall clock (unix ms): history --since, diagnose --lookback
};

// A command line that cannot be run: `text` goes to stderr as it is (one line naming the option, or
// CLI11's own message), and memwarden exits with k_exit_code.
struct UsageError {
  static constexpr int k_exit_code = 2;
  std::string text;
};

// How a report is printed.
enum class ReportFormat { text, json };

// --help, --version (anywhere): `text` goes to stdout, exit 0.
struct HelpCommand {
  std::string text;
};

struct StatusCommand {
  engine::StatusOptions options;
  ReportFormat format = ReportFormat::text;
};

struct DiagnoseCommand {
  engine::DiagnoseOptions options;  // --state-dir reaches it as options.lookback.state_dir (with --lookback)
  ReportFormat format = ReportFormat::text;
};

// Who says yes to acting on a named server that did not opt in.
enum class Confirmation { ask_on_terminal, assume_yes };

// fix observes for a shorter window than diagnose: long enough for the 10 s hold of idle bloat.
[[nodiscard]] engine::FixOptions default_fix_options();

struct FixCommand {
  engine::FixOptions options = default_fix_options();
  ReportFormat format = ReportFormat::text;
  adapters::StateDir state_dir;  // where the journal is
  Confirmation confirmation = Confirmation::ask_on_terminal;
  std::string systemd_unit = engine::ServeConfig{}.systemd_unit;  // the same default as serve's fix.systemd_unit
};

// The journal and history read from adapters::StateDir's default directory.
[[nodiscard]] HistoryOptions default_history_options();

struct HistoryCommand {
  HistoryOptions options = default_history_options();
};

// What serve's command line sets over the configuration file, at start and again at every reload.
struct ServeOverrides {
  std::optional<std::string> listen;
  std::optional<std::string> state_dir;
  std::optional<Duration> interval;
  std::optional<AutoFix> auto_fix;  // --dry-run, --no-fix
  std::string docker_host;          // --docker-host; "" = the file's docker_host, else $DOCKER_HOST
  std::string env_docker_host;      // $DOCKER_HOST as memwarden was started with
};
// The command line wins over the file.
void apply_overrides(const ServeOverrides& overrides, ServeConfig& config);

struct ServeCommand {
  probes::HostRoot root;
  std::string config_file;  // --config; "" = k_default_config_file if it exists, else the built-in defaults
  ServeOverrides overrides;
};

enum class CheckConfigMode { validate, print_default };
struct CheckConfigCommand {
  std::string file = k_default_config_file;
  CheckConfigMode mode = CheckConfigMode::validate;
};

// notify --test
struct NotifyTestCommand {
  std::string config_file;  // "" = k_default_config_file if it exists
};

struct PlanCommand {
  engine::PlanOptions options;
  ReportFormat format = ReportFormat::text;
};

// profiles: the configured profiles planned on this host.
struct ProfilesCommand {
  engine::PlanOptions plan;
  std::string config_file;  // "" = k_default_config_file if it exists
  ReportFormat format = ReportFormat::text;
};

enum class DeployAction { deploy, dry_run, restore };
enum class LoadCheck { none, load };

struct DeployCommand {
  engine::DeployOptions options;  // profiles filled in from the configuration when it runs
  engine::RunOptions run{};
  DeployAction action = DeployAction::deploy;
  LoadCheck load = LoadCheck::none;
  std::string config_file;
  ReportFormat format = ReportFormat::text;
};

// optimize [CONTAINER...] [--for MODEL...] [--yes [--recreate]] | optimize --undo
enum class OptimizeAction { show, apply, undo };
struct OptimizeCommand {
  engine::OptimizeOptions options;                 // profiles filled in from the configuration when it runs
  engine::FixOptions fix = default_fix_options();  // step 2: the fix ladder on the opted-in servers
  OptimizeAction action = OptimizeAction::show;
  std::string config_file;
  std::string systemd_unit = engine::ServeConfig{}.systemd_unit;
  ReportFormat format = ReportFormat::text;
};

// test model MODEL...
struct TestModelCommand {
  engine::ModelTestOptions options;  // stop is filled in when it runs
  ReportFormat format = ReportFormat::text;
};

// test --history
struct TestHistoryCommand {
  std::string state_dir;
  std::size_t limit = 50;
  ReportFormat format = ReportFormat::text;
};

// bench MODEL... | bench --list | bench --compare A B | bench --report RUN | bench --annotations RUN
enum class BenchAction { run, list, compare, report, annotations };
enum class StoreRun { store, no_store };
struct BenchCommand {
  engine::BenchOptions options;  // stop and progress are filled in when it runs
  BenchAction action = BenchAction::run;
  std::string state_dir;
  StoreRun store = StoreRun::store;
  std::size_t limit = 50;             // --list
  std::vector<std::int64_t> run_ids;  // --compare: two; --report, --annotations: one
  std::string csv_file;               // "" = none
  std::string html_file;
  ReportFormat format = ReportFormat::text;
};

// test ram SIZE...
struct TestRamCommand {
  engine::RamTestOptions options;  // helper_path and stop are filled in when it runs
  ReportFormat format = ReportFormat::text;
};

// test vram SIZE
struct TestVramCommand {
  engine::VramTestOptions options;  // stop is filled in when it runs
  ReportFormat format = ReportFormat::text;
};

enum class ExportTarget { compose, portainer_templates };

// export compose / export portainer-templates
struct ExportDeployCommand {
  engine::DeployOptions options;  // targets: the profiles (all of them for templates when none is named)
  ExportTarget target = ExportTarget::compose;
  std::string out;       // compose: the file ("" = standard output); templates: the directory
  std::string repo_url;  // templates
  GpuRuntime gpu_runtime = GpuRuntime::nvidia;
  std::string config_file;
};

struct PrometheusRulesCommand {
  RulesOptions options;
};

struct GrafanaCommand {};

using Command = std::variant<HelpCommand, StatusCommand, DiagnoseCommand, FixCommand, HistoryCommand, ServeCommand,
                             CheckConfigCommand, NotifyTestCommand, PlanCommand, ProfilesCommand, DeployCommand,
                             ExportDeployCommand, TestRamCommand, TestVramCommand, TestModelCommand, TestHistoryCommand,
                             BenchCommand, OptimizeCommand, PrometheusRulesCommand, GrafanaCommand>;

// `args` as main receives them: args[0] is the program's name (the help text's usage line shows it).
[[nodiscard]] Expected<Command, UsageError> parse_command_line(const std::vector<std::string>& args,
                                                               const Environment& env);

// A duration and a size as the help text shows defaults, in the form the options read back: "2s", "120s",
// "10m", "1h", "500ms"; "4G", "457M", "1024" (bytes).
[[nodiscard]] std::string option_duration(Duration d);
[[nodiscard]] std::string option_size(std::uint64_t bytes);

}  // namespace mw::cli
