#include "actions/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace mw::actions {

namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd = -1) : m_fd(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const { return m_fd; }
  void reset(int fd = -1) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = fd;
  }

 private:
  int m_fd;
};

std::string errno_text(int err) {
  return std::strerror(err);
}

// A pipe end must not be 0, 1 or 2: when memwarden runs with stdio closed, pipe2() may hand those out and
// the child's dup2 onto the same number would keep FD_CLOEXEC set.
[[nodiscard]] int above_stdio(int fd) {
  if (fd > 2) {
    return fd;
  }
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

// The spawn attributes and file actions, destroyed on every path.
class SpawnSetup {
 public:
  SpawnSetup() {
    ::posix_spawn_file_actions_init(&m_actions);
    ::posix_spawnattr_init(&m_attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&m_actions);
    ::posix_spawnattr_destroy(&m_attr);
  }

  // stdin from /dev/null, stdout and stderr into the pipe; default signal dispositions, nothing blocked, and
  // a process group of its own so a time-out reaches the program's children too.
  [[nodiscard]] int prepare(int output_fd) {
    sigset_t none;
    sigset_t all;
    ::sigemptyset(&none);
    ::sigfillset(&all);
    const auto flags = static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    for (const int rc : {::posix_spawn_file_actions_addopen(&m_actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0),
                         ::posix_spawn_file_actions_adddup2(&m_actions, output_fd, STDOUT_FILENO),
                         ::posix_spawn_file_actions_adddup2(&m_actions, output_fd, STDERR_FILENO),
                         ::posix_spawnattr_setsigmask(&m_attr, &none), ::posix_spawnattr_setsigdefault(&m_attr, &all),
                         ::posix_spawnattr_setpgroup(&m_attr, 0), ::posix_spawnattr_setflags(&m_attr, flags)}) {
      if (rc != 0) {
        return rc;
      }
    }
    return 0;
  }

  [[nodiscard]] const posix_spawn_file_actions_t* actions() const { return &m_actions; }
  [[nodiscard]] const posix_spawnattr_t* attr() const { return &m_attr; }

 private:
  posix_spawn_file_actions_t m_actions{};
  posix_spawnattr_t m_attr{};
};

// Reads what the pipe holds now (it is non-blocking), keeping the first k_max_command_output bytes and
// discarding the rest so the program never blocks on a full pipe. Returns true at end of file.
bool drain(int fd, std::string& output) {
  std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      const auto got = static_cast<std::size_t>(n);
      const auto room = k_max_command_output - std::min(output.size(), k_max_command_output);
      output.append(buffer.data(), std::min(got, room));
      continue;
    }
    if (n == 0) {
      return true;
    }
    if (errno == EINTR) {
      continue;
    }
    return false;  // EAGAIN: nothing more for now
  }
}

enum class WaitMode { poll, block };

// waitpid: done with the status once the child is reaped (or with errno when waiting failed).
struct Reaped {
  bool done = false;
  int status = 0;
  int error = 0;
};

Reaped reap(pid_t pid, WaitMode mode) {
  for (;;) {
    int status = 0;
    const pid_t got = ::waitpid(pid, &status, mode == WaitMode::poll ? WNOHANG : 0);
    if (got == pid) {
      return Reaped{true, status, 0};
    }
    if (got == 0) {
      return Reaped{};
    }
    if (errno != EINTR) {
      return Reaped{true, 0, errno};
    }
  }
}

// True once the child has exited, without reaping it: its pid (and so its process group id) stays
// reserved, so signalling the group afterwards cannot hit an unrelated process.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

void signal_group(pid_t pid, int signal) {
  ::kill(-pid, signal);
  ::kill(pid, signal);  // in case the program left its group
}

void sleep_ms(int ms) {
  ::poll(nullptr, 0, ms);
}

int remaining_ms(Clock::time_point deadline, int cap) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, cap));
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

}  // namespace

CommandRunner::~CommandRunner() = default;

