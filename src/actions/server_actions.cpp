#include "actions/server_actions.hpp"

#include <fmt/format.h>

#include "adapters/docker.hpp"
#include "adapters/ollama.hpp"

namespace mw::actions {

std::string describe_unload(const InferenceServer& server, const std::string& model) {
  return fmt::format("unload {} from {}: POST {}/api/generate {{\"model\": \"{}\", \"keep_alive\": 0}}", model,
                     server.name, server.api_url, model);
}

std::string describe_restart(const InferenceServer& server, Duration stop_timeout, const std::string& systemd_unit) {
  if (server.kind == ServerKind::container) {
    return fmt::format("restart container {}: POST /containers/{}/restart?t={}", server.name,
                       server.container_id.substr(0, 12), stop_timeout.count() / 1000);
  }
  return fmt::format("restart {}: systemctl restart -- {}", server.name, systemd_unit);
}

LiveActions::LiveActions(adapters::DockerClient* docker, CommandRunner& runner, std::string systemd_unit,
                         std::chrono::milliseconds api_timeout)
    : m_docker(docker), m_runner(runner), m_unit(std::move(systemd_unit)), m_api_timeout(api_timeout) {}

Expected<void, Error> LiveActions::unload_model(const InferenceServer& server, const std::string& model) {
  m_log.push_back(describe_unload(server, model));
  auto endpoint = adapters::parse_endpoint(server.api_url, server.name + " API address");
  if (!endpoint) {
    return unexpected(endpoint.error());
  }
  adapters::OllamaClient client(*endpoint, m_api_timeout);
  return client.unload(model);
}

Expected<void, Error> LiveActions::restart(const InferenceServer& server, Duration stop_timeout) {
  m_log.push_back(describe_restart(server, stop_timeout, m_unit));
  if (server.kind == ServerKind::container) {
    if (m_docker == nullptr) {
      return fail("docker", fmt::format("cannot restart {}: Docker is not reachable", server.name));
    }
    return m_docker->restart(server.container_id, std::chrono::duration_cast<std::chrono::seconds>(stop_timeout));
  }
  auto argv = systemctl_restart_argv(m_unit);
  if (!argv) {
    return unexpected(argv.error());
  }
  auto result = m_runner.run(*argv, std::chrono::milliseconds(stop_timeout) + std::chrono::seconds(90));
  if (!result) {
    return unexpected(result.error());
  }
  if (result->timed_out || result->exit_code != 0) {
    return fail("systemctl", fmt::format("restart of {} failed ({}): {}", m_unit,
                                         result->timed_out ? "timed out" : fmt::format("exit {}", result->exit_code),
                                         result->output.substr(0, 200)));
  }
  return {};
}

Expected<void, Error> DryRunActions::unload_model(const InferenceServer& server, const std::string& model) {
  m_log.push_back("would " + describe_unload(server, model));
  return {};
}

Expected<void, Error> DryRunActions::restart(const InferenceServer& server, Duration stop_timeout) {
  m_log.push_back("would " + describe_restart(server, stop_timeout, m_unit));
  return {};
}

}  // namespace mw::actions
