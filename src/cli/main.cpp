// memwarden: keeps the memory of a local-LLM host healthy.
// main parses the command line and hands over to one command; nothing else lives here.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "cli/diagnose.hpp"
#include "cli/status.hpp"
#include "core/bytes.hpp"
#include "core/duration.hpp"

namespace {

constexpr int k_exit_internal = 1;
constexpr int k_exit_usage = 2;

int run(int argc, char** argv) {
  CLI::App app{"memwarden: keeps the memory of a local-LLM host healthy"};
  app.set_version_flag("--version", std::string("memwarden ") + MEMWARDEN_VERSION);
  app.require_subcommand(1);

  std::string root = "/";
  app.add_option("--root", root, "Host root holding proc/ and sys/ (for a containerised memwarden: /host)")
      ->capture_default_str();

  auto* status = app.add_subcommand("status", "Host, container and GPU memory at a glance");
  bool json = false;
  bool all = false;
  std::string docker_host;
  std::string timeout = "2s";
  std::string reserve = "4G";
  std::string nvml_library;
  status->add_flag("--json", json, "Print the facts as JSON (schema in docs/status-json.md)");
  status->add_flag("--all", all, "Include stopped containers");
  status->add_option("--docker-host", docker_host,
                     "Docker address: unix:///path or tcp://host:port (default: $DOCKER_HOST, else "
                     "unix:///var/run/docker.sock)");
  status->add_option("--timeout", timeout, "Time-out for each Docker request")->capture_default_str();
  status->add_option("--reserve", reserve, "RAM the host keeps for its monitoring stack; warn below it")
      ->capture_default_str();
  status->add_option("--nvml-library", nvml_library, "NVML library to load (default libnvidia-ml.so.1)");

  auto* diagnose = app.add_subcommand("diagnose", "Find leaks, bloat and pressure in inference servers");
  std::vector<std::string> targets;
  bool d_json = false;
  std::string d_docker_host;
  std::string d_timeout = "2s";
  std::string api_timeout = "2s";
  std::string window = "60s";
  std::string interval = "1s";
  std::string base = "1G";
  std::string d_reserve = "4G";
  std::string hold = "10s";
  std::string stop_on;
  std::string bloat_margin = "2G";
  double growth_min = 256.0;
  diagnose->add_option("CONTAINER", targets, "Containers to diagnose (default: every inference server)");
  diagnose->add_flag("--json", d_json, "Print the findings as JSON (schema in docs/diagnose.md)");
  diagnose->add_option("--window", window, "How long to sample; 0 takes one sample")->capture_default_str();
  diagnose->add_option("--interval", interval, "Time between samples")->capture_default_str();
  diagnose->add_option("--docker-host", d_docker_host, "Docker address (default: $DOCKER_HOST, else the socket)");
  diagnose->add_option("--timeout", d_timeout, "Time-out for each Docker request")->capture_default_str();
  diagnose->add_option("--api-timeout", api_timeout, "Time-out for each Ollama API request")->capture_default_str();
  diagnose->add_option("--base-allowance", base, "RAM an idle server may hold beyond its models")
      ->capture_default_str();
  diagnose->add_option("--reserve", d_reserve, "RAM the host keeps for its monitoring stack")->capture_default_str();
  diagnose->add_option("--hold", hold, "How long bloat must last before it is reported")->capture_default_str();
  diagnose->add_option("--bloat-margin", bloat_margin, "Anon memory allowed above expected (or 50% of it, if larger)")
      ->capture_default_str();
  diagnose->add_option("--growth-min", growth_min, "Slowest anon growth reported, in MiB per hour")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  diagnose->add_option("--stop-on", stop_on, "End early at the first finding this severe: warning or critical")
      ->check(CLI::IsMember({"warning", "critical"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : k_exit_usage;
  }

  if (status->parsed()) {
    mw::cli::StatusOptions options;
    options.root = mw::probes::HostRoot(root);
    options.docker_host = mw::adapters::docker_host_address(docker_host, std::getenv("DOCKER_HOST"));
    options.scope = all ? mw::adapters::ListScope::all : mw::adapters::ListScope::running;
    options.nvml_library = nvml_library;
    const auto t = mw::parse_duration(timeout, "--timeout");
    const auto r = mw::parse_size(reserve, "--reserve");
    if (!t || !r) {
      fmt::print(stderr, "memwarden: {}\n", !t ? t.error().line() : r.error().line());
      return k_exit_usage;
    }
    options.docker_timeout = *t;
    options.thresholds.reserve_bytes = *r;
    const auto result = mw::cli::collect_status(options);
    if (json) {
      std::cout << mw::cli::status_to_json(result).dump(2) << '\n';
    } else {
      std::cout << mw::cli::render_status_table(result);
    }
    std::cout.flush();
    return static_cast<int>(mw::cli::status_exit_code(result));
  }
  if (diagnose->parsed()) {
    mw::cli::DiagnoseOptions options;
    options.sampler.root = mw::probes::HostRoot(root);
    options.sampler.docker_host = mw::adapters::docker_host_address(d_docker_host, std::getenv("DOCKER_HOST"));
    options.sampler.targets = targets;
    const auto fail_usage = [](const mw::Error& e) {
      fmt::print(stderr, "memwarden: {}\n", e.line());
      return k_exit_usage;
    };
    const auto durations = {std::pair{&d_timeout, "--timeout"}, std::pair{&api_timeout, "--api-timeout"},
                            std::pair{&window, "--window"}, std::pair{&interval, "--interval"},
                            std::pair{&hold, "--hold"}};
    std::vector<mw::Duration> parsed;
    for (const auto& [text, name] : durations) {
      auto d = mw::parse_duration(*text, name);
      if (!d) {
        return fail_usage(d.error());
      }
      parsed.push_back(*d);
    }
    options.sampler.docker_timeout = parsed[0];
    options.sampler.api_timeout = parsed[1];
    options.window = parsed[2];
    options.interval = parsed[3];
    options.thresholds.bloat_hold = parsed[4];
    if (options.interval.count() <= 0) {
      return fail_usage(mw::Error{"--interval", "must be longer than 0"});
    }
    for (const auto& [text, name, target] :
         {std::tuple{&base, "--base-allowance", &options.thresholds.base_allowance},
          std::tuple{&d_reserve, "--reserve", &options.thresholds.reserve},
          std::tuple{&bloat_margin, "--bloat-margin", &options.thresholds.bloat_margin}}) {
      const auto size = mw::parse_size(*text, name);
      if (!size) {
        return fail_usage(size.error());
      }
      *target = *size;
    }
    options.thresholds.growth_min_mib_per_hour = growth_min;
    if (stop_on == "warning") {
      options.stop_on = mw::Severity::warning;
    } else if (stop_on == "critical") {
      options.stop_on = mw::Severity::critical;
    }
    mw::cli::SteadyClock clock;
    const auto result = mw::cli::run_diagnose(options, clock);
    if (d_json) {
      std::cout << mw::cli::diagnosis_to_json(result).dump(2) << '\n';
    } else {
      std::cout << mw::cli::render_diagnosis(result);
    }
    std::cout.flush();
    return static_cast<int>(mw::cli::diagnose_exit_code(result));
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
