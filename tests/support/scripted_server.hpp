// A Unix-socket HTTP server for tests whose answers each test writes byte for byte, in pieces (HttpClient's
// framing, streamed answers arriving a piece at a time). No gtest in its API.
#pragma once

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http.hpp"
#include "test_support.hpp"

namespace mw::test {

// The endpoint of a Unix socket a test server listens on.
inline adapters::Endpoint unix_endpoint(const std::filesystem::path& socket) {
  return *adapters::parse_endpoint("unix://" + socket.string(), "t");
}

// A Unix-socket server whose answers each test writes byte for byte, in pieces: it writes a piece, waits
// until the client has read it (the socket's send queue is empty), then writes the next, so the client
// sees every piece on its own. It serves one connection at a time and counts them.
class ScriptedServer {
 public:
  struct Answer {
    std::vector<std::string> pieces;  // nothing: close without answering
    bool close_after = false;
  };
  // The answer to a request (its head and body as sent), given which connection (1-based) it came on.
  using Script = std::function<Answer(int connection, const std::string& request)>;

  ScriptedServer(std::filesystem::path socket_path, Script script)
      : m_path(std::move(socket_path)), m_script(std::move(script)) {
    m_listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, m_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_listen_fd, 8) != 0 ||
        ::pipe2(m_wake, O_CLOEXEC) != 0) {
      throw std::runtime_error("cannot listen on " + m_path.string());
    }
    m_thread = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    (void)!::write(m_wake[1], "x", 1);
    m_thread.join();
    ::close(m_listen_fd);
    ::close(m_wake[0]);
    ::close(m_wake[1]);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  [[nodiscard]] adapters::Endpoint endpoint() const { return unix_endpoint(m_path); }
  [[nodiscard]] int accepts() const { return m_accepts.load(); }
  [[nodiscard]] std::vector<std::string> requests() const {
    std::lock_guard lock(m_mutex);
    return m_requests;
  }

 private:
  // False when the server is told to stop.
  bool wait_readable(int fd) const {
    pollfd pf[2] = {{fd, POLLIN, 0}, {m_wake[0], POLLIN, 0}};
    return ::poll(pf, 2, -1) > 0 && (pf[1].revents & POLLIN) == 0;
  }

  // Waits (up to a deadline) until the client has read everything written to fd.
  void wait_drained(int fd) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int queued = 1;
    while (::ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0 && std::chrono::steady_clock::now() < deadline) {
      pollfd wake{m_wake[0], POLLIN, 0};
      if (::poll(&wake, 1, 1) != 0) {
        return;
      }
    }
  }

  void serve() {
    while (wait_readable(m_listen_fd)) {
      const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        continue;
      }
      const int connection = ++m_accepts;
      std::string buffer;
      for (bool open = true; open;) {
        const auto end = buffer.find("\r\n\r\n");
        std::size_t body = 0;
        if (const auto cl = buffer.find("Content-Length: "); end != std::string::npos && cl < end) {
          body = std::stoul(buffer.substr(cl + 16));
        }
        if (end == std::string::npos || buffer.size() < end + 4 + body) {
          char chunk[4096];
          const ssize_t n = wait_readable(fd) ? ::read(fd, chunk, sizeof chunk) : 0;
          if (n <= 0) {
            break;
          }
          buffer.append(chunk, static_cast<std::size_t>(n));
          continue;
        }
        const std::string request = buffer.substr(0, end + 4 + body);
        buffer.erase(0, end + 4 + body);
        {
          std::lock_guard lock(m_mutex);
          m_requests.push_back(request);
        }
        const Answer answer = m_script(connection, request);
        for (const auto& piece : answer.pieces) {
          if (::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(piece.size())) {
            break;
          }
          wait_drained(fd);
        }
        open = !answer.pieces.empty() && !answer.close_after;
      }
      ::close(fd);
    }
  }

  std::filesystem::path m_path;
  Script m_script;
  int m_listen_fd = -1;
  int m_wake[2] = {-1, -1};
  std::atomic<int> m_accepts{0};
  mutable std::mutex m_mutex;
  std::vector<std::string> m_requests;
  std::thread m_thread;
};

}  // namespace mw::test