Result<CommandResult> ProcessRunner::run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  if (argv.empty() || argv[0].empty()) {
    return fail("command", "no program to run: argv is empty");
  }
  const std::string& program = argv[0];
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos) {
      return fail(program, fmt::format("argument {} holds a NUL byte and cannot be passed to a program", i));
    }
    args.push_back(const_cast<char*>(argv[i].c_str()));  // NOLINT: the exec interface is not const-correct
  }
  args.push_back(nullptr);

  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    const int err = errno;
    return fail(program, fmt::format("cannot create the output pipe: {}", errno_text(err)), err);
  }
  Fd read_end(above_stdio(fds[0]));
  Fd write_end(above_stdio(fds[1]));
  if (read_end.get() < 0 || write_end.get() < 0 || ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) {
    const int err = errno;
    return fail(program, fmt::format("cannot set up the output pipe: {}", errno_text(err)), err);
  }

  pid_t pid = -1;
  {
    SpawnSetup setup;
    if (const int rc = setup.prepare(write_end.get()); rc != 0) {
      return fail(program, fmt::format("cannot prepare to run it: {}", errno_text(rc)), rc);
    }
    const int rc = ::posix_spawnp(&pid, program.c_str(), setup.actions(), setup.attr(), args.data(), environ);
    if (rc != 0) {
      return fail(program, fmt::format("cannot run it: {}", errno_text(rc)), rc);
    }
  }
  write_end.reset();  // so the pipe reaches end of file when the program (and its children) close it

  CommandResult result;
  const auto deadline = Clock::now() + timeout;
  bool eof = false;
  Reaped reaped;
  for (;;) {
    reaped = reap(pid, WaitMode::poll);
    if (reaped.done) {
      // What the program wrote before exiting is in the pipe; children it left running may keep the pipe
      // open, so do not wait for end of file.
      drain(read_end.get(), result.output);
      break;
    }
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      signal_group(pid, SIGTERM);
      const auto grace_end = Clock::now() + m_kill_grace;
      while (!has_exited(pid) && Clock::now() < grace_end) {
        if (!eof) {
          eof = drain(read_end.get(), result.output);
        }
        sleep_ms(remaining_ms(grace_end, 5));
      }
      signal_group(pid, SIGKILL);  // the leader is unreaped, so its pid still names this group
      reaped = reap(pid, WaitMode::block);
      drain(read_end.get(), result.output);
      break;
    }
    // Wake on output, on end of file, or every few ms to notice an exit whose children hold the pipe.
    const int tick = remaining_ms(deadline, eof ? 5 : 25);
    if (eof) {
      sleep_ms(tick);
      continue;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    if (::poll(&pfd, 1, tick) > 0) {
      eof = drain(read_end.get(), result.output);
    }
  }
  if (reaped.error != 0) {
    return fail(program, fmt::format("cannot wait for it (pid {}): {}", pid, errno_text(reaped.error)), reaped.error);
  }
  result.exit_code = exit_code_of(reaped.status);
  return result;
}

void RecordingRunner::push_result(CommandResult result) {
  m_script.emplace_back(std::move(result));
}

void RecordingRunner::push_error(Error error) {
  m_script.emplace_back(unexpected(std::move(error)));
}

Result<CommandResult> RecordingRunner::run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  m_calls.push_back(Call{argv, timeout});
  if (m_script.empty()) {
    return CommandResult{};
  }
  auto next = std::move(m_script.front());
  m_script.pop_front();
  return next;
}

Result<std::vector<std::string>> systemctl_restart_argv(std::string_view unit) {
  constexpr std::size_t k_max_unit = 256;
  const auto bad = [&](std::string_view why) {
    std::string shown;
    for (const char c : unit.substr(0, 80)) {
      shown += (c >= 0x20 && c < 0x7F) ? c : '?';
    }
    return fail("systemctl restart", fmt::format("invalid unit name '{}': {}", shown, why));
  };
  if (unit.empty()) {
    return bad("it is empty");
  }
  if (unit.size() > k_max_unit) {
    return bad(fmt::format("longer than {} characters", k_max_unit));
  }
  if (unit.front() == '-') {
    return bad("it starts with '-' and would read as an option");
  }
  for (std::size_t i = 0; i < unit.size(); ++i) {
    const char c = unit[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' ||
                    c == '_' || c == '.' || c == '@' || c == '-';
    if (!ok) {
      return bad(fmt::format("character {} is not allowed (only A-Z a-z 0-9 : _ . @ -)", i + 1));
    }
  }
  return std::vector<std::string>{"systemctl", "restart", "--", std::string(unit)};
}

}  // namespace mw::actions
