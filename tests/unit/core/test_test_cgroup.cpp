// test ram --no-docker: where the transient cgroup goes, which files it gets and what says it was OOM-killed.
#include <gtest/gtest.h>

#include <tuple>

#include "core/ram_test.hpp"
#include "core/test_cgroup.hpp"

namespace mw {
namespace {

constexpr std::uint64_t k_limit = 1ULL << 30;

TestCgroupFacts v1_facts(std::string own, bool memsw) {
  TestCgroupFacts f;
  f.version = CgroupVersion::v1;
  f.mount = "/sys/fs/cgroup/memory";
  f.own_path = std::move(own);
  f.has_swap_file = memsw;
  return f;
}

TestCgroupFacts v2_facts(std::string own, std::string controllers, std::string subtree, CgroupRoot root,
                         bool has_processes) {
  TestCgroupFacts f;
  f.version = CgroupVersion::v2;
  f.mount = "/sys/fs/cgroup";
  f.own_path = std::move(own);
  f.parent_controllers = std::move(controllers);
  f.parent_subtree_control = std::move(subtree);
  f.parent_root = root;
  f.parent_has_processes = has_processes;
  return f;
}

using Writes = std::vector<std::tuple<std::string, std::string, WriteNeed>>;

Writes writes(const TestCgroupPlan& plan) {
  Writes out;
  for (const auto& w : plan.limits) {
    out.emplace_back(w.file, w.value, w.need);
  }
  return out;
}

constexpr auto k_required = WriteNeed::required;

TEST(TestCgroupName, RoundTripsThePidAndRefusesOtherNames) {
  EXPECT_EQ(test_cgroup_name(4242, 3), "memwarden-test-4242-3");
  EXPECT_EQ(test_cgroup_pid("memwarden-test-4242-3"), 4242);
  for (const auto* other :
       {"memwarden-test-4242", "memwarden-test-x-1", "memwarden-test--1", "memwarden-test-0-1", "memwarden-test-1-",
        "docker", "memwarden-test-1-2-3", "memwarden-test-99999999999999999999-1"}) {
    EXPECT_EQ(test_cgroup_pid(other), std::nullopt) << other;
  }
}

TEST(TestCgroupPlan, ControllerListsAndParentPaths) {
  EXPECT_TRUE(lists_controller("cpuset cpu io memory hugetlb pids\n", "memory"));
  EXPECT_FALSE(lists_controller("cpuset cpu io hugetlb pids\n", "memory"));
  EXPECT_FALSE(lists_controller("memory_recursiveprot\n", "memory")) << "a whole word only";
  EXPECT_FALSE(lists_controller("", "memory"));
  EXPECT_EQ(cgroup_parent_path("/a/b/c"), "/a/b");
  EXPECT_EQ(cgroup_parent_path("/a"), "/");
  EXPECT_EQ(cgroup_parent_path("/"), "/");
  EXPECT_EQ(cgroup_parent_path("/a/b/"), "/a");
}

TEST(TestCgroupPlan, V1IsASiblingLimitedFirstThenMemsw) {
  const auto plan = plan_test_cgroup(v1_facts("/process_api/52613d89", true), k_limit, 77, 1);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->parent, "/sys/fs/cgroup/memory/process_api");
  EXPECT_EQ(plan->directory, "/sys/fs/cgroup/memory/process_api/memwarden-test-77-1");
  EXPECT_EQ(plan->enable_memory_in, std::nullopt) << "v1 has no subtree_control";
  EXPECT_EQ(writes(*plan), (Writes{{"memory.limit_in_bytes", "1073741824", k_required},
                                   {"memory.memsw.limit_in_bytes", "1073741824", k_required}}))
      << "memsw may not go under the limit: the limit first";
  EXPECT_EQ(plan->oom_file, "memory.oom_control");
}

TEST(TestCgroupPlan, V1WithoutSwapAccountingTurnsSwappinessOff) {
  const auto plan = plan_test_cgroup(v1_facts("/", false), k_limit, 77, 0);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->directory, "/sys/fs/cgroup/memory/memwarden-test-77-0") << "in the root: a child of it";
  EXPECT_EQ(writes(*plan),
            (Writes{{"memory.limit_in_bytes", "1073741824", k_required}, {"memory.swappiness", "0", k_required}}));
}

TEST(TestCgroupPlan, V2UsesAParentThatDelegatesMemoryAsItIs) {
  const auto plan = plan_test_cgroup(
      v2_facts("/user.slice/session-3.scope", "cpu memory pids", "cpu memory pids", CgroupRoot::not_root, false),
      k_limit, 9, 0);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->directory, "/sys/fs/cgroup/user.slice/memwarden-test-9-0");
  EXPECT_EQ(plan->enable_memory_in, std::nullopt);
  EXPECT_EQ(writes(*plan),
            (Writes{{"memory.max", "1073741824", k_required}, {"memory.swap.max", "0", WriteNeed::if_present}}))
      << "no swap: where swap is accounted (the root has no memory.swap.max to tell, so the new cgroup's own file "
         "does)";
  EXPECT_EQ(plan->oom_file, "memory.events");
}

TEST(TestCgroupPlan, V2EnablesMemoryWhereTheParentMay) {
  // An empty parent that has the controller but does not hand it down.
  auto plan = plan_test_cgroup(v2_facts("/a/b", "cpu memory", "cpu", CgroupRoot::not_root, false), k_limit, 9, 0);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->enable_memory_in, "/sys/fs/cgroup/a/cgroup.subtree_control");
  // The root is exempt from "no internal processes".
  plan = plan_test_cgroup(v2_facts("/init.scope", "cpu memory", "", CgroupRoot::root, true), k_limit, 9, 0);
  ASSERT_TRUE(plan) << plan.error().line();
  EXPECT_EQ(plan->directory, "/sys/fs/cgroup/memwarden-test-9-0");
  EXPECT_EQ(plan->enable_memory_in, "/sys/fs/cgroup/cgroup.subtree_control");
}

