#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "actions/command.hpp"

using namespace mw;
using namespace mw::actions;
using namespace std::chrono_literals;

TEST(Command, EchoCapturesOutput) {
  ProcessRunner runner;
  const auto r = runner.run({"/bin/echo", "hello", "world"}, 5s);
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "hello world\n");
  EXPECT_FALSE(r->timed_out);
}

TEST(Command, ExitStatusAndStderr) {
  ProcessRunner runner;
  const auto r = runner.run({"/bin/sh", "-c", "exit 3"}, 5s);
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);

  const auto both = runner.run({"/bin/sh", "-c", "echo out; echo err >&2; exit 1"}, 5s);
  ASSERT_TRUE(both) << both.error().line();
  EXPECT_EQ(both->exit_code, 1);
  EXPECT_EQ(both->output, "out\nerr\n");
}

TEST(Command, PathLookupAndStdinIsDevNull) {
  ProcessRunner runner;
  const auto r = runner.run({"cat"}, 5s);  // found through PATH; reads /dev/null, so ends at once
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "");
}

TEST(Command, ArgumentsArriveVerbatim) {
  const std::vector<std::string> args = {"two words",    "'single'", "\"double\"", "$(touch /tmp/mw-pwned)",
                                         "`id`",         "a;b|c&d",  "*",          "$HOME",
                                         "--not-an-opt", "",         "\\n"};
  std::vector<std::string> argv = {"/bin/printf", "%s\\n"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessRunner runner;
  const auto r = runner.run(argv, 5s);
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->exit_code, 0);
  std::string expected;
  for (const auto& a : args) {
    expected += a + "\n";
  }
  EXPECT_EQ(r->output, expected);
}

TEST(Command, TimeoutKillsTheProgram) {
  ProcessRunner runner;
  const auto start = std::chrono::steady_clock::now();
  const auto r = runner.run({"/bin/sleep", "10"}, 200ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + 15) << "ended by SIGTERM";
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 3s);
}

TEST(Command, TimeoutEscalatesToSigkillForTheWholeGroup) {
  ProcessRunner runner(100ms);
  const auto start = std::chrono::steady_clock::now();
  // The shell ignores SIGTERM, and so does its sleep child, which also holds the output pipe.
  const auto r = runner.run({"/bin/sh", "-c", "trap '' TERM; echo started; sleep 10; echo never"}, 200ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + 9) << "ended by SIGKILL";
  EXPECT_EQ(r->output, "started\n");
  EXPECT_LT(took, 3s);
}

TEST(Command, ExitedProgramWithChildHoldingThePipe) {
  ProcessRunner runner;
  const auto start = std::chrono::steady_clock::now();
  // The shell exits at once; its background sleep keeps stdout open. run() returns on the exit, not on EOF.
  const auto r = runner.run({"/bin/sh", "-c", "sleep 3 & echo done"}, 5s);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "done\n");
  EXPECT_LT(took, 2s);
}

TEST(Command, OutputIsCapped) {
  ProcessRunner runner;
  // 200 KiB of output: the program must not block on a full pipe, and only the first 64 KiB is kept.
  const auto r = runner.run({"/bin/sh", "-c", "head -c 204800 /dev/zero | tr '\\0' x; echo; exit 0"}, 10s);
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output.size(), k_max_command_output);
  EXPECT_EQ(r->output.find_first_not_of('x'), std::string::npos);
}

TEST(Command, MissingProgramIsAClearError) {
  ProcessRunner runner;
  const auto r = runner.run({"memwarden-no-such-program", "--help"}, 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().source, "memwarden-no-such-program");
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_EQ(r.error().line(), "memwarden-no-such-program: cannot run it: No such file or directory");

  const auto absolute = runner.run({"/nonexistent/bin/tool"}, 5s);
  ASSERT_FALSE(absolute);
  EXPECT_EQ(absolute.error().source, "/nonexistent/bin/tool");
  EXPECT_EQ(absolute.error().code, ENOENT);

  const auto not_executable = runner.run({"/etc/passwd"}, 5s);
  ASSERT_FALSE(not_executable);
  EXPECT_EQ(not_executable.error().code, EACCES);
}

