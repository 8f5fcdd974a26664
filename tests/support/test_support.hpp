// Helpers shared by the unit and integration tests.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"

namespace mw::test {

// A clock that only moves when told to: sleep_until jumps there at once and
// then runs the hook (tests use it to change fixture files between samples).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Timestamp start = timestamp_from_ms(1'000'000)) : m_now(start) {}
  [[nodiscard]] Timestamp now() const override { return m_now; }
  void sleep_until(Timestamp until) override {
    if (until > m_now) {
      m_now = until;
    }
    if (m_on_wake) {
      m_on_wake(m_now);
    }
  }
  void advance(Duration d) { m_now += d; }
  void on_wake(std::function<void(Timestamp)> hook) { m_on_wake = std::move(hook); }

 private:
  Timestamp m_now;
  std::function<void(Timestamp)> m_on_wake;
};

// A fresh directory under the system temp dir, removed on destruction unless
// the test failed (then its path is printed so it can be inspected).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
  // Writes `content` to path()/relative, creating parent directories.
  void write(const std::filesystem::path& relative, std::string_view content) const;

 private:
  std::filesystem::path m_path;
};

// Copies a checked-in fixture tree (tests/fixtures/<relative>) into a TempDir so a test can modify it.
void copy_fixture(const std::string& relative, const TempDir& into);
[[nodiscard]] std::filesystem::path fixture_path(const std::string& relative);
[[nodiscard]] std::string read_fixture(const std::string& relative);

// Runs a program (no shell) and captures its output.
struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
[[nodiscard]] ProcessResult run_process(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& extra_env = {});

// A process's resident memory (VmRSS in /proc/<pid>/status); 0 when it cannot be read. Exact, where the host's
// MemAvailable lags and moves with whatever else runs.
[[nodiscard]] std::uint64_t resident_bytes(int pid);

// A program running in the background (no shell), its output in files; killed on destruction.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  [[nodiscard]] int pid() const { return m_pid; }
  void signal(int sig) const;
  // Waits for the exit and returns the exit code (128 + signal when killed).
  int wait();
  [[nodiscard]] std::string output() const;  // stdout and stderr so far

 private:
  TempDir m_dir;
  int m_pid = -1;
  bool m_reaped = false;
  int m_status = 0;
};

// The next connection accepted on `listen_fd`, or nullopt once `wake_fd` is readable (the server stops).
// Interrupted waits and failed accepts are retried.
[[nodiscard]] std::optional<int> accept_or_stop(int listen_fd, int wake_fd);

// A tiny HTTP server on a Unix socket, in a thread, for testing clients against
// answers a real service might give: canned JSON, garbage, silence.
class FakeHttpServer {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    bool hang = false;  // accept and read, never answer
    bool raw = false;   // send body as-is, not as an HTTP response
  };
  using Handler = std::function<Reply(const std::string& method, const std::string& path)>;

  FakeHttpServer(std::filesystem::path socket_path, Handler handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  [[nodiscard]] std::string address() const { return "unix://" + m_socket_path.string(); }
  [[nodiscard]] int requests() const { return m_requests.load(); }

 private:
  void serve();

  std::filesystem::path m_socket_path;
  Handler m_handler;
  int m_listen_fd = -1;
  int m_wake_pipe[2] = {-1, -1};
  std::atomic<int> m_requests{0};
  std::thread m_thread;
};

}  // namespace mw::test
