// `memwarden test ram --no-docker` (issue 14): what changes the world. A transient cgroup made from a plan
// (core/test_cgroup.hpp) and always removed again, and the helper run in it as a child process: forked, moved into
// the cgroup before it allocates anything, then exec'd with an argv vector (no shell).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/test_cgroup.hpp"

namespace mw::actions {

// One size's cgroup. Removed when it goes out of scope (after its process is gone), also on errors.
class TestCgroup {
 public:
  // Refuses a parent that is not on a cgroup file system; enables the memory controller in the parent when the
  // plan says; creates the directory and writes the limits (a failure removes the directory again). The error
  // says why in one line: EACCES, EPERM and EROFS (not root, a read-only cgroup file system) name what is needed.
  [[nodiscard]] static Result<TestCgroup> create(const TestCgroupPlan& plan);

  TestCgroup(TestCgroup&& other) noexcept;
  TestCgroup& operator=(TestCgroup&& other) noexcept;
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  ~TestCgroup();

  [[nodiscard]] const std::string& directory() const { return m_directory; }
  // rmdir, retried for up to two seconds while the kernel still counts an exited process in it (EBUSY); a
  // directory that is already gone is removed.
  [[nodiscard]] Expected<void, Error> remove();

 private:
  explicit TestCgroup(std::string directory) : m_directory(std::move(directory)) {}
  std::string m_directory;  // "" once removed or moved from
};

// rmdir of a test cgroup left by a memwarden that was killed: the kernel refuses one that still holds a process
// (EBUSY, the error).
[[nodiscard]] Expected<void, Error> remove_cgroup_directory(const std::string& directory);
// Whether `directory` is on a cgroup (v1 or v2) file system: nothing is swept or made anywhere else.
[[nodiscard]] bool on_cgroup_file_system(const std::string& directory);

struct ChildExit {
  std::optional<int> exit_code;  // it exited
  std::optional<int> signal;     // a signal ended it
};

// A program run as a child in a cgroup: the child resets its signals, leads a process group of its own (a
// terminal's Ctrl-C reaches memwarden, which decides), asks for SIGTERM should memwarden die, writes its pid to
// the cgroup's cgroup.procs and 1000 to its oom_score_adj, and execs argv[0] with argv. stdin is /dev/null;
// stdout and stderr come back through one pipe, the first `max_output` bytes kept.
class CgroupChild {
 public:
  [[nodiscard]] static Result<CgroupChild> spawn(const std::string& cgroup_directory,
                                                 const std::vector<std::string>& argv, std::size_t max_output);

  CgroupChild(CgroupChild&& other) noexcept;
  CgroupChild& operator=(CgroupChild&&) = delete;
  CgroupChild(const CgroupChild&) = delete;
  CgroupChild& operator=(const CgroupChild&) = delete;
  // A child still running gets SIGKILL and is reaped.
  ~CgroupChild();

  [[nodiscard]] pid_t pid() const { return m_pid; }
  // Waits up to `limit` for the child to exit, reading its output meanwhile: how it ended (it is reaped), or
  // nullopt while it runs.
  [[nodiscard]] std::optional<ChildExit> wait_for(std::chrono::milliseconds limit);
  // To the child (not once it is reaped).
  void signal(int signal_number) const;
  [[nodiscard]] const std::string& output() const { return m_output; }

 private:
  CgroupChild(pid_t pid, int output_fd, std::size_t max_output)
      : m_pid(pid), m_output_fd(output_fd), m_max_output(max_output) {}
  void drain();

  pid_t m_pid = -1;  // -1 once reaped
  int m_output_fd = -1;
  std::size_t m_max_output = 0;
  std::string m_output;
};

}  // namespace mw::actions
