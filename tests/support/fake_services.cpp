#include "fake_services.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace mw::test {

using nlohmann::json;

json inspect_like(const std::string& id, const std::string& name, std::int64_t pid, std::int64_t memory,
                  const std::string& api_url, const json& extra_labels) {
  auto doc = json::parse(read_fixture("docker/inspect-unlimited.json"));
  doc["Id"] = id;
  doc["Name"] = "/" + name;
  doc["Config"]["Image"] = "ollama/ollama:0.6.4";
  doc["Config"]["Labels"] = {{"memwarden.ollama.url", api_url}};
  for (const auto& [k, v] : extra_labels.items()) {
    doc["Config"]["Labels"][k] = v;
  }
  doc["State"]["Pid"] = pid;
  doc["HostConfig"]["Memory"] = memory;
  return doc;
}

FakeEngine::FakeEngine(const std::filesystem::path& socket, std::vector<json> containers)
    : m_socket_path(socket),
      m_containers(std::move(containers)),
      m_version_body(read_fixture("docker/version-20.10.json")) {
  m_listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, m_socket_path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlink(m_socket_path.c_str());
  if (m_listen_fd < 0 || ::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(m_listen_fd, 64) != 0 || ::pipe2(m_wake_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("cannot listen on " + m_socket_path.string());
  }
  m_acceptor = std::thread([this] { accept_loop(); });
}

FakeEngine::~FakeEngine() {
  const char byte = 'x';
  (void)!::write(m_wake_pipe[1], &byte, 1);
  m_acceptor.join();
  {
    std::lock_guard lock(m_mutex);
    m_hold = 0;  // let held inspects go
  }
  m_changed.notify_all();
  for (auto& t : m_threads) {
    t.join();
  }
  ::close(m_listen_fd);
  ::close(m_wake_pipe[0]);
  ::close(m_wake_pipe[1]);
  ::unlink(m_socket_path.c_str());
}

std::vector<std::string> FakeEngine::posts() const {
  std::lock_guard lock(m_mutex);
  return m_posts;
}

std::vector<std::string> FakeEngine::requests() const {
  std::lock_guard lock(m_mutex);
  return m_requests;
}

int FakeEngine::connections() const {
  std::lock_guard lock(m_mutex);
  return m_connections;
}

std::size_t FakeEngine::max_inspects_at_once() const {
  std::lock_guard lock(m_mutex);
  return m_max_inspects;
}

void FakeEngine::set_api_version_header(std::string value) {
  std::lock_guard lock(m_mutex);
  m_api_version = std::move(value);
}

void FakeEngine::set_version_body(std::string body) {
  std::lock_guard lock(m_mutex);
  m_version_body = std::move(body);
}

void FakeEngine::fail_inspect(const std::string& id, int status) {
  std::lock_guard lock(m_mutex);
  m_failing[id] = status;
}

void FakeEngine::hold_first_inspects(std::size_t count) {
  std::lock_guard lock(m_mutex);
  m_hold = count;
}

void FakeEngine::accept_loop() {
  while (const auto accepted = accept_or_stop(m_listen_fd, m_wake_pipe[0])) {
    const int fd = *accepted;
    std::lock_guard lock(m_mutex);
    ++m_connections;
    m_threads.emplace_back([this, fd] { serve_connection(fd); });
  }
}

void FakeEngine::serve_connection(int fd) {
  // Keep-alive: answer requests on this connection until the client closes it or the engine stops.
  std::string buffer;
  for (;;) {
    const auto end = buffer.find("\r\n\r\n");
    std::size_t body_len = 0;
    if (const auto cl = buffer.find("Content-Length: "); end != std::string::npos && cl < end) {
      body_len = std::stoul(buffer.substr(cl + 16));
    }
    if (end == std::string::npos || buffer.size() < end + 4 + body_len) {
      pollfd pf[2] = {{fd, POLLIN, 0}, {m_wake_pipe[0], POLLIN, 0}};
      if (::poll(pf, 2, -1) < 0 || (pf[1].revents & POLLIN) != 0) {
        break;
      }
      char chunk[4096];
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) {
        break;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    const auto sp1 = buffer.find(' ');
    const auto sp2 = buffer.find(' ', sp1 + 1);
    const auto method = buffer.substr(0, sp1);
    const auto path = buffer.substr(sp1 + 1, sp2 - sp1 - 1);
    buffer.erase(0, end + 4 + body_len);
    const auto answer = reply(method, path);
    std::string api_version;
    {
      std::lock_guard lock(m_mutex);
      api_version = m_api_version;
    }
    std::string out = "HTTP/1.1 " + std::to_string(answer.status) + " X\r\n";
    if (!api_version.empty()) {
      out += "Api-Version: " + api_version + "\r\n";
    }
    out += "Server: Docker/20.10.24+dfsg1 (linux)\r\nContent-Type: " +
           std::string(path == "/_ping" ? "text/plain; charset=utf-8" : "application/json") +
           "\r\nContent-Length: " + std::to_string(answer.body.size()) + "\r\n\r\n" + answer.body;
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
      break;
    }
  }
  ::close(fd);
}

FakeEngine::Reply FakeEngine::inspect(const std::string& id) {
  std::unique_lock lock(m_mutex);
  ++m_inspects;
  m_max_inspects = std::max(m_max_inspects, m_inspects);
  if (m_held < m_hold) {
    ++m_held;
    m_changed.notify_all();
    m_changed.wait_for(lock, std::chrono::seconds(5), [this] { return m_held >= m_hold; });
  }
  --m_inspects;
  if (const auto failing = m_failing.find(id); failing != m_failing.end()) {
    return {failing->second, failing->second == 404 ? R"({"message":"No such container: )" + id + "\"}"
                                                    : R"({"message":"internal error"})"};
  }
  for (const auto& c : m_containers) {
    if (c["Id"].get<std::string>() == id) {
      return {200, c.dump()};
    }
  }
  return {404, R"({"message":"No such container: )" + id + "\"}"};
}

