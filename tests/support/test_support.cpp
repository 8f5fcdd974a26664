#include "test_support.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace mw::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = fs::temp_directory_path() / ("mwtest-" + std::to_string(rd()));
    std::error_code ec;
    if (fs::create_directory(candidate, ec)) {
      m_path = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temp dir");
}

TempDir::~TempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info != nullptr && info->result() != nullptr && info->result()->Failed()) {
    std::fprintf(stderr, "test failed; its files are kept in %s\n", m_path.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(m_path, ec);
}

void TempDir::write(const fs::path& relative, std::string_view content) const {
  const auto full = m_path / relative;
  fs::create_directories(full.parent_path());
  std::ofstream out(full, std::ios::binary);
  out << content;
}

fs::path fixture_path(const std::string& relative) {
  return fs::path(MEMWARDEN_FIXTURES_DIR) / relative;
}

std::string read_fixture(const std::string& relative) {
  std::ifstream in(fixture_path(relative), std::ios::binary);
  if (!in) {
    throw std::runtime_error("missing fixture " + relative);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void copy_fixture(const std::string& relative, const TempDir& into) {
  fs::copy(fixture_path(relative), into.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

namespace {

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace

std::uint64_t resident_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::uint64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    env_storage.emplace_back(*e);
  }
  for (const auto& e : extra_env) {
    const auto key = e.substr(0, e.find('=') + 1);
    std::erase_if(env_storage, [&](const std::string& s) { return s.starts_with(key); });
    env_storage.push_back(e);
  }
  std::vector<char*> envp;
  for (auto& e : env_storage) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult result;
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    result.err = std::string("spawn failed: ") + std::strerror(rc);
    return result;
  }
  // stderr is small in practice; read stdout fully first, then stderr.
  std::thread err_reader([&] { result.err = drain(err_pipe[0]); });
  result.out = drain(out_pipe[0]);
  err_reader.join();
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const auto out = (m_dir.path() / "output").string();
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  m_pid = pid;
}

BackgroundProcess::~BackgroundProcess() {
  if (m_pid > 0 && !m_reaped) {
    ::kill(m_pid, SIGKILL);
    wait();
  }
}

void BackgroundProcess::signal(int sig) const {
  if (m_pid > 0 && !m_reaped) {
    ::kill(m_pid, sig);
  }
}

int BackgroundProcess::wait() {
  if (m_pid <= 0) {
    return -1;
  }
  if (!m_reaped) {
    while (::waitpid(m_pid, &m_status, 0) < 0 && errno == EINTR) {
    }
    m_reaped = true;
  }
  return WIFEXITED(m_status) ? WEXITSTATUS(m_status) : 128 + WTERMSIG(m_status);
}

std::string BackgroundProcess::output() const {
  std::ifstream in(m_dir.path() / "output", std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

FakeHttpServer::FakeHttpServer(fs::path socket_path, Handler handler)
    : m_socket_path(std::move(socket_path)), m_handler(std::move(handler)) {
  m_listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, m_socket_path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlink(m_socket_path.c_str());
  if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_listen_fd, 16) != 0) {
    throw std::runtime_error("cannot listen on " + m_socket_path.string());
  }
  if (::pipe2(m_wake_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  m_thread = std::thread([this] { serve(); });
}

FakeHttpServer::~FakeHttpServer() {
  const char byte = 'x';
  (void)!::write(m_wake_pipe[1], &byte, 1);
  m_thread.join();
  ::close(m_listen_fd);
  ::close(m_wake_pipe[0]);
  ::close(m_wake_pipe[1]);
  ::unlink(m_socket_path.c_str());
}

std::optional<int> accept_or_stop(int listen_fd, int wake_fd) {
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      continue;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      return std::nullopt;
    }
    if (const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC); fd >= 0) {
      return fd;
    }
  }
}

void FakeHttpServer::serve() {
  std::vector<int> hung;
  while (const auto accepted = accept_or_stop(m_listen_fd, m_wake_pipe[0])) {
    const int fd = *accepted;
    // Keep-alive: answer requests on this connection until the client closes it.
    std::string buffer;
    bool keep = true;
    while (keep) {
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
      const auto end = buffer.find("\r\n\r\n");
      if (end == std::string::npos) {
        continue;
      }
      // Requests in these tests carry no body we need; drop it by Content-Length.
      std::size_t body_len = 0;
      if (const auto cl = buffer.find("Content-Length: "); cl != std::string::npos && cl < end) {
        body_len = std::stoul(buffer.substr(cl + 16));
      }
      if (buffer.size() < end + 4 + body_len) {
        continue;
      }
      const auto sp1 = buffer.find(' ');
      const auto sp2 = buffer.find(' ', sp1 + 1);
      const auto method = buffer.substr(0, sp1);
      const auto path = buffer.substr(sp1 + 1, sp2 - sp1 - 1);
      buffer.erase(0, end + 4 + body_len);
      ++m_requests;
      const auto reply = m_handler(method, path);
      if (reply.hang) {
        hung.push_back(fd);
        keep = false;
        continue;
      }
      std::string out;
      if (reply.raw) {
        out = reply.body;
      } else {
        out = "HTTP/1.1 " + std::to_string(reply.status) +
              " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(reply.body.size()) +
              "\r\n\r\n" + reply.body;
      }
      (void)!::write(fd, out.data(), out.size());
      if (reply.raw) {
        keep = false;
      }
    }
    if (std::find(hung.begin(), hung.end(), fd) == hung.end()) {
      ::close(fd);
    }
  }
  for (int fd : hung) {
    ::close(fd);
  }
}

}  // namespace mw::test
