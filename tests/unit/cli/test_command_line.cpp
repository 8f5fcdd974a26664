// parse_command_line: every command's options into the engine's option structs, their defaults (and that the
// help text shows the same ones), every usage error (one line naming the option, exit code 2), flags that
// exclude each other, positional arguments and the environment ($DOCKER_HOST, $OLLAMA_MODELS, $HOME, the
// working directory, the wall clock), all without the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <variant>
#include <vector>

#include "adapters/docker.hpp"
#include "adapters/journal.hpp"
#include "adapters/sample_store.hpp"
#include "adapters/state_dir.hpp"
#include "cli/command.hpp"
#include "core/estimate.hpp"

using namespace mw;
using namespace mw::cli;

namespace {

constexpr std::int64_t k_now_ms = 1'800'000'000'000;
constexpr std::uint64_t k_gib = 1ULL << 30;
constexpr std::uint64_t k_mib = 1ULL << 20;

Environment test_env() {
  Environment env;
  env.ollama_models = "/env/ollama-models";
  env.home = "/home/someone";
  env.working_dir = "/work/here";
  env.now_wall_ms = k_now_ms;
  return env;
}

Environment env_with_docker_host(std::string address) {
  auto env = test_env();
  env.docker_host = std::move(address);
  return env;
}

std::string joined(const std::vector<std::string>& args) {
  std::string out = "memwarden";
  for (const auto& a : args) {
    out += " " + a;
  }
  return out;
}

Expected<Command, UsageError> parse(std::vector<std::string> args, const Environment& env = test_env()) {
  args.insert(args.begin(), "memwarden");
  return parse_command_line(args, env);
}

// The command the arguments parse into; a test failure (and a default command) if they do not.
template <class C>
C parsed(const std::vector<std::string>& args, const Environment& env = test_env()) {
  auto result = parse(args, env);
  if (!result) {
    ADD_FAILURE() << joined(args) << ": " << result.error().text;
    return C();
  }
  if (!std::holds_alternative<C>(*result)) {
    ADD_FAILURE() << joined(args) << ": parsed into another command (index " << result->index() << ")";
    return C();
  }
  return std::get<C>(*result);
}

// What goes to stderr for arguments that must be refused.
std::string refused(const std::vector<std::string>& args, const Environment& env = test_env()) {
  auto result = parse(args, env);
  if (result) {
    ADD_FAILURE() << joined(args) << ": accepted";
    return "";
  }
  return result.error().text;
}

// Refused with exactly this line: "memwarden: <line>\n".
void expect_refused(const std::vector<std::string>& args, const std::string& line) {
  EXPECT_EQ(refused(args), "memwarden: " + line + "\n") << joined(args);
}

// Refused by CLI11 itself, with a message that names `what`.
void expect_cli_refusal(const std::vector<std::string>& args, const std::string& what) {
  const auto text = refused(args);
  EXPECT_NE(text.find(what), std::string::npos) << joined(args) << ": " << text;
  EXPECT_NE(text.find("Run with --help for more information."), std::string::npos) << text;
}

std::string help(const std::vector<std::string>& args) {
  auto with_help = args;
  with_help.emplace_back("--help");
  return parsed<HelpCommand>(with_help).text;
}

// The "--option TYPE=default" pairs of a help text.
std::map<std::string, std::string> help_defaults(const std::string& text) {
  std::map<std::string, std::string> out;
  const std::regex option(R"((--[a-z-]+) [A-Z]+=(\S+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), option); it != std::sregex_iterator(); ++it) {
    out[(*it)[1].str()] = (*it)[2].str();
  }
  return out;
}

}  // namespace

// ---- the whole command line

TEST(CommandLine, TheUsageErrorExitCodeIs2) {
  EXPECT_EQ(UsageError::k_exit_code, 2);
}

TEST(CommandLine, ACommandIsRequired) {
  expect_cli_refusal({}, "A subcommand is required");
  expect_cli_refusal({"bogus"}, "A subcommand is required");
  expect_cli_refusal({"--root", "/host"}, "A subcommand is required");
  expect_cli_refusal({"export"}, "A subcommand is required");
}

TEST(CommandLine, UnknownOptionsAndExtraArgumentsAreRefused) {
  expect_cli_refusal({"status", "--bogus"}, "The following argument was not expected: --bogus");
  expect_cli_refusal({"status", "extra"}, "The following argument was not expected: extra");
  expect_cli_refusal({"export", "grafana", "extra"}, "The following argument was not expected: extra");
  expect_cli_refusal({"status", "--timeout"}, "--timeout: 1 required TEXT missing");
  expect_cli_refusal({"--root"}, "--root: 1 required TEXT missing");
}

TEST(CommandLine, HelpIsACommandWithTheTextToPrint) {
  const auto main = help({});
  EXPECT_NE(main.find("memwarden: keeps the memory of a local-LLM host healthy"), std::string::npos) << main;
  EXPECT_NE(main.find("Usage: memwarden [OPTIONS] SUBCOMMAND"), std::string::npos) << main;
  for (const char* command :
       {"status", "diagnose", "fix", "history", "serve", "check-config", "notify", "plan", "export"}) {
    EXPECT_NE(main.find(command), std::string::npos) << command;
  }
  const auto status = help({"status"});
  EXPECT_NE(status.find("Usage: memwarden status [OPTIONS]"), std::string::npos) << status;
  EXPECT_NE(status.find("--reserve TEXT=4G"), std::string::npos) << status;
  // Help wins over what would be refused, and over a missing required argument.
  EXPECT_FALSE(parsed<HelpCommand>({"fix", "--budget", "-1", "--help"}).text.empty());
  EXPECT_FALSE(parsed<HelpCommand>({"plan", "--help"}).text.empty());
  EXPECT_FALSE(parsed<HelpCommand>({"export", "prometheus-rules", "--help"}).text.empty());
}

TEST(CommandLine, VersionIsACommandWithTheTextToPrint) {
  const auto expected = "memwarden " + std::string(program_version()) + "\n";
  EXPECT_EQ(parsed<HelpCommand>({"--version"}).text, expected);
  EXPECT_FALSE(program_version().empty());
}

TEST(CommandLine, RootDefaultsToSlashAndReachesEveryCommandThatReadsTheHost) {
  EXPECT_EQ(parsed<StatusCommand>({"status"}).options.root.root(), "/");
  const std::vector<std::string> root = {"--root", "/host"};
  auto with_root = [&](std::vector<std::string> args) {
    args.insert(args.begin(), root.begin(), root.end());
    return args;
  };
  EXPECT_EQ(parsed<StatusCommand>(with_root({"status"})).options.root.root(), "/host");
  EXPECT_EQ(parsed<DiagnoseCommand>(with_root({"diagnose"})).options.sampler.root.root(), "/host");
  EXPECT_EQ(parsed<FixCommand>(with_root({"fix", "--all"})).options.diagnose.sampler.root.root(), "/host");
  EXPECT_EQ(parsed<ServeCommand>(with_root({"serve"})).root.root(), "/host");
  EXPECT_EQ(parsed<PlanCommand>(with_root({"plan", "m"})).options.root.root(), "/host");
  // --root belongs before the command.
  expect_cli_refusal({"status", "--root", "/host"}, "--root");
}

