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

// A simulator that bloats after its first load/unload cycle; a restart cures it.
class BloatedServer {
 public:
  BloatedServer(const std::string& name, int port, std::vector<std::string> labels, std::vector<std::string> extra = {})
      : m_url("http://127.0.0.1:" + std::to_string(port)),
        m_container(name, run_args(port, labels), sim_args(std::move(extra)), k_sim_image) {}

  [[nodiscard]] bool bloat() const {
    if (!m_container.wait_for_log("ollama-sim: listening")) {
      return false;
    }
    const auto load = http_post(m_url + "/api/generate", R"({"model":"small:1","prompt":"","stream":false})");
    const auto unload = http_post(m_url + "/api/generate", R"({"model":"small:1","keep_alive":0})");
    return load.exit_code == 0 && unload.out.find("unload") != std::string::npos &&
           m_container.wait_for_log("retained_after_unload");
  }
  [[nodiscard]] std::string started_at() const {
    return docker({"inspect", "-f", "{{.State.StartedAt}}", m_container.name()}).out;
  }
  [[nodiscard]] bool api_healthy() const {
    const auto r = mw::test::run_process({"curl", "-sS", "--max-time", "5", m_url + "/api/version"});
    return r.exit_code == 0 && r.out.find("version") != std::string::npos;
  }
  [[nodiscard]] const std::string& name() const { return m_container.name(); }
  [[nodiscard]] const std::string& url() const { return m_url; }

 private:
  static std::vector<std::string> run_args(int port, const std::vector<std::string>& labels) {
    std::vector<std::string> args{"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:" + std::to_string(port),
                                  "-m",        "2g"};
    for (const auto& l : labels) {
      args.insert(args.end(), {"--label", l});
    }
    return args;
  }
  static std::vector<std::string> sim_args(std::vector<std::string> extra) {
    std::vector<std::string> args{"/bin/ollama-sim", "--model", "small:1=100", "--retain-after-unload-mib", "600"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::string m_url;
  Container m_container;
};

void expect_within(double actual, double expected, double fraction, const std::string& what);

// A command's JSON output; an empty object (and a test failure naming stdout and stderr) when it is not JSON.
[[nodiscard]] nlohmann::json parse_output(const test::ProcessResult& r);

}  // namespace mw::it