FakeEngine::Reply FakeEngine::reply(const std::string& method, const std::string& path) {
  {
    std::lock_guard lock(m_mutex);
    m_requests.push_back(method + " " + path);
  }
  if (method == "POST") {
    std::lock_guard lock(m_mutex);
    m_posts.push_back(path);
    return {restart_status, restart_status == 204 ? "" : R"({"message":"No such container"})"};
  }
  if (path == "/_ping") {
    return {200, "OK"};
  }
  if (path == "/version") {
    std::lock_guard lock(m_mutex);
    return {200, m_version_body};
  }
  // "/v1.41/containers/..." -> "/containers/..."
  std::string rest = path;
  if (rest.starts_with("/v")) {
    const auto slash = rest.find('/', 1);
    rest = slash == std::string::npos ? std::string() : rest.substr(slash);
  }
  if (rest.starts_with("/containers/json")) {
    json list = json::array();
    for (const auto& c : m_containers) {
      list.push_back({{"Id", c["Id"]}, {"Names", {c["Name"]}}, {"Image", c["Config"]["Image"]}, {"State", "running"}});
    }
    return {200, list.dump()};
  }
  if (rest.starts_with("/containers/") && rest.ends_with("/json")) {
    return inspect(rest.substr(12, rest.size() - 12 - 5));
  }
  return {404, R"({"message":"page not found"})"};
}

FakeOllama::FakeOllama(const std::filesystem::path& socket)
    : m_server(socket, [this](const std::string& method, const std::string& path) -> FakeHttpServer::Reply {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(method + " " + path);
        if (path == "/api/version") {
          return {200, R"({"version":"0.6.4"})"};
        }
        if (path == "/api/ps") {
          return {200, m_ps};
        }
        if (path == "/api/generate" && method == "POST") {
          return {200, R"({"model":"m","response":"","done":true,"done_reason":"unload"})"};
        }
        return {404, R"({"error":"not found"})"};
      }) {}

void FakeOllama::set_ps(std::string body) {
  std::lock_guard lock(m_mutex);
  m_ps = std::move(body);
}

std::vector<std::string> FakeOllama::requests() const {
  std::lock_guard lock(m_mutex);
  return m_requests;
}

}  // namespace mw::test