TEST(CommandLine, DefaultsShownInTheHelpAreTheDefaultsTheCommandsHold) {
  // For each command: every option the help shows a default for, and what that default must equal. Given
  // explicitly, the shown default parses into the struct's default (the help cannot drift from the struct).
  using Check = std::function<void(const std::string& option, const std::string& shown)>;
  const auto same = [](const auto& a, const auto& b, const std::string& option) { EXPECT_EQ(a, b) << option; };

  const std::map<std::string, Check> status = {
      {"--timeout",
       [&](const std::string& o, const std::string& v) {
         same(parsed<StatusCommand>({"status", o, v}).options.docker_timeout, StatusCommand().options.docker_timeout,
              o);
       }},
      {"--reserve",
       [&](const std::string& o, const std::string& v) {
         same(parsed<StatusCommand>({"status", o, v}).options.thresholds.reserve_bytes,
              StatusCommand().options.thresholds.reserve_bytes, o);
       }},
  };
  const auto diagnose_checks = [&](const std::string& name, auto get, const engine::DiagnoseOptions& d) {
    std::vector<std::string> base = {name};
    if (name == "fix") {
      base.emplace_back("--all");
    }
    auto with = [base](const std::string& o, const std::string& v) {
      auto args = base;
      args.push_back(o);
      args.push_back(v);
      return args;
    };
    return std::map<std::string, Check>{
        {"--window", [=](const std::string& o, const std::string& v) { EXPECT_EQ(get(with(o, v)).window, d.window); }},
        {"--interval",
         [=](const std::string& o, const std::string& v) { EXPECT_EQ(get(with(o, v)).interval, d.interval); }},
        {"--timeout",
         [=](const std::string& o, const std::string& v) {
           EXPECT_EQ(get(with(o, v)).sampler.docker_timeout, d.sampler.docker_timeout);
         }},
        {"--api-timeout",
         [=](const std::string& o, const std::string& v) {
           EXPECT_EQ(get(with(o, v)).sampler.api_timeout, d.sampler.api_timeout);
         }},
        {"--base-allowance",
         [=](const std::string& o, const std::string& v) {
           EXPECT_EQ(get(with(o, v)).thresholds.base_allowance, d.thresholds.base_allowance);
         }},
        {"--reserve",
         [=](const std::string& o, const std::string& v) {
           EXPECT_EQ(get(with(o, v)).thresholds.reserve, d.thresholds.reserve);
         }},
        {"--hold",
         [=](const std::string& o, const std::string& v) {
           EXPECT_EQ(get(with(o, v)).thresholds.bloat_hold, d.thresholds.bloat_hold);
         }},
        {"--bloat-margin",
         [=](const std::string& o, const std::string& v) {
           EXPECT_EQ(get(with(o, v)).thresholds.bloat_margin, d.thresholds.bloat_margin);
         }},
        {"--growth-min",
         [=](const std::string& o, const std::string& v) {
           EXPECT_EQ(get(with(o, v)).thresholds.growth_min_mib_per_hour, d.thresholds.growth_min_mib_per_hour);
         }},
        {"--state-dir",
         [=](const std::string& /*o*/, const std::string& v) { EXPECT_EQ(v, adapters::StateDir().path()); }},
    };
  };
  const auto diagnose = diagnose_checks(
      "diagnose", [](const std::vector<std::string>& a) { return parsed<DiagnoseCommand>(a).options; },
      DiagnoseCommand().options);
  auto fix = diagnose_checks(
      "fix", [](const std::vector<std::string>& a) { return parsed<FixCommand>(a).options.diagnose; },
      FixCommand().options.diagnose);
  const auto fix_policy = [](const std::string& o, const std::string& v) {
    return parsed<FixCommand>({"fix", "--all", o, v}).options.policy;
  };
  const auto policy = FixCommand().options.policy;
  fix["--cooldown"] = [=](const std::string& o, const std::string& v) {
    EXPECT_EQ(fix_policy(o, v).cooldown, policy.cooldown);
  };
  fix["--budget"] = [=](const std::string& o, const std::string& v) {
    EXPECT_EQ(fix_policy(o, v).restart_budget, policy.restart_budget);
  };
  fix["--drain-timeout"] = [=](const std::string& o, const std::string& v) {
    EXPECT_EQ(fix_policy(o, v).drain_timeout, policy.drain_timeout);
  };
  fix["--health-timeout"] = [=](const std::string& o, const std::string& v) {
    EXPECT_EQ(fix_policy(o, v).health_timeout, policy.health_timeout);
  };
  fix["--stop-timeout"] = [=](const std::string& o, const std::string& v) {
    EXPECT_EQ(fix_policy(o, v).stop_timeout, policy.stop_timeout);
  };
  fix["--settle"] = [=](const std::string& o, const std::string& v) {
    EXPECT_EQ(fix_policy(o, v).settle, policy.settle);
  };
  fix["--systemd-unit"] = [](const std::string& /*o*/, const std::string& v) {
    EXPECT_EQ(v, FixCommand().systemd_unit);
  };

  const auto history_options = [](const std::string& o, const std::string& v) {
    return parsed<HistoryCommand>({"history", o, v}).options;
  };
  const std::map<std::string, Check> history = {
      {"--limit",
       [=](const std::string& o, const std::string& v) {
         EXPECT_EQ(history_options(o, v).limit, HistoryCommand().options.limit);
       }},
      {"--state-dir",
       [=](const std::string& o, const std::string& v) {
         EXPECT_EQ(history_options(o, v).state_dir, HistoryCommand().options.state_dir);
       }},
      {"--since",
       [=](const std::string& o, const std::string& v) {
         EXPECT_EQ(history_options(o, v).since, HistoryCommand().options.since);
       }},
  };

  const auto plan_options = [](const std::string& o, const std::string& v) {
    return parsed<PlanCommand>({"plan", "m", o, v}).options;
  };
  const auto plan_defaults = PlanCommand().options;
  const std::map<std::string, Check> plan = {
      {"--reserve", [=](const std::string& o,
                        const std::string& v) { EXPECT_EQ(plan_options(o, v).reserve, plan_defaults.reserve); }},
      {"--source",
       [=](const std::string& o, const std::string& v) { EXPECT_EQ(plan_options(o, v).source, plan_defaults.source); }},
      {"--loading",
       [=](const std::string& o, const std::string& v) {
         EXPECT_EQ(plan_options(o, v).settings.loading, plan_defaults.settings.loading);
       }},
      {"--gpu-reserve",
       [=](const std::string& o, const std::string& v) {
         EXPECT_EQ(plan_options(o, v).settings.gpu_reserve, plan_defaults.settings.gpu_reserve);
       }},
      {"--headroom",
       [=](const std::string& o, const std::string& v) {
         EXPECT_EQ(plan_options(o, v).settings.headroom_percent, plan_defaults.settings.headroom_percent);
       }},
      {"--api-timeout",
       [=](const std::string& o, const std::string& v) {
         EXPECT_EQ(plan_options(o, v).api_timeout, plan_defaults.api_timeout);
       }},
  };
  const std::map<std::string, Check> root = {
      {"--root", [](const std::string& /*o*/, const std::string& v) { EXPECT_EQ(v, probes::HostRoot().root()); }}};

  const std::vector<std::pair<std::vector<std::string>, const std::map<std::string, Check>*>> commands = {
      {{}, &root},     {{"status"}, &status},   {{"diagnose"}, &diagnose},
      {{"fix"}, &fix}, {{"history"}, &history}, {{"plan"}, &plan},
  };
  for (const auto& [args, checks] : commands) {
    const auto shown = help_defaults(help(args));
    std::vector<std::string> shown_names;
    std::vector<std::string> checked_names;
    for (const auto& [option, value] : shown) {
      shown_names.push_back(option);
    }
    for (const auto& [option, check] : *checks) {
      checked_names.push_back(option);
      const auto it = shown.find(option);
      if (it == shown.end()) {
        ADD_FAILURE() << joined(args) << " --help shows no default for " << option;
        continue;
      }
      SCOPED_TRACE(joined(args) + " " + option + " " + it->second);
      check(option, it->second);
    }
    EXPECT_EQ(shown_names, checked_names) << joined(args);
  }
  // Seen literally, as the docs write them.
  const auto fix_help = help({"fix"});
  for (const char* text : {"--window TEXT=12s", "--drain-timeout TEXT=120s", "--cooldown TEXT=10m", "--budget UINT=3",
                           "--growth-min FLOAT=256", "--state-dir TEXT=/var/lib/memwarden"}) {
    EXPECT_NE(fix_help.find(text), std::string::npos) << text << "\n" << fix_help;
  }
  const auto plan_help = help({"plan", "m"});
  EXPECT_NE(plan_help.find("--gpu-reserve TEXT=457M"), std::string::npos) << plan_help;
  EXPECT_NE(plan_help.find("as Ollama's minimum (457M;"), std::string::npos) << plan_help;
  EXPECT_NE(help({"serve"}).find("(default 127.0.0.1:9490)"), std::string::npos);
  EXPECT_NE(help({"check-config"}).find("FILE TEXT=/etc/memwarden/memwarden.yaml"), std::string::npos);
}

