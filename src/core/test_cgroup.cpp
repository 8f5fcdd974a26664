#include "core/test_cgroup.hpp"

#include <fmt/format.h>

#include <charconv>

namespace mw {

std::string test_cgroup_name(std::int64_t pid, int n) {
  return fmt::format("memwarden-test-{}-{}", pid, n);
}

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::optional<std::int64_t> test_cgroup_pid(std::string_view name) {
  constexpr std::string_view prefix = "memwarden-test-";
  if (name.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  name.remove_prefix(prefix.size());
  const auto dash = name.find('-');
  if (dash == std::string_view::npos || !all_digits(name.substr(0, dash)) || !all_digits(name.substr(dash + 1))) {
    return std::nullopt;
  }
  std::int64_t pid = 0;
  std::from_chars(name.data(), name.data() + dash, pid);
  if (pid <= 0) {
    return std::nullopt;
  }
  return pid;
}

bool lists_controller(std::string_view text, std::string_view controller) {
  while (!text.empty()) {
    const auto start = text.find_first_not_of(" \t\n");
    if (start == std::string_view::npos) {
      break;
    }
    text.remove_prefix(start);
    const auto end = text.find_first_of(" \t\n");
    if (text.substr(0, end) == controller) {
      return true;
    }
    if (end == std::string_view::npos) {
      break;
    }
    text.remove_prefix(end);
  }
  return false;
}

std::string cgroup_parent_path(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') {
    path.remove_suffix(1);
  }
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) {
    return "/";
  }
  return std::string(path.substr(0, slash));
}

Result<TestCgroupPlan> plan_test_cgroup(const TestCgroupFacts& facts, std::uint64_t limit, std::int64_t pid, int n) {
  if (facts.own_path.empty() || facts.own_path.front() != '/' || facts.own_path.find("/../") != std::string::npos ||
      facts.own_path.ends_with("/..")) {
    return fail("/proc/self/cgroup", fmt::format("'{}' is not a cgroup path", facts.own_path.substr(0, 80)));
  }
  TestCgroupPlan plan;
  plan.version = facts.version;
  const auto parent = cgroup_parent_path(facts.own_path);
  plan.parent = parent == "/" ? facts.mount : facts.mount + parent;
  plan.directory = plan.parent + "/" + test_cgroup_name(pid, n);
  const auto bytes = std::to_string(limit);
  if (facts.version == CgroupVersion::v1) {
    // memsw is memory + swap, and may not be set below memory.limit_in_bytes: the limit first. Without swap
    // accounting, swappiness 0 keeps the cgroup's own reclaim from swapping (and the floor stops on any swap).
    plan.limits.push_back({"memory.limit_in_bytes", bytes});
    if (facts.has_swap_file) {
      plan.limits.push_back({"memory.memsw.limit_in_bytes", bytes});
    } else {
      plan.limits.push_back({"memory.swappiness", "0"});
    }
    plan.oom_file = "memory.oom_control";
    return plan;
  }
  if (!lists_controller(facts.parent_subtree_control, "memory")) {
    if (facts.parent_root == CgroupRoot::not_root && !lists_controller(facts.parent_controllers, "memory")) {
      return fail(plan.parent,
                  "the memory controller is not delegated here (not in cgroup.controllers), so a test cgroup "
                  "cannot be limited");
    }
    if (facts.parent_root == CgroupRoot::not_root && facts.parent_has_processes) {
      return fail(plan.parent,
                  "holds processes of its own, so it may not enable the memory controller for its children (cgroup "
                  "v2's no-internal-processes rule); run memwarden in a cgroup whose parent delegates memory");
    }
    plan.enable_memory_in = plan.parent + "/cgroup.subtree_control";
  }
  plan.limits.push_back({"memory.max", bytes});
  plan.limits.push_back({"memory.swap.max", "0", WriteNeed::if_present});
  plan.oom_file = "memory.events";
  return plan;
}

bool cgroup_oom_killed(const OomEvidence& evidence) {
  if (evidence.oom_kills) {
    return *evidence.oom_kills > 0;
  }
  return evidence.killed_by_sigkill && evidence.failcnt && *evidence.failcnt > 0;
}

}  // namespace mw
