#include "actions/test_cgroup.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace mw::actions {

namespace {

using Clock = std::chrono::steady_clock;

constexpr long k_cgroup_magic = 0x27e0eb;     // CGROUP_SUPER_MAGIC
constexpr long k_cgroup2_magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

std::string errno_text(int err) {
  return std::strerror(err);
}

// What memwarden needs when the kernel says no.
std::string hint(int err) {
  if (err == EACCES || err == EPERM) {
    return " (test ram --no-docker makes a cgroup: run it as root, or use the container)";
  }
  if (err == EROFS) {
    return " (the cgroup file system is mounted read-only here: use the container)";
  }
  return "";
}

// Writes `value` to a cgroup file; errno or 0.
int write_value(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = n == static_cast<ssize_t>(value.size()) ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return err;
}

void sleep_ms(int ms) {
  ::poll(nullptr, 0, ms);
}

// A pipe end must not be 0, 1 or 2 (memwarden run with stdio closed): the child's dup2 onto the same number
// would keep FD_CLOEXEC set.
int above_stdio(int fd) {
  if (fd > 2) {
    return fd;
  }
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

// The steps of the child before exec; the first that fails is reported through the error pipe.
enum ChildStep : int { join_cgroup = 1, oom_score = 2, stdio = 3, exec_program = 4 };

[[noreturn]] void child_fail(int error_fd, int step, int err) {
  const std::array<int, 2> message{step, err};
  (void)!::write(error_fd, message.data(), sizeof message);
  ::_exit(127);
}

// Only async-signal-safe calls: memwarden may have other threads.
[[noreturn]] void child_main(pid_t parent, const char* procs_path, char* const* argv, int output_fd, int error_fd) {
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT}) {
    ::signal(sig, SIG_DFL);
  }
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) {
    ::_exit(127);  // memwarden is gone already
  }
  // Into the cgroup before anything is allocated: "<pid>" to its cgroup.procs.
  std::array<char, 24> digits{};
  std::size_t n = digits.size();
  for (auto pid = static_cast<unsigned long>(::getpid()); n > 0;) {
    digits[--n] = static_cast<char>('0' + pid % 10);
    pid /= 10;
    if (pid == 0) {
      break;
    }
  }
  int fd = ::open(procs_path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    child_fail(error_fd, join_cgroup, errno);
  }
  if (::write(fd, digits.data() + n, digits.size() - n) < 0) {
    child_fail(error_fd, join_cgroup, errno);
  }
  ::close(fd);
  fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, "1000", 4) != 4) {
    child_fail(error_fd, oom_score, errno);
  }
  ::close(fd);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(output_fd, STDOUT_FILENO) < 0 ||
      ::dup2(output_fd, STDERR_FILENO) < 0) {
    child_fail(error_fd, stdio, errno);
  }
  // Descriptors memwarden inherited without close-on-exec stay out of the helper (Linux 5.11+; older kernels
  // refuse the call, and memwarden's own descriptors are close-on-exec anyway).
  static_cast<void>(::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC));
  ::execv(argv[0], argv);
  child_fail(error_fd, exec_program, errno);
}

}  // namespace

Result<TestCgroup> TestCgroup::create(const TestCgroupPlan& plan) {
  struct statfs info {};
  if (::statfs(plan.parent.c_str(), &info) != 0) {
    const int err = errno;
    return fail(plan.parent, fmt::format("cannot use it for a test cgroup: {}", errno_text(err)), err);
  }
  if (info.f_type != k_cgroup_magic && info.f_type != k_cgroup2_magic) {
    return fail(plan.parent, "not on a cgroup file system: no test cgroup can be made there", ENOTSUP);
  }
  if (plan.enable_memory_in) {
    // The parent is not memwarden's (a systemd slice, the root): memwarden does not change it.
    return fail(*plan.enable_memory_in,
                "the memory controller is not enabled for the children of this cgroup, and memwarden does not "
                "change a cgroup it does not own: add +memory to that file (or delegate it), or run the test in a "
                "container (without --no-docker)",
                ENOTSUP);
  }
  // The name carries a random part: an existing directory is someone else's, never removed here.
  if (::mkdir(plan.directory.c_str(), 0755) != 0) {
    const int err = errno;
    return fail(plan.directory, fmt::format("cannot create the test cgroup: {}{}", errno_text(err), hint(err)), err);
  }
  TestCgroup cgroup(plan.directory);
  for (const auto& write : plan.limits) {
    const auto path = plan.directory + "/" + write.file;
    if (const int err = write_value(path, write.value);
        err != 0 && !(err == ENOENT && write.need == WriteNeed::if_present)) {
      return fail(path, fmt::format("cannot write {}: {}{}", write.value, errno_text(err), hint(err)), err);
    }
  }
  return cgroup;
}

TestCgroup::TestCgroup(TestCgroup&& other) noexcept : m_directory(std::exchange(other.m_directory, {})) {}

TestCgroup& TestCgroup::operator=(TestCgroup&& other) noexcept {
  if (this != &other) {
    (void)remove();
    m_directory = std::exchange(other.m_directory, {});
  }
  return *this;
}

TestCgroup::~TestCgroup() {
  (void)remove();
}

Expected<void, Error> TestCgroup::remove() {
  if (m_directory.empty()) {
    return {};
  }
  // An exited process may still be counted for a moment after it is reaped.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  for (;;) {
    if (::rmdir(m_directory.c_str()) == 0 || errno == ENOENT) {
      m_directory.clear();
      return {};
    }
    const int err = errno;
    if (err != EBUSY || Clock::now() >= deadline) {
      return fail(m_directory, fmt::format("cannot remove the test cgroup: {}", errno_text(err)), err);
    }
    sleep_ms(20);
  }
}

