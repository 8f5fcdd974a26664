// Running programs for actions (e.g. `systemctl restart ollama.service`): an argv vector handed to
// posix_spawnp as given. There is no shell and no command string anywhere, so nothing in an argument
// (spaces, quotes, $(...), ;) is ever interpreted.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace mw::actions {

inline constexpr std::size_t k_max_command_output = 64 * 1024;

struct CommandResult {
  int exit_code = 0;   // the exit status; 128 + signal number when a signal ended the program
  std::string output;  // stdout and stderr interleaved, the first k_max_command_output bytes
  bool timed_out = false;
};

class CommandRunner {
 public:
  CommandRunner() = default;
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;
  virtual ~CommandRunner();

  // Runs argv[0] (looked up in PATH unless it holds a '/') with argv as its arguments. A program that
  // ran gives a CommandResult whatever its exit status; an Error means it could not be run at all.
  [[nodiscard]] virtual Result<CommandResult> run(const std::vector<std::string>& argv,
                                                  std::chrono::milliseconds timeout) = 0;
};

// Spawns real processes: stdin is /dev/null, stdout and stderr go to one pipe, signals are reset to their
// defaults, and the program leads its own process group. On time-out the group gets SIGTERM, then
// SIGKILL after `kill_grace`, and is reaped before run() returns.
class ProcessRunner final : public CommandRunner {
 public:
  explicit ProcessRunner(std::chrono::milliseconds kill_grace = std::chrono::seconds(2)) : m_kill_grace(kill_grace) {}

  [[nodiscard]] Result<CommandResult> run(const std::vector<std::string>& argv,
                                          std::chrono::milliseconds timeout) override;

 private:
  std::chrono::milliseconds m_kill_grace;
};

// Runs nothing: records each call and answers from a script, for tests and dry runs.
class RecordingRunner final : public CommandRunner {
 public:
  struct Call {
    std::vector<std::string> argv;
    std::chrono::milliseconds timeout{0};
  };

  // Answers for the next calls, in order; once they are used up every call gets exit 0 and no output.
  void push_result(CommandResult result);
  void push_error(Error error);

  [[nodiscard]] Result<CommandResult> run(const std::vector<std::string>& argv,
                                          std::chrono::milliseconds timeout) override;

  [[nodiscard]] const std::vector<Call>& calls() const { return m_calls; }

 private:
  std::vector<Call> m_calls;
  std::deque<Result<CommandResult>> m_script;
};

// {"systemctl", "restart", "--", unit} after checking the unit name: 1 to 256 characters from
// [A-Za-z0-9:_.@-], not starting with '-' (the "--" guards that too).
[[nodiscard]] Result<std::vector<std::string>> systemctl_restart_argv(std::string_view unit);

}  // namespace mw::actions