TEST(Command, RejectsEmptyArgvAndNulBytes) {
  ProcessRunner runner;
  EXPECT_FALSE(runner.run({}, 1s));
  EXPECT_FALSE(runner.run({""}, 1s));
  const auto nul = runner.run({"/bin/echo", std::string("a\0b", 3)}, 1s);
  ASSERT_FALSE(nul);
  EXPECT_NE(nul.error().message.find("NUL"), std::string::npos);
}

TEST(Command, RecordingRunnerRecordsAndAnswersFromTheScript) {
  RecordingRunner runner;
  runner.push_result(CommandResult{5, "unit failed\n", false});
  runner.push_error(Error{"systemctl", "cannot run it: No such file or directory", ENOENT});

  const auto first = runner.run({"systemctl", "restart", "--", "ollama.service"}, 30s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->exit_code, 5);
  EXPECT_EQ(first->output, "unit failed\n");

  const auto second = runner.run({"systemctl", "is-active", "ollama.service"}, 5s);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ENOENT);

  const auto third = runner.run({"true"}, 1s);
  ASSERT_TRUE(third) << "an empty script answers exit 0";
  EXPECT_EQ(third->exit_code, 0);
  EXPECT_EQ(third->output, "");
  EXPECT_FALSE(third->timed_out);

  ASSERT_EQ(runner.calls().size(), 3U);
  EXPECT_EQ(runner.calls()[0].argv, (std::vector<std::string>{"systemctl", "restart", "--", "ollama.service"}));
  EXPECT_EQ(runner.calls()[0].timeout, 30s);
  EXPECT_EQ(runner.calls()[1].argv[1], "is-active");
  EXPECT_EQ(runner.calls()[2].argv, std::vector<std::string>{"true"});
}

TEST(Command, RunnerIsUsableThroughTheInterface) {
  RecordingRunner recording;
  CommandRunner& runner = recording;
  EXPECT_TRUE(runner.run({"x"}, 1s));
  EXPECT_EQ(recording.calls().size(), 1U);
}

TEST(Systemctl, RestartArgvForValidUnits) {
  for (const char* unit : {"ollama.service", "ollama@gpu0.service", "my_app-2:x.service", "a"}) {
    const auto argv = systemctl_restart_argv(unit);
    ASSERT_TRUE(argv) << unit << ": " << argv.error().line();
    EXPECT_EQ(*argv, (std::vector<std::string>{"systemctl", "restart", "--", unit}));
  }
  EXPECT_TRUE(systemctl_restart_argv(std::string(256, 'a')));
}

TEST(Systemctl, RejectsBadUnitNames) {
  for (const std::string& unit :
       {std::string("--now"), std::string("-x.service"), std::string("a b"), std::string("x;rm -rf /"), std::string(""),
        std::string("a/b.service"), std::string("$(id).service"), std::string("o\nllama"), std::string(257, 'a'),
        std::string("ollama\0.service", 15)}) {
    const auto argv = systemctl_restart_argv(unit);
    ASSERT_FALSE(argv) << unit;
    EXPECT_EQ(argv.error().source, "systemctl restart");
    EXPECT_EQ(argv.error().message.rfind("invalid unit name '", 0), 0U) << argv.error().message;
  }
  EXPECT_EQ(systemctl_restart_argv("x;rm -rf /").error().message,
            "invalid unit name 'x;rm -rf /': character 2 is not allowed (only A-Z a-z 0-9 : _ . @ -)");
  EXPECT_EQ(systemctl_restart_argv("--now").error().message,
            "invalid unit name '--now': it starts with '-' and would read as an option");
  EXPECT_EQ(systemctl_restart_argv("").error().message, "invalid unit name '': it is empty");
}