TEST(TestCgroupPlan, V2RefusesWhatTheHierarchyForbids) {
  // The parent holds processes: it may not enable a domain controller for its children.
  auto plan = plan_test_cgroup(v2_facts("/a/b", "cpu memory", "cpu", CgroupRoot::not_root, true), k_limit, 9, 0);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().source, "/sys/fs/cgroup/a");
  EXPECT_NE(plan.error().message.find("no-internal-processes"), std::string::npos) << plan.error().message;
  // A cgroup namespace's root (memwarden in a container) is not the real root and holds memwarden.
  plan = plan_test_cgroup(v2_facts("/", "cpu memory", "", CgroupRoot::not_root, true), k_limit, 9, 0);
  ASSERT_FALSE(plan);
  // The memory controller is not there at all.
  plan = plan_test_cgroup(v2_facts("/a/b", "cpu io", "cpu", CgroupRoot::not_root, false), k_limit, 9, 0);
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().message.find("not delegated"), std::string::npos) << plan.error().message;
  // A path that is not one.
  for (const auto* bad : {"", "relative", "/a/../b", "/a/.."}) {
    EXPECT_FALSE(plan_test_cgroup(v2_facts(bad, "memory", "memory", CgroupRoot::not_root, false), k_limit, 9, 0))
        << bad;
  }
}

TEST(TestCgroupOom, TheKernelsCountWinsElseASigkillAfterTheLimitWasHit) {
  EXPECT_TRUE(cgroup_oom_killed({1, std::nullopt, false}));
  EXPECT_FALSE(cgroup_oom_killed({0, 5, true})) << "counted: no kill, whatever else happened";
  EXPECT_TRUE(cgroup_oom_killed({std::nullopt, 5, true})) << "an old v1 kernel without oom_kill";
  EXPECT_FALSE(cgroup_oom_killed({std::nullopt, 0, true})) << "a SIGKILL from someone else";
  EXPECT_FALSE(cgroup_oom_killed({std::nullopt, 5, false}));
  EXPECT_FALSE(cgroup_oom_killed({std::nullopt, std::nullopt, true}));
}

TEST(RamTestLeftovers, OnlyAGoneMemwardensOrAnExpiredOneGoes) {
  EXPECT_EQ(leftover_action(OwnerState::gone, false), Leftover::remove);
  EXPECT_EQ(leftover_action(OwnerState::alive, true), Leftover::remove) << "past any size's time: an orphan";
  EXPECT_EQ(leftover_action(OwnerState::unknown, true), Leftover::remove);
  EXPECT_EQ(leftover_action(OwnerState::alive, false), Leftover::leave);
  EXPECT_EQ(leftover_action(OwnerState::unknown, false), Leftover::leave) << "another pid namespace: not ours to judge";
}

TEST(RamTestLeftovers, TheOwnerIsTheSameProcessOnlyByBootNamespacePidAndStartTime) {
  const TestOwner self{"b0", "pid:[4026531836]", 100, 5000};
  auto owner = self;
  owner.pid = 42;
  owner.start_time = 777;
  EXPECT_EQ(owner_state(owner, self, 777), OwnerState::alive);
  EXPECT_EQ(owner_state(owner, self, std::nullopt), OwnerState::gone) << "no such process here";
  EXPECT_EQ(owner_state(owner, self, 778), OwnerState::gone) << "the pid is another process now";
  auto other_boot = owner;
  other_boot.boot_id = "b1";
  EXPECT_EQ(owner_state(other_boot, self, 777), OwnerState::gone) << "gone with the host's restart";
  auto other_namespace = owner;
  other_namespace.pid_namespace = "pid:[4026532000]";
  EXPECT_EQ(owner_state(other_namespace, self, std::nullopt), OwnerState::unknown);
  EXPECT_EQ(owner_state(owner, std::nullopt, 777), OwnerState::unknown) << "this memwarden cannot tell";
}

TEST(RamTestLeftovers, OwnerLabelsRoundTripAndBadOnesAreRefused) {
  const TestOwner owner{"3f1c-aa", "pid:[4026531836]", 4242, 123456};
  EXPECT_EQ(owner_label(owner), "3f1c-aa/pid:[4026531836]/4242/123456");
  EXPECT_EQ(parse_owner_label(owner_label(owner)), owner);
  for (const auto* bad :
       {"", "a/b/c", "a/b/0/1", "a/b/x/1", "a/b/1/-1", "/b/1/1", "a//1/1", "a/b/1/1/1", "a/b/99999999999/1"}) {
    EXPECT_FALSE(parse_owner_label(bad)) << bad;
  }
}

TEST(RamTestLeftovers, TheStartTimeIsFieldTwentyTwoWhateverTheCommand) {
  const std::string tail = " S 1 100 100 0 -1 4194560 500 0 0 0 10 5 0 0 20 0 1 0 987654 123456 100";
  EXPECT_EQ(parse_stat_start_time("4242 (memwarden)" + tail), 987654U);
  EXPECT_EQ(parse_stat_start_time("4242 (a b) c)" + tail), 987654U) << "spaces and ) in the command";
  EXPECT_FALSE(parse_stat_start_time("4242 (memwarden) S 1 2"));
  EXPECT_FALSE(parse_stat_start_time("garbage"));
}

}  // namespace
}  // namespace mw
