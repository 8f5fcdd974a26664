// `memwarden test ram --no-docker` (issue 14): the transient cgroup a size runs in, decided from what the host's
// cgroup files say. Pure: the facts come in (read by probes/test_cgroup.hpp), the plan comes out (carried out by
// actions/test_cgroup.hpp).
//
// The cgroup is a sibling of memwarden's own: `<parent of memwarden's cgroup>/memwarden-test-<pid>-<n>` (a child
// of the root when memwarden sits in the root). On cgroup v2 a sibling is the only place that works: memwarden's
// own cgroup holds a process (memwarden), and the "no internal processes" rule forbids it to hand the memory
// controller to children. The parent must delegate the memory controller (its cgroup.subtree_control); when it
// does not, memwarden enables it there if the parent may (the controller is in its cgroup.controllers and it holds
// no processes itself, or it is the root).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cgroup_memory.hpp"  // CgroupVersion
#include "core/error.hpp"

namespace mw {

// Whether the parent of a v2 cgroup is the hierarchy's root (exempt from "no internal processes").
enum class CgroupRoot { root, not_root };

// What the host's files say, for the plan.
struct TestCgroupFacts {
  CgroupVersion version = CgroupVersion::v2;
  std::string mount;     // the memory controller's hierarchy: "/sys/fs/cgroup" (v2), "/sys/fs/cgroup/memory" (v1)
  std::string own_path;  // memwarden's cgroup in it, from /proc/self/cgroup: "/" or "/a/b"
  // v2: the parent's cgroup.controllers and cgroup.subtree_control, whether it is the root, whether it holds
  // processes (cgroup.procs not empty).
  std::string parent_controllers;
  std::string parent_subtree_control;
  CgroupRoot parent_root = CgroupRoot::not_root;
  bool parent_has_processes = false;
  // v1: whether the parent has memory.memsw.limit_in_bytes (swap accounting: CONFIG_MEMCG_SWAP and
  // swapaccount=1; a child has the same files, and so does v1's root). v2 has no such question: its root has no
  // memory.swap.max, so the new cgroup's own file decides (WriteNeed::if_present).
  bool has_swap_file = false;
};

enum class WriteNeed {
  required,    // a failure fails the cgroup
  if_present,  // skipped when the kernel does not have the file (v2 memory.swap.max without swap accounting)
};

// A file written in the new cgroup, in this order.
struct CgroupWrite {
  std::string file;  // a name in the cgroup's directory
  std::string value;
  WriteNeed need = WriteNeed::required;
};

struct TestCgroupPlan {
  CgroupVersion version = CgroupVersion::v2;
  std::string parent;     // the parent's directory: mount + parent path
  std::string directory;  // parent + "/" + name
  // v2: write "+memory" to this file (the parent's cgroup.subtree_control) before creating the directory.
  std::optional<std::string> enable_memory_in;
  std::vector<CgroupWrite> limits;
  // The file that counts the OOM kills in it (v2 memory.events, v1 memory.oom_control: "oom_kill N").
  std::string oom_file;
};

// "memwarden-test-<pid>-<n>".
[[nodiscard]] std::string test_cgroup_name(std::int64_t pid, int n);
// The pid in a name made by test_cgroup_name, or nullopt for any other name.
[[nodiscard]] std::optional<std::int64_t> test_cgroup_pid(std::string_view name);

// The words of a cgroup.controllers or cgroup.subtree_control file ("cpu io memory pids").
[[nodiscard]] bool lists_controller(std::string_view text, std::string_view controller);

// The parent of a cgroup path ("/a/b" -> "/a", "/a" -> "/", "/" -> "/").
[[nodiscard]] std::string cgroup_parent_path(std::string_view path);

// Where and how the size's cgroup is made, limited to `limit` bytes with no swap; an error naming the parent's
// directory when the hierarchy does not allow it.
[[nodiscard]] Result<TestCgroupPlan> plan_test_cgroup(const TestCgroupFacts& facts, std::uint64_t limit,
                                                      std::int64_t pid, int n);

// What says the cgroup's process was OOM-killed.
struct OomEvidence {
  std::optional<std::uint64_t> oom_kills;  // v2 memory.events, v1 memory.oom_control (Linux 4.13+) oom_kill
  std::optional<std::uint64_t> failcnt;    // v1 memory.failcnt: the limit was hit
  bool killed_by_sigkill = false;          // the child died of SIGKILL that memwarden did not send
};
// oom_kill > 0 when the kernel counts it; else (an old v1 kernel) a SIGKILL after the limit was hit.
[[nodiscard]] bool cgroup_oom_killed(const OomEvidence& evidence);

}  // namespace mw
