// Everything `memwarden fix` does to a server goes through ServerActions:
// the live implementation talks to Ollama, Docker and systemd; the dry-run
// one only describes each step; tests record the calls.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "actions/command.hpp"
#include "core/clock.hpp"
#include "core/diagnosis.hpp"
#include "core/error.hpp"

namespace mw::adapters {
class DockerClient;
}

namespace mw::actions {

class ServerActions {
 public:
  virtual ~ServerActions() = default;
  // POST <api>/api/generate {"model": model, "keep_alive": 0}
  [[nodiscard]] virtual Expected<void, Error> unload_model(const InferenceServer& server, const std::string& model) = 0;
  // A container: POST /containers/{id}/restart?t=N. A host process: systemctl restart -- <unit>.
  [[nodiscard]] virtual Expected<void, Error> restart(const InferenceServer& server, Duration stop_timeout) = 0;
  // What each call did or would do, in order, one line each.
  [[nodiscard]] const std::vector<std::string>& log() const { return m_log; }

 protected:
  std::vector<std::string> m_log;
};

class LiveActions final : public ServerActions {
 public:
  // `docker` may be null when only host processes are handled; `systemd_unit` names the host's Ollama unit.
  LiveActions(adapters::DockerClient* docker, CommandRunner& runner, std::string systemd_unit,
              std::chrono::milliseconds api_timeout);
  [[nodiscard]] Expected<void, Error> unload_model(const InferenceServer& server, const std::string& model) override;
  [[nodiscard]] Expected<void, Error> restart(const InferenceServer& server, Duration stop_timeout) override;

 private:
  adapters::DockerClient* m_docker;
  CommandRunner& m_runner;
  std::string m_unit;
  std::chrono::milliseconds m_api_timeout;
};

// Changes nothing; every call succeeds and says exactly what it would have done.
class DryRunActions final : public ServerActions {
 public:
  explicit DryRunActions(std::string systemd_unit) : m_unit(std::move(systemd_unit)) {}
  [[nodiscard]] Expected<void, Error> unload_model(const InferenceServer& server, const std::string& model) override;
  [[nodiscard]] Expected<void, Error> restart(const InferenceServer& server, Duration stop_timeout) override;

 private:
  std::string m_unit;
};

// The exact request or command for each step, shared by the live and dry-run implementations.
[[nodiscard]] std::string describe_unload(const InferenceServer& server, const std::string& model);
[[nodiscard]] std::string describe_restart(const InferenceServer& server, Duration stop_timeout,
                                           const std::string& systemd_unit);

}  // namespace mw::actions
