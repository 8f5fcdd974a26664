#include "engine_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

namespace mw::it {

std::string engine_docker_host(const std::string& state_dir) {
  std::ifstream in(state_dir + "/env");
  std::string line;
  std::getline(in, line);
  const std::string prefix = "DOCKER_HOST=";
  return line.starts_with(prefix) ? line.substr(prefix.size()) : "";
}

const std::string& docker_host() {
  static const std::string host = engine_docker_host(MEMWARDEN_ENGINE_DIR);
  return host;
}

test::ProcessResult docker(std::vector<std::string> args) {
  args.insert(args.begin(), {"docker", "-H", docker_host()});
  return test::run_process(args);
}

test::ProcessResult memwarden(std::vector<std::string> args, const std::string& host) {
  args.insert(args.begin(), MEMWARDEN_BIN);
  args.insert(args.end(), {"--docker-host", host});
  return test::run_process(args);
}

test::ProcessResult http_post(const std::string& url, const std::string& body) {
  return test::run_process({"curl", "-sS", "--max-time", "60", "-X", "POST", "-H", "Content-Type: application/json",
                            "--data-binary", body, url});
}

Container::Container(std::string name, std::vector<std::string> run_args, std::vector<std::string> command,
                     const std::string& image)
    : m_name(std::move(name)) {
  (void)docker({"rm", "-f", m_name});
  std::vector<std::string> args{"run", "-d", "--name", m_name};
  args.insert(args.end(), run_args.begin(), run_args.end());
  if (std::find(run_args.begin(), run_args.end(), "--network") == run_args.end()) {
    args.insert(args.end(), {"--network", "none"});
  }
  args.push_back(image);
  args.insert(args.end(), command.begin(), command.end());
  const auto r = docker(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

Container::~Container() {
  (void)docker({"rm", "-f", m_name});
}

std::string Container::logs() const {
  const auto r = docker({"logs", m_name});
  return r.out + r.err;
}

bool Container::wait_for_log(const std::string& text, std::chrono::seconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (logs().find(text) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

bool Container::wait_for_exit(std::chrono::seconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (docker({"inspect", "-f", "{{.State.Running}}", m_name}).out == "false\n") {
      return true;
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

nlohmann::json parse_output(const test::ProcessResult& r) {
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded()) {
    ADD_FAILURE() << "not JSON\nstdout: " << r.out << "\nstderr: " << r.err;
    return nlohmann::json::object();
  }
  return doc;
}

void expect_within(double actual, double expected, double fraction, const std::string& what) {
  EXPECT_GE(actual, expected * (1.0 - fraction)) << what << " = " << actual << ", expected about " << expected;
  EXPECT_LE(actual, expected * (1.0 + fraction)) << what << " = " << actual << ", expected about " << expected;
}

}  // namespace mw::it
