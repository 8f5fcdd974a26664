// Fake Docker engine and Ollama servers on Unix sockets for the cli unit tests,
// answering with JSON shaped like (or captured from) the real ones.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace mw::test {

// The captured inspect document of an unlimited container, renamed and relabelled.
[[nodiscard]] nlohmann::json inspect_like(const std::string& id, const std::string& name, std::int64_t pid,
                                          std::int64_t memory, const std::string& api_url,
                                          const nlohmann::json& extra_labels = nlohmann::json::object());

// An engine that knows the given containers; records requests and POSTs (restarts). Like dockerd 20.10 it
// serves each connection on a thread of its own, answers GET /_ping with "OK" and the headers Api-Version and
// Server, sends Api-Version with every answer, and takes any /v1.NN/ prefix.
class FakeEngine {
 public:
  FakeEngine(const std::filesystem::path& socket, std::vector<nlohmann::json> containers);
  ~FakeEngine();
  FakeEngine(const FakeEngine&) = delete;
  FakeEngine& operator=(const FakeEngine&) = delete;

  [[nodiscard]] std::string address() const { return "unix://" + m_socket_path.string(); }
  [[nodiscard]] std::vector<std::string> posts() const;
  // Every request so far, "GET /_ping", in the order they were read.
  [[nodiscard]] std::vector<std::string> requests() const;
  [[nodiscard]] int connections() const;  // accepted so far
  // The most inspects (GET /v1.NN/containers/{id}/json) that were being answered at the same time.
  [[nodiscard]] std::size_t max_inspects_at_once() const;
  int restart_status = 204;  // what POST .../restart answers

  // The Api-Version header's value ("1.41"); empty: no such header (only /version tells the version).
  void set_api_version_header(std::string value);
  // GET /version's answer (the captured 20.10 one by default).
  void set_version_body(std::string body);
  // Answers inspects of that container with `status` and Docker's error JSON instead (404: it is gone).
  void fail_inspect(const std::string& id, int status);
  // The first `count` inspects are answered only once `count` of them are waiting (or after 5 s): a client
  // that sends them one after another takes 5 s for each.
  void hold_first_inspects(std::size_t count);

 private:
  struct Reply {
    int status = 200;
    std::string body;
  };
  Reply reply(const std::string& method, const std::string& path);
  Reply inspect(const std::string& id);
  void accept_loop();
  void serve_connection(int fd);

  std::filesystem::path m_socket_path;
  std::vector<nlohmann::json> m_containers;
  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::vector<std::string> m_posts;
  std::vector<std::string> m_requests;
  std::string m_api_version = "1.41";
  std::string m_version_body;
  std::map<std::string, int> m_failing;
  std::size_t m_hold = 0;      // inspects still to hold back
  std::size_t m_held = 0;      // inspects waiting in hold
  std::size_t m_inspects = 0;  // being answered now
  std::size_t m_max_inspects = 0;
  int m_connections = 0;
  int m_listen_fd = -1;
  int m_wake_pipe[2] = {-1, -1};
  std::vector<std::thread> m_threads;  // one per connection, joined on destruction
  std::thread m_acceptor;
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
