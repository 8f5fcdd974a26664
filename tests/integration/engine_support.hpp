// Shared by the integration tests: the private engine the ctest fixture
// started, the docker CLI against it, the memwarden binary, and containers
// that are removed when a test ends.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace mw::it {

using namespace std::chrono_literals;

inline constexpr std::uint64_t k_mib = 1ULL << 20;
inline const std::string k_hog_image = "memwarden-test/hog:latest";
inline const std::string k_sim_image = "memwarden-test/ollama-sim:latest";

// DOCKER_HOST from an engine state dir's env file ("" when missing).
[[nodiscard]] std::string engine_docker_host(const std::string& state_dir);
// The fixture's engine.
[[nodiscard]] const std::string& docker_host();

[[nodiscard]] test::ProcessResult docker(std::vector<std::string> args);
// memwarden with --docker-host appended to the subcommand's arguments.
[[nodiscard]] test::ProcessResult memwarden(std::vector<std::string> args, const std::string& host = docker_host());
// curl against a local HTTP API (the simulator), body as JSON text.
[[nodiscard]] test::ProcessResult http_post(const std::string& url, const std::string& body);

class Container {
 public:
  Container(std::string name, std::vector<std::string> run_args, std::vector<std::string> command,
            const std::string& image = k_hog_image);
  ~Container();
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  // Waits (bounded) until the container's log holds `text`.
  [[nodiscard]] bool wait_for_log(const std::string& text, std::chrono::seconds limit = 60s) const;
  [[nodiscard]] bool wait_for_exit(std::chrono::seconds limit = 60s) const;
  [[nodiscard]] const std::string& name() const { return m_name; }
  [[nodiscard]] std::string logs() const;

 private:
  std::string m_name;
};

void expect_within(double actual, double expected, double fraction, const std::string& what);

}  // namespace mw::it
