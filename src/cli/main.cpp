// memwarden: keeps the memory of a local-LLM host healthy.
// main parses the command line and hands over to one command; nothing else lives here.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

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
