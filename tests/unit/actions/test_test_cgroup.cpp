// test ram --no-docker's world-changing half, without a cgroup file system: a test cgroup is refused anywhere
// else, and the child joins the directory's cgroup.procs (here a plain file) and runs its program with
// oom_score_adj 1000.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "actions/test_cgroup.hpp"
#include "test_support.hpp"

namespace mw::actions {
namespace {

using mw::test::TempDir;
using namespace std::chrono_literals;

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(TestCgroupAction, RefusesAParentThatIsNotACgroupFileSystem) {
  TempDir dir;
  TestCgroupPlan plan;
  plan.parent = dir.path().string();
  plan.directory = (dir.path() / "memwarden-test-1-0").string();
  plan.limits = {{"memory.limit_in_bytes", "1"}};
  const auto cgroup = TestCgroup::create(plan);
  ASSERT_FALSE(cgroup);
  EXPECT_EQ(cgroup.error().source, dir.path().string());
  EXPECT_NE(cgroup.error().message.find("not on a cgroup file system"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(plan.directory)) << "nothing made";

  plan.parent = (dir.path() / "absent").string();
  EXPECT_FALSE(TestCgroup::create(plan));
}

TEST(TestCgroupAction, TheChildJoinsTheCgroupBeforeItRunsTheProgram) {
  TempDir dir;
  dir.write("cgroup.procs", "");
  auto child = CgroupChild::spawn(dir.path().string(), {"/bin/cat", "/proc/self/oom_score_adj"}, 1024);
  ASSERT_TRUE(child) << child.error().line();
  const auto pid = child->pid();
  const auto exit = child->wait_for(30s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(child->output(), "1000\n") << "the kernel's first choice";
  EXPECT_EQ(read(dir.path() / "cgroup.procs"), std::to_string(pid)) << "its own pid, written before exec";
}

TEST(TestCgroupAction, OutputIsCappedAndTheWaitIsBounded) {
  TempDir dir;
  dir.write("cgroup.procs", "");
  auto child = CgroupChild::spawn(dir.path().string(), {"/bin/cat", "/proc/self/status"}, 8);
  ASSERT_TRUE(child) << child.error().line();
  ASSERT_TRUE(child->wait_for(30s));
  EXPECT_EQ(child->output().size(), 8U);

  auto sleeper = CgroupChild::spawn(dir.path().string(), {"/bin/sleep", "30"}, 64);
  ASSERT_TRUE(sleeper) << sleeper.error().line();
  EXPECT_FALSE(sleeper->wait_for(100ms)) << "still running";
  sleeper->signal(SIGTERM);
  const auto exit = sleeper->wait_for(30s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_EQ(exit->exit_code, std::nullopt);
}

TEST(TestCgroupAction, FailuresBeforeExecSayWhichStep) {
  TempDir dir;
  auto child = CgroupChild::spawn((dir.path() / "gone").string(), {"/bin/true"}, 64);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().source, (dir.path() / "gone/cgroup.procs").string());
  EXPECT_EQ(child.error().code, ENOENT);

  dir.write("cgroup.procs", "");
  const auto missing = CgroupChild::spawn(dir.path().string(), {(dir.path() / "no-such-helper").string()}, 64);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find("cannot run"), std::string::npos) << missing.error().line();

  EXPECT_FALSE(CgroupChild::spawn(dir.path().string(), {"relative"}, 64)) << "an absolute path only";
}

}  // namespace
}  // namespace mw::actions
