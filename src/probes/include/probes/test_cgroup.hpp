// What `memwarden test ram --no-docker` needs to know about the host's cgroups (read-only): where memwarden's own
// cgroup is and what its parent allows (core/test_cgroup.hpp plans from it), the OOM kills in a test cgroup, and
// the test cgroups other memwarden processes made.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/ram_test.hpp"
#include "core/test_cgroup.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

// <root>/proc/self/cgroup and the files of its parent in the memory controller's hierarchy. An error (one line,
// naming the file) when there is no memory hierarchy or memwarden's place in it is unknown.
[[nodiscard]] Result<TestCgroupFacts> read_test_cgroup_facts(const HostRoot& root);

// The OOM kills counted in a test cgroup (plan.oom_file) and v1's memory.failcnt; unknown where a file is
// missing or malformed. killed_by_sigkill is left false: the caller knows how its child ended.
[[nodiscard]] OomEvidence read_oom_evidence(const TestCgroupPlan& plan);

// Whether <root>/proc/<pid> exists.
[[nodiscard]] bool process_exists(const HostRoot& root, std::int64_t pid);

// A test cgroup found beside where memwarden makes its own (memwarden-test-<pid>-<n>).
struct FoundTestCgroup {
  std::string directory;
  std::int64_t pid = 0;
  bool owner_alive = false;  // <root>/proc/<pid> exists
};
// At most 64 of them in `parent` (the plan's parent directory).
[[nodiscard]] std::vector<FoundTestCgroup> find_test_cgroups(const HostRoot& root, const std::string& parent);

// This memwarden as a ram-test container's owner (core::TestOwner): the boot, its pid namespace, its pid and start
// time, from <root>/proc; nullopt when any of them cannot be read (a fixture tree).
[[nodiscard]] std::optional<TestOwner> read_own_identity(const HostRoot& root);
// The start time of `pid` in <root>/proc (nullopt: no such process, or unreadable).
[[nodiscard]] std::optional<std::uint64_t> read_start_time(const HostRoot& root, std::int64_t pid);

}  // namespace mw::probes
