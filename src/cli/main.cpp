// memwarden: keeps the memory of a local-LLM host healthy.
// main parses the command line and hands over to one command; nothing else lives here.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>

#include "actions/command.hpp"
#include "actions/server_actions.hpp"
#include "cli/config.hpp"
#include "cli/diagnose.hpp"
#include "cli/exports.hpp"
#include "cli/fix.hpp"
#include "cli/history.hpp"
#include "cli/plan.hpp"
#include "cli/serve.hpp"
#include "cli/status.hpp"
#include "core/bytes.hpp"
#include "core/duration.hpp"
#include "core/text.hpp"

namespace {

constexpr int k_exit_internal = 1;
constexpr int k_exit_usage = 2;

// A malformed option value: one line naming the option, exit 2.
struct UsageError {
  mw::Error error;
};

mw::Duration duration_or_throw(const std::string& text, const char* option) {
  auto d = mw::parse_duration(text, option);
  if (!d) {
    throw UsageError{d.error()};
  }
  return *d;
}

std::uint64_t size_or_throw(const std::string& text, const char* option) {
  auto s = mw::parse_size(text, option);
  if (!s) {
    throw UsageError{s.error()};
  }
  return *s;
}

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
constexpr WholeRange k_budget_range{0, 1000};            // fix --budget: restarts per server per hour
constexpr WholeRange k_limit_range{0, 1'000'000};        // history --limit: records; 0 is all
constexpr WholeRange k_ctx_range{1, 1ULL << 24};         // plan --ctx: tokens
constexpr WholeRange k_parallel_range{1, 256};           // plan --parallel: slots
constexpr WholeRange k_headroom_range{0, 1000};          // plan --headroom: percent
constexpr NumberRange k_growth_min_range{0.1, 1048576};  // diagnose/fix --growth-min: MiB per hour

std::uint64_t whole_or_throw(const std::string& text, const char* option, WholeRange range) {
  auto n = mw::parse_unsigned(text, range.min, range.max, option);
  if (!n) {
    throw UsageError{n.error()};
  }
  return *n;
}

double number_or_throw(const std::string& text, const char* option, NumberRange range) {
  auto n = mw::parse_finite_double(text, range.min, range.max, option);
  if (!n) {
    throw UsageError{n.error()};
  }
  return *n;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Flags shared by diagnose and fix.
struct DiagnoseFlags {
  std::vector<std::string> targets;
  bool json = false;
  std::string docker_host;
  std::string timeout = "2s";
  std::string api_timeout = "2s";
  std::string window = "60s";
  std::string interval = "1s";
  std::string base = "1G";
  std::string reserve = "4G";
  std::string hold = "10s";
  std::string bloat_margin = "2G";
  std::string growth_min = "256";
  std::string lookback;
  std::string state_dir = "/var/lib/memwarden";

  void add_to(CLI::App* app) {
    app->add_option("CONTAINER", targets, "Containers (names or id prefixes); default: every inference server");
    app->add_flag("--json", json, "Print JSON (schemas in docs/)");
    app->add_option("--window", window, "How long to sample; 0 takes one sample")->capture_default_str();
    app->add_option("--interval", interval, "Time between samples")->capture_default_str();
    app->add_option("--docker-host", docker_host, "Docker address (default: $DOCKER_HOST, else the socket)");
    app->add_option("--timeout", timeout, "Time-out for each Docker request")->capture_default_str();
    app->add_option("--api-timeout", api_timeout, "Time-out for each Ollama API request")->capture_default_str();
    app->add_option("--base-allowance", base, "RAM an idle server may hold beyond its models")->capture_default_str();
    app->add_option("--reserve", reserve, "RAM the host keeps for its monitoring stack")->capture_default_str();
    app->add_option("--hold", hold, "How long bloat must last before it is reported")->capture_default_str();
    app->add_option("--bloat-margin", bloat_margin, "Anon memory allowed above expected (or 50% of it, if larger)")
        ->capture_default_str();
    app->add_option("--growth-min", growth_min, "Slowest anon growth reported, in MiB per hour (0.1 to 1048576)")
        ->type_name("FLOAT")
        ->capture_default_str();
    app->add_option("--lookback", lookback,
                    "Start with this much of the samples memwarden serve stored (e.g. 30m), then sample live");
    app->add_option("--state-dir", state_dir, "Where the journal and the sample history live")->capture_default_str();
  }

  [[nodiscard]] mw::engine::DiagnoseOptions options(const std::string& root) const {
    mw::engine::DiagnoseOptions o;
    o.sampler.root = mw::probes::HostRoot(root);
    o.sampler.docker_host = mw::adapters::docker_host_address(docker_host, std::getenv("DOCKER_HOST"));
    o.sampler.targets = targets;
    o.sampler.docker_timeout = duration_or_throw(timeout, "--timeout");
    o.sampler.api_timeout = duration_or_throw(api_timeout, "--api-timeout");
    o.window = duration_or_throw(window, "--window");
    o.interval = duration_or_throw(interval, "--interval");
    if (o.interval.count() <= 0) {
      throw UsageError{mw::Error{"--interval", "must be longer than 0"}};
    }
    o.thresholds.bloat_hold = duration_or_throw(hold, "--hold");
    o.thresholds.base_allowance = size_or_throw(base, "--base-allowance");
    o.thresholds.reserve = size_or_throw(reserve, "--reserve");
    o.thresholds.bloat_margin = size_or_throw(bloat_margin, "--bloat-margin");
    o.thresholds.growth_min_mib_per_hour = number_or_throw(growth_min, "--growth-min", k_growth_min_range);
    if (!lookback.empty()) {
      o.lookback.span = duration_or_throw(lookback, "--lookback");
      o.lookback.state_dir = state_dir;
      o.lookback.now_wall_ms = wall_ms();
    }
    return o;
  }
};

constexpr const char* k_default_config = "/etc/memwarden/memwarden.yaml";

// A configuration that does not parse: its errors were printed, exit 2.
struct ConfigRejected {};

// --config FILE if given; else the default file if it exists; else the built-in defaults.
std::pair<mw::cli::ServeConfig, std::string> resolve_config(const std::string& flag) {
  std::string path = flag;
  if (path.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(k_default_config, ec)) {
      return {mw::cli::ServeConfig{}, ""};
    }
    path = k_default_config;
  }
  auto loaded = mw::cli::load_config(path);
  if (!loaded) {
    for (const auto& e : loaded.error()) {
      fmt::print(stderr, "{}\n", e.text());
    }
    throw ConfigRejected{};
  }
  return {std::move(loaded).value(), path};
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) {
    return "";
  }
  return name;
}