bool on_cgroup_file_system(const std::string& directory) {
  struct statfs info {};
  return ::statfs(directory.c_str(), &info) == 0 && (info.f_type == k_cgroup_magic || info.f_type == k_cgroup2_magic);
}

Expected<void, Error> remove_cgroup_directory(const std::string& directory) {
  if (::rmdir(directory.c_str()) != 0 && errno != ENOENT) {
    const int err = errno;
    return fail(directory, fmt::format("cannot remove it: {}", errno_text(err)), err);
  }
  return {};
}

Result<CgroupChild> CgroupChild::spawn(const std::string& cgroup_directory, const std::vector<std::string>& argv,
                                       std::size_t max_output) {
  if (argv.empty() || argv[0].empty() || argv[0].front() != '/') {
    return fail("test ram", "the helper must be named by an absolute path");
  }
  // Everything the child needs, made before fork: after it, only async-signal-safe calls.
  const std::string procs = cgroup_directory + "/cgroup.procs";
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) {
    if (a.find('\0') != std::string::npos) {
      return fail(argv[0], "an argument holds a NUL byte");
    }
    args.push_back(const_cast<char*>(a.c_str()));  // NOLINT: the exec interface is not const-correct
  }
  args.push_back(nullptr);
  std::array<int, 2> output{};
  std::array<int, 2> errors{};
  if (::pipe2(output.data(), O_CLOEXEC) != 0) {
    const int err = errno;
    return fail(argv[0], fmt::format("cannot create a pipe: {}", errno_text(err)), err);
  }
  if (::pipe2(errors.data(), O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(output[0]);
    ::close(output[1]);
    return fail(argv[0], fmt::format("cannot create a pipe: {}", errno_text(err)), err);
  }
  for (auto* fd : {&output[0], &output[1], &errors[0], &errors[1]}) {
    *fd = above_stdio(*fd);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    child_main(parent, procs.c_str(), args.data(), output[1], errors[1]);
  }
  const int fork_errno = errno;
  ::close(output[1]);
  ::close(errors[1]);
  if (pid < 0) {
    ::close(output[0]);
    ::close(errors[0]);
    return fail(argv[0], fmt::format("cannot fork: {}", errno_text(fork_errno)), fork_errno);
  }
  // The error pipe closes at exec (success) or carries the failed step.
  std::array<int, 2> message{};
  std::size_t got = 0;
  while (got < sizeof message) {
    const ssize_t n = ::read(errors[0], reinterpret_cast<char*>(message.data()) + got, sizeof message - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(errors[0]);
  CgroupChild child(pid, output[0], max_output);
  if (got == 0) {
    ::fcntl(output[0], F_SETFL, O_NONBLOCK);
    return child;
  }
  (void)child.wait_for(std::chrono::seconds(5));  // it _exits at once: reap it
  const int err = got == sizeof message ? message[1] : EIO;
  switch (got == sizeof message ? message[0] : 0) {
    case join_cgroup:
      return fail(procs, fmt::format("cannot put the helper into the test cgroup: {}{}", errno_text(err), hint(err)),
                  err);
    case oom_score:
      return fail("/proc/self/oom_score_adj", fmt::format("the helper cannot set it to 1000: {}", errno_text(err)),
                  err);
    case exec_program:
      return fail(argv[0], fmt::format("cannot run memwarden's allocation helper: {}", errno_text(err)), err);
    default:
      return fail(argv[0], fmt::format("the helper's process could not be set up: {}", errno_text(err)), err);
  }
}

CgroupChild::CgroupChild(CgroupChild&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)),
      m_output_fd(std::exchange(other.m_output_fd, -1)),
      m_max_output(other.m_max_output),
      m_output(std::move(other.m_output)) {}

CgroupChild::~CgroupChild() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    int status = 0;
    while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (m_output_fd >= 0) {
    ::close(m_output_fd);
  }
}

void CgroupChild::drain() {
  if (m_output_fd < 0) {
    return;
  }
  std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t n = ::read(m_output_fd, buffer.data(), buffer.size());
    if (n > 0) {
      const auto room = m_max_output - std::min(m_output.size(), m_max_output);
      m_output.append(buffer.data(), std::min(static_cast<std::size_t>(n), room));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0) {
      ::close(m_output_fd);
      m_output_fd = -1;
    }
    return;
  }
}

std::optional<ChildExit> CgroupChild::wait_for(std::chrono::milliseconds limit) {
  if (m_pid <= 0) {
    return ChildExit{};
  }
  const auto deadline = Clock::now() + limit;
  for (;;) {
    drain();
    int status = 0;
    const pid_t done = ::waitpid(m_pid, &status, WNOHANG);
    if (done == m_pid || (done < 0 && errno != EINTR)) {
      m_pid = -1;
      drain();
      ChildExit exit;
      if (done > 0 && WIFEXITED(status)) {
        exit.exit_code = WEXITSTATUS(status);
      } else if (done > 0 && WIFSIGNALED(status)) {
        exit.signal = WTERMSIG(status);
      }
      return exit;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return std::nullopt;
    }
    // Output wakes the poll; an exit is seen within 50 ms.
    pollfd p{m_output_fd, POLLIN, 0};
    ::poll(m_output_fd >= 0 ? &p : nullptr, m_output_fd >= 0 ? 1 : 0,
           static_cast<int>(std::min<std::int64_t>(left, 50)));
  }
}

void CgroupChild::signal(int signal_number) const {
  if (m_pid > 0) {
    ::kill(m_pid, signal_number);
  }
}

}  // namespace mw::actions