TEST(CommandLine, OptionDurationAndSizeReadBackAsTheyWereWritten) {
  EXPECT_EQ(option_duration(Duration{0}), "0s");
  EXPECT_EQ(option_duration(Duration{500}), "500ms");
  EXPECT_EQ(option_duration(Duration{1'500}), "1500ms");
  EXPECT_EQ(option_duration(Duration{2'000}), "2s");
  EXPECT_EQ(option_duration(Duration{60'000}), "60s");
  EXPECT_EQ(option_duration(Duration{120'000}), "120s");
  EXPECT_EQ(option_duration(Duration{600'000}), "10m");
  EXPECT_EQ(option_duration(Duration{630'000}), "630s");
  EXPECT_EQ(option_duration(Duration{3'600'000}), "1h");
  EXPECT_EQ(option_duration(Duration{86'400'000}), "24h");
  EXPECT_EQ(option_size(0), "0");
  EXPECT_EQ(option_size(1000), "1000");
  EXPECT_EQ(option_size(1024), "1K");
  EXPECT_EQ(option_size(457 * k_mib), "457M");
  EXPECT_EQ(option_size(4 * k_gib), "4G");
  EXPECT_EQ(option_size(1536 * k_mib), "1536M");
  EXPECT_EQ(option_size(1ULL << 62), "4E");
}

// ---- the state directory's files, in one place

TEST(StateDirectory, TheDefaultAndTheFilesInIt) {
  const adapters::StateDir dir;
  EXPECT_EQ(dir.path(), "/var/lib/memwarden");
  EXPECT_EQ(dir.journal(), "/var/lib/memwarden/memwarden.db");
  EXPECT_EQ(dir.samples(), "/var/lib/memwarden/samples.db");
  EXPECT_EQ(adapters::StateDir("/s").journal(), "/s/memwarden.db");
  EXPECT_EQ(ServeConfig{}.state_dir, adapters::StateDir::k_default_path);
  EXPECT_EQ(HistoryCommand().options.state_dir, dir.path());
  EXPECT_EQ(FixCommand().state_dir.path(), dir.path());
}

// ---- status

TEST(StatusCommandLine, Defaults) {
  const auto c = parsed<StatusCommand>({"status"});
  const engine::StatusOptions defaults;
  EXPECT_EQ(c.format, ReportFormat::text);
  EXPECT_EQ(c.options.docker_host, adapters::k_default_docker_host);
  EXPECT_EQ(c.options.docker_timeout, Duration{2'000});
  EXPECT_EQ(c.options.docker_timeout, defaults.docker_timeout);
  EXPECT_EQ(c.options.thresholds.reserve_bytes, 4 * k_gib);
  EXPECT_EQ(c.options.scope, adapters::ListScope::running);
  EXPECT_EQ(c.options.nvml_library, "");
}

TEST(StatusCommandLine, EveryOption) {
  const auto c = parsed<StatusCommand>({"status", "--json", "--all", "--docker-host", "tcp://10.0.0.1:2375",
                                        "--timeout", "500ms", "--reserve", "1.5G", "--nvml-library", "/x/libnvml.so"});
  EXPECT_EQ(c.format, ReportFormat::json);
  EXPECT_EQ(c.options.scope, adapters::ListScope::all);
  EXPECT_EQ(c.options.docker_host, "tcp://10.0.0.1:2375");
  EXPECT_EQ(c.options.docker_timeout, Duration{500});
  EXPECT_EQ(c.options.thresholds.reserve_bytes, 1536 * k_mib);
  EXPECT_EQ(c.options.nvml_library, "/x/libnvml.so");
  EXPECT_EQ(parsed<StatusCommand>({"status", "--timeout=1d"}).options.docker_timeout, Duration{86'400'000});
}

TEST(StatusCommandLine, DockerHostFromTheEnvironmentUnlessTheFlagNamesOne) {
  const auto env = env_with_docker_host("unix:///run/user/1000/docker.sock");
  EXPECT_EQ(parsed<StatusCommand>({"status"}, env).options.docker_host, "unix:///run/user/1000/docker.sock");
  EXPECT_EQ(parsed<StatusCommand>({"status", "--docker-host", "tcp://h:1"}, env).options.docker_host, "tcp://h:1");
  // An empty flag is no flag.
  EXPECT_EQ(parsed<StatusCommand>({"status", "--docker-host", ""}, env).options.docker_host,
            "unix:///run/user/1000/docker.sock");
}

TEST(StatusCommandLine, MalformedValuesAreRefused) {
  expect_refused({"status", "--reserve", "-1G"},
                 "--reserve: invalid size '-1G': no number (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"status", "--reserve", "nan"},
                 "--reserve: invalid size 'nan': no number (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"status", "--timeout", "1x"}, "--timeout: invalid duration '1x' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  expect_refused({"status", "--timeout", ""}, "--timeout: invalid duration '' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
}

// ---- diagnose

TEST(DiagnoseCommandLine, Defaults) {
  const auto c = parsed<DiagnoseCommand>({"diagnose"});
  const auto& o = c.options;
  EXPECT_EQ(c.format, ReportFormat::text);
  EXPECT_TRUE(o.sampler.targets.empty());
  EXPECT_EQ(o.sampler.docker_host, adapters::k_default_docker_host);
  EXPECT_EQ(o.sampler.docker_timeout, Duration{2'000});
  EXPECT_EQ(o.sampler.api_timeout, Duration{2'000});
  EXPECT_EQ(o.window, Duration{60'000});
  EXPECT_EQ(o.interval, Duration{1'000});
  EXPECT_EQ(o.thresholds.base_allowance, 1 * k_gib);
  EXPECT_EQ(o.thresholds.reserve, 4 * k_gib);
  EXPECT_EQ(o.thresholds.bloat_hold, Duration{10'000});
  EXPECT_EQ(o.thresholds.bloat_margin, 2 * k_gib);
  EXPECT_DOUBLE_EQ(o.thresholds.growth_min_mib_per_hour, 256.0);
  EXPECT_EQ(o.lookback.span, Duration{0});
  EXPECT_EQ(o.lookback.state_dir, "");
  EXPECT_FALSE(o.stop_on);
}

TEST(DiagnoseCommandLine, EveryOption) {
  const auto c = parsed<DiagnoseCommand>(
      {"diagnose",      "ollama", "abc123",           "--json",       "--window",     "5m",
       "--interval",    "2s",     "--docker-host",    "tcp://d:2375", "--timeout",    "3s",
       "--api-timeout", "4s",     "--base-allowance", "512M",         "--reserve",    "8G",
       "--hold",        "30s",    "--bloat-margin",   "1G",           "--growth-min", "0.5",
       "--lookback",    "30m",    "--state-dir",      "/srv/state",   "--stop-on",    "critical"});
  const auto& o = c.options;
  EXPECT_EQ(c.format, ReportFormat::json);
  EXPECT_EQ(o.sampler.targets, (std::vector<std::string>{"ollama", "abc123"}));
  EXPECT_EQ(o.window, Duration{300'000});
  EXPECT_EQ(o.interval, Duration{2'000});
  EXPECT_EQ(o.sampler.docker_host, "tcp://d:2375");
  EXPECT_EQ(o.sampler.docker_timeout, Duration{3'000});
  EXPECT_EQ(o.sampler.api_timeout, Duration{4'000});
  EXPECT_EQ(o.thresholds.base_allowance, 512 * k_mib);
  EXPECT_EQ(o.thresholds.reserve, 8 * k_gib);
  EXPECT_EQ(o.thresholds.bloat_hold, Duration{30'000});
  EXPECT_EQ(o.thresholds.bloat_margin, 1 * k_gib);
  EXPECT_DOUBLE_EQ(o.thresholds.growth_min_mib_per_hour, 0.5);
  EXPECT_EQ(o.lookback.span, Duration{1'800'000});
  EXPECT_EQ(o.lookback.state_dir, "/srv/state");
  EXPECT_EQ(o.lookback.now_wall_ms, k_now_ms);
  EXPECT_EQ(o.stop_on, Severity::critical);
  EXPECT_EQ(parsed<DiagnoseCommand>({"diagnose", "--stop-on", "warning"}).options.stop_on, Severity::warning);
}

TEST(DiagnoseCommandLine, LookbackReadsTheDefaultStateDirectoryAndEmptyMeansNone) {
  const auto c = parsed<DiagnoseCommand>({"diagnose", "--lookback", "1h"});
  EXPECT_EQ(c.options.lookback.span, Duration{3'600'000});
  EXPECT_EQ(c.options.lookback.state_dir, adapters::StateDir().path());
  EXPECT_EQ(c.options.lookback.now_wall_ms, k_now_ms);
  const auto none = parsed<DiagnoseCommand>({"diagnose", "--lookback", "", "--state-dir", "/x"});
  EXPECT_EQ(none.options.lookback.span, Duration{0});
  EXPECT_EQ(none.options.lookback.state_dir, "");
}

TEST(DiagnoseCommandLine, AWindowOf0TakesOneSampleButTheIntervalMustBeLongerThan0) {
  EXPECT_EQ(parsed<DiagnoseCommand>({"diagnose", "--window", "0"}).options.window, Duration{0});
  expect_refused({"diagnose", "--interval", "0"}, "--interval: must be longer than 0");
  expect_refused({"diagnose", "--interval", "0ms"}, "--interval: must be longer than 0");
}

TEST(DiagnoseCommandLine, DockerHostFromTheEnvironment) {
  EXPECT_EQ(parsed<DiagnoseCommand>({"diagnose"}, env_with_docker_host("tcp://env:2375")).options.sampler.docker_host,
            "tcp://env:2375");
}

TEST(DiagnoseCommandLine, MalformedValuesAreRefused) {
  for (const std::string bad : {"nan", "NaN", "inf", "-1", "0", "0.05", "1e3", "0x10", "2000000", "fast"}) {
    expect_refused({"diagnose", "--growth-min=" + bad},
                   "--growth-min: '" + bad + "' is not a number from 0.1 to 1048576");
  }
  expect_refused({"diagnose", "--lookback", "-30m"},
                 "--lookback: invalid duration '-30m' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  expect_refused({"diagnose", "--hold", "soon"}, "--hold: invalid duration 'soon' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  expect_refused({"diagnose", "--bloat-margin", "2X"},
                 "--bloat-margin: invalid size '2X': unknown unit 'X' (use e.g. 4G, 512M, 1.5GiB)");
  expect_cli_refusal({"diagnose", "--stop-on", "info"}, "--stop-on: info not in {warning,critical}");
}

TEST(DiagnoseCommandLine, TheFirstBadOptionIsTheOneNamed) {
  // In the order the options are checked, not the order they were typed.
  expect_refused({"diagnose", "--window", "y", "--timeout", "x"},
                 "--timeout: invalid duration 'x' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  expect_refused({"diagnose", "--growth-min", "0", "--hold", "x"},
                 "--hold: invalid duration 'x' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
}

// ---- fix

TEST(FixCommandLine, NameServersOrAllButNotBoth) {
  expect_refused({"fix"}, "fix: name the servers to fix, or --all for every opted-in server");
  expect_refused({"fix", "--dry-run"}, "fix: name the servers to fix, or --all for every opted-in server");
  expect_refused({"fix", "ollama", "--all"}, "fix: name servers or use --all, not both");
  // The selection is checked before any value.
  expect_refused({"fix", "--budget", "-1"}, "fix: name the servers to fix, or --all for every opted-in server");
  const auto all = parsed<FixCommand>({"fix", "--all"});
  EXPECT_EQ(all.options.selection, Selection::automatic);
  EXPECT_TRUE(all.options.diagnose.sampler.targets.empty());
  const auto named = parsed<FixCommand>({"fix", "ollama", "llama"});
  EXPECT_EQ(named.options.selection, Selection::named);
  EXPECT_EQ(named.options.diagnose.sampler.targets, (std::vector<std::string>{"ollama", "llama"}));
}

TEST(FixCommandLine, Defaults) {
  const auto c = parsed<FixCommand>({"fix", "--all"});
  const auto& o = c.options;
  EXPECT_EQ(c.format, ReportFormat::text);
  EXPECT_EQ(o.mode, engine::RunMode::live);
  EXPECT_EQ(o.diagnose.window, Duration{12'000});  // shorter than diagnose's minute
  EXPECT_EQ(o.diagnose.interval, Duration{1'000});
  EXPECT_EQ(o.diagnose.sampler.docker_host, adapters::k_default_docker_host);
  EXPECT_EQ(o.policy.cooldown, Duration{600'000});
  EXPECT_EQ(o.policy.restart_budget, 3U);
  EXPECT_EQ(o.policy.drain_timeout, Duration{120'000});
  EXPECT_EQ(o.policy.health_timeout, Duration{120'000});
  EXPECT_EQ(o.policy.stop_timeout, Duration{10'000});
  EXPECT_EQ(o.policy.settle, Duration{3'000});
  EXPECT_TRUE(o.policy.allowlist.empty());
  EXPECT_EQ(o.own_container_id, "");  // main reads it from the host
  EXPECT_EQ(c.state_dir.path(), "/var/lib/memwarden");
  EXPECT_EQ(c.confirmation, Confirmation::ask_on_terminal);
  EXPECT_EQ(c.systemd_unit, "ollama.service");
  EXPECT_EQ(c.systemd_unit, ServeConfig{}.systemd_unit);
}

TEST(FixCommandLine, EveryOption) {
  const auto c = parsed<FixCommand>(
      {"fix", "ollama",         "--dry-run",   "--yes",      "--json", "--state-dir",     "/srv/mw", "--window",
       "0",   "--cooldown",     "1h",          "--budget",   "010",    "--drain-timeout", "5s",      "--health-timeout",
       "6s",  "--stop-timeout", "7s",          "--settle",   "8s",     "--allow",         "a",       "--allow",
       "b",   "--systemd-unit", "llm.service", "--lookback", "10m",    "--growth-min",    "64"});
  const auto& o = c.options;
  EXPECT_EQ(c.format, ReportFormat::json);
  EXPECT_EQ(o.mode, engine::RunMode::dry_run);
  EXPECT_EQ(c.confirmation, Confirmation::assume_yes);
  EXPECT_EQ(c.state_dir.path(), "/srv/mw");
  EXPECT_EQ(c.state_dir.journal(), "/srv/mw/memwarden.db");
  EXPECT_EQ(o.diagnose.window, Duration{0});
  EXPECT_EQ(o.policy.cooldown, Duration{3'600'000});
  EXPECT_EQ(o.policy.restart_budget, 10U);  // decimal, not octal
  EXPECT_EQ(o.policy.drain_timeout, Duration{5'000});
  EXPECT_EQ(o.policy.health_timeout, Duration{6'000});
  EXPECT_EQ(o.policy.stop_timeout, Duration{7'000});
  EXPECT_EQ(o.policy.settle, Duration{8'000});
  EXPECT_EQ(o.policy.allowlist, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.systemd_unit, "llm.service");
  EXPECT_EQ(o.diagnose.lookback.span, Duration{600'000});
  EXPECT_EQ(o.diagnose.lookback.state_dir, "/srv/mw");
  EXPECT_DOUBLE_EQ(o.diagnose.thresholds.growth_min_mib_per_hour, 64.0);
}

TEST(FixCommandLine, BudgetIsAWholeNumberFrom0To1000) {
  for (const std::string bad :
       {"-1", "99999999999999999999", "18446744073709551615", "1001", "0x10", "1e3", "1.5", "+3", "three", ""}) {
    expect_refused({"fix", "--all", "--budget", bad}, "--budget: '" + bad + "' is not a whole number from 0 to 1000");
  }
  EXPECT_EQ(parsed<FixCommand>({"fix", "--all", "--budget", "0"}).options.policy.restart_budget, 0U);
  EXPECT_EQ(parsed<FixCommand>({"fix", "--all", "--budget", "1000"}).options.policy.restart_budget, 1000U);
}

TEST(FixCommandLine, DiagnoseValuesAreCheckedBeforeFixValues) {
  expect_refused({"fix", "--all", "--budget", "5000", "--window", "1x"},
                 "--window: invalid duration '1x' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  expect_refused({"fix", "--all", "--settle", "x"}, "--settle: invalid duration 'x' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  expect_refused({"fix", "--all", "--interval", "0"}, "--interval: must be longer than 0");
}

TEST(FixCommandLine, DockerHostFromTheEnvironment) {
  EXPECT_EQ(
      parsed<FixCommand>({"fix", "--all"}, env_with_docker_host("tcp://env:2375")).options.diagnose.sampler.docker_host,
      "tcp://env:2375");
}

// ---- history

TEST(HistoryCommandLine, Defaults) {
  const auto o = parsed<HistoryCommand>({"history"}).options;
  EXPECT_EQ(o.state_dir, "/var/lib/memwarden");
  EXPECT_EQ(o.format, HistoryFormat::table);
  EXPECT_EQ(o.limit, 50U);
  EXPECT_FALSE(o.server);
  EXPECT_FALSE(o.samples_subject);
  EXPECT_EQ(o.since, Duration{3'600'000});
  EXPECT_EQ(o.now_wall_ms, k_now_ms);
}

TEST(HistoryCommandLine, EveryOption) {
  auto o = parsed<HistoryCommand>({"history", "--json", "--limit", "010", "--server", "ollama", "--state-dir", "/s"})
               .options;
  EXPECT_EQ(o.format, HistoryFormat::json);
  EXPECT_EQ(o.limit, 10U);
  EXPECT_EQ(o.server, "ollama");
  EXPECT_EQ(o.state_dir, "/s");
  EXPECT_FALSE(o.samples_subject);
  o = parsed<HistoryCommand>({"history", "--samples", "host", "--since", "1d"}).options;
  EXPECT_EQ(o.samples_subject, "host");
  EXPECT_EQ(o.since, Duration{86'400'000});
  EXPECT_EQ(parsed<HistoryCommand>({"history", "--limit", "0"}).options.limit, 0U);  // all
  // Empty names are no names.
  o = parsed<HistoryCommand>({"history", "--server", "", "--samples", ""}).options;
  EXPECT_FALSE(o.server);
  EXPECT_FALSE(o.samples_subject);
}

TEST(HistoryCommandLine, MalformedValuesAreRefused) {
  for (const std::string bad : {"-5", "-1", "99999999999999999999", "1000001", "0x10", "5.0", "ten", ""}) {
    expect_refused({"history", "--limit", bad}, "--limit: '" + bad + "' is not a whole number from 0 to 1000000");
  }
  for (const std::string bad : {"-1d", "nan", "inf", "1x", "", "99999999999999999999d"}) {
    const auto text = refused({"history", "--samples", "host", "--since", bad});
    EXPECT_EQ(text.find("memwarden: --since: "), 0U) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  }
  expect_refused({"history", "--since", "0"}, "--since: must be longer than 0");
  expect_cli_refusal({"history", "--samples"}, "--samples: 1 required TEXT missing");
}

// ---- serve

TEST(ServeCommandLine, DefaultsOverrideNothing) {
  const auto c = parsed<ServeCommand>({"serve"});
  EXPECT_EQ(c.config_file, "");
  EXPECT_EQ(c.root.root(), "/");
  EXPECT_FALSE(c.overrides.listen);
  EXPECT_FALSE(c.overrides.state_dir);
  EXPECT_FALSE(c.overrides.interval);
  EXPECT_FALSE(c.overrides.auto_fix);
  EXPECT_EQ(c.overrides.docker_host, "");

  ServeConfig file;
  file.listen = "127.0.0.1:9999";
  file.state_dir = "/file/state";
  file.interval = Duration{5'000};
  file.auto_fix = AutoFix::off;
  file.docker_host = "tcp://file:2375";
  auto config = file;
  apply_overrides(c.overrides, config);
  EXPECT_EQ(config.listen, file.listen);
  EXPECT_EQ(config.state_dir, file.state_dir);
  EXPECT_EQ(config.interval, file.interval);
  EXPECT_EQ(config.auto_fix, file.auto_fix);
  EXPECT_EQ(config.docker_host, "tcp://file:2375");
}

TEST(ServeCommandLine, EveryOptionWinsOverTheFile) {
  const auto c =
      parsed<ServeCommand>({"serve", "--config", "/etc/mw.yaml", "--listen", "[::1]:9500", "--state-dir", "/flag/state",
                            "--docker-host", "tcp://flag:2375", "--interval", "250ms", "--dry-run"});
  EXPECT_EQ(c.config_file, "/etc/mw.yaml");
  ServeConfig config;
  config.docker_host = "tcp://file:2375";
  apply_overrides(c.overrides, config);
  EXPECT_EQ(config.listen, "[::1]:9500");
  EXPECT_EQ(config.state_dir, "/flag/state");
  EXPECT_EQ(config.docker_host, "tcp://flag:2375");
  EXPECT_EQ(config.interval, Duration{250});
  EXPECT_EQ(config.auto_fix, AutoFix::dry_run);
  EXPECT_EQ(parsed<ServeCommand>({"serve", "--no-fix"}).overrides.auto_fix, AutoFix::off);
}

TEST(ServeCommandLine, DockerHostFlagThenFileThenEnvironmentThenTheSocket) {
  const auto env = env_with_docker_host("unix:///env.sock");
  const auto apply = [](const ServeCommand& c, std::string file_docker_host) {
    ServeConfig config;
    config.docker_host = std::move(file_docker_host);
    apply_overrides(c.overrides, config);
    return config.docker_host;
  };
  EXPECT_EQ(apply(parsed<ServeCommand>({"serve", "--docker-host", "tcp://flag:1"}, env), "tcp://file:1"),
            "tcp://flag:1");
  EXPECT_EQ(apply(parsed<ServeCommand>({"serve"}, env), "tcp://file:1"), "tcp://file:1");
  EXPECT_EQ(apply(parsed<ServeCommand>({"serve"}, env), ""), "unix:///env.sock");
  EXPECT_EQ(apply(parsed<ServeCommand>({"serve"}), ""), adapters::k_default_docker_host);
}

TEST(ServeCommandLine, DryRunAndNoFixExcludeEachOther) {
  expect_refused({"serve", "--dry-run", "--no-fix"}, "serve: --dry-run and --no-fix exclude each other");
  expect_refused({"serve", "--interval", "0", "--dry-run", "--no-fix"},
                 "serve: --dry-run and --no-fix exclude each other");
}

TEST(ServeCommandLine, IntervalMustBeADurationLongerThan0) {
  expect_refused({"serve", "--interval", "0"}, "--interval: must be longer than 0");
  expect_refused({"serve", "--interval", "often"},
                 "--interval: invalid duration 'often' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  EXPECT_FALSE(parsed<ServeCommand>({"serve", "--interval", ""}).overrides.interval);  // empty: the file's
}

// ---- check-config, notify

TEST(CheckConfigCommandLine, TheDefaultFileAFileOrTheDocumentedDefaults) {
  auto c = parsed<CheckConfigCommand>({"check-config"});
  EXPECT_EQ(c.file, "/etc/memwarden/memwarden.yaml");
  EXPECT_EQ(c.file, k_default_config_file);
  EXPECT_EQ(c.mode, CheckConfigMode::validate);
  c = parsed<CheckConfigCommand>({"check-config", "/tmp/x.yaml"});
  EXPECT_EQ(c.file, "/tmp/x.yaml");
  EXPECT_EQ(parsed<CheckConfigCommand>({"check-config", "--print-default"}).mode, CheckConfigMode::print_default);
  expect_cli_refusal({"check-config", "a.yaml", "b.yaml"}, "The following argument was not expected: b.yaml");
}

TEST(NotifyCommandLine, TestIsRequired) {
  expect_cli_refusal({"notify"}, "--test is required");
  expect_cli_refusal({"notify", "--config", "x"}, "--test is required");
  EXPECT_EQ(parsed<NotifyTestCommand>({"notify", "--test"}).config_file, "");
  EXPECT_EQ(parsed<NotifyTestCommand>({"notify", "--test", "--config", "/c.yaml"}).config_file, "/c.yaml");
}

// ---- plan

TEST(PlanCommandLine, AModelIsRequired) {
  expect_cli_refusal({"plan"}, "MODEL is required");
}

TEST(PlanCommandLine, Defaults) {
  const auto c = parsed<PlanCommand>({"plan", "llama3.1:8b"});
  const auto& o = c.options;
  EXPECT_EQ(c.format, ReportFormat::text);
  EXPECT_EQ(o.models, (std::vector<std::string>{"llama3.1:8b"}));
  EXPECT_FALSE(o.settings.num_ctx);
  EXPECT_FALSE(o.parallel);
  EXPECT_FALSE(o.kv_type);
  EXPECT_EQ(o.settings.loading, WeightLoading::mmap);
  EXPECT_EQ(o.settings.headroom_percent, 20U);
  EXPECT_EQ(o.settings.gpu_reserve, 457 * k_mib);
  EXPECT_FALSE(o.ram);
  EXPECT_FALSE(o.vram);
  EXPECT_EQ(o.reserve, 4 * k_gib);
  EXPECT_EQ(o.source, engine::ModelSource::automatic);
  EXPECT_EQ(o.models_dir, "");
  EXPECT_EQ(o.ollama_url, "");
  EXPECT_EQ(o.api_timeout, Duration{5'000});
  EXPECT_EQ(o.nvml_library, "");
  EXPECT_EQ(o.docker_host, adapters::k_default_docker_host);
  // From the environment:
  EXPECT_EQ(o.ollama_models, "/env/ollama-models");
  EXPECT_EQ(o.home, "/home/someone");
}

TEST(PlanCommandLine, EveryOption) {
  const auto c = parsed<PlanCommand>({"plan",
                                      "a.gguf",
                                      "qwen2.5:7b",
                                      "--ctx",
                                      "8192",
                                      "--parallel",
                                      "4",
                                      "--kv-type",
                                      "Q8_0",
                                      "--docker-host",
                                      "tcp://d:1",
                                      "--ram",
                                      "32G",
                                      "--vram",
                                      "0",
                                      "--reserve",
                                      "2G",
                                      "--source",
                                      "server",
                                      "--models-dir",
                                      "/m",
                                      "--ollama",
                                      "http://127.0.0.1:11434",
                                      "--loading",
                                      "no-mmap",
                                      "--gpu-reserve",
                                      "1G",
                                      "--headroom",
                                      "0",
                                      "--api-timeout",
                                      "9s",
                                      "--json",
                                      "--nvml-library",
                                      "/n.so"});
  const auto& o = c.options;
  EXPECT_EQ(c.format, ReportFormat::json);
  EXPECT_EQ(o.models, (std::vector<std::string>{"a.gguf", "qwen2.5:7b"}));
  EXPECT_EQ(o.settings.num_ctx, 8192U);
  EXPECT_EQ(o.parallel, 4U);
  EXPECT_EQ(o.kv_type, KvType::q8_0);
  EXPECT_EQ(o.docker_host, "tcp://d:1");
  EXPECT_EQ(o.ram, 32 * k_gib);
  EXPECT_EQ(o.vram, 0U);  // no GPU
  EXPECT_EQ(o.reserve, 2 * k_gib);
  EXPECT_EQ(o.source, engine::ModelSource::server);
  EXPECT_EQ(o.models_dir, "/m");
  EXPECT_EQ(o.ollama_url, "http://127.0.0.1:11434");
  EXPECT_EQ(o.settings.loading, WeightLoading::no_mmap);
  EXPECT_EQ(o.settings.gpu_reserve, 1 * k_gib);
  EXPECT_EQ(o.settings.headroom_percent, 0U);
  EXPECT_EQ(o.api_timeout, Duration{9'000});
  EXPECT_EQ(o.nvml_library, "/n.so");
  EXPECT_EQ(parsed<PlanCommand>({"plan", "m", "--loading", "mlock"}).options.settings.loading, WeightLoading::mlock);
  EXPECT_EQ(parsed<PlanCommand>({"plan", "m", "--kv-type", "q4_0"}).options.kv_type, KvType::q4_0);
  EXPECT_EQ(parsed<PlanCommand>({"plan", "m", "--source", "catalog"}).options.source, engine::ModelSource::catalog);
  EXPECT_EQ(parsed<PlanCommand>({"plan", "m", "--source", "file"}).options.source, engine::ModelSource::file);
  EXPECT_EQ(parsed<PlanCommand>({"plan", "m", "--source", "store"}).options.source, engine::ModelSource::store);
}

TEST(PlanCommandLine, ARelativeModelsDirIsRelativeToTheWorkingDirectoryNotTheRoot) {
  EXPECT_EQ(parsed<PlanCommand>({"--root", "/host", "plan", "m", "--models-dir", "store/../models"}).options.models_dir,
            "/work/here/models");
  EXPECT_EQ(parsed<PlanCommand>({"plan", "m", "--models-dir", "/abs//models"}).options.models_dir, "/abs/models");
}

TEST(PlanCommandLine, DockerHostFromTheEnvironment) {
  EXPECT_EQ(parsed<PlanCommand>({"plan", "m"}, env_with_docker_host("tcp://env:2375")).options.docker_host,
            "tcp://env:2375");
}

TEST(PlanCommandLine, MalformedValuesAreRefused) {
  expect_refused({"plan", "m", "--ctx", "-1"}, "--ctx: '-1' is not a whole number from 1 to 16777216");
  expect_refused({"plan", "m", "--ctx", "0"}, "--ctx: '0' is not a whole number from 1 to 16777216");
  expect_refused({"plan", "m", "--ctx", "0x1000"}, "--ctx: '0x1000' is not a whole number from 1 to 16777216");
  expect_refused({"plan", "m", "--parallel", "-1"}, "--parallel: '-1' is not a whole number from 1 to 256");
  expect_refused({"plan", "m", "--parallel", ""}, "--parallel: '' is not a whole number from 1 to 256");
  expect_refused({"plan", "m", "--headroom", "-20"}, "--headroom: '-20' is not a whole number from 0 to 1000");
  expect_refused({"plan", "m", "--headroom", "nan"}, "--headroom: 'nan' is not a whole number from 0 to 1000");
  expect_refused({"plan", "m", "--kv-type", "q5"}, "--kv-type: 'q5' is not f16, q8_0 or q4_0");
  expect_refused({"plan", "m", "--loading", "MMAP"}, "--loading: 'MMAP' is not mmap, no-mmap or mlock");
  expect_refused({"plan", "m", "--source", "web"}, "--source: 'web' is not auto, file, store, server or catalog");
  expect_refused({"plan", "m", "--source", "server"}, "--source server: needs --ollama URL");
  expect_refused({"plan", "m", "--ram", "0"}, "--ram: must be more than 0");
  expect_refused({"plan", "m", "--ram", "16000000T"},
                 "--ram: invalid size '16000000T': too large (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"plan", "m", "--vram", "99999999999999999999"},
                 "--vram: invalid size '99999999999999999999': too large (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"plan", "m", "--api-timeout", "0"}, "--api-timeout: must be longer than 0");
  expect_refused({"plan", "m", "--gpu-reserve", "lots"},
                 "--gpu-reserve: invalid size 'lots': no number (use e.g. 4G, 512M, 1.5GiB)");
  // Empty --ctx, --ram and --vram are none.
  const auto o = parsed<PlanCommand>({"plan", "m", "--ctx", "", "--ram", "", "--vram", ""}).options;
  EXPECT_FALSE(o.settings.num_ctx);
  EXPECT_FALSE(o.ram);
  EXPECT_FALSE(o.vram);
  // The first option checked is the one named.
  expect_refused({"plan", "m", "--parallel", "0", "--ctx", "0"}, "--ctx: '0' is not a whole number from 1 to 16777216");
}

// ---- export

TEST(ExportCommandLine, PrometheusRulesAndGrafana) {
  EXPECT_FALSE(parsed<PrometheusRulesCommand>({"export", "prometheus-rules"}).options.pending_override);
  EXPECT_EQ(parsed<PrometheusRulesCommand>({"export", "prometheus-rules", "--pending", "0s"}).options.pending_override,
            Duration{0});
  EXPECT_EQ(parsed<PrometheusRulesCommand>({"export", "prometheus-rules", "--pending", "2m"}).options.pending_override,
            Duration{120'000});
  expect_refused({"export", "prometheus-rules", "--pending", "1x"},
                 "--pending: invalid duration '1x' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
  EXPECT_TRUE(parse({"export", "grafana"}).has_value());
  EXPECT_TRUE(std::holds_alternative<GrafanaCommand>(*parse({"export", "grafana"})));
}

// ---- test model, test --history

TEST(CommandLine, TestModelDefaultsPlanOnlyWithTheStateDirAndDocker) {
  const auto c = parsed<TestModelCommand>({"test", "model", "llama3.1:8b"}, env_with_docker_host("unix:///x.sock"));
  const auto& o = c.options;
  EXPECT_EQ(o.plan.models, std::vector<std::string>{"llama3.1:8b"});
  EXPECT_EQ(o.load, engine::ModelLoad::plan_only);
  EXPECT_EQ(o.after_load, engine::AfterLoad::unload);
  EXPECT_EQ(o.server, "");
  EXPECT_EQ(o.state_dir, adapters::StateDir().path().string());
  EXPECT_EQ(o.plan.docker_host, "unix:///x.sock");
  EXPECT_EQ(o.load_timeout, engine::ModelTestOptions().load_timeout);
  EXPECT_EQ(c.format, ReportFormat::text);
}

TEST(CommandLine, TestModelTakesTheServerLoadKeepAndThePlanSettings) {
  const auto c = parsed<TestModelCommand>({"test",      "model",       "a",
                                           "b:7b",      "--server",    "http://127.0.0.1:11434",
                                           "--load",    "--keep",      "--ctx",
                                           "8192",      "--parallel",  "2",
                                           "--kv-type", "q8_0",        "--load-timeout",
                                           "90s",       "--state-dir", "/tmp/s",
                                           "--ram",     "32G",         "--json"});
  const auto& o = c.options;
  EXPECT_EQ(o.plan.models, (std::vector<std::string>{"a", "b:7b"}));
  EXPECT_EQ(o.server, "http://127.0.0.1:11434");
  EXPECT_EQ(o.load, engine::ModelLoad::load);
  EXPECT_EQ(o.after_load, engine::AfterLoad::keep);
  EXPECT_EQ(o.plan.settings.num_ctx, 8192U);
  EXPECT_EQ(o.plan.parallel, 2U);
  EXPECT_EQ(o.plan.kv_type, KvType::q8_0);
  EXPECT_EQ(o.load_timeout, std::chrono::seconds(90));
  EXPECT_EQ(o.state_dir, "/tmp/s");
  EXPECT_EQ(o.plan.ram, 32 * k_gib);
  EXPECT_EQ(c.format, ReportFormat::json);
}

TEST(CommandLine, TestModelRefusals) {
  expect_cli_refusal({"test", "model"}, "MODEL");
  expect_refused({"test", "model", "m", "--keep"}, "--keep: needs --load");
  expect_refused({"test", "model", "m", "--server", "ftp://x"},
                 "--server: 'ftp://x' is neither a container name nor an http(s) URL");
  expect_refused({"test", "model", "m", "--ctx", "0"}, "--ctx: '0' is not a whole number from 1 to 16777216");
  expect_refused({"test", "model", "m", "--kv-type", "q2"}, "--kv-type: 'q2' is not f16, q8_0 or q4_0");
  expect_refused({"test", "model", ""}, "MODEL: an empty model name");
}

TEST(CommandLine, TestHistoryAndATestWithoutWhat) {
  const auto c = parsed<TestHistoryCommand>({"test", "--history", "--limit", "5", "--state-dir", "/s", "--json"});
  EXPECT_EQ(c.limit, 5U);
  EXPECT_EQ(c.state_dir, "/s");
  EXPECT_EQ(c.format, ReportFormat::json);
  const auto d = parsed<TestHistoryCommand>({"test", "--history"});
  EXPECT_EQ(d.limit, 50U);
  EXPECT_EQ(d.state_dir, adapters::StateDir().path().string());
  expect_refused({"test"}, "test: give ram, vram, model or --history");
  expect_refused({"test", "--history", "--limit", "0"}, "--limit: '0' is not a whole number from 1 to 10000");
}

// ---- bench

TEST(BenchCommandLine, DefaultsAreTheIssuesAndTheStateDir) {
  const auto c = parsed<BenchCommand>({"bench", "llama3.1:8b", "qwen2:7b"}, env_with_docker_host("unix:///x.sock"));
  const auto& o = c.options;
  EXPECT_EQ(c.action, BenchAction::run);
  EXPECT_EQ(o.plan.models, (std::vector<std::string>{"llama3.1:8b", "qwen2:7b"}));
  EXPECT_EQ(o.plan.docker_host, "unix:///x.sock");
  EXPECT_EQ(o.settings.api, BenchApi::ollama);
  EXPECT_EQ(o.settings.runs, 5U);
  EXPECT_EQ(o.settings.warmup, 1U);
  EXPECT_EQ(o.settings.prompt_tokens, 256U);
  EXPECT_EQ(o.settings.max_tokens, 128U);
  EXPECT_EQ(o.settings.concurrency, std::vector<std::size_t>{1});
  EXPECT_FALSE(o.settings.num_ctx);
  EXPECT_DOUBLE_EQ(o.settings.cooldown_s, 10.0);
  EXPECT_EQ(o.settings.temperature_limit_c, 70U);
  EXPECT_EQ(o.settings.gpu_utilisation_target_pct, 80U);
  EXPECT_EQ(c.state_dir, adapters::StateDir().path().string());
  EXPECT_EQ(c.store, StoreRun::store);
  EXPECT_EQ(c.csv_file, "");
  EXPECT_EQ(c.html_file, "");
  EXPECT_EQ(c.format, ReportFormat::text);
}

TEST(BenchCommandLine, TakesEverySetting) {
  const auto c = parsed<BenchCommand>({"bench",
                                       "m",
                                       "--server",
                                       "http://127.0.0.1:8080",
                                       "--api",
                                       "openai",
                                       "--runs",
                                       "7",
                                       "--warmup",
                                       "0",
                                       "--prompt-tokens",
                                       "512",
                                       "--max-tokens",
                                       "64",
                                       "--concurrency",
                                       "1,2,4",
                                       "--ctx",
                                       "8192",
                                       "--cooldown",
                                       "30s",
                                       "--seed",
                                       "7",
                                       "--temperature-limit",
                                       "80",
                                       "--gpu-target",
                                       "90",
                                       "--load-timeout",
                                       "2m",
                                       "--request-timeout",
                                       "45s",
                                       "--state-dir",
                                       "/s",
                                       "--no-store",
                                       "--csv",
                                       "/tmp/b.csv",
                                       "--html",
                                       "/tmp/b.html",
                                       "--json"});
  const auto& o = c.options;
  EXPECT_EQ(o.server, "http://127.0.0.1:8080");
  EXPECT_EQ(o.settings.api, BenchApi::openai);
  EXPECT_EQ(o.settings.runs, 7U);
  EXPECT_EQ(o.settings.warmup, 0U);
  EXPECT_EQ(o.settings.prompt_tokens, 512U);
  EXPECT_EQ(o.settings.max_tokens, 64U);
  EXPECT_EQ(o.settings.concurrency, (std::vector<std::size_t>{1, 2, 4}));
  EXPECT_EQ(o.settings.num_ctx, 8192U);
  EXPECT_EQ(o.plan.settings.num_ctx, 8192U);  // the plan is for the context the requests ask
  EXPECT_DOUBLE_EQ(o.settings.cooldown_s, 30.0);
  EXPECT_EQ(o.settings.seed, 7);
  EXPECT_EQ(o.settings.temperature_limit_c, 80U);
  EXPECT_EQ(o.settings.gpu_utilisation_target_pct, 90U);
  EXPECT_EQ(o.load_timeout, std::chrono::minutes(2));
  EXPECT_EQ(o.request_timeout, std::chrono::seconds(45));
  EXPECT_EQ(c.state_dir, "/s");
  EXPECT_EQ(c.store, StoreRun::no_store);
  EXPECT_EQ(c.csv_file, "/tmp/b.csv");
  EXPECT_EQ(c.html_file, "/tmp/b.html");
  EXPECT_EQ(c.format, ReportFormat::json);
}

TEST(BenchCommandLine, ListCompareReportAndAnnotations) {
  const auto list = parsed<BenchCommand>({"bench", "--list", "--limit", "3", "--json"});
  EXPECT_EQ(list.action, BenchAction::list);
  EXPECT_EQ(list.limit, 3U);
  const auto compare = parsed<BenchCommand>({"bench", "--compare", "4", "9"});
  EXPECT_EQ(compare.action, BenchAction::compare);
  EXPECT_EQ(compare.run_ids, (std::vector<std::int64_t>{4, 9}));
  const auto report = parsed<BenchCommand>({"bench", "--report", "12", "--html", "/tmp/r.html"});
  EXPECT_EQ(report.action, BenchAction::report);
  EXPECT_EQ(report.run_ids, std::vector<std::int64_t>{12});
  EXPECT_EQ(report.html_file, "/tmp/r.html");
  const auto annotations = parsed<BenchCommand>({"bench", "--annotations", "2"});
  EXPECT_EQ(annotations.action, BenchAction::annotations);
  EXPECT_EQ(annotations.run_ids, std::vector<std::int64_t>{2});
}

TEST(BenchCommandLine, Refusals) {
  expect_refused({"bench"},
                 "MODEL: name the models to benchmark (or give --list, --compare, --report or --annotations)");
  expect_refused({"bench", "m", "--concurrency", "0"},
                 "--concurrency: '0' is not a number of concurrent requests from 1 to 256");
  expect_refused({"bench", "m", "--concurrency", "1,,2"},
                 "--concurrency: '' is not a number of concurrent requests from 1 to 256");
  expect_refused({"bench", "m", "--concurrency", "2,2"}, "--concurrency: 2 is given twice");
  expect_refused({"bench", "m", "--runs", "0"}, "--runs: '0' is not a whole number from 1 to 1000");
  expect_refused({"bench", "m", "--max-tokens", "0"}, "--max-tokens: '0' is not a whole number from 1 to 32768");
  expect_refused({"bench", "m", "--api", "grpc"}, "--api: 'grpc' is not ollama or openai");
  expect_refused({"bench", "m", "--cooldown", "2h"}, "--cooldown: must be from 0 to 1h");
  expect_refused({"bench", "m", "--server", "ftp://x"},
                 "--server: 'ftp://x' is neither a container name nor an http(s) URL");
  expect_refused({"bench", "m", "--html", ""}, "--html: is empty");
  expect_refused({"bench", ""}, "MODEL: an empty model name");
  expect_refused({"bench", "a", "b", "a"}, "MODEL: 'a' is given twice");
  expect_refused({"bench", "a", "b", "--runs", "1000", "--concurrency", "4,8"},
                 "--runs: 1000 runs at concurrency 4,8 for 2 model(s) are 24000 requests; at most 20000 in one run");
  expect_refused({"bench", "--list", "--report", "1"},
                 "bench: give one of --list, --compare, --report and --annotations");
  expect_refused({"bench", "m", "--list"},
                 "MODEL: models are benchmarked without --list, --compare, --report or --annotations");
  expect_refused({"bench", "--compare", "1", "x"},
                 "--compare: 'x' is not a whole number from 1 to 4611686018427387904");
  expect_cli_refusal({"bench", "--compare", "1"}, "--compare");
  expect_refused({"bench", "--list", "--html", "/tmp/x.html"}, "--html: goes with a benchmark or --report RUN");
  expect_refused({"bench", "--compare", "1", "2", "--csv", "/tmp/x.csv"},
                 "--csv: goes with a benchmark or --report RUN");
  expect_refused({"bench", "m", "--limit", "3"}, "--limit: goes with --list");
}