bool ask_on_terminal(const std::string& question) {
  if (::isatty(STDIN_FILENO) == 0) {
    return false;  // nobody to ask: refuse, and the report says to pass --yes
  }
  fmt::print(stderr, "{}", question);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

int run(int argc, char** argv) {
  CLI::App app{"memwarden: keeps the memory of a local-LLM host healthy"};
  app.set_version_flag("--version", std::string("memwarden ") + MEMWARDEN_VERSION);
  app.require_subcommand(1);

  std::string root = "/";
  app.add_option("--root", root, "Host root holding proc/ and sys/ (for a containerised memwarden: /host)")
      ->capture_default_str();

  // ---- status
  auto* status = app.add_subcommand("status", "Host, container and GPU memory at a glance");
  bool s_json = false;
  bool all = false;
  std::string s_docker_host;
  std::string s_timeout = "2s";
  std::string s_reserve = "4G";
  std::string nvml_library;
  status->add_flag("--json", s_json, "Print the facts as JSON (schema in docs/status-json.md)");
  status->add_flag("--all", all, "Include stopped containers");
  status->add_option("--docker-host", s_docker_host,
                     "Docker address: unix:///path or tcp://host:port (default: $DOCKER_HOST, else "
                     "unix:///var/run/docker.sock)");
  status->add_option("--timeout", s_timeout, "Time-out for each Docker request")->capture_default_str();
  status->add_option("--reserve", s_reserve, "RAM the host keeps for its monitoring stack; warn below it")
      ->capture_default_str();
  status->add_option("--nvml-library", nvml_library, "NVML library to load (default libnvidia-ml.so.1)");

  // ---- diagnose
  auto* diagnose = app.add_subcommand("diagnose", "Find leaks, bloat and pressure in inference servers");
  DiagnoseFlags d_flags;
  d_flags.add_to(diagnose);
  std::string stop_on;
  diagnose->add_option("--stop-on", stop_on, "End early at the first finding this severe: warning or critical")
      ->check(CLI::IsMember({"warning", "critical"}));

  // ---- fix
  auto* fix = app.add_subcommand("fix", "Diagnose, then unload or restart bloated servers, safely and journaled");
  DiagnoseFlags f_flags;
  f_flags.window = "12s";
  f_flags.add_to(fix);
  bool f_all = false;
  bool dry_run = false;
  bool yes = false;
  std::string cooldown = "10m";
  std::string budget = "3";
  std::string drain_timeout = "120s";
  std::string health_timeout = "120s";
  std::string stop_timeout = "10s";
  std::string settle = "3s";
  std::vector<std::string> allowlist;
  std::string systemd_unit = "ollama.service";
  fix->add_flag("--all", f_all, "Every opted-in server (label memwarden.enable=true or --allow)");
  fix->add_flag("--dry-run", dry_run, "Print exactly what would be done; change nothing");
  fix->add_flag("--yes", yes, "Act on named servers that did not opt in, without asking");
  fix->add_option("--cooldown", cooldown, "Pause after an action on a server (doubles per restart)")
      ->capture_default_str();
  fix->add_option("--budget", budget, "Restarts per server per hour (0 to 1000)")
      ->type_name("UINT")
      ->capture_default_str();
  fix->add_option("--drain-timeout", drain_timeout, "Wait this long for clients to finish before a restart")
      ->capture_default_str();
  fix->add_option("--health-timeout", health_timeout, "Wait this long for the API after a restart")
      ->capture_default_str();
  fix->add_option("--stop-timeout", stop_timeout, "Docker's stop time-out for the restart")->capture_default_str();
  fix->add_option("--settle", settle, "After unloading, wait this long before measuring again")->capture_default_str();
  fix->add_option("--allow", allowlist, "A server that may be fixed automatically without its label");
  fix->add_option("--systemd-unit", systemd_unit, "The unit of an Ollama running on the host")->capture_default_str();

  // ---- history
  auto* history = app.add_subcommand("history", "Actions memwarden took, newest first");
  bool h_json = false;
  std::string limit = "50";
  std::string h_server;
  std::string h_state_dir = "/var/lib/memwarden";
  history->add_flag("--json", h_json, "Print JSON");
  history->add_option("--limit", limit, "How many records (0: all, at most 1000000)")
      ->type_name("UINT")
      ->capture_default_str();
  history->add_option("--server", h_server, "Only this server");
  history->add_option("--state-dir", h_state_dir, "Where the journal lives")->capture_default_str();
  std::string h_samples;
  std::string h_since = "1h";
  history->add_option("--samples", h_samples,
                      "Show the samples memwarden serve stored for this server, container or 'host' instead");
  history->add_option("--since", h_since, "With --samples: how far back")->capture_default_str();

  // ---- serve
  auto* serve = app.add_subcommand("serve", "Run always: sample, detect, fix opted-in servers, alert, serve /metrics");
  std::string config_flag;
  std::string sv_listen;
  std::string sv_state_dir;
  std::string sv_docker_host;
  std::string sv_interval;
  bool sv_dry_run = false;
  bool sv_no_fix = false;
  serve->add_option("--config", config_flag,
                    fmt::format("Configuration file (default {} if present)", k_default_config));
  serve->add_option("--listen", sv_listen, "HTTP address host:port (default 127.0.0.1:9490)");
  serve->add_option("--state-dir", sv_state_dir, "Where the journal and the history live");
  serve->add_option("--docker-host", sv_docker_host, "Docker address (default: $DOCKER_HOST, else the socket)");
  serve->add_option("--interval", sv_interval, "Time between samples");
  serve->add_flag("--dry-run", sv_dry_run, "Say what fix would do; change nothing");
  serve->add_flag("--no-fix", sv_no_fix, "Observe and alert only");

  // ---- check-config
  auto* check = app.add_subcommand("check-config", "Validate a configuration file");
  std::string check_path = k_default_config;
  bool print_default = false;
  check->add_option("FILE", check_path, "The file")->capture_default_str();
  check->add_flag("--print-default", print_default, "Print a documented configuration with every default");

  // ---- notify
  auto* notify = app.add_subcommand("notify", "Notifications");
  bool notify_test = false;
  std::string notify_config;
  notify->add_flag("--test", notify_test, "Send a test notification to every configured target")->required();
  notify->add_option("--config", notify_config, fmt::format("Configuration file (default {})", k_default_config));

  // ---- plan
  auto* plan = app.add_subcommand("plan", "Will a model fit, split or not, and how big must its container be");
  std::vector<std::string> p_models;
  std::string p_ctx;
  std::string p_parallel;
  std::string p_kv = "f16";
  std::string p_docker_host;
  std::string p_gpu_reserve = "457M";
  std::string p_ram;
  std::string p_vram;
  std::string p_reserve = "4G";
  std::string p_source = "auto";
  std::string p_models_dir;
  std::string p_ollama;
  std::string p_loading = "mmap";
  std::string p_headroom = "20";
  std::string p_api_timeout = "5s";
  bool p_json = false;
  std::string p_nvml;
  plan->add_option("MODEL", p_models,
                   "A GGUF file, an Ollama model name (deepseek-coder:33b) or a catalog name (llama3.1:70b-q8_0)")
      ->required();
  plan->add_option("--ctx", p_ctx,
                   "Context per request (num_ctx), 1 to 16777216; default: Ollama's default for the VRAM")
      ->type_name("UINT");
  auto* parallel_opt =
      plan->add_option("--parallel", p_parallel,
                       "Requests served at once, 1 to 256 (default: the Ollama container's OLLAMA_NUM_PARALLEL, "
                       "else 1)")
          ->type_name("UINT");
  auto* kv_opt = plan->add_option(
      "--kv-type", p_kv, "KV cache: f16, q8_0 or q4_0 (default: the container's OLLAMA_KV_CACHE_TYPE, else f16)");
  plan->add_option("--docker-host", p_docker_host,
                   "Docker address, to find Ollama containers' stores and settings (default: $DOCKER_HOST, else "
                   "the socket)");
  plan->add_option("--ram", p_ram, "Plan for this much RAM instead of the host's (e.g. 32G)");
  plan->add_option("--vram", p_vram, "Plan for one GPU of this size instead of the host's (0: no GPU)");
  plan->add_option("--reserve", p_reserve, "RAM kept for the other services (the monitoring stack)")
      ->capture_default_str();
  plan->add_option("--source", p_source, "Where to look: auto, file, store, server or catalog")->capture_default_str();
  plan->add_option("--models-dir", p_models_dir, "The Ollama model store to search first (else $OLLAMA_MODELS, ...)");
  plan->add_option("--ollama", p_ollama, "A running Ollama to ask (/api/show), e.g. http://127.0.0.1:11434");
  plan->add_option("--loading", p_loading, "How the weights are loaded: mmap, no-mmap or mlock")->capture_default_str();
  plan->add_option("--gpu-reserve", p_gpu_reserve,
                   "VRAM per GPU kept free, as Ollama's minimum (457M; newer releases keep about 1G)")
      ->capture_default_str();
  plan->add_option("--headroom", p_headroom, "Container limit above the RAM need, in percent (0 to 1000)")
      ->type_name("UINT")
      ->capture_default_str();
  plan->add_option("--api-timeout", p_api_timeout, "Time-out for each Ollama API request")->capture_default_str();
  plan->add_flag("--json", p_json, "Print the plan as JSON (schema in docs/plan.md)");
  plan->add_option("--nvml-library", p_nvml, "NVML library to load (default libnvidia-ml.so.1)");

  // ---- export
  auto* export_cmd = app.add_subcommand("export", "Files for the monitoring stack");
  export_cmd->require_subcommand(1);
  auto* rules = export_cmd->add_subcommand("prometheus-rules", "Prometheus alerting rules on memwarden's metrics");
  std::string pending;
  rules->add_option("--pending", pending, "Replace every alert's `for:` duration (e.g. 0s)");
  auto* grafana = export_cmd->add_subcommand("grafana", "A Grafana dashboard on memwarden's metrics (JSON)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : k_exit_usage;
  }

  try {
    if (plan->parsed()) {
      mw::engine::PlanOptions options;
      options.root = mw::probes::HostRoot(root);
      options.models = p_models;
      if (!p_ctx.empty()) {
        options.settings.num_ctx = whole_or_throw(p_ctx, "--ctx", k_ctx_range);
      }
      if (parallel_opt->count() > 0) {
        options.parallel = whole_or_throw(p_parallel, "--parallel", k_parallel_range);
      }
      if (kv_opt->count() > 0) {
        const auto kv = mw::parse_kv_type(mw::ascii_lower(p_kv));
        if (!kv) {
          throw UsageError{mw::Error{"--kv-type", fmt::format("'{}' is not f16, q8_0 or q4_0", p_kv)}};
        }
        options.kv_type = *kv;
      }
      options.docker_host = mw::adapters::docker_host_address(p_docker_host, std::getenv("DOCKER_HOST"));
      if (p_loading == "mmap") {
        options.settings.loading = mw::WeightLoading::mmap;
      } else if (p_loading == "no-mmap") {
        options.settings.loading = mw::WeightLoading::no_mmap;
      } else if (p_loading == "mlock") {
        options.settings.loading = mw::WeightLoading::mlock;
      } else {
        throw UsageError{mw::Error{"--loading", fmt::format("'{}' is not mmap, no-mmap or mlock", p_loading)}};
      }
      options.settings.headroom_percent = whole_or_throw(p_headroom, "--headroom", k_headroom_range);
      if (!p_ram.empty()) {
        options.ram = size_or_throw(p_ram, "--ram");
        if (*options.ram == 0) {
          throw UsageError{mw::Error{"--ram", "must be more than 0"}};
        }
      }
      if (!p_vram.empty()) {
        options.vram = size_or_throw(p_vram, "--vram");
      }
      options.reserve = size_or_throw(p_reserve, "--reserve");
      const auto source = mw::engine::parse_model_source(p_source);
      if (!source) {
        throw UsageError{
            mw::Error{"--source", fmt::format("'{}' is not auto, file, store, server or catalog", p_source)}};
      }
      if (*source == mw::engine::ModelSource::server && p_ollama.empty()) {
        throw UsageError{mw::Error{"--source server", "needs --ollama URL"}};
      }
      options.source = *source;
      // A relative --models-dir is relative to where memwarden runs, not to --root.
      options.models_dir =
          p_models_dir.empty() ? "" : std::filesystem::absolute(p_models_dir).lexically_normal().string();
      const char* env_models = std::getenv("OLLAMA_MODELS");
      options.ollama_models = env_models != nullptr ? env_models : "";
      const char* home = std::getenv("HOME");
      options.home = home != nullptr ? home : "";
      options.ollama_url = p_ollama;
      options.api_timeout = duration_or_throw(p_api_timeout, "--api-timeout");
      if (options.api_timeout.count() <= 0) {
        throw UsageError{mw::Error{"--api-timeout", "must be longer than 0"}};
      }
      options.settings.gpu_reserve = size_or_throw(p_gpu_reserve, "--gpu-reserve");
      options.nvml_library = p_nvml;
      const auto result = mw::engine::collect_plan(options);
      std::cout << (p_json ? mw::cli::plan_to_json(result).dump(2) + "\n" : mw::cli::render_plan(result));
      std::cout.flush();
      return static_cast<int>(mw::engine::plan_exit_code(result));
    }

    if (status->parsed()) {
      mw::engine::StatusOptions options;
      options.root = mw::probes::HostRoot(root);
      options.docker_host = mw::adapters::docker_host_address(s_docker_host, std::getenv("DOCKER_HOST"));
      options.scope = all ? mw::adapters::ListScope::all : mw::adapters::ListScope::running;
      options.nvml_library = nvml_library;
      options.docker_timeout = duration_or_throw(s_timeout, "--timeout");
      options.thresholds.reserve_bytes = size_or_throw(s_reserve, "--reserve");
      const auto result = mw::engine::collect_status(options);
      std::cout << (s_json ? mw::cli::status_to_json(result).dump(2) + "\n" : mw::cli::render_status_table(result));
      std::cout.flush();
      return static_cast<int>(mw::engine::status_exit_code(result));
    }

    if (diagnose->parsed()) {
      auto options = d_flags.options(root);
      if (stop_on == "warning") {
        options.stop_on = mw::Severity::warning;
      } else if (stop_on == "critical") {
        options.stop_on = mw::Severity::critical;
      }
      mw::engine::SteadyClock clock;
      const auto result = mw::engine::run_diagnose(options, clock);
      std::cout << (d_flags.json ? mw::cli::diagnosis_to_json(result).dump(2) + "\n"
                                 : mw::cli::render_diagnosis(result));
      std::cout.flush();
      return static_cast<int>(mw::engine::diagnose_exit_code(result));
    }

    if (fix->parsed()) {
      if (f_flags.targets.empty() && !f_all) {
        throw UsageError{mw::Error{"fix", "name the servers to fix, or --all for every opted-in server"}};
      }
      if (!f_flags.targets.empty() && f_all) {
        throw UsageError{mw::Error{"fix", "name servers or use --all, not both"}};
      }
      mw::engine::FixOptions options;
      options.diagnose = f_flags.options(root);
      options.selection = f_all ? mw::Selection::automatic : mw::Selection::named;
      options.mode = dry_run ? mw::engine::RunMode::dry_run : mw::engine::RunMode::live;
      options.policy.cooldown = duration_or_throw(cooldown, "--cooldown");
      options.policy.restart_budget = whole_or_throw(budget, "--budget", k_budget_range);
      options.policy.drain_timeout = duration_or_throw(drain_timeout, "--drain-timeout");
      options.policy.health_timeout = duration_or_throw(health_timeout, "--health-timeout");
      options.policy.stop_timeout = duration_or_throw(stop_timeout, "--stop-timeout");
      options.policy.settle = duration_or_throw(settle, "--settle");
      options.policy.allowlist = allowlist;
      options.own_container_id = mw::engine::own_container_id(mw::probes::HostRoot(root));

      // Live runs need the journal first: no record, no action.
      std::optional<mw::adapters::Journal> journal;
      if (auto opened = mw::adapters::Journal::open(f_flags.state_dir)) {
        journal = std::move(opened).value();
        if (!dry_run) {
          if (auto marked = journal->mark_interrupted_stale(); !marked) {
            fmt::print(stderr, "memwarden: {}\n", marked.error().line());
          }
        }
      } else if (!dry_run) {
        fmt::print(stderr, "memwarden: {}\nmemwarden: not acting without a journal\n", opened.error().line());
        return static_cast<int>(mw::engine::FixExit::journal);
      }
      // Docker for restarts; its absence is reported by the diagnosis and the restart step.
      std::optional<mw::adapters::DockerClient> docker;
      if (auto ep = mw::adapters::parse_endpoint(options.diagnose.sampler.docker_host, "docker host")) {
        if (auto client = mw::adapters::DockerClient::connect(*ep, options.diagnose.sampler.docker_timeout)) {
          docker = std::move(client).value();
        }
      }
      mw::actions::ProcessRunner runner;
      mw::actions::LiveActions live(docker ? &*docker : nullptr, runner, systemd_unit,
                                    options.diagnose.sampler.api_timeout);
      mw::actions::DryRunActions dry(systemd_unit);
      mw::engine::SteadyClock clock;
      mw::engine::FixEnvironment env{
          clock, wall_ms, dry_run ? static_cast<mw::actions::ServerActions&>(dry) : live, journal ? &*journal : nullptr,
          yes ? std::function<bool(const std::string&)>([](const std::string&) { return true; })
              : std::function<bool(const std::string&)>(ask_on_terminal)};
      const auto result = mw::engine::run_fix(options, env);
      std::cout << (f_flags.json ? mw::cli::fix_to_json(result, options.mode).dump(2) + "\n"
                                 : mw::cli::render_fix(result, options.mode));
      std::cout.flush();
      return static_cast<int>(mw::engine::fix_exit_code(result));
    }

    if (serve->parsed()) {
      if (sv_dry_run && sv_no_fix) {
        throw UsageError{mw::Error{"serve", "--dry-run and --no-fix exclude each other"}};
      }
      std::optional<mw::Duration> interval;
      if (!sv_interval.empty()) {
        interval = duration_or_throw(sv_interval, "--interval");
        if (interval->count() <= 0) {
          throw UsageError{mw::Error{"--interval", "must be longer than 0"}};
        }
      }
      // The command line wins over the file, at start and at every reload.
      const auto overrides = [&](mw::cli::ServeConfig& c) {
        if (!sv_listen.empty()) {
          c.listen = sv_listen;
        }
        if (!sv_state_dir.empty()) {
          c.state_dir = sv_state_dir;
        }
        if (interval) {
          c.interval = *interval;
        }
        if (sv_dry_run) {
          c.auto_fix = mw::cli::AutoFix::dry_run;
        } else if (sv_no_fix) {
          c.auto_fix = mw::cli::AutoFix::off;
        }
        c.docker_host = mw::adapters::docker_host_address(
            sv_docker_host.empty() ? std::string_view(c.docker_host) : std::string_view(sv_docker_host),
            std::getenv("DOCKER_HOST"));
      };
      auto [config, path] = resolve_config(config_flag);
      overrides(config);
      mw::engine::SteadyClock clock;
      mw::cli::ServeEnvironment env{mw::probes::HostRoot(root),    clock, wall_ms, {}, {}, nullptr, host_name(),
                                    std::string(MEMWARDEN_VERSION)};
      return mw::cli::run_serve(std::move(config), path, std::move(env), overrides);
    }

    if (check->parsed()) {
      if (print_default) {
        std::cout << mw::cli::example_config();
        return 0;
      }
      auto loaded = mw::cli::load_config(check_path);
      if (!loaded) {
        for (const auto& e : loaded.error()) {
          fmt::print(stderr, "{}\n", e.text());
        }
        return k_exit_usage;
      }
      // The files the configuration names must be usable too: serve would run without its fix endpoint.
      if (!loaded->token_file.empty()) {
        if (auto token = mw::cli::read_token_file(loaded->token_file); !token) {
          fmt::print(stderr, "{}: token_file: {}\n", check_path, token.error().line());
          return k_exit_usage;
        }
      }
      fmt::print("{}: ok\n", check_path);
      return 0;
    }

    if (notify->parsed()) {
      auto [config, path] = resolve_config(notify_config);
      if (config.notify_targets.empty()) {
        fmt::print(stderr, "memwarden: {}: no notify targets configured\n", path.empty() ? "(defaults)" : path);
        return k_exit_usage;
      }
      mw::adapters::Notification n;
      n.event = "test";
      n.severity = mw::Severity::info;
      n.subject = "memwarden";
      n.what = "test";
      n.title = "memwarden: test notification";
      n.message = fmt::format("memwarden {} on {} can reach this target.", MEMWARDEN_VERSION, host_name());
      n.at_ms = wall_ms();
      n.host = host_name();
      int failed = 0;
      for (const auto& t : config.notify_targets) {
        auto kind = mw::adapters::parse_notify_kind(t.kind, "notify target " + t.name);
        auto sent = kind ? mw::adapters::send_notification({t.name, *kind, t.url}, n, std::chrono::milliseconds(10000))
                         : mw::Expected<void, mw::Error>(mw::unexpected(kind.error()));
        if (sent) {
          fmt::print("{} ({}): sent\n", t.name, t.kind);
        } else {
          fmt::print("{} ({}): failed: {}\n", t.name, t.kind, sent.error().line());
          ++failed;
        }
      }
      return failed == 0 ? 0 : 3;
    }

    if (rules->parsed()) {
      mw::cli::RulesOptions options;
      if (!pending.empty()) {
        options.pending_override = duration_or_throw(pending, "--pending");
      }
      std::cout << mw::cli::prometheus_rules(options);
      return 0;
    }

    if (grafana->parsed()) {
      std::cout << mw::cli::grafana_dashboard();
      return 0;
    }

    if (history->parsed()) {
      mw::cli::HistoryOptions options;
      options.state_dir = h_state_dir;
      options.format = h_json ? mw::cli::HistoryFormat::json : mw::cli::HistoryFormat::table;
      options.limit = whole_or_throw(limit, "--limit", k_limit_range);
      if (!h_server.empty()) {
        options.server = h_server;
      }
      options.since = duration_or_throw(h_since, "--since");
      if (options.since.count() <= 0) {
        throw UsageError{mw::Error{"--since", "must be longer than 0"}};
      }
      if (!h_samples.empty()) {
        options.samples_subject = h_samples;
      }
      options.now_wall_ms = wall_ms();
      const auto output = mw::cli::run_history(options);
      std::cout << output.out;
      std::cout.flush();
      if (!output.err.empty()) {
        fmt::print(stderr, "memwarden: {}\n", output.err);
      }
      return static_cast<int>(output.exit);
    }
  } catch (const UsageError& e) {
    fmt::print(stderr, "memwarden: {}\n", e.error.line());
    return k_exit_usage;
  } catch (const ConfigRejected&) {
    return k_exit_usage;
  }
  return k_exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "memwarden: internal error: {}\n", e.what());
  } catch (...) {
    fmt::print(stderr, "memwarden: internal error\n");
  }
  return k_exit_internal;
}
