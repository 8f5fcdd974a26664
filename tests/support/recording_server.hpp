// A loopback TCP HTTP server for tests of webhook senders: it listens on
// 127.0.0.1 on a port the kernel picks, serves in a background thread, records
// every request and answers with a configurable status and body. Usable from
// unit and integration tests (no gtest in its API).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mw::test {

struct RecordedRequest {
  std::string method;                          // "POST"
  std::string path;                            // with the query: "/hooks/abc?x=1"
  std::map<std::string, std::string> headers;  // names lower-cased; repeated headers joined with ", "
  std::string body;                            // de-chunked when sent chunked

  // The header's value, or nullopt; `name` in any case.
  [[nodiscard]] std::optional<std::string> header(const std::string& name) const;
};

class RecordingServer {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
  };
  using Handler = std::function<Reply(const RecordedRequest&)>;

  // Answers every request with `reply` (200 "" by default) until told otherwise.
  // Throws std::runtime_error when it cannot listen.
  RecordingServer();
  explicit RecordingServer(Reply reply);
  ~RecordingServer();
  RecordingServer(const RecordingServer&) = delete;
  RecordingServer& operator=(const RecordingServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return m_port; }
  // "http://127.0.0.1:<port>"
  [[nodiscard]] std::string url() const;

  void set_reply(Reply reply);
  // Computes each answer from the request (called on the server thread); replaces set_reply.
  void set_handler(Handler handler);

  // A copy of the requests so far, oldest first.
  [[nodiscard]] std::vector<RecordedRequest> requests() const;
  [[nodiscard]] std::size_t request_count() const;
  // Waits until at least n requests have been recorded or the time-out passes; true when they have.
  [[nodiscard]] bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  void serve();
  // Parses whole requests off the front of `buffer`; writes the answers to fd. False: close the connection.
  bool handle(int fd, std::string& buffer, bool& sent_continue);

  int m_listen_fd = -1;
  int m_wake_pipe[2] = {-1, -1};
  std::uint16_t m_port = 0;
  mutable std::mutex m_mutex;
  mutable std::condition_variable m_changed;
  std::vector<RecordedRequest> m_requests;
  Handler m_handler;
  std::thread m_thread;
};

// A loopback TCP port that is bound but not listening, held for the object's lifetime:
// connecting to it is refused, and no other process can take the port meanwhile.
class ClosedPort {
 public:
  ClosedPort();  // throws std::runtime_error when it cannot bind
  ~ClosedPort();
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;

  [[nodiscard]] std::uint16_t port() const { return m_port; }
  [[nodiscard]] std::string url() const;  // "http://127.0.0.1:<port>"

 private:
  int m_fd = -1;
  std::uint16_t m_port = 0;
};

}  // namespace mw::test
