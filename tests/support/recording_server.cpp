#include "recording_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string_view>

namespace mw::test {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

// Loopback socket bound to a kernel-chosen port; returns the fd and sets `port`.
int bind_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw std::runtime_error("socket() failed");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback TCP port");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

enum class Parse { complete, incomplete, bad };

// Decodes a chunked body starting at buffer[pos]; sets `end` past the last CRLF.
Parse dechunk(const std::string& buffer, std::size_t pos, std::string& body, std::size_t& end) {
  body.clear();
  for (;;) {
    const auto line_end = buffer.find("\r\n", pos);
    if (line_end == std::string::npos) {
      return Parse::incomplete;
    }
    std::size_t size = 0;
    try {
      size = std::stoul(buffer.substr(pos, line_end - pos), nullptr, 16);
    } catch (const std::exception&) {
      return Parse::bad;
    }
    pos = line_end + 2;
    if (size == 0) {
      if (buffer.compare(pos, 2, "\r\n") == 0) {
        end = pos + 2;
        return Parse::complete;
      }
      const auto trailers_end = buffer.find("\r\n\r\n", pos);
      if (trailers_end == std::string::npos) {
        return Parse::incomplete;
      }
      end = trailers_end + 4;
      return Parse::complete;
    }
    if (buffer.size() < pos + size + 2) {
      return Parse::incomplete;
    }
    body.append(buffer, pos, size);
    pos += size + 2;
  }
}

}  // namespace

std::optional<std::string> RecordedRequest::header(const std::string& name) const {
  const auto it = headers.find(lower(name));
  if (it == headers.end()) {
    return std::nullopt;
  }
  return it->second;
}

RecordingServer::RecordingServer() : RecordingServer(Reply{}) {}

RecordingServer::RecordingServer(Reply reply)
    : m_handler([reply = std::move(reply)](const RecordedRequest&) { return reply; }) {
  m_listen_fd = bind_loopback(m_port);
  if (::listen(m_listen_fd, 16) != 0) {
    ::close(m_listen_fd);
    throw std::runtime_error("listen() failed");
  }
  if (::pipe2(m_wake_pipe, O_CLOEXEC) != 0) {
    ::close(m_listen_fd);
    throw std::runtime_error("pipe2() failed");
  }
  m_thread = std::thread([this] { serve(); });
}

RecordingServer::~RecordingServer() {
  const char byte = 'x';
  (void)!::write(m_wake_pipe[1], &byte, 1);
  m_thread.join();
  ::close(m_listen_fd);
  ::close(m_wake_pipe[0]);
  ::close(m_wake_pipe[1]);
}

std::string RecordingServer::url() const {
  return "http://127.0.0.1:" + std::to_string(m_port);
}

void RecordingServer::set_reply(Reply reply) {
  set_handler([reply = std::move(reply)](const RecordedRequest&) { return reply; });
}

void RecordingServer::set_handler(Handler handler) {
  const std::lock_guard lock(m_mutex);
  m_handler = std::move(handler);
}

std::vector<RecordedRequest> RecordingServer::requests() const {
  const std::lock_guard lock(m_mutex);
  return m_requests;
}

std::size_t RecordingServer::request_count() const {
  const std::lock_guard lock(m_mutex);
  return m_requests.size();
}

bool RecordingServer::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(m_mutex);
  return m_changed.wait_for(lock, timeout, [&] { return m_requests.size() >= n; });
}

