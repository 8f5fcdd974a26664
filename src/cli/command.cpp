// The command line as data (command.hpp): CLI11 reads the words into texts, and each command's texts are
// converted, in a fixed order, into the engine's option structs. Nothing here touches the host.
#include "cli/command.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <sstream>
#include <utility>

#include "adapters/docker.hpp"
#include "core/bytes.hpp"
#include "core/duration.hpp"
#include "core/estimate.hpp"
#include "core/text.hpp"

namespace mw::cli {

std::string_view program_version() {
  return MEMWARDEN_VERSION;
}

engine::FixOptions default_fix_options() {
  engine::FixOptions o;
  o.diagnose.window = Duration{12'000};
  return o;
}

HistoryOptions default_history_options() {
  HistoryOptions o;
  o.state_dir = adapters::StateDir().path();
  return o;
}

void apply_overrides(const ServeOverrides& overrides, ServeConfig& config) {
  if (overrides.listen) {
    config.listen = *overrides.listen;
  }
  if (overrides.state_dir) {
    config.state_dir = *overrides.state_dir;
  }
  if (overrides.interval) {
    config.interval = *overrides.interval;
  }
  if (overrides.auto_fix) {
    config.auto_fix = *overrides.auto_fix;
  }
  config.docker_host = adapters::docker_host_address(
      overrides.docker_host.empty() ? std::string_view(config.docker_host) : std::string_view(overrides.docker_host),
      overrides.env_docker_host.c_str());
}

std::string option_duration(Duration d) {
  const auto ms = d.count() < 0 ? 0 : d.count();
  // Seconds below ten minutes, as time-outs are written ("120s"); whole minutes and hours above.
  if (ms != 0 && ms % 3'600'000 == 0) {
    return fmt::format("{}h", ms / 3'600'000);
  }
  if (ms >= 600'000 && ms % 60'000 == 0) {
    return fmt::format("{}m", ms / 60'000);
  }
  if (ms % 1000 == 0) {
    return fmt::format("{}s", ms / 1000);
  }
  return fmt::format("{}ms", ms);
}

std::string option_size(std::uint64_t bytes) {
  constexpr std::array<char, 6> k_units = {'K', 'M', 'G', 'T', 'P', 'E'};
  if (bytes == 0 || bytes % 1024 != 0) {
    return fmt::format("{}", bytes);
  }
  std::size_t unit = 0;
  bytes /= 1024;
  while (unit + 1 < k_units.size() && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{}{}", bytes, k_units[unit]);
}

namespace {

// The numeric options and their ranges (docs/cli.md). Decimal digits only: no sign, no "0x", no exponent,
// no nan or inf; "010" is 10.
struct WholeRange {
  std::uint64_t min;
  std::uint64_t max;
};
struct NumberRange {
  double min;
  double max;
};
constexpr WholeRange k_budget_range{0, 1000};                  // fix --budget: restarts per server per hour
constexpr WholeRange k_limit_range{0, 1'000'000};              // history --limit: records; 0 is all
constexpr WholeRange k_ctx_range{1, 1ULL << 24};               // plan --ctx: tokens
constexpr WholeRange k_parallel_range{1, 256};                 // plan --parallel: slots
constexpr WholeRange k_headroom_range{0, 1000};                // plan --headroom: percent
constexpr WholeRange k_port_range{1, 65535};                   // deploy --port
constexpr NumberRange k_growth_min_range{0.1, 1048576};        // diagnose/fix --growth-min: MiB per hour
constexpr NumberRange k_psi_range{0, 100};                     // test ram --psi-full-max: percent
constexpr WholeRange k_test_history_range{1, 10000};           // test --history --limit: loads
constexpr WholeRange k_cuda_ordinal_range{0, 1023};            // test vram --gpu: a CUDA ordinal
constexpr WholeRange k_bench_runs_range{1, k_max_bench_runs};  // bench --runs: requests per client and level
constexpr WholeRange k_bench_warmup_range{0, 100};             // bench --warmup: requests
constexpr WholeRange k_bench_tokens_range{1, 32768};           // bench --prompt-tokens, --max-tokens
constexpr WholeRange k_celsius_range{1, 150};                  // bench --temperature-limit
constexpr WholeRange k_percent_range{0, 100};                  // bench --gpu-target
constexpr WholeRange k_bench_run_id_range{1, 1ULL << 62};      // bench --compare, --report: a run's id
constexpr WholeRange k_bench_list_range{1, 10000};             // bench --list --limit

struct LoadingName {
  const char* name;
  WeightLoading loading;
};
constexpr std::array<LoadingName, 3> k_loadings = {
    {{"mmap", WeightLoading::mmap}, {"no-mmap", WeightLoading::no_mmap}, {"mlock", WeightLoading::mlock}}};
constexpr std::array<const char*, 5> k_model_sources = {"auto", "file", "store", "server", "catalog"};

std::string loading_name(WeightLoading loading) {
  for (const auto& l : k_loadings) {
    if (l.loading == loading) {
      return l.name;
    }
  }
  return "";
}

std::string model_source_name(engine::ModelSource source) {
  for (const char* name : k_model_sources) {
    if (engine::parse_model_source(name) == source) {
      return name;
    }
  }
  return "";
}

// Converts option texts in the order they are checked. The first failure is kept and every later
// conversion is skipped, so the usage error names the first bad option.
class Conversions {
 public:
  template <class Out>
  void duration(std::string_view text, const char* option, Out& out) {
    convert([&] { return parse_duration(text, option); }, out);
  }
  // A duration that must be longer than 0 (an interval, a time-out).
  template <class Out>
  void positive_duration(std::string_view text, const char* option, Out& out) {
    Duration d{0};
    duration(text, option, d);
    if (!m_error && d.count() <= 0) {
      fail(option, "must be longer than 0");
    }
    if (!m_error) {
      out = d;
    }
  }
  template <class Out>
  void size(std::string_view text, const char* option, Out& out) {
    convert([&] { return parse_size(text, option); }, out);
  }
  template <class Out>
  void whole(std::string_view text, const char* option, WholeRange range, Out& out) {
    convert([&] { return parse_unsigned(text, range.min, range.max, option); }, out);
  }
  void number(std::string_view text, const char* option, NumberRange range, double& out) {
    convert([&] { return parse_finite_double(text, range.min, range.max, option); }, out);
  }
  void fail(std::string source, std::string message) {
    if (!m_error) {
      m_error = Error{std::move(source), std::move(message)};
    }
  }

  [[nodiscard]] bool failed() const { return m_error.has_value(); }
  // "memwarden: <option>: <why>", one line.
  [[nodiscard]] UsageError usage_error() const {
    return UsageError{fmt::format("memwarden: {}\n", m_error ? m_error->line() : std::string("bad command line"))};
  }

 private:
  // Runs `parse` unless an earlier conversion failed; keeps its value in `out`, or its error.
  template <class Parse, class Out>
  void convert(Parse parse, Out& out) {
    if (m_error) {
      return;
    }
    if (auto parsed = parse()) {
      out = *parsed;
    } else {
      m_error = parsed.error();
    }
  }

  std::optional<Error> m_error;
};

// The command, or the first conversion that failed.
template <class C>
Expected<Command, UsageError> finish(const Conversions& conversions, C command) {
  if (conversions.failed()) {
    return unexpected(conversions.usage_error());
  }
  return Command{std::move(command)};
}

[[nodiscard]] bool given(const CLI::App* app, const std::string& option) {
  return app->count(option) > 0;
}

// The options diagnose and fix share, as typed.
struct DiagnoseTexts {
  CLI::App* app = nullptr;
  std::vector<std::string> targets;
  bool json = false;
  std::string docker_host;
  std::string timeout;
  std::string api_timeout;
  std::string window;
  std::string interval;
  std::string base;
  std::string reserve;
  std::string hold;
  std::string bloat_margin;
  std::string growth_min;
  std::string lookback;
  std::string state_dir;

  void add_to(CLI::App* sub, const engine::DiagnoseOptions& defaults) {
    app = sub;
    const auto& t = defaults.thresholds;
    sub->add_option("CONTAINER", targets, "Containers (names or id prefixes); default: every inference server");
    sub->add_flag("--json", json, "Print JSON (schemas in docs/)");
    sub->add_option("--window", window, "How long to sample; 0 takes one sample")
        ->default_str(option_duration(defaults.window));
    sub->add_option("--interval", interval, "Time between samples")->default_str(option_duration(defaults.interval));
    sub->add_option("--docker-host", docker_host, "Docker address (default: $DOCKER_HOST, else the socket)");
    sub->add_option("--timeout", timeout, "Time-out for each Docker request")
        ->default_str(option_duration(defaults.sampler.docker_timeout));
    sub->add_option("--api-timeout", api_timeout, "Time-out for each Ollama API request")
        ->default_str(option_duration(defaults.sampler.api_timeout));
    sub->add_option("--base-allowance", base, "RAM an idle server may hold beyond its models")
        ->default_str(option_size(t.base_allowance));
    sub->add_option("--reserve", reserve, "RAM the host keeps for its monitoring stack")
        ->default_str(option_size(t.reserve));
    sub->add_option("--hold", hold, "How long bloat must last before it is reported")
        ->default_str(option_duration(t.bloat_hold));
    sub->add_option("--bloat-margin", bloat_margin, "Anon memory allowed above expected (or 50% of it, if larger)")
        ->default_str(option_size(t.bloat_margin));
    sub->add_option("--growth-min", growth_min, "Slowest anon growth reported, in MiB per hour (0.1 to 1048576)")
        ->type_name("FLOAT")
        ->default_str(fmt::format("{}", t.growth_min_mib_per_hour));
    sub->add_option("--lookback", lookback,
                    "Start with this much of the samples memwarden serve stored (e.g. 30m), then sample live");
    sub->add_option("--state-dir", state_dir, "Where the journal and the sample history live")
        ->default_str(adapters::StateDir().path().string());
  }

  // Into `o` (which holds the defaults), in the order the options are checked.
  void convert(const probes::HostRoot& root, const Environment& env, Conversions& c, engine::DiagnoseOptions& o) const {
    o.sampler.root = root;
    o.sampler.docker_host = adapters::docker_host_address(docker_host, env.docker_host.c_str());
    o.sampler.targets = targets;
    if (given(app, "--timeout")) {
      c.duration(timeout, "--timeout", o.sampler.docker_timeout);
    }
    if (given(app, "--api-timeout")) {
      c.duration(api_timeout, "--api-timeout", o.sampler.api_timeout);
    }
    if (given(app, "--window")) {
      c.duration(window, "--window", o.window);
    }
    if (given(app, "--interval")) {
      c.positive_duration(interval, "--interval", o.interval);
    }
    auto& t = o.thresholds;
    if (given(app, "--hold")) {
      c.duration(hold, "--hold", t.bloat_hold);
    }
    if (given(app, "--base-allowance")) {
      c.size(base, "--base-allowance", t.base_allowance);
    }
    if (given(app, "--reserve")) {
      c.size(reserve, "--reserve", t.reserve);
    }
    if (given(app, "--bloat-margin")) {
      c.size(bloat_margin, "--bloat-margin", t.bloat_margin);
    }
    if (given(app, "--growth-min")) {
      c.number(growth_min, "--growth-min", k_growth_min_range, t.growth_min_mib_per_hour);
    }
    if (!lookback.empty()) {
      c.duration(lookback, "--lookback", o.lookback.span);
      o.lookback.state_dir = state_dir_or_default();
      o.lookback.now_wall_ms = env.now_wall_ms;
    }
  }

  [[nodiscard]] std::string state_dir_or_default() const {
    return given(app, "--state-dir") ? state_dir : adapters::StateDir().path().string();
  }
};

class CommandLine {
 public:
  explicit CommandLine(const Environment& env) : m_env(env) {
    m_app.set_version_flag("--version", fmt::format("memwarden {}", program_version()));
    m_app.require_subcommand(1);
    m_app.add_option("--root", m_root, "Host root holding proc/ and sys/ (for a containerised memwarden: /host)")
        ->default_str(probes::HostRoot().root().string());
    add_status();
    add_diagnose();
    add_fix();
    add_history();
    add_serve();
    add_check_config();
    add_notify();
    add_plan();
    add_profiles();
    add_deploy();
    add_test();
    add_bench();
    add_optimize();
    add_export();
  }

  [[nodiscard]] Expected<Command, UsageError> parse(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    argv.push_back(args.empty() ? "memwarden" : args.front().c_str());
    for (std::size_t i = 1; i < args.size(); ++i) {
      argv.push_back(args[i].c_str());
    }
    try {
      m_app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      std::ostringstream out;
      std::ostringstream err;
      if (m_app.exit(e, out, err) == 0) {
        return Command{HelpCommand{out.str()}};
      }
      return unexpected(UsageError{err.str()});
    }
    if (m_plan.app->parsed()) {
      return plan();
    }
    if (m_profiles.app->parsed()) {
      return profiles();
    }
    if (m_deploy.app->parsed()) {
      return deploy();
    }
    if (m_bench.app->parsed()) {
      return bench();
    }
    if (m_optimize.flags.app->parsed()) {
      return optimize();
    }
    if (m_test.ram->parsed()) {
      return test_ram();
    }
    if (m_test.model.app->parsed()) {
      return test_model();
    }
    if (m_test_vram.app->parsed()) {
      return test_vram();
    }
    if (m_test.app->parsed()) {
      return test_history();
    }
    if (m_status.app->parsed()) {
      return status();
    }
    if (m_diagnose.app->parsed()) {
      return diagnose();
    }
    if (m_fix.flags.app->parsed()) {
      return fix();
    }
    if (m_serve.app->parsed()) {
      return serve();
    }
    if (m_check.app->parsed()) {
      return check_config();
    }
    if (m_notify.app->parsed()) {
      return Command{NotifyTestCommand{m_notify.config_file}};
    }
    if (m_export.rules->parsed()) {
      return prometheus_rules();
    }
    if (m_export.grafana->parsed()) {
      return Command{GrafanaCommand{}};
    }
    if (m_export.compose->parsed()) {
      return export_deployment(m_export.compose, m_export.compose_what, ExportTarget::compose);
    }
    if (m_export.templates->parsed()) {
      return export_deployment(m_export.templates, m_export.templates_what, ExportTarget::portainer_templates);
    }
    if (m_history.app->parsed()) {
      return history();
    }
    return unexpected(UsageError{"memwarden: a command is required\n"});  // require_subcommand rules this out
  }

 private:
  [[nodiscard]] probes::HostRoot root() const {
    return given(&m_app, "--root") ? probes::HostRoot(m_root) : probes::HostRoot();
  }

  // ---- status
  struct {
    CLI::App* app = nullptr;
    bool json = false;
    bool all = false;
    std::string docker_host;
    std::string timeout;
    std::string reserve;
    std::string nvml_library;
  } m_status;

  void add_status() {
    const StatusCommand defaults;
    auto& s = m_status;
    s.app = m_app.add_subcommand("status", "Host, container and GPU memory at a glance");
    s.app->add_flag("--json", s.json, "Print the facts as JSON (schema in docs/status-json.md)");
    s.app->add_flag("--all", s.all, "Include stopped containers");
    s.app->add_option("--docker-host", s.docker_host,
                      fmt::format("Docker address: unix:///path or tcp://host:port (default: $DOCKER_HOST, else {})",
                                  adapters::k_default_docker_host));
    s.app->add_option("--timeout", s.timeout, "Time-out for each Docker request")
        ->default_str(option_duration(defaults.options.docker_timeout));
    s.app->add_option("--reserve", s.reserve, "RAM the host keeps for its monitoring stack; warn below it")
        ->default_str(option_size(defaults.options.thresholds.reserve_bytes));
    s.app->add_option("--nvml-library", s.nvml_library, "NVML library to load (default libnvidia-ml.so.1)");
  }

  [[nodiscard]] Expected<Command, UsageError> status() const {
    const auto& s = m_status;
    StatusCommand command;
    auto& o = command.options;
    Conversions c;
    o.root = root();
    o.docker_host = adapters::docker_host_address(s.docker_host, m_env.docker_host.c_str());
    o.scope = s.all ? adapters::ListScope::all : adapters::ListScope::running;
    o.nvml_library = s.nvml_library;
    if (given(s.app, "--timeout")) {
      c.duration(s.timeout, "--timeout", o.docker_timeout);
    }
    if (given(s.app, "--reserve")) {
      c.size(s.reserve, "--reserve", o.thresholds.reserve_bytes);
    }
    command.format = s.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- diagnose
  struct {
    CLI::App* app = nullptr;
    DiagnoseTexts flags;
    std::string stop_on;
  } m_diagnose;

  void add_diagnose() {
    const DiagnoseCommand defaults;
    auto& d = m_diagnose;
    d.app = m_app.add_subcommand("diagnose", "Find leaks, bloat and pressure in inference servers");
    d.flags.add_to(d.app, defaults.options);
    d.app->add_option("--stop-on", d.stop_on, "End early at the first finding this severe: warning or critical")
        ->check(CLI::IsMember({"warning", "critical"}));
  }

  [[nodiscard]] Expected<Command, UsageError> diagnose() const {
    const auto& d = m_diagnose;
    DiagnoseCommand command;
    Conversions c;
    d.flags.convert(root(), m_env, c, command.options);
    if (d.stop_on == "warning") {
      command.options.stop_on = Severity::warning;
    } else if (d.stop_on == "critical") {
      command.options.stop_on = Severity::critical;
    }
    command.format = d.flags.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- fix
  struct {
    DiagnoseTexts flags;
    bool all = false;
    bool dry_run = false;
    bool yes = false;
    std::string cooldown;
    std::string budget;
    std::string drain_timeout;
    std::string health_timeout;
    std::string stop_timeout;
    std::string settle;
    std::vector<std::string> allowlist;
    std::string systemd_unit;
  } m_fix;

  void add_fix() {
    const FixCommand defaults;
    const auto& p = defaults.options.policy;
    auto& f = m_fix;
    auto* app = m_app.add_subcommand("fix", "Diagnose, then unload or restart bloated servers, safely and journaled");
    f.flags.add_to(app, defaults.options.diagnose);
    app->add_flag("--all", f.all, "Every opted-in server (label memwarden.enable=true or --allow)");
    app->add_flag("--dry-run", f.dry_run, "Print exactly what would be done; change nothing");
    app->add_flag("--yes", f.yes, "Act on named servers that did not opt in, without asking");
    app->add_option("--cooldown", f.cooldown, "Pause after an action on a server (doubles per restart)")
        ->default_str(option_duration(p.cooldown));
    app->add_option("--budget", f.budget, "Restarts per server per hour (0 to 1000)")
        ->type_name("UINT")
        ->default_str(fmt::format("{}", p.restart_budget));
    app->add_option("--drain-timeout", f.drain_timeout, "Wait this long for clients to finish before a restart")
        ->default_str(option_duration(p.drain_timeout));
    app->add_option("--health-timeout", f.health_timeout, "Wait this long for the API after a restart")
        ->default_str(option_duration(p.health_timeout));
    app->add_option("--stop-timeout", f.stop_timeout, "Docker's stop time-out for the restart")
        ->default_str(option_duration(p.stop_timeout));
    app->add_option("--settle", f.settle, "After unloading, wait this long before measuring again")
        ->default_str(option_duration(p.settle));
    app->add_option("--allow", f.allowlist, "A server that may be fixed automatically without its label");
    app->add_option("--systemd-unit", f.systemd_unit, "The unit of an Ollama running on the host")
        ->default_str(defaults.systemd_unit);
  }

  [[nodiscard]] Expected<Command, UsageError> fix() const {
    const auto& f = m_fix;
    const auto* app = f.flags.app;
    FixCommand command;
    Conversions c;
    if (f.flags.targets.empty() && !f.all) {
      c.fail("fix", "name the servers to fix, or --all for every opted-in server");
    }
    if (!f.flags.targets.empty() && f.all) {
      c.fail("fix", "name servers or use --all, not both");
    }
    auto& o = command.options;
    f.flags.convert(root(), m_env, c, o.diagnose);
    o.selection = f.all ? Selection::automatic : Selection::named;
    o.mode = f.dry_run ? engine::RunMode::dry_run : engine::RunMode::live;
    auto& p = o.policy;
    if (given(app, "--cooldown")) {
      c.duration(f.cooldown, "--cooldown", p.cooldown);
    }
    if (given(app, "--budget")) {
      c.whole(f.budget, "--budget", k_budget_range, p.restart_budget);
    }
    if (given(app, "--drain-timeout")) {
      c.duration(f.drain_timeout, "--drain-timeout", p.drain_timeout);
    }
    if (given(app, "--health-timeout")) {
      c.duration(f.health_timeout, "--health-timeout", p.health_timeout);
    }
    if (given(app, "--stop-timeout")) {
      c.duration(f.stop_timeout, "--stop-timeout", p.stop_timeout);
    }
    if (given(app, "--settle")) {
      c.duration(f.settle, "--settle", p.settle);
    }
    p.allowlist = f.allowlist;
    command.state_dir = adapters::StateDir(f.flags.state_dir_or_default());
    command.confirmation = f.yes ? Confirmation::assume_yes : Confirmation::ask_on_terminal;
    if (given(app, "--systemd-unit")) {
      command.systemd_unit = f.systemd_unit;
    }
    command.format = f.flags.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- history
  struct {
    CLI::App* app = nullptr;
    bool json = false;
    std::string limit;
    std::string server;
    std::string state_dir;
    std::string samples;
    std::string since;
  } m_history;

  void add_history() {
    const HistoryCommand defaults;
    auto& h = m_history;
    h.app = m_app.add_subcommand("history", "Actions memwarden took, newest first");
    h.app->add_flag("--json", h.json, "Print JSON");
    h.app->add_option("--limit", h.limit, "How many records (0: all, at most 1000000)")
        ->type_name("UINT")
        ->default_str(fmt::format("{}", defaults.options.limit));
    h.app->add_option("--server", h.server, "Only this server");
    h.app->add_option("--state-dir", h.state_dir, "Where the journal lives")
        ->default_str(defaults.options.state_dir.string());
    h.app->add_option("--samples", h.samples,
                      "Show the samples memwarden serve stored for this server, container or 'host' instead");
    h.app->add_option("--since", h.since, "With --samples: how far back")
        ->default_str(option_duration(defaults.options.since));
  }

  [[nodiscard]] Expected<Command, UsageError> history() const {
    const auto& h = m_history;
    HistoryCommand command;
    auto& o = command.options;
    Conversions c;
    if (given(h.app, "--state-dir")) {
      o.state_dir = h.state_dir;
    }
    o.format = h.json ? HistoryFormat::json : HistoryFormat::table;
    if (given(h.app, "--limit")) {
      c.whole(h.limit, "--limit", k_limit_range, o.limit);
    }
    if (!h.server.empty()) {
      o.server = h.server;
    }
    if (given(h.app, "--since")) {
      c.positive_duration(h.since, "--since", o.since);
    }
    if (!h.samples.empty()) {
      o.samples_subject = h.samples;
    }
    o.now_wall_ms = m_env.now_wall_ms;
    return finish(c, std::move(command));
  }

  // ---- serve
  struct {
    CLI::App* app = nullptr;
    std::string config_file;
    std::string listen;
    std::string state_dir;
    std::string docker_host;
    std::string interval;
    bool dry_run = false;
    bool no_fix = false;
  } m_serve;

  void add_serve() {
    const ServeConfig defaults;
    auto& s = m_serve;
    s.app = m_app.add_subcommand("serve", "Run always: sample, detect, fix opted-in servers, alert, serve /metrics");
    s.app->add_option("--config", s.config_file,
                      fmt::format("Configuration file (default {} if present)", k_default_config_file));
    s.app->add_option("--listen", s.listen, fmt::format("HTTP address host:port (default {})", defaults.listen));
    s.app->add_option("--state-dir", s.state_dir, "Where the journal and the history live");
    s.app->add_option("--docker-host", s.docker_host, "Docker address (default: $DOCKER_HOST, else the socket)");
    s.app->add_option("--interval", s.interval, "Time between samples");
    s.app->add_flag("--dry-run", s.dry_run, "Say what fix would do; change nothing");
    s.app->add_flag("--no-fix", s.no_fix, "Observe and alert only");
  }

  [[nodiscard]] Expected<Command, UsageError> serve() const {
    const auto& s = m_serve;
    ServeCommand command;
    auto& o = command.overrides;
    Conversions c;
    if (s.dry_run && s.no_fix) {
      c.fail("serve", "--dry-run and --no-fix exclude each other");
    }
    if (!s.interval.empty()) {
      c.positive_duration(s.interval, "--interval", o.interval);
    }
    command.root = root();
    command.config_file = s.config_file;
    if (!s.listen.empty()) {
      o.listen = s.listen;
    }
    if (!s.state_dir.empty()) {
      o.state_dir = s.state_dir;
    }
    if (s.dry_run) {
      o.auto_fix = AutoFix::dry_run;
    } else if (s.no_fix) {
      o.auto_fix = AutoFix::off;
    }
    o.docker_host = s.docker_host;
    o.env_docker_host = m_env.docker_host;
    return finish(c, std::move(command));
  }

  // ---- check-config
  struct {
    CLI::App* app = nullptr;
    std::string file;
    bool print_default = false;
  } m_check;

  void add_check_config() {
    const CheckConfigCommand defaults;
    auto& k = m_check;
    k.app = m_app.add_subcommand("check-config", "Validate a configuration file");
    k.app->add_option("FILE", k.file, "The file")->default_str(defaults.file);
    k.app->add_flag("--print-default", k.print_default, "Print a documented configuration with every default");
  }

  [[nodiscard]] Expected<Command, UsageError> check_config() const {
    CheckConfigCommand command;
    if (given(m_check.app, "FILE")) {
      command.file = m_check.file;
    }
    command.mode = m_check.print_default ? CheckConfigMode::print_default : CheckConfigMode::validate;
    return Command{std::move(command)};
  }

  // ---- notify
  struct {
    CLI::App* app = nullptr;
    bool test = false;
    std::string config_file;
  } m_notify;

  void add_notify() {
    auto& n = m_notify;
    n.app = m_app.add_subcommand("notify", "Notifications");
    n.app->add_flag("--test", n.test, "Send a test notification to every configured target")->required();
    n.app->add_option("--config", n.config_file, fmt::format("Configuration file (default {})", k_default_config_file));
  }

  // ---- the host and the models a plan is for: plan, profiles, deploy and export compose
  struct PlanFlags {
    std::string docker_host;
    std::string gpu_reserve;
    std::string ram;
    std::string vram;
    std::string reserve;
    std::string source;
    std::string models_dir;
    std::string mmproj;
    std::string ollama;
    std::string loading;
    std::string headroom;
    std::string api_timeout;
    std::string nvml_library;
  };

  static void add_plan_flags(CLI::App* app, PlanFlags& p) {
    const engine::PlanOptions o;
    app->add_option("--docker-host", p.docker_host,
                    "Docker address, to find Ollama containers' stores and settings (default: $DOCKER_HOST, else "
                    "the socket)");
    app->add_option("--ram", p.ram, "Plan for this much RAM instead of the host's (e.g. 32G)");
    app->add_option("--vram", p.vram, "Plan for one GPU of this size instead of the host's (0: no GPU)");
    app->add_option("--reserve", p.reserve, "RAM kept for the other services (the monitoring stack)")
        ->default_str(option_size(o.reserve));
    app->add_option("--source", p.source, "Where to look: auto, file, store, server or catalog")
        ->default_str(model_source_name(o.source));
    app->add_option("--models-dir", p.models_dir, "The Ollama model store to search first (else $OLLAMA_MODELS, ...)");
    app->add_option("--mmproj", p.mmproj,
                    "The vision projector of the GGUF files given (default: the one mmproj*.gguf beside them)");
    app->add_option("--ollama", p.ollama, "A running Ollama to ask (/api/show), e.g. http://127.0.0.1:11434");
    app->add_option("--loading", p.loading, "How the weights are loaded: mmap, no-mmap or mlock")
        ->default_str(loading_name(o.settings.loading));
    app->add_option("--gpu-reserve", p.gpu_reserve,
                    fmt::format("VRAM per GPU kept free, as Ollama's minimum ({}; newer releases keep about 1G)",
                                option_size(o.settings.gpu_reserve)))
        ->default_str(option_size(o.settings.gpu_reserve));
    app->add_option("--headroom", p.headroom, "Container limit above the RAM need, in percent (0 to 1000)")
        ->type_name("UINT")
        ->default_str(fmt::format("{}", o.settings.headroom_percent));
    app->add_option("--api-timeout", p.api_timeout, "Time-out for each Ollama API request")
        ->default_str(option_duration(o.api_timeout));
    app->add_option("--nvml-library", p.nvml_library, "NVML library to load (default libnvidia-ml.so.1)");
  }

  void apply_plan_flags(const CLI::App* app, const PlanFlags& p, Conversions& c, engine::PlanOptions& o) const {
    o.root = root();
    o.docker_host = adapters::docker_host_address(p.docker_host, m_env.docker_host.c_str());
    if (given(app, "--loading")) {
      const auto* it =
          std::find_if(k_loadings.begin(), k_loadings.end(), [&](const LoadingName& l) { return p.loading == l.name; });
      if (it != k_loadings.end()) {
        o.settings.loading = it->loading;
      } else {
        c.fail("--loading", fmt::format("'{}' is not mmap, no-mmap or mlock", p.loading));
      }
    }
    if (given(app, "--headroom")) {
      c.whole(p.headroom, "--headroom", k_headroom_range, o.settings.headroom_percent);
    }
    if (!p.ram.empty()) {
      c.size(p.ram, "--ram", o.ram);
      if (o.ram && *o.ram == 0) {
        c.fail("--ram", "must be more than 0");
      }
    }
    if (!p.vram.empty()) {
      c.size(p.vram, "--vram", o.vram);
    }
    if (given(app, "--reserve")) {
      c.size(p.reserve, "--reserve", o.reserve);
    }
    if (given(app, "--source")) {
      if (const auto source = engine::parse_model_source(p.source)) {
        o.source = *source;
      } else {
        c.fail("--source", fmt::format("'{}' is not auto, file, store, server or catalog", p.source));
      }
    }
    if (o.source == engine::ModelSource::server && p.ollama.empty()) {
      c.fail("--source server", "needs --ollama URL");
    }
    // A relative --models-dir is relative to where memwarden runs, not to --root.
    o.models_dir = p.models_dir.empty() ? "" : (m_env.working_dir / p.models_dir).lexically_normal().string();
    o.mmproj = p.mmproj.empty() ? "" : (m_env.working_dir / p.mmproj).lexically_normal().string();
    o.ollama_models = m_env.ollama_models;
    o.home = m_env.home;
    o.ollama_url = p.ollama;
    if (given(app, "--api-timeout")) {
      c.positive_duration(p.api_timeout, "--api-timeout", o.api_timeout);
    }
    if (given(app, "--gpu-reserve")) {
      c.size(p.gpu_reserve, "--gpu-reserve", o.settings.gpu_reserve);
    }
    o.nvml_library = p.nvml_library;
  }

  // ---- plan
  struct {
    CLI::App* app = nullptr;
    std::vector<std::string> models;
    std::string ctx;
    std::string parallel;
    std::string kv_type;
    PlanFlags host;
    bool json = false;
  } m_plan;

  void add_plan() {
    const PlanCommand defaults;
    const auto& o = defaults.options;
    auto& p = m_plan;
    p.app = m_app.add_subcommand("plan", "Will a model fit, split or not, and how big must its container be");
    p.app
        ->add_option("MODEL", p.models,
                     "A GGUF file, an Ollama model name (deepseek-coder:33b) or a catalog name (llama3.1:70b-q8_0)")
        ->required();
    p.app
        ->add_option("--ctx", p.ctx,
                     "Context per request (num_ctx), 1 to 16777216; default: Ollama's default for the VRAM")
        ->type_name("UINT");
    p.app
        ->add_option("--parallel", p.parallel,
                     fmt::format("Requests served at once, 1 to 256 (default: the Ollama container's "
                                 "OLLAMA_NUM_PARALLEL, else {})",
                                 o.settings.parallel))
        ->type_name("UINT");
    p.app->add_option(
        "--kv-type", p.kv_type,
        fmt::format("KV cache: f16, q8_0 or q4_0 (default: the container's OLLAMA_KV_CACHE_TYPE, else {})",
                    to_string(o.settings.kv_type)));
    add_plan_flags(p.app, p.host);
    p.app->add_flag("--json", p.json, "Print the plan as JSON (schema in docs/plan.md)");
  }

  [[nodiscard]] Expected<Command, UsageError> plan() const {
    const auto& p = m_plan;
    PlanCommand command;
    auto& o = command.options;
    Conversions c;
    apply_plan_flags(p.app, p.host, c, o);
    o.models = p.models;
    if (!p.ctx.empty()) {
      c.whole(p.ctx, "--ctx", k_ctx_range, o.settings.num_ctx);
    }
    if (given(p.app, "--parallel")) {
      c.whole(p.parallel, "--parallel", k_parallel_range, o.parallel);
    }
    if (given(p.app, "--kv-type")) {
      if (const auto kv = parse_kv_type(ascii_lower(p.kv_type))) {
        o.kv_type = *kv;
      } else {
        c.fail("--kv-type", fmt::format("'{}' is not f16, q8_0 or q4_0", p.kv_type));
      }
    }
    command.format = p.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- profiles
  struct {
    CLI::App* app = nullptr;
    std::string config_file;
    PlanFlags host;
    bool json = false;
  } m_profiles;

  void add_profiles() {
    auto& p = m_profiles;
    p.app =
        m_app.add_subcommand("profiles", "The deployment profiles, with the limit the plan gives each on this host");
    p.app->add_option("--config", p.config_file,
                      fmt::format("Configuration file with profiles: (default {} if present)", k_default_config_file));
    add_plan_flags(p.app, p.host);
    p.app->add_flag("--json", p.json, "Print the profiles as JSON");
  }

  [[nodiscard]] Expected<Command, UsageError> profiles() const {
    const auto& p = m_profiles;
    ProfilesCommand command;
    Conversions c;
    apply_plan_flags(p.app, p.host, c, command.plan);
    command.config_file = p.config_file;
    command.format = p.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- deploy, and export compose: what to deploy and how
  struct DeployFlags {
    std::vector<std::string> targets;
    std::string name;
    std::string ctx;
    std::string parallel;
    std::string gpus;
    std::string port;
    std::string network;
    std::string bind;
    std::string config_file;
    bool exclusive = false;
    PlanFlags host;
  };

  static void add_deploy_flags(CLI::App* app, DeployFlags& d, std::string_view targets_help) {
    app->add_option("TARGET", d.targets, std::string(targets_help));
    app->add_option("--name", d.name, "Container name (default: the profile's)");
    app->add_option("--ctx", d.ctx, "Context per request (OLLAMA_CONTEXT_LENGTH), 1 to 16777216")->type_name("UINT");
    app->add_option("--parallel", d.parallel, "Requests served at once (OLLAMA_NUM_PARALLEL), 1 to 256")
        ->type_name("UINT");
    app->add_option("--gpus", d.gpus, "all, none, or GPU indexes/UUIDs (0,1); default: all when the host has a GPU");
    app->add_option("--port", d.port, "Port on the host (default: the profile's)")->type_name("PORT");
    app->add_option("--network", d.network, "bridge (publish the port) or host (the host's network)")
        ->default_str("bridge");
    app->add_option("--bind", d.bind, "Address the port is published on (or the server listens on, with host)")
        ->default_str("127.0.0.1");
    app->add_flag("--exclusive", d.exclusive, "Stop the other inference servers first (never memwarden.protect=true)");
    app->add_option("--config", d.config_file,
                    fmt::format("Configuration file with profiles: (default {} if present)", k_default_config_file));
    add_plan_flags(app, d.host);
  }

  void apply_deploy_flags(const CLI::App* app, const DeployFlags& d, Conversions& c, engine::DeployOptions& o) const {
    apply_plan_flags(app, d.host, c, o.plan);
    o.targets = d.targets;
    o.name = d.name;
    if (!d.ctx.empty()) {
      c.whole(d.ctx, "--ctx", k_ctx_range, o.ctx);
    }
    if (!d.parallel.empty()) {
      std::uint64_t parallel = 1;
      c.whole(d.parallel, "--parallel", k_parallel_range, parallel);
      o.parallel = static_cast<std::uint32_t>(parallel);  // at most 256
    }
    if (!d.port.empty()) {
      std::uint64_t port = 1;
      c.whole(d.port, "--port", k_port_range, port);
      o.port = static_cast<std::uint16_t>(port);  // at most 65535
    }
    if (!d.gpus.empty()) {
      if (auto g = parse_gpu_request(d.gpus)) {
        o.gpus = *g;
      } else {
        c.fail("--gpus", fmt::format("'{}' is not all, none or a list of GPU indexes or UUIDs", d.gpus));
      }
    }
    if (!d.network.empty()) {
      if (auto n = parse_network_kind(d.network)) {
        o.network = *n;
      } else {
        c.fail("--network", fmt::format("'{}' is not bridge or host", d.network));
      }
    }
    if (!d.bind.empty()) {
      in6_addr any{};
      if (inet_pton(AF_INET, d.bind.c_str(), &any) != 1 && inet_pton(AF_INET6, d.bind.c_str(), &any) != 1) {
        c.fail("--bind", fmt::format("'{}' is not an IPv4 or IPv6 address", d.bind));
      }
      o.bind_address = d.bind;
    }
    o.exclusive = d.exclusive;
  }

  // ---- deploy
  struct {
    CLI::App* app = nullptr;
    DeployFlags what;
    std::string state_dir;
    std::string wait;
    bool dry_run = false;
    bool yes = false;
    bool replace = false;
    bool load = false;
    bool restore = false;
    bool json = false;
  } m_deploy;

  void add_deploy() {
    auto& d = m_deploy;
    d.app = m_app.add_subcommand("deploy", "Create a right-sized model server from a profile or models");
    add_deploy_flags(d.app, d.what, "A profile (memwarden profiles) or one or more models");
    d.app->add_option("--state-dir", d.state_dir, "Where the journal lives");
    d.app->add_option("--wait", d.wait, "How long to wait for the new server's API")->default_str("120s");
    d.app->add_flag("--dry-run", d.dry_run, "Say what would be created; change nothing");
    d.app->add_flag("--yes", d.yes, "Go ahead with stopping the other servers (--exclusive)");
    d.app->add_flag("--replace", d.replace, "Replace a container of that name memwarden did not create");
    d.app->add_flag("--load", d.load, "Load the models and compare what the server reports with the plan");
    d.app->add_flag("--restore", d.restore, "Start the servers the last exclusive deployment stopped");
    d.app->add_flag("--json", d.json, "Print the result as JSON");
  }

  [[nodiscard]] Expected<Command, UsageError> deploy() const {
    const auto& d = m_deploy;
    DeployCommand command;
    Conversions c;
    apply_deploy_flags(d.app, d.what, c, command.options);
    if (d.restore && !d.what.targets.empty()) {
      c.fail("deploy --restore", "takes no profile or model");
    } else if (!d.restore && d.what.targets.empty()) {
      c.fail("deploy", "name a profile (memwarden profiles) or one or more models");
    }
    command.action = d.restore ? DeployAction::restore : d.dry_run ? DeployAction::dry_run : DeployAction::deploy;
    command.run.confirm = d.yes ? engine::Confirm::yes : engine::Confirm::no;
    command.run.existing = d.replace ? engine::Existing::replace : engine::Existing::keep_foreign;
    if (!d.wait.empty()) {
      c.positive_duration(d.wait, "--wait", command.run.api_wait);
    }
    command.run.state_dir = d.state_dir.empty() ? std::string(adapters::StateDir::k_default_path) : d.state_dir;
    command.load = d.load ? LoadCheck::load : LoadCheck::none;
    command.config_file = d.what.config_file;
    command.format = d.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- optimize
  struct {
    DiagnoseTexts flags;
    std::vector<std::string> for_models;
    bool yes = false;
    bool recreate = false;
    bool undo = false;
    std::string config_file;
    std::string vram;
    std::string wait;
  } m_optimize;

  void add_optimize() {
    const OptimizeCommand defaults;
    auto& f = m_optimize;
    auto* app = m_app.add_subcommand(
        "optimize", "Fix, right-size every container's memory limit and tune the servers; shows the changes first");
    f.flags.add_to(app, defaults.fix.diagnose);
    app->add_option("--for", f.for_models,
                    "Size the inference servers for these models instead of their installed ones")
        ->expected(1, -1);
    app->add_flag("--yes", f.yes, "Make the changes shown (without it nothing is changed)");
    app->add_flag("--recreate", f.recreate,
                  "With --yes, also apply the server settings by re-creating the server (rollback-safe)");
    app->add_flag("--undo", f.undo, "Put back the limits and settings optimize changed");
    app->add_option("--config", f.config_file, "Configuration file with deployment profiles");
    app->add_option("--vram", f.vram, "Plan for one GPU of this size instead of the host's (0: no GPU)");
    app->add_option("--wait", f.wait, "How long a re-created server may take to answer")->default_str("120s");
  }

  [[nodiscard]] Expected<Command, UsageError> optimize() const {
    const auto& f = m_optimize;
    OptimizeCommand command;
    Conversions c;
    if (f.undo && (f.yes || f.recreate || !f.for_models.empty() || !f.flags.targets.empty())) {
      c.fail("optimize --undo", "takes no containers, --for, --yes or --recreate: it puts back every change");
    }
    if (f.recreate && !f.yes) {
      c.fail("optimize --recreate", "re-creates servers only with --yes");
    }
    f.flags.convert(root(), m_env, c, command.fix.diagnose);
    auto& o = command.options;
    o.root = root();
    o.docker_host = command.fix.diagnose.sampler.docker_host;
    o.docker_timeout = command.fix.diagnose.sampler.docker_timeout;
    o.api_timeout = std::max(o.api_timeout, std::chrono::milliseconds(command.fix.diagnose.sampler.api_timeout));
    o.state_dir = f.flags.state_dir_or_default();
    o.for_models = f.for_models;
    o.named = f.flags.targets;
    o.reserve = command.fix.diagnose.thresholds.reserve;
    o.settings = f.recreate ? engine::SettingsUse::recreate : engine::SettingsUse::recommend;
    o.now_wall_ms = m_env.now_wall_ms;
    if (!f.vram.empty()) {
      std::uint64_t vram = 0;
      c.size(f.vram, "--vram", vram);
      o.vram = vram;
    }
    if (!f.wait.empty()) {
      c.positive_duration(f.wait, "--wait", o.ready_wait);
    }
    // Step 2: the fix ladder on the opted-in servers (and the ones named), live only with --yes.
    command.fix.selection = f.flags.targets.empty() ? Selection::automatic : Selection::named;
    command.fix.mode = f.yes ? engine::RunMode::live : engine::RunMode::dry_run;
    command.action = f.undo ? OptimizeAction::undo : f.yes ? OptimizeAction::apply : OptimizeAction::show;
    command.config_file = f.config_file;
    command.format = f.flags.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- test ram, test model, test --history
  struct ModelFlags {
    CLI::App* app = nullptr;
    std::vector<std::string> models;
    std::string ctx;
    std::string parallel;
    std::string kv_type;
    std::string server;
    std::string load_timeout;
    std::string state_dir;
    bool load = false;
    bool keep = false;
    bool json = false;
    PlanFlags host;
  };
  struct {
    CLI::App* app = nullptr;
    bool history = false;
    std::string limit;
    std::string state_dir;
    bool history_json = false;
    ModelFlags model;
    CLI::App* ram = nullptr;
    std::vector<std::string> sizes;
    std::string reserve;
    std::string psi_full_max;
    std::string image;
    std::string docker_host;
    std::string container_limit;
    std::string hold;
    bool no_docker = false;
    bool json = false;
  } m_test;

  void add_test() {
    auto& t = m_test;
    auto* app = m_app.add_subcommand("test", "Prove the host can give what the plan says");
    t.app = app;
    app->require_subcommand(0, 1);
    app->add_flag("--history", t.history, "List the model loads held against the plan (test model --load)");
    app->add_option("--limit", t.limit, "With --history: the newest this many")->default_str("50");
    app->add_option("--state-dir", t.state_dir, "With --history: where the sample history lives")
        ->default_str(adapters::StateDir().path().string());
    app->add_flag("--json", t.history_json, "With --history: print JSON");
    add_test_model(app);
    t.ram = app->add_subcommand("ram", "Allocate and write each SIZE inside a container limited to it, safely");
    t.ram->add_option("SIZE", t.sizes, "Sizes to allocate, e.g. 10G 20G 25G")->required();
    t.ram->add_option("--reserve", t.reserve, "Stop when MemAvailable would fall under this")->default_str("4G");
    t.ram->add_option("--psi-full-max", t.psi_full_max, "Stop when memory PSI full avg10 rises above this percent")
        ->default_str("10");
    t.ram->add_option("--container-limit", t.container_limit,
                      "The container's memory limit instead of SIZE plus room for the helper (to see what a smaller "
                      "one does)");
    t.ram->add_option("--image", t.image, "An image holding /memwarden-alloc (default: memwarden makes its own)");
    t.ram->add_option("--docker-host", t.docker_host, "Docker address (default: $DOCKER_HOST, else the socket)");
    t.ram->add_option("--hold", t.hold, "Hold the whole size this long before freeing it (e.g. 30s, 5m; at most 24h)");
    t.ram->add_flag("--no-docker", t.no_docker,
                    "Run the helper in a transient cgroup of its own instead of a container (needs root)");
    t.ram->add_flag("--json", t.json, "Print the results as JSON");
    add_test_vram(app);
  }

  void add_test_model(CLI::App* test) {
    auto& m = m_test.model;
    const engine::ModelTestOptions defaults;
    m.app = test->add_subcommand("model", "Plan a model on this host now; with --load, load it and measure");
    m.app->add_option("MODEL", m.models, "Model names as the server knows them (or GGUF files, catalog names)")
        ->required();
    m.app->add_option("--server", m.server,
                      "The server to ask and load on: a container's name or a URL (default: the one running)");
    m.app->add_flag("--load", m.load, "Load each model, measure it against the plan, unload it and check the memory");
    m.app->add_flag("--keep", m.keep, "With --load: leave the model loaded");
    m.app->add_option("--load-timeout", m.load_timeout, "How long a load may take")
        ->default_str(option_duration(defaults.load_timeout));
    m.app->add_option("--state-dir", m.state_dir, "Where the measured loads are stored (the sample history)")
        ->default_str(adapters::StateDir().path().string());
    m.app->add_option("--ctx", m.ctx, "Context per request (num_ctx), 1 to 16777216")->type_name("UINT");
    m.app->add_option("--parallel", m.parallel, "Requests served at once, 1 to 256")->type_name("UINT");
    m.app->add_option("--kv-type", m.kv_type, "KV cache: f16, q8_0 or q4_0");
    add_plan_flags(m.app, m.host);
    m.app->add_flag("--json", m.json, "Print the results as JSON");
  }

  [[nodiscard]] Expected<Command, UsageError> test_model() const {
    const auto& m = m_test.model;
    TestModelCommand command;
    auto& o = command.options;
    Conversions c;
    apply_plan_flags(m.app, m.host, c, o.plan);
    o.plan.models = m.models;
    for (const auto& model : m.models) {
      if (model.empty()) {
        c.fail("MODEL", "an empty model name");
      }
    }
    if (!m.ctx.empty()) {
      c.whole(m.ctx, "--ctx", k_ctx_range, o.plan.settings.num_ctx);
    }
    if (given(m.app, "--parallel")) {
      c.whole(m.parallel, "--parallel", k_parallel_range, o.plan.parallel);
    }
    if (given(m.app, "--kv-type")) {
      if (const auto kv = parse_kv_type(ascii_lower(m.kv_type))) {
        o.plan.kv_type = *kv;
      } else {
        c.fail("--kv-type", fmt::format("'{}' is not f16, q8_0 or q4_0", m.kv_type));
      }
    }
    if (m.server.find("://") != std::string::npos && !m.server.starts_with("http://") &&
        !m.server.starts_with("https://")) {
      c.fail("--server", fmt::format("'{}' is neither a container name nor an http(s) URL", m.server));
    }
    o.server = m.server;
    o.load = m.load ? engine::ModelLoad::load : engine::ModelLoad::plan_only;
    if (m.keep && !m.load) {
      c.fail("--keep", "needs --load");
    }
    o.after_load = m.keep ? engine::AfterLoad::keep : engine::AfterLoad::unload;
    if (given(m.app, "--load-timeout")) {
      c.positive_duration(m.load_timeout, "--load-timeout", o.load_timeout);
    }
    o.state_dir = given(m.app, "--state-dir") ? m.state_dir : adapters::StateDir().path().string();
    command.format = m.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  [[nodiscard]] Expected<Command, UsageError> test_history() const {
    const auto& t = m_test;
    if (!t.history) {
      return unexpected(UsageError{"memwarden: test: give ram, vram, model or --history\n"});
    }
    TestHistoryCommand command;
    Conversions c;
    if (given(t.app, "--limit")) {
      c.whole(t.limit, "--limit", k_test_history_range, command.limit);
    }
    command.state_dir = given(t.app, "--state-dir") ? t.state_dir : adapters::StateDir().path().string();
    command.format = t.history_json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  [[nodiscard]] Expected<Command, UsageError> test_ram() const {
    const auto& t = m_test;
    TestRamCommand command;
    auto& o = command.options;
    Conversions c;
    o.root = root();
    for (const auto& text : t.sizes) {
      std::uint64_t size = 0;
      c.size(text, "SIZE", size);
      if (!c.failed() && size == 0) {
        c.fail("SIZE", fmt::format("'{}' is 0: nothing to test", text));
      }
      o.sizes.push_back(size);
    }
    if (!t.reserve.empty()) {
      c.size(t.reserve, "--reserve", o.floor.reserve);
    }
    if (!t.psi_full_max.empty()) {
      c.number(t.psi_full_max, "--psi-full-max", k_psi_range, o.floor.psi_full_max);
    }
    if (!t.container_limit.empty()) {
      std::uint64_t limit = 0;
      c.size(t.container_limit, "--container-limit", limit);
      if (!c.failed() && limit < (6ULL << 20)) {
        c.fail("--container-limit", "must be at least 6M (the engine's smallest limit)");
      }
      o.container_limit = limit;
    }
    if (!t.image.empty() && !adapters::valid_image_ref(t.image)) {
      c.fail("--image", fmt::format("'{}' is not an image reference", t.image));
    }
    if (!t.hold.empty()) {
      c.duration(t.hold, "--hold", o.hold);
      if (!c.failed() && o.hold > std::chrono::hours(24)) {
        c.fail("--hold", "at most 24h");
      }
    }
    if (t.no_docker) {
      o.isolation = engine::RamIsolation::cgroup;
      for (const auto* option : {"--image", "--docker-host"}) {
        if (given(t.ram, option)) {
          c.fail(option, "not with --no-docker (no container is made)");
        }
      }
    }
    o.image = t.image;
    o.docker_host = adapters::docker_host_address(t.docker_host, m_env.docker_host.c_str());
    command.format = t.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- bench
  struct {
    CLI::App* app = nullptr;
    std::vector<std::string> models;
    std::string server;
    std::string api;
    std::string runs;
    std::string warmup;
    std::string prompt_tokens;
    std::string max_tokens;
    std::string concurrency;
    std::string ctx;
    std::string cooldown;
    std::string seed;
    std::string temperature_limit;
    std::string gpu_target;
    std::string load_timeout;
    std::string request_timeout;
    std::string state_dir;
    std::string csv;
    std::string html;
    std::string limit;
    std::vector<std::string> compare;
    std::string report;
    std::string annotations;
    PlanFlags host;
    bool list = false;
    bool no_store = false;
    bool json = false;
  } m_bench;

  void add_bench() {
    auto& b = m_bench;
    const BenchSettings d;
    const engine::BenchOptions o;
    b.app = m_app.add_subcommand("bench", "Benchmark models on the server you run: speed, memory and heat");
    b.app->add_option("MODEL", b.models, "Models to benchmark, one after another, as the server names them");
    b.app->add_option("--server", b.server, "The server: a container's name or a URL (default: the one running)");
    b.app->add_option("--api", b.api, "ollama (/api/generate) or openai (/v1/chat/completions)")->default_str("ollama");
    b.app->add_option("--runs", b.runs, "Counted requests per client at each concurrency level")
        ->default_str(fmt::format("{}", d.runs));
    b.app->add_option("--warmup", b.warmup, "Requests per model before the counted ones, not counted")
        ->default_str(fmt::format("{}", d.warmup));
    b.app->add_option("--prompt-tokens", b.prompt_tokens, "About this many tokens of prompt per request")
        ->default_str(fmt::format("{}", d.prompt_tokens));
    b.app->add_option("--max-tokens", b.max_tokens, "Output tokens per request (fixed length)")
        ->default_str(fmt::format("{}", d.max_tokens));
    b.app->add_option("--concurrency", b.concurrency, "Concurrency levels, e.g. 1,2,4")->default_str("1");
    b.app->add_option("--ctx", b.ctx, "Context per request (num_ctx), 1 to 16777216")->type_name("UINT");
    b.app->add_option("--cooldown", b.cooldown, "Pause between models")->default_str("10s");
    b.app->add_option("--seed", b.seed, "The sampling seed (temperature is 0)")->default_str(fmt::format("{}", d.seed));
    b.app->add_option("--temperature-limit", b.temperature_limit, "Sustained GPU temperature limit, °C")
        ->default_str(fmt::format("{}", d.temperature_limit_c));
    b.app->add_option("--gpu-target", b.gpu_target, "GPU utilisation target while generating, percent")
        ->default_str(fmt::format("{}", d.gpu_utilisation_target_pct));
    b.app->add_option("--load-timeout", b.load_timeout, "How long a load may take")
        ->default_str(option_duration(o.load_timeout));
    b.app->add_option("--request-timeout", b.request_timeout, "How long a request may wait for its first byte")
        ->default_str(option_duration(o.request_timeout));
    b.app->add_option("--state-dir", b.state_dir, "The history database's directory")
        ->default_str(adapters::StateDir().path().string());
    b.app->add_flag("--no-store", b.no_store, "Do not store the run in the history database");
    b.app->add_option("--csv", b.csv, "Write one row per model, concurrency and request to FILE");
    b.app->add_option("--html", b.html, "Write a self-contained HTML report to FILE");
    b.app->add_flag("--list", b.list, "List the stored runs");
    b.app->add_option("--limit", b.limit, "With --list: the newest this many")->default_str("50");
    b.app->add_option("--compare", b.compare, "Compare two stored runs: the change per model and metric")
        ->expected(2)
        ->type_name("RUN RUN");
    b.app->add_option("--report", b.report, "Show a stored run again (with --json, --csv, --html)")->type_name("RUN");
    b.app->add_option("--annotations", b.annotations, "Print a stored run as Grafana annotations (JSON)")
        ->type_name("RUN");
    add_plan_flags(b.app, b.host);
    b.app->add_flag("--json", b.json, "Print JSON");
  }

  [[nodiscard]] Expected<Command, UsageError> bench() const {
    const auto& b = m_bench;
    BenchCommand command;
    auto& o = command.options;
    Conversions c;
    command.state_dir = given(b.app, "--state-dir") ? b.state_dir : adapters::StateDir().path().string();
    command.format = b.json ? ReportFormat::json : ReportFormat::text;
    command.csv_file = b.csv;
    command.html_file = b.html;
    if (given(b.app, "--csv") && b.csv.empty()) {
      c.fail("--csv", "is empty");
    }
    if (given(b.app, "--html") && b.html.empty()) {
      c.fail("--html", "is empty");
    }
    const int actions = (b.list ? 1 : 0) + (given(b.app, "--compare") ? 1 : 0) + (given(b.app, "--report") ? 1 : 0) +
                        (given(b.app, "--annotations") ? 1 : 0);
    if (actions > 1) {
      c.fail("bench", "give one of --list, --compare, --report and --annotations");
    }
    const auto run_id = [&](const std::string& text, const char* option) {
      std::uint64_t id = 0;
      c.whole(text, option, k_bench_run_id_range, id);
      command.run_ids.push_back(static_cast<std::int64_t>(id));
    };
    if (actions == 1 && !b.models.empty()) {
      c.fail("MODEL", "models are benchmarked without --list, --compare, --report or --annotations");
    }
    if (b.list) {
      command.action = BenchAction::list;
      if (given(b.app, "--limit")) {
        c.whole(b.limit, "--limit", k_bench_list_range, command.limit);
      }
    } else if (given(b.app, "--compare")) {
      command.action = BenchAction::compare;
      for (const auto& id : b.compare) {
        run_id(id, "--compare");
      }
    } else if (given(b.app, "--report")) {
      command.action = BenchAction::report;
      run_id(b.report, "--report");
    } else if (given(b.app, "--annotations")) {
      command.action = BenchAction::annotations;
      run_id(b.annotations, "--annotations");
    } else if (b.models.empty()) {
      c.fail("MODEL", "name the models to benchmark (or give --list, --compare, --report or --annotations)");
    }
    if ((command.action == BenchAction::list || command.action == BenchAction::compare ||
         command.action == BenchAction::annotations) &&
        (given(b.app, "--csv") || given(b.app, "--html"))) {
      c.fail(given(b.app, "--csv") ? "--csv" : "--html", "goes with a benchmark or --report RUN");
    }
    if (command.action != BenchAction::list && given(b.app, "--limit")) {
      c.fail("--limit", "goes with --list");
    }
    if (command.action != BenchAction::run) {
      return finish(c, std::move(command));
    }
    apply_plan_flags(b.app, b.host, c, o.plan);
    o.plan.models = b.models;
    for (std::size_t i = 0; i < b.models.size(); ++i) {
      if (b.models[i].empty()) {
        c.fail("MODEL", "an empty model name");
      } else if (std::find(b.models.begin(), b.models.begin() + static_cast<std::ptrdiff_t>(i), b.models[i]) !=
                 b.models.begin() + static_cast<std::ptrdiff_t>(i)) {
        c.fail("MODEL", fmt::format("'{}' is given twice", b.models[i]));
      }
    }
    if (b.models.size() > k_max_bench_models) {
      c.fail("MODEL", fmt::format("at most {} models in one run", k_max_bench_models));
    }
    auto& s = o.settings;
    if (given(b.app, "--api")) {
      if (b.api == "ollama") {
        s.api = BenchApi::ollama;
      } else if (b.api == "openai") {
        s.api = BenchApi::openai;
      } else {
        c.fail("--api", fmt::format("'{}' is not ollama or openai", b.api));
      }
    }
    if (given(b.app, "--runs")) {
      c.whole(b.runs, "--runs", k_bench_runs_range, s.runs);
    }
    if (given(b.app, "--warmup")) {
      c.whole(b.warmup, "--warmup", k_bench_warmup_range, s.warmup);
    }
    if (given(b.app, "--prompt-tokens")) {
      c.whole(b.prompt_tokens, "--prompt-tokens", k_bench_tokens_range, s.prompt_tokens);
    }
    if (given(b.app, "--max-tokens")) {
      c.whole(b.max_tokens, "--max-tokens", k_bench_tokens_range, s.max_tokens);
    }
    if (given(b.app, "--concurrency") && !c.failed()) {
      if (auto levels = parse_concurrency(b.concurrency, "--concurrency")) {
        s.concurrency = std::move(*levels);
      } else {
        c.fail(levels.error().source, levels.error().message);
      }
    }
    if (!b.ctx.empty()) {
      c.whole(b.ctx, "--ctx", k_ctx_range, s.num_ctx);
      o.plan.settings.num_ctx = s.num_ctx;
    }
    if (given(b.app, "--cooldown")) {
      Duration cooldown{0};
      c.duration(b.cooldown, "--cooldown", cooldown);
      if (!c.failed() && (cooldown.count() < 0 || cooldown > std::chrono::hours(1))) {
        c.fail("--cooldown", "must be from 0 to 1h");
      }
      s.cooldown_s = std::chrono::duration<double>(cooldown).count();
    }
    if (given(b.app, "--seed")) {
      std::uint64_t seed = 0;
      c.whole(b.seed, "--seed", WholeRange{0, 1ULL << 62}, seed);
      s.seed = static_cast<std::int64_t>(seed);
    }
    if (given(b.app, "--temperature-limit")) {
      std::uint64_t celsius = s.temperature_limit_c;
      c.whole(b.temperature_limit, "--temperature-limit", k_celsius_range, celsius);
      s.temperature_limit_c = static_cast<unsigned>(celsius);
    }
    if (given(b.app, "--gpu-target")) {
      std::uint64_t percent = s.gpu_utilisation_target_pct;
      c.whole(b.gpu_target, "--gpu-target", k_percent_range, percent);
      s.gpu_utilisation_target_pct = static_cast<unsigned>(percent);
    }
    if (given(b.app, "--load-timeout")) {
      c.positive_duration(b.load_timeout, "--load-timeout", o.load_timeout);
    }
    if (given(b.app, "--request-timeout")) {
      c.positive_duration(b.request_timeout, "--request-timeout", o.request_timeout);
    }
    if (b.server.find("://") != std::string::npos && !b.server.starts_with("http://") &&
        !b.server.starts_with("https://")) {
      c.fail("--server", fmt::format("'{}' is neither a container name nor an http(s) URL", b.server));
    }
    if (!c.failed()) {
      std::size_t per_model = 0;
      for (const auto level : s.concurrency) {
        per_model += level * s.runs;
      }
      if (per_model * b.models.size() > k_max_bench_requests) {
        c.fail("--runs", fmt::format("{} runs at concurrency {} for {} model(s) are {} requests; at most {} in one run",
                                     s.runs, b.concurrency.empty() ? "1" : b.concurrency, b.models.size(),
                                     per_model * b.models.size(), k_max_bench_requests));
      }
    }
    o.server = b.server;
    o.nvml_library = o.plan.nvml_library;
    command.store = b.no_store ? StoreRun::no_store : StoreRun::store;
    return finish(c, std::move(command));
  }

  // ---- test vram
  struct {
    CLI::App* app = nullptr;
    std::string size;
    std::string gpu;
    std::string gpu_reserve;
    std::string chunk;
    std::string cuda_library;
    bool json = false;
  } m_test_vram;

  void add_test_vram(CLI::App* test) {
    auto& t = m_test_vram;
    t.app = test->add_subcommand("vram", "Allocate and write SIZE on a GPU through the CUDA driver, then free it");
    t.app->add_option("SIZE", t.size, "VRAM to allocate, e.g. 12G")->required();
    t.app->add_option("--gpu", t.gpu, "The GPU's CUDA ordinal (after CUDA_VISIBLE_DEVICES)")->default_str("0");
    t.app->add_option("--gpu-reserve", t.gpu_reserve, "Stop before the GPU's free memory would fall under this")
        ->default_str(option_size(k_vram_default_reserve));
    t.app->add_option("--chunk", t.chunk, "Allocate in chunks of this size")
        ->default_str(option_size(k_vram_default_chunk));
    t.app->add_option("--cuda-library", t.cuda_library, "The CUDA driver library to load")->default_str("libcuda.so.1");
    t.app->add_flag("--json", t.json, "Print the result as JSON");
  }

  [[nodiscard]] Expected<Command, UsageError> test_vram() const {
    const auto& t = m_test_vram;
    TestVramCommand command;
    auto& o = command.options;
    Conversions c;
    c.size(t.size, "SIZE", o.size);
    if (!c.failed() && o.size == 0) {
      c.fail("SIZE", fmt::format("'{}' is 0: nothing to test", t.size));
    }
    if (!t.gpu.empty()) {
      std::uint64_t ordinal = 0;
      c.whole(t.gpu, "--gpu", k_cuda_ordinal_range, ordinal);
      o.gpu = static_cast<int>(ordinal);
    }
    if (!t.gpu_reserve.empty()) {
      c.size(t.gpu_reserve, "--gpu-reserve", o.reserve);
    }
    if (!t.chunk.empty()) {
      c.size(t.chunk, "--chunk", o.chunk);
      if (!c.failed() && o.chunk < (1ULL << 20)) {
        c.fail("--chunk", "must be at least 1M");
      }
    }
    if (given(t.app, "--cuda-library") && t.cuda_library.empty()) {
      c.fail("--cuda-library", "is empty");
    }
    o.library = t.cuda_library;
    command.format = t.json ? ReportFormat::json : ReportFormat::text;
    return finish(c, std::move(command));
  }

  // ---- export
  struct {
    CLI::App* rules = nullptr;
    CLI::App* grafana = nullptr;
    CLI::App* compose = nullptr;
    CLI::App* templates = nullptr;
    std::string pending;
    DeployFlags compose_what;
    std::string out;
    bool no_gpu_runtime = false;
    DeployFlags templates_what;
    std::string repo_url;
    std::string dir;
  } m_export;

  void add_export() {
    auto& e = m_export;
    auto* app = m_app.add_subcommand("export", "Files for the monitoring stack and for deploying model servers");
    app->require_subcommand(1);
    e.rules = app->add_subcommand("prometheus-rules", "Prometheus alerting rules on memwarden's metrics");
    e.rules->add_option("--pending", e.pending, "Replace every alert's `for:` duration (e.g. 0s)");
    e.grafana = app->add_subcommand("grafana", "A Grafana dashboard on memwarden's metrics (JSON)");
    e.compose = app->add_subcommand("compose", "A Compose file with the planned limits, one service per profile");
    add_deploy_flags(e.compose, e.compose_what, "Profiles (or models), one service each");
    e.compose->add_option("--out", e.out, "Write to this file instead of standard output");
    e.compose->add_flag("--no-gpu-runtime", e.no_gpu_runtime,
                        "Leave the GPU reservation out (an engine without the NVIDIA runtime)");
    e.templates = app->add_subcommand("portainer-templates",
                                      "Portainer v3 App Templates (Compose stacks) with the planned limits");
    add_deploy_flags(e.templates, e.templates_what, "Profiles to include (default: all)");
    e.templates->add_option("--repo-url", e.repo_url, "The Git repository Portainer clones the stacks from")
        ->required();
    e.templates->add_option("--dir", e.dir, "Where to write templates.json and stacks/NAME/compose.yml")->required();
  }

  // Export plans for this host, but does not look at what runs on it unless --docker-host says where.
  [[nodiscard]] Expected<Command, UsageError> export_deployment(const CLI::App* app, const DeployFlags& flags,
                                                                ExportTarget target) const {
    ExportDeployCommand command;
    Conversions c;
    apply_deploy_flags(app, flags, c, command.options);
    if (!given(app, "--docker-host")) {
      command.options.plan.docker_host.clear();
    }
    command.options.gpu_default = engine::GpuDefault::from_plan;
    command.target = target;
    command.config_file = flags.config_file;
    if (target == ExportTarget::compose) {
      if (flags.targets.empty()) {
        c.fail("export compose", "name one or more profiles (memwarden profiles) or models");
      }
      if (!flags.name.empty() && flags.targets.size() > 1) {
        c.fail("--name", "names one container; give one profile with it");
      }
      command.out = m_export.out;
      command.gpu_runtime = m_export.no_gpu_runtime ? GpuRuntime::absent : GpuRuntime::nvidia;
    } else {
      command.repo_url = m_export.repo_url;
      command.out = m_export.dir;
      if (!flags.name.empty()) {
        c.fail("--name", "names one container; portainer-templates writes one stack per profile");
      }
    }
    return finish(c, std::move(command));
  }

  [[nodiscard]] Expected<Command, UsageError> prometheus_rules() const {
    PrometheusRulesCommand command;
    Conversions c;
    if (!m_export.pending.empty()) {
      c.duration(m_export.pending, "--pending", command.options.pending_override);
    }
    return finish(c, std::move(command));
  }

  const Environment& m_env;
  CLI::App m_app{"memwarden: keeps the memory of a local-LLM host healthy"};
  std::string m_root;
};

}  // namespace

Expected<Command, UsageError> parse_command_line(const std::vector<std::string>& args, const Environment& env) {
  CommandLine command_line(env);
  return command_line.parse(args);
}

}  // namespace mw::cli
