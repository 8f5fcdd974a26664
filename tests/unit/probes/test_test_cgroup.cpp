// test ram --no-docker reads where memwarden's cgroup is and what its parent allows, on fixture trees.
#include <gtest/gtest.h>

#include <algorithm>

#include "probes/test_cgroup.hpp"
#include "test_support.hpp"

namespace mw::probes {
namespace {

using mw::test::TempDir;

TEST(TestCgroupFacts, V1FromTheMemoryLineWithSwapAccounting) {
  TempDir root;
  root.write("proc/self/cgroup", "9:name=systemd:/\n4:memory:/process_api/52613d89\n1:cpu:/\n0::/\n");
  root.write("sys/fs/cgroup/memory/memory.usage_in_bytes", "1\n");
  root.write("sys/fs/cgroup/memory/process_api/memory.memsw.limit_in_bytes", "9223372036854771712\n");
  const auto facts = read_test_cgroup_facts(HostRoot(root.path()));
  ASSERT_TRUE(facts) << facts.error().line();
  EXPECT_EQ(facts->version, CgroupVersion::v1);
  EXPECT_EQ(facts->mount, (root.path() / "sys/fs/cgroup/memory").string());
  EXPECT_EQ(facts->own_path, "/process_api/52613d89");
  EXPECT_TRUE(facts->has_swap_file);
  const auto plan = plan_test_cgroup(*facts, 1 << 30, 5, 0);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->directory, (root.path() / "sys/fs/cgroup/memory/process_api/memwarden-test-5-0").string());
}

TEST(TestCgroupFacts, V2ReadsTheParentsControllersAndProcesses) {
  TempDir root;
  root.write("proc/self/cgroup", "0::/user.slice/session-3.scope\n");
  root.write("sys/fs/cgroup/cgroup.controllers", "cpu io memory pids\n");
  root.write("sys/fs/cgroup/user.slice/cgroup.type", "domain\n");
  root.write("sys/fs/cgroup/user.slice/cgroup.controllers", "cpu memory pids\n");
  root.write("sys/fs/cgroup/user.slice/cgroup.subtree_control", "cpu\n");
  root.write("sys/fs/cgroup/user.slice/cgroup.procs", "");
  auto facts = read_test_cgroup_facts(HostRoot(root.path()));
  ASSERT_TRUE(facts) << facts.error().line();
  EXPECT_EQ(facts->version, CgroupVersion::v2);
  EXPECT_EQ(facts->own_path, "/user.slice/session-3.scope");
  EXPECT_EQ(facts->parent_root, CgroupRoot::not_root);
  EXPECT_FALSE(facts->parent_has_processes);
  auto plan = plan_test_cgroup(*facts, 1 << 30, 5, 0);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->enable_memory_in, (root.path() / "sys/fs/cgroup/user.slice/cgroup.subtree_control").string());

  root.write("sys/fs/cgroup/user.slice/cgroup.procs", "812\n");  // now it holds a process of its own
  facts = read_test_cgroup_facts(HostRoot(root.path()));
  ASSERT_TRUE(facts) << facts.error().line();
  EXPECT_TRUE(facts->parent_has_processes);
  EXPECT_FALSE(plan_test_cgroup(*facts, 1 << 30, 5, 0));
}

TEST(TestCgroupFacts, V2RootHasNoCgroupType) {
  TempDir root;
  root.write("proc/self/cgroup", "0::/init.scope\n");
  root.write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  root.write("sys/fs/cgroup/cgroup.subtree_control", "cpu memory\n");
  root.write("sys/fs/cgroup/cgroup.procs", "1\n2\n");
  const auto facts = read_test_cgroup_facts(HostRoot(root.path()));
  ASSERT_TRUE(facts) << facts.error().line();
  EXPECT_EQ(facts->parent_root, CgroupRoot::root);
  const auto plan = plan_test_cgroup(*facts, 1 << 30, 5, 0);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->enable_memory_in, std::nullopt);
}

TEST(TestCgroupFacts, MissingFilesAreOneLineNamingThem) {
  TempDir root;
  root.write("sys/fs/cgroup/cgroup.controllers", "memory\n");
  auto facts = read_test_cgroup_facts(HostRoot(root.path()));
  ASSERT_FALSE(facts);
  EXPECT_EQ(facts.error().source, (root.path() / "proc/self/cgroup").string());
  root.write("proc/self/cgroup", "4:memory:/x\n");  // a v1 line on a v2 host: no 0:: line
  facts = read_test_cgroup_facts(HostRoot(root.path()));
  ASSERT_FALSE(facts);
  EXPECT_NE(facts.error().message.find("0::"), std::string::npos) << facts.error().line();
  root.write("proc/self/cgroup", "0::/gone/here\n");
  facts = read_test_cgroup_facts(HostRoot(root.path()));
  ASSERT_FALSE(facts) << "the parent is not there";
  EXPECT_EQ(facts.error().source, (root.path() / "sys/fs/cgroup/gone").string());
}

TEST(TestCgroupOomEvidence, ReadsTheCountsAndLeavesMissingOnesUnknown) {
  TempDir dir;
  TestCgroupPlan plan;
  plan.version = CgroupVersion::v2;
  plan.directory = dir.path().string();
  plan.oom_file = "memory.events";
  dir.write("memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n");
  auto e = read_oom_evidence(plan);
  EXPECT_EQ(e.oom_kills, 1U);
  EXPECT_EQ(e.failcnt, std::nullopt);

  plan.version = CgroupVersion::v1;
  plan.oom_file = "memory.oom_control";
  dir.write("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");  // before Linux 4.13
  dir.write("memory.failcnt", "5\n");
  e = read_oom_evidence(plan);
  EXPECT_EQ(e.oom_kills, std::nullopt) << "unknown, not 0";
  EXPECT_EQ(e.failcnt, 5U);
  dir.write("memory.oom_control", "garbage\n");
  dir.write("memory.failcnt", "x\n");
  e = read_oom_evidence(plan);
  EXPECT_EQ(e.oom_kills, std::nullopt);
  EXPECT_EQ(e.failcnt, std::nullopt);
}

TEST(TestCgroupLeftovers, FindsTestCgroupsAndWhetherTheirMemwardenLives) {
  TempDir root;
  root.write("proc/1/status", "Name: init\n");
  root.write("cg/memwarden-test-1-0/cgroup.procs", "");
  root.write("cg/memwarden-test-424242-3/cgroup.procs", "");
  root.write("cg/docker/cgroup.procs", "");
  root.write("cg/memwarden-test-7-0", "a file, not a cgroup");
  auto found = find_test_cgroups(HostRoot(root.path()), (root.path() / "cg").string());
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  ASSERT_EQ(found.size(), 2U);
  EXPECT_EQ(found[0].pid, 1);
  EXPECT_TRUE(found[0].owner_alive);
  EXPECT_EQ(found[1].pid, 424242);
  EXPECT_FALSE(found[1].owner_alive);
  EXPECT_EQ(found[1].directory, (root.path() / "cg/memwarden-test-424242-3").string());
  EXPECT_TRUE(find_test_cgroups(HostRoot(root.path()), (root.path() / "none").string()).empty());
}

}  // namespace
}  // namespace mw::probes