void RecordingServer::serve() {
  struct Connection {
    int fd;
    std::string buffer;
    bool sent_continue = false;
  };
  std::vector<Connection> connections;
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({m_wake_pipe[0], POLLIN, 0});
    fds.push_back({m_listen_fd, POLLIN, 0});
    for (const auto& c : connections) {
      fds.push_back({c.fd, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      continue;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      break;
    }
    // Connections first (indices shift when one is closed, so walk the poll results backwards).
    for (std::size_t i = connections.size(); i-- > 0;) {
      if (fds[i + 2].revents == 0) {
        continue;
      }
      auto& c = connections[i];
      char chunk[16384];
      const ssize_t n = ::read(c.fd, chunk, sizeof chunk);
      bool keep = n > 0;
      if (keep) {
        c.buffer.append(chunk, static_cast<std::size_t>(n));
        keep = handle(c.fd, c.buffer, c.sent_continue);
      }
      if (!keep) {
        ::close(c.fd);
        connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        connections.push_back(Connection{fd, {}, false});
      }
    }
  }
  for (const auto& c : connections) {
    ::close(c.fd);
  }
}

bool RecordingServer::handle(int fd, std::string& buffer, bool& sent_continue) {
  constexpr std::size_t k_max_head = 1U << 20;
  for (;;) {
    const auto head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      return buffer.size() <= k_max_head;
    }
    RecordedRequest req;
    const std::string_view head(buffer.data(), head_end);
    const auto line_end = std::min(head.find("\r\n"), head.size());
    const std::string_view request_line = head.substr(0, line_end);
    const auto sp1 = request_line.find(' ');
    const auto sp2 = request_line.find(' ', sp1 == std::string_view::npos ? 0 : sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) {
      write_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return false;
    }
    req.method = std::string(request_line.substr(0, sp1));
    req.path = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
    std::size_t pos = line_end;
    while (pos < head.size()) {
      pos += 2;  // the CRLF ending the previous line
      const auto next = std::min(head.find("\r\n", pos), head.size());
      const std::string_view line = head.substr(pos, next - pos);
      if (const auto colon = line.find(':'); colon != std::string_view::npos) {
        const std::string name = lower(trim(line.substr(0, colon)));
        const std::string value(trim(line.substr(colon + 1)));
        auto [it, inserted] = req.headers.emplace(name, value);
        if (!inserted) {
          it->second += ", " + value;
        }
      }
      pos = next;
    }
    const std::size_t body_start = head_end + 4;
    std::size_t request_end = body_start;
    Parse state = Parse::complete;
    if (lower(req.header("transfer-encoding").value_or("")).find("chunked") != std::string::npos) {
      state = dechunk(buffer, body_start, req.body, request_end);
    } else if (const auto length = req.header("content-length")) {
      std::size_t n = 0;
      try {
        n = std::stoul(*length);
      } catch (const std::exception&) {
        state = Parse::bad;
      }
      if (state != Parse::bad) {
        if (buffer.size() < body_start + n) {
          state = Parse::incomplete;
        } else {
          req.body = buffer.substr(body_start, n);
          request_end = body_start + n;
        }
      }
    }
    if (state == Parse::bad) {
      write_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return false;
    }
    if (state == Parse::incomplete) {
      if (!sent_continue && lower(req.header("expect").value_or("")) == "100-continue") {
        write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        sent_continue = true;
      }
      return true;
    }
    buffer.erase(0, request_end);
    sent_continue = false;
    const bool close_after = lower(req.header("connection").value_or("")) == "close";

    Handler handler;
    {
      const std::lock_guard lock(m_mutex);
      handler = m_handler;
    }
    const Reply reply = handler(req);
    {
      const std::lock_guard lock(m_mutex);
      m_requests.push_back(std::move(req));
    }
    m_changed.notify_all();

    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reason(reply.status) + "\r\n";
    if (reply.status != 204) {
      out += "Content-Type: " + reply.content_type + "\r\n";
    }
    out += "Content-Length: " + std::to_string(reply.status == 204 ? 0 : reply.body.size()) + "\r\n";
    out += close_after ? "Connection: close\r\n\r\n" : "\r\n";
    if (reply.status != 204) {
      out += reply.body;
    }
    write_all(fd, out);
    if (close_after) {
      return false;
    }
  }
}

ClosedPort::ClosedPort() {
  m_fd = bind_loopback(m_port);
}

ClosedPort::~ClosedPort() {
  ::close(m_fd);
}

std::string ClosedPort::url() const {
  return "http://127.0.0.1:" + std::to_string(m_port);
}

}  // namespace mw::test
