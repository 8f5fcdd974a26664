// Fake Docker engine and Ollama servers on Unix sockets for the cli unit tests,
// answering with JSON shaped like (or captured from) the real ones.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace mw::test {

// The captured inspect document of an unlimited container, renamed and relabelled.
[[nodiscard]] nlohmann::json inspect_like(const std::string& id, const std::string& name, std::int64_t pid,
                                          std::int64_t memory, const std::string& api_url,
                                          const nlohmann::json& extra_labels = nlohmann::json::object());

// An engine that knows the given containers; records POSTs (restarts).
class FakeEngine {
 public:
  FakeEngine(const std::filesystem::path& socket, std::vector<nlohmann::json> containers);
  [[nodiscard]] std::string address() const { return m_server.address(); }
  [[nodiscard]] std::vector<std::string> posts() const;
  int restart_status = 204;  // what POST .../restart answers

 private:
  FakeHttpServer::Reply reply(const std::string& method, const std::string& path);
  std::vector<nlohmann::json> m_containers;
  mutable std::mutex m_mutex;
  std::vector<std::string> m_posts;
  FakeHttpServer m_server;
};

// A fake Ollama whose /api/ps answer the test can change.
class FakeOllama {
 public:
  explicit FakeOllama(const std::filesystem::path& socket);
  void set_ps(std::string body);
  [[nodiscard]] std::string url() const { return m_server.address(); }
  [[nodiscard]] std::vector<std::string> requests() const;

 private:
  mutable std::mutex m_mutex;
  std::string m_ps = R"({"models":[]})";
  std::vector<std::string> m_requests;
  FakeHttpServer m_server;
};

}  // namespace mw::test
