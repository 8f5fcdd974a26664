// memwarden: keeps the memory of a local-LLM host healthy.
// main reads the environment, parses the command line into a command (cli/command.hpp) and runs it: the
// engine, then the renderer, then the exit code. Nothing else lives here.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cli/bench.hpp"
#include "cli/bench_history.hpp"
#include "cli/bench_report.hpp"
#include "cli/command.hpp"
#include "cli/config.hpp"
#include "cli/deploy.hpp"
#include "cli/diagnose.hpp"
#include "cli/exports.hpp"
#include "cli/fix.hpp"
#include "cli/history.hpp"
#include "cli/optimize.hpp"
#include "cli/plan.hpp"
#include "cli/serve.hpp"
#include "cli/status.hpp"
#include "cli/test_model.hpp"
#include "cli/test_vram.hpp"
#include "core/bytes.hpp"
#include "engine/bench_history.hpp"
#include "engine/bench_json.hpp"

namespace {

using namespace mw::cli;

constexpr int k_exit_ok = 0;
constexpr int k_exit_internal = 1;
constexpr int k_exit_usage = UsageError::k_exit_code;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// What the parser may know of the process's surroundings.
Environment current_environment() {
  Environment env;
  env.docker_host = env_or_empty("DOCKER_HOST");
  env.ollama_models = env_or_empty("OLLAMA_MODELS");
  env.home = env_or_empty("HOME");
  std::error_code ec;
  env.working_dir = std::filesystem::current_path(ec);
  env.now_wall_ms = wall_ms();
  return env;
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

void print_report(const std::string& text) {
  std::cout << text;
  std::cout.flush();
}

// A configuration: its path ("" for the built-in defaults), or nullopt when it does not parse (its errors
// were printed).
struct LoadedConfig {
  ServeConfig config;
  std::string path;
};

// `file` if given; else the default file if it exists; else the built-in defaults.
std::optional<LoadedConfig> resolve_config(const std::string& file) {
  std::string path = file;
  if (path.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(k_default_config_file, ec)) {
      return LoadedConfig{ServeConfig{}, ""};
    }
    path = k_default_config_file;
  }
  auto loaded = load_config(path);
  if (!loaded) {
    for (const auto& e : loaded.error()) {
      fmt::print(stderr, "{}\n", e.text());
    }
    return std::nullopt;
  }
  return LoadedConfig{std::move(loaded).value(), path};
}

int execute(const HelpCommand& command) {
  std::cout << command.text;
  return k_exit_ok;
}

int execute(const StatusCommand& command) {
  const auto result = mw::engine::collect_status(command.options);
  print_report(command.format == ReportFormat::json ? status_to_json(result).dump(2) + "\n"
                                                    : render_status_table(result));
  return static_cast<int>(mw::engine::status_exit_code(result));
}

int execute(const DiagnoseCommand& command) {
  mw::engine::SteadyClock clock;
  const auto result = mw::engine::run_diagnose(command.options, clock);
  print_report(command.format == ReportFormat::json ? diagnosis_to_json(result).dump(2) + "\n"
                                                    : render_diagnosis(result));
  return static_cast<int>(mw::engine::diagnose_exit_code(result));
}

// The actions `fix` and `optimize`'s fix step act through, set up from the fix's own options.
mw::engine::FixTools::Options fix_tool_options(const mw::engine::FixOptions& options, const std::string& systemd_unit) {
  mw::engine::FixTools::Options o;
  o.mode = options.mode;
  o.docker_host = options.diagnose.sampler.docker_host;
  o.docker_timeout = options.diagnose.sampler.docker_timeout;
  o.api_timeout = options.diagnose.sampler.api_timeout;
  o.systemd_unit = systemd_unit;
  return o;
}

int execute(const FixCommand& command) {
  auto options = command.options;
  options.own_container_id = mw::engine::own_container_id(options.diagnose.sampler.root);
  const bool dry_run = options.mode == mw::engine::RunMode::dry_run;

  // Live runs need the journal first: no record, no action.
  std::optional<mw::adapters::Journal> journal;
  if (auto opened = mw::adapters::Journal::open(command.state_dir.path())) {
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
  mw::engine::FixTools tools(fix_tool_options(options, command.systemd_unit));
  mw::engine::SteadyClock clock;
  std::function<bool(const std::string&)> confirm = ask_on_terminal;
  if (command.confirmation == Confirmation::assume_yes) {
    confirm = [](const std::string&) { return true; };
  }
  mw::engine::FixEnvironment env{clock, wall_ms, tools.actions(), journal ? &*journal : nullptr, confirm};
  const auto result = mw::engine::run_fix(options, env);
  print_report(command.format == ReportFormat::json ? fix_to_json(result, options.mode).dump(2) + "\n"
                                                    : render_fix(result, options.mode));
  return static_cast<int>(mw::engine::fix_exit_code(result));
}

int execute(const HistoryCommand& command) {
  const auto output = run_history(command.options);
  print_report(output.out);
  if (!output.err.empty()) {
    fmt::print(stderr, "memwarden: {}\n", output.err);
  }
  return static_cast<int>(output.exit);
}

int execute(const ServeCommand& command) {
  auto loaded = resolve_config(command.config_file);
  if (!loaded) {
    return k_exit_usage;
  }
  // The command line wins over the file, at start and at every reload.
  const auto overrides = [o = command.overrides](ServeConfig& c) { apply_overrides(o, c); };
  overrides(loaded->config);
  mw::engine::SteadyClock clock;
  ServeEnvironment env{command.root, clock, wall_ms, {}, {}, nullptr, host_name(), std::string(program_version())};
  return run_serve(std::move(loaded->config), loaded->path, std::move(env), overrides);
}

int execute(const CheckConfigCommand& command) {
  if (command.mode == CheckConfigMode::print_default) {
    std::cout << example_config();
    return k_exit_ok;
  }
  auto loaded = load_config(command.file);
  if (!loaded) {
    for (const auto& e : loaded.error()) {
      fmt::print(stderr, "{}\n", e.text());
    }
    return k_exit_usage;
  }
  // The files the configuration names must be usable too: serve would run without its fix endpoint.
  if (!loaded->token_file.empty()) {
    if (auto token = read_token_file(loaded->token_file); !token) {
      fmt::print(stderr, "{}: token_file: {}\n", command.file, token.error().line());
      return k_exit_usage;
    }
  }
  fmt::print("{}: ok\n", command.file);
  return k_exit_ok;
}

int execute(const NotifyTestCommand& command) {
  const auto loaded = resolve_config(command.config_file);
  if (!loaded) {
    return k_exit_usage;
  }
  if (loaded->config.notify_targets.empty()) {
    fmt::print(stderr, "memwarden: {}: no notify targets configured\n",
               loaded->path.empty() ? "(defaults)" : loaded->path);
    return k_exit_usage;
  }
  mw::adapters::Notification n;
  n.event = "test";
  n.severity = mw::Severity::info;
  n.subject = "memwarden";
  n.what = "test";
  n.title = "memwarden: test notification";
  n.message = fmt::format("memwarden {} on {} can reach this target.", program_version(), host_name());
  n.at_ms = wall_ms();
  n.host = host_name();
  int failed = 0;
  for (const auto& t : loaded->config.notify_targets) {
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
  return failed == 0 ? k_exit_ok : 3;
}

int execute(const PlanCommand& command) {
  const auto result = mw::engine::collect_plan(command.options);
  print_report(command.format == ReportFormat::json ? plan_to_json(result).dump(2) + "\n" : render_plan(result));
  return static_cast<int>(mw::engine::plan_exit_code(result));
}

// The profiles every command uses: the built-in ones with the configuration's; nullopt when it does not parse.
std::optional<std::vector<mw::Profile>> resolve_profiles(const std::string& config_file) {
  const auto loaded = resolve_config(config_file);
  if (!loaded) {
    return std::nullopt;
  }
  return mw::engine::configured_profiles(loaded->config);
}

int execute(const ProfilesCommand& command) {
  const auto profiles = resolve_profiles(command.config_file);
  if (!profiles) {
    return UsageError::k_exit_code;
  }
  const auto result = mw::engine::plan_profiles(*profiles, command.plan);
  print_report(command.format == ReportFormat::json ? profiles_to_json(result).dump(2) + "\n"
                                                    : render_profiles(result));
  return k_exit_ok;
}

int print_deploy_error(const mw::engine::DeployError& e, ReportFormat format) {
  if (format == ReportFormat::json) {
    print_report(nlohmann::json{{"error", e.lines}, {"exit_code", static_cast<int>(e.exit)}}.dump(2) + "\n");
  }
  for (const auto& line : e.lines) {
    fmt::print(stderr, "{}\n", line);
  }
  return static_cast<int>(e.exit);
}

int execute(const DeployCommand& command) {
  if (command.action == DeployAction::restore) {
    const auto restored =
        mw::engine::restore_stopped(command.options.plan.docker_host, command.run.state_dir, command.run.confirm);
    if (!restored) {
      return print_deploy_error(restored.error(), command.format);
    }
    if (command.format == ReportFormat::json) {
      print_report(nlohmann::json{{"stopped", restored->stopped},
                                  {"started", restored->started},
                                  {"failed", restored->failed},
                                  {"nothing", restored->nothing ? nlohmann::json(*restored->nothing) : nullptr}}
                       .dump(2) +
                   "\n");
    } else if (restored->nothing) {
      print_report("deploy --restore: " + *restored->nothing + "\n");
    } else {
      std::string out;
      for (const auto& name : restored->stopped) {
        out += "stopped " + name + "\n";
      }
      for (const auto& name : restored->started) {
        out += "started " + name + "\n";
      }
      for (const auto& f : restored->failed) {
        out += "could not start " + f + "\n";
      }
      print_report(out);
    }
    return restored->failed.empty() ? k_exit_ok : 1;
  }
  auto options = command.options;
  const auto profiles = resolve_profiles(command.config_file);
  if (!profiles) {
    return UsageError::k_exit_code;
  }
  options.profiles = *profiles;
  const auto prepared = mw::engine::prepare_deployment(options);
  if (!prepared) {
    return print_deploy_error(prepared.error(), command.format);
  }
  const bool json = command.format == ReportFormat::json;
  if (command.load == LoadCheck::load && prepared->spec.profile.api != mw::ServerApi::ollama) {
    return print_deploy_error(
        mw::engine::DeployError{mw::engine::DeployExit::usage,
                                {fmt::format("deploy: --load speaks Ollama's API; profile {} serves the {} API",
                                             prepared->spec.profile.name, to_string(prepared->spec.profile.api))}},
        command.format);
  }
  if (command.action == DeployAction::dry_run) {
    auto doc = prepared_to_json(*prepared);
    doc["dry_run"] = true;
    doc["create_body"] = nlohmann::json::parse(mw::adapters::container_create_body(prepared->spec));
    // What the real run would refuse (admission, a foreign name, --yes, the image) is said the same way.
    const auto ready = mw::engine::preflight(*prepared, options, command.run);
    doc["would_deploy"] = ready.has_value();
    print_report(json ? doc.dump(2) + "\n" : render_prepared(*prepared) + "dry run: nothing was created\n");
    if (!ready) {
      for (const auto& line : ready.error().lines) {
        fmt::print(stderr, "{}\n", line);
      }
      return static_cast<int>(ready.error().exit);
    }
    return k_exit_ok;
  }
  if (!json) {
    print_report(render_prepared(*prepared));
  }
  const auto report = mw::engine::run_deployment(*prepared, options, command.run);
  if (!report) {
    return print_deploy_error(report.error(), command.format);
  }
  std::vector<mw::engine::LoadComparison> loads;
  if (command.load == LoadCheck::load) {
    loads = mw::engine::load_and_compare(*prepared, *report, options);
  }
  if (json) {
    auto doc = prepared_to_json(*prepared);
    doc["result"] = report_to_json(*report);
    if (command.load == LoadCheck::load) {
      doc["load"] = load_to_json(loads);
    }
    print_report(doc.dump(2) + "\n");
  } else {
    print_report(render_report(*report) + (loads.empty() ? std::string() : render_load(loads)));
  }
  const bool load_failed = std::any_of(loads.begin(), loads.end(), [](const auto& l) { return l.error.has_value(); });
  return load_failed ? 3 : k_exit_ok;
}

// Writes `text` to `path`, creating its directory; false (and a line on stderr naming the path) on failure.
bool write_file(const std::filesystem::path& path, const std::string& text) {
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (ec || !out) {
    fmt::print(stderr, "memwarden: {}: cannot write: {}\n", path.string(), ec ? ec.message() : "write failed");
    return false;
  }
  return true;
}

int execute(const ExportDeployCommand& command) {
  auto options = command.options;
  const auto profiles = resolve_profiles(command.config_file);
  if (!profiles) {
    return UsageError::k_exit_code;
  }
  options.profiles = *profiles;
  auto targets = command.options.targets;
  if (targets.empty()) {
    for (const auto& p : *profiles) {
      targets.push_back(p.name);
    }
  }
  // One service or stack per target; one that cannot be planned is reported and the others are still written.
  int exit_code = k_exit_ok;
  std::vector<mw::DeploySpec> specs;
  std::vector<PortainerStack> stacks;
  for (const auto& target : targets) {
    options.targets = {target};
    const auto prepared = mw::engine::prepare_deployment(options);
    if (!prepared) {
      for (const auto& line : prepared.error().lines) {
        fmt::print(stderr, "{}\n", line);
      }
      exit_code = std::max(exit_code, static_cast<int>(prepared.error().exit));
      continue;
    }
    specs.push_back(prepared->spec);
    PortainerStack stack;
    stack.spec = prepared->spec;
    stack.stackfile = fmt::format("stacks/{}/compose.yml", prepared->spec.name);
    stack.host_ram = prepared->host.ram_total.value_or(prepared->host.ram_available);
    if (!prepared->host.gpus.empty()) {
      stack.host_vram = prepared->host.vram_total();
    }
    stacks.push_back(std::move(stack));
  }
  if (command.target == ExportTarget::compose) {
    if (specs.empty()) {
      return exit_code;
    }
    // One file is brought up as a whole: two services may not share a name or a host port.
    for (std::size_t i = 0; i < specs.size(); ++i) {
      for (std::size_t k = 0; k < i; ++k) {
        const bool same_port = specs[i].profile.port == specs[k].profile.port;
        if (specs[i].name == specs[k].name || same_port) {
          fmt::print(stderr,
                     "memwarden: export compose: {} and {} share {}; give them apart (--port, or one file each)\n",
                     specs[k].profile.name, specs[i].profile.name,
                     same_port ? fmt::format("port {}", specs[i].profile.port) : "a name");
          return UsageError::k_exit_code;
        }
      }
    }
    const auto text = compose_file(specs, ComposeOptions{ComposeValues::plain, command.gpu_runtime});
    if (command.out.empty()) {
      std::cout << text;
    } else if (!write_file(command.out, text)) {
      return k_exit_internal;
    }
    return exit_code;
  }
  const std::filesystem::path dir = command.out;
  for (const auto& stack : stacks) {
    const std::vector<mw::DeploySpec> one{stack.spec};
    if (!write_file(dir / stack.stackfile,
                    compose_file(one, ComposeOptions{ComposeValues::tunable, command.gpu_runtime}))) {
      return k_exit_internal;
    }
  }
  if (!write_file(dir / "templates.json", portainer_templates(stacks, command.repo_url))) {
    return k_exit_internal;
  }
  fmt::print("wrote {} and {} stack{} under {}\n", (dir / "templates.json").string(), stacks.size(),
             stacks.size() == 1 ? "" : "s", (dir / "stacks").string());
  return exit_code;
}

std::atomic<bool> g_interrupted{false};
// The first Ctrl-C stops the running size (its container is stopped and removed); a second one ends
// memwarden at once.
extern "C" void on_interrupt(int signal_number) {
  g_interrupted.store(true);
  std::signal(signal_number, SIG_DFL);
}

// For the tests that hold memory (test ram, vram, model): Ctrl-C and SIGTERM set g_interrupted, and the test stops,
// frees and cleans up.
void stop_on_interrupt() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// The allocation helper: $MEMWARDEN_ALLOC, else memwarden-alloc beside this binary.
std::string alloc_helper_path() {
  if (const char* env = std::getenv("MEMWARDEN_ALLOC"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("memwarden-alloc") : (self.parent_path() / "memwarden-alloc").string();
}

// Issue 14's codes: 0 every size reached, 4 not possible on this host, 3 a source missing; 1 a failure,
// 130 interrupted.
int ram_exit_code(mw::engine::RamVerdict v) {
  switch (v) {
    case mw::engine::RamVerdict::passed:
      return k_exit_ok;
    case mw::engine::RamVerdict::not_possible:
      return 4;
    case mw::engine::RamVerdict::source_missing:
      return 3;
    case mw::engine::RamVerdict::failed:
      return 1;
    case mw::engine::RamVerdict::interrupted:
      return 130;
  }
  return 1;
}

int execute(const TestRamCommand& command) {
  auto options = command.options;
  options.helper_path = alloc_helper_path();
  options.stop = &g_interrupted;
  stop_on_interrupt();
  const bool json = command.format == ReportFormat::json;
  const auto result = mw::engine::run_ram_test(options);
  if (!result) {
    // The engine, the helper or its image: a source the test needs is missing.
    if (json) {
      print_report(nlohmann::json{{"error", result.error().line()}, {"exit_code", 3}}.dump(2) + "\n");
    }
    fmt::print(stderr, "memwarden: test ram: {}\n", result.error().line());
    return 3;
  }
  int exit_code = k_exit_ok;
  auto runs = nlohmann::json::array();
  std::string text = fmt::format("{:>10} {:>10} {:>10} {:>8} {:>8} {:>14} {:>9} {:>9}  {}\n", "SIZE", "LIMIT",
                                 "REACHED", "TIME", "GB/S", "MIN AVAILABLE", "SWAP I/O", "PSI FULL", "STOP");
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  for (const auto& r : result->runs) {
    const auto gbps = r.gb_per_s();
    const auto verdict = r.error ? mw::engine::RamVerdict::failed : r.verdict;
    exit_code = std::max(exit_code, ram_exit_code(verdict));
    runs.push_back({{"size_bytes", r.size},
                    {"container_limit_bytes", r.container_limit},
                    {"reached", !r.refused && !r.error && verdict == mw::engine::RamVerdict::passed},
                    {"refused", opt(r.refused)},
                    {"error", opt(r.error)},
                    {"reached_bytes", opt(r.reached)},
                    {"seconds", r.seconds},
                    {"gb_per_s", opt(gbps)},
                    {"min_available_bytes", opt(r.min_available)},
                    {"swap_in_pages", r.swap_in_pages},
                    {"swap_out_pages", r.swap_out_pages},
                    {"psi_full_peak", opt(r.psi_full_peak)},
                    {"stop", r.stop.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.stop)},
                    {"oom_killed", r.oom_killed},
                    {"held_seconds", opt(r.held_seconds)},
                    {"cgroup", r.cgroup.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.cgroup)}});
    if (r.refused || r.error) {
      text += fmt::format("{:>10} {}\n", mw::format_bytes(r.size), r.refused ? *r.refused : *r.error);
      continue;
    }
    text += fmt::format("{:>10} {:>10} {:>10} {:>7.2f}s {:>8} {:>14} {:>9} {:>9}  {}\n", mw::format_bytes(r.size),
                        mw::format_bytes(r.container_limit), r.reached ? mw::format_bytes(*r.reached) : "-", r.seconds,
                        gbps ? fmt::format("{:.2f}", *gbps) : "-",
                        r.min_available ? mw::format_bytes(*r.min_available) : "-",
                        fmt::format("{}/{}", r.swap_in_pages, r.swap_out_pages),
                        r.psi_full_peak ? fmt::format("{:.2f}%", *r.psi_full_peak) : "-", r.stop);
  }
  const bool in_cgroups = result->isolation == mw::engine::RamIsolation::cgroup;
  for (const auto& note : result->notes) {
    text += fmt::format("note: {}\n", note);
  }
  print_report(json ? nlohmann::json{{"isolation", in_cgroups ? "cgroup" : "container"},
                                     {"image", in_cgroups ? nlohmann::json(nullptr) : nlohmann::json(result->image)},
                                     {"notes", result->notes},
                                     {"runs", runs}}
                              .dump(2) +
                          "\n"
                    : text);
  return g_interrupted.load() ? 130 : exit_code;
}

// Whether `path` can be written: checked before a benchmark begins, so that a long run does not end in an error.
std::optional<std::string> unwritable(const std::string& path, const char* option) {
  if (path.empty()) {
    return std::nullopt;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) {
    return fmt::format("{} {}: is a directory", option, path);
  }
  const auto dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) {
    return fmt::format("{} {}: no directory {}", option, path, dir.string());
  }
  const bool exists = fs::exists(p, ec);
  if (::access(exists ? p.c_str() : dir.c_str(), W_OK) != 0) {
    return fmt::format("{} {}: cannot be written ({})", option, path, std::strerror(errno));
  }
  return std::nullopt;
}

// Writes `text` to `path` whole: a new temporary file beside it (mkstemp: created, never a link followed), written,
// flushed to disk, then renamed over `path`. One line naming the path on failure.
std::optional<std::string> write_file(const std::string& path, const std::string& text, const char* option) {
  const std::filesystem::path target(path);
  const auto dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string temporary = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) {
    return fmt::format("{} {}: cannot create a file beside it: {}", option, path, std::strerror(errno));
  }
  std::size_t written = 0;
  while (written < text.size()) {
    const auto n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  const int saved = written == text.size() ? 0 : errno;
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  std::error_code ec;
  if (written != text.size() || !synced || !closed) {
    std::filesystem::remove(temporary, ec);
    return fmt::format("{} {}: could not be written: {}", option, path, std::strerror(saved != 0 ? saved : errno));
  }
  // mkstemp makes it 0600; a report is for reading.
  ::chmod(temporary.c_str(), 0644);
  std::filesystem::rename(temporary, target, ec);
  if (ec) {
    std::filesystem::remove(temporary, ec);
    return fmt::format("{} {}: {}", option, path, ec.message());
  }
  return std::nullopt;
}

// --csv and --html of a run; false when one could not be written (said on standard error).
bool write_reports(const BenchCommand& command, const mw::BenchRun& run) {
  bool ok = true;
  if (!command.csv_file.empty()) {
    if (auto why = write_file(command.csv_file, bench_csv(run), "--csv")) {
      fmt::print(stderr, "memwarden: bench: {}\n", *why);
      ok = false;
    }
  }
  if (!command.html_file.empty()) {
    if (auto why = write_file(command.html_file, bench_html(run), "--html")) {
      fmt::print(stderr, "memwarden: bench: {}\n", *why);
      ok = false;
    }
  }
  return ok;
}

// bench --list, --compare, --report, --annotations: what the history database holds.
int execute_bench_history(const BenchCommand& command) {
  const bool json = command.format == ReportFormat::json;
  const auto failed = [](const mw::Error& e) {
    fmt::print(stderr, "memwarden: bench: {}\n", e.line());
    return 3;
  };
  switch (command.action) {
    case BenchAction::list: {
      const auto runs = mw::engine::list_bench_runs(command.state_dir, command.limit);
      if (!runs) {
        return failed(runs.error());
      }
      print_report(json ? nlohmann::json{{"runs", render_bench_list_json(*runs)}}.dump(2) + "\n"
                        : render_bench_list(*runs));
      return k_exit_ok;
    }
    case BenchAction::compare: {
      const auto a = mw::engine::load_bench_run(command.state_dir, command.run_ids.at(0));
      if (!a) {
        return failed(a.error());
      }
      const auto b = mw::engine::load_bench_run(command.state_dir, command.run_ids.at(1));
      if (!b) {
        return failed(b.error());
      }
      const auto changes = mw::compare_runs(*a, *b);
      print_report(json ? render_bench_compare_json(*a, *b, changes).dump(2) + "\n"
                        : render_bench_compare(*a, *b, changes));
      return k_exit_ok;
    }
    case BenchAction::report:
    case BenchAction::annotations: {
      const auto run = mw::engine::load_bench_run(command.state_dir, command.run_ids.at(0));
      if (!run) {
        return failed(run.error());
      }
      if (command.action == BenchAction::annotations) {
        print_report(bench_annotations(*run).dump(2) + "\n");
        return k_exit_ok;
      }
      const bool written = write_reports(command, *run);
      print_report(json ? mw::engine::bench_run_json(*run).dump(2) + "\n" : render_bench_run(*run));
      return written ? k_exit_ok : 1;
    }
    case BenchAction::run:
      break;
  }
  return k_exit_ok;
}

int execute(const BenchCommand& command) {
  if (command.action != BenchAction::run) {
    return execute_bench_history(command);
  }
  const bool json = command.format == ReportFormat::json;
  for (const auto& [path, option] : {std::pair{command.csv_file, "--csv"}, std::pair{command.html_file, "--html"}}) {
    if (auto why = unwritable(path, option)) {
      fmt::print(stderr, "memwarden: bench: {}\n", *why);
      return UsageError::k_exit_code;
    }
  }
  auto options = command.options;
  options.stop = &g_interrupted;
  stop_on_interrupt();
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  if (terminal) {
    options.progress = [](const mw::engine::BenchProgress& p) {
      fmt::print(stderr, "\r\033[K{}", bench_progress_line(p));
      std::fflush(stderr);
    };
  }
  auto run = mw::engine::run_bench(options);
  if (terminal) {
    fmt::print(stderr, "\r\033[K");
  }
  if (!run) {
    if (json) {
      print_report(nlohmann::json{{"error", run.error().line()}, {"exit_code", 3}}.dump(2) + "\n");
    }
    fmt::print(stderr, "memwarden: bench: {}\n", run.error().line());
    return 3;
  }
  int exit_code = g_interrupted.load() ? 130 : static_cast<int>(mw::engine::bench_exit(*run));
  // Stored whole, an interrupted run too (marked): what was measured is kept.
  if (command.store == StoreRun::store) {
    if (auto id = mw::engine::store_bench_run(command.state_dir, *run)) {
      run->id = *id;
    } else {
      run->notes.push_back("not stored in the history: " + id.error().line());
    }
  }
  if (!write_reports(command, *run) && exit_code == 0) {
    exit_code = 1;
  }
  if (json) {
    print_report(mw::engine::bench_run_json(*run).dump(2) + "\n");
  } else {
    print_report(render_bench_run(*run) +
                 (run->id > 0 ? fmt::format("stored as run {} (memwarden bench --report {})\n", run->id, run->id)
                              : std::string()));
  }
  return exit_code;
}

int execute(const TestModelCommand& command) {
  auto options = command.options;
  options.stop = &g_interrupted;
  stop_on_interrupt();
  const bool json = command.format == ReportFormat::json;
  const auto result = mw::engine::run_model_test(options);
  if (!result) {
    // The server named, or any server to load on, cannot be found: a source missing.
    if (json) {
      print_report(nlohmann::json{{"error", result.error().line()}, {"exit_code", 3}}.dump(2) + "\n");
    }
    fmt::print(stderr, "memwarden: test model: {}\n", result.error().line());
    return 3;
  }
  print_report(json ? model_test_to_json(*result).dump(2) + "\n" : render_model_test(*result));
  // A Ctrl-C that came after the last request still ends 130, as everywhere.
  return g_interrupted.load() ? 130 : static_cast<int>(mw::engine::model_test_exit(*result));
}

int execute(const TestHistoryCommand& command) {
  const auto records = mw::engine::estimate_history(command.state_dir, command.limit);
  if (!records) {
    fmt::print(stderr, "memwarden: test --history: {}\n", records.error().line());
    return 3;
  }
  print_report(command.format == ReportFormat::json ? estimate_history_to_json(*records).dump(2) + "\n"
                                                    : render_estimate_history(*records));
  return k_exit_ok;
}

int execute(const TestVramCommand& command) {
  auto options = command.options;
  options.stop = &g_interrupted;
  stop_on_interrupt();
  const bool json = command.format == ReportFormat::json;
  const auto result = mw::engine::run_vram_test(options);
  if (!result) {
    // No driver, cuInit failed, no such GPU: a source the test needs is missing.
    if (json) {
      print_report(nlohmann::json{{"error", result.error().line()}, {"exit_code", 3}}.dump(2) + "\n");
    }
    fmt::print(stderr, "memwarden: {}\n", result.error().line());
    return 3;
  }
  // Ctrl-C after the last chunk was written still ends 130, as Ctrl-C does everywhere.
  const int exit_code = g_interrupted.load() ? 130 : vram_test_exit_code(*result);
  if (json) {
    auto doc = vram_test_to_json(*result);
    doc["exit_code"] = exit_code;
    print_report(doc.dump(2) + "\n");
  } else {
    print_report(render_vram_test(*result));
  }
  return exit_code;
}

int execute(const OptimizeCommand& command) {
  const bool json = command.format == ReportFormat::json;
  auto options = command.options;
  options.own_container_id = mw::engine::own_container_id(options.root);
  if (command.action == OptimizeAction::undo) {
    stop_on_interrupt();
    const auto report = mw::engine::undo_optimize(options, &g_interrupted);
    print_report(json ? mw::cli::undo_to_json(report).dump(2) + "\n" : mw::cli::render_undo(report));
    return static_cast<int>(mw::engine::undo_exit(report));
  }
  const auto profiles = resolve_profiles(command.config_file);
  if (!profiles) {
    return UsageError::k_exit_code;
  }
  options.profiles = *profiles;
  const bool apply = command.action == OptimizeAction::apply;
  if (apply) {
    stop_on_interrupt();
  }
  // Step 2 as `memwarden fix` runs it: live with --yes (journaled), else a dry run.
  auto fix = [&]() {
    auto fix_options = command.fix;
    fix_options.own_container_id = options.own_container_id;
    std::optional<mw::adapters::Journal> journal;
    if (auto opened = mw::adapters::Journal::open(options.state_dir)) {
      journal = std::move(opened).value();
      if (apply) {
        (void)journal->mark_interrupted_stale();
      }
    } else if (apply) {
      fmt::print(stderr, "memwarden: {}\nmemwarden: not fixing without a journal\n", opened.error().line());
      fix_options.mode = mw::engine::RunMode::dry_run;
    }
    mw::engine::FixTools tools(fix_tool_options(fix_options, command.systemd_unit));
    mw::engine::SteadyClock clock;
    std::function<bool(const std::string&)> confirm = [apply](const std::string&) { return apply; };
    mw::engine::FixEnvironment env{clock, wall_ms, tools.actions(), journal ? &*journal : nullptr, confirm};
    return mw::engine::run_fix(fix_options, env);
  };
  const auto run = mw::engine::run_optimize(
      options, apply ? mw::engine::OptimizeMode::apply : mw::engine::OptimizeMode::show, fix, &g_interrupted);
  print_report(json ? mw::cli::optimize_to_json(run).dump(2) + "\n" : mw::cli::render_optimize(run, options.settings));
  return static_cast<int>(mw::engine::optimize_exit(run));
}

int execute(const PrometheusRulesCommand& command) {
  std::cout << prometheus_rules(command.options);
  return k_exit_ok;
}

int execute(const GrafanaCommand& /*command*/) {
  std::cout << grafana_dashboard();
  return k_exit_ok;
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv, argv + argc);
  auto command = parse_command_line(args, current_environment());
  if (!command) {
    fmt::print(stderr, "{}", command.error().text);
    return UsageError::k_exit_code;
  }
  return std::visit([](const auto& c) { return execute(c); }, *command);
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
