#include "probes/test_cgroup.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <filesystem>

#include "core/text.hpp"
#include "probes/cgroup.hpp"

namespace mw::probes {

namespace fs = std::filesystem;

namespace {

bool path_exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

constexpr std::size_t k_max_small_file = 64U << 10;

}  // namespace

Result<TestCgroupFacts> read_test_cgroup_facts(const HostRoot& root) {
  auto layout = detect_cgroup_layout(root);
  if (!layout) {
    return unexpected(layout.error());
  }
  const auto self = root.proc("self/cgroup");
  auto text = read_file(self, k_max_small_file);
  if (!text) {
    return unexpected(text.error());
  }
  auto entries = parse_proc_cgroup(*text, self.string());
  if (!entries) {
    return unexpected(entries.error());
  }
  const auto where = location_from_entries(*entries, layout->mode);
  if (!where) {
    return fail(self.string(), layout->mode == CgroupMode::v2
                                   ? "no '0::' line: memwarden's cgroup is unknown"
                                   : "no memory controller line: memwarden's cgroup is unknown");
  }
  TestCgroupFacts facts;
  facts.version = layout->mode == CgroupMode::v2 ? CgroupVersion::v2 : CgroupVersion::v1;
  facts.mount = layout->memory_root.string();
  facts.own_path = "/" + where->memory_path;
  const auto parent_path = cgroup_parent_path(facts.own_path);
  const fs::path parent = parent_path == "/" ? layout->memory_root : layout->memory_root / parent_path.substr(1);
  if (!path_exists(parent)) {
    return fail(parent.string(), "memwarden's parent cgroup is not there (is the cgroup file system mounted?)", ENOENT);
  }
  if (facts.version == CgroupVersion::v1) {
    facts.has_swap_file = path_exists(parent / "memory.memsw.limit_in_bytes");
    return facts;
  }
  // The root has no cgroup.type; every other cgroup (also a cgroup namespace's root) has one.
  facts.parent_root = path_exists(parent / "cgroup.type") ? CgroupRoot::not_root : CgroupRoot::root;
  for (auto [name, into] : {std::pair{"cgroup.controllers", &facts.parent_controllers},
                            std::pair{"cgroup.subtree_control", &facts.parent_subtree_control}}) {
    auto content = read_file(parent / name, k_max_small_file);
    if (!content) {
      return unexpected(content.error());
    }
    *into = std::move(*content);
  }
  auto procs = read_file(parent / "cgroup.procs", 4096, Overflow::truncate);
  if (!procs) {
    return unexpected(procs.error());
  }
  facts.parent_has_processes = !trim(*procs).empty();
  return facts;
}

OomEvidence read_oom_evidence(const TestCgroupPlan& plan) {
  OomEvidence evidence;
  const auto dir = fs::path(plan.directory);
  const auto oom_path = dir / plan.oom_file;
  if (auto text = read_file(oom_path, k_max_small_file)) {
    if (auto fields = parse_flat_keyed(*text, oom_path.string())) {
      evidence.oom_kills = find_key(*fields, "oom_kill");
    }
  }
  if (plan.version == CgroupVersion::v1) {
    const auto failcnt = dir / "memory.failcnt";
    if (auto text = read_file(failcnt, k_max_small_file)) {
      if (auto value = parse_single_u64(*text, failcnt.string())) {
        evidence.failcnt = *value;
      }
    }
  }
  return evidence;
}

bool process_exists(const HostRoot& root, std::int64_t pid) {
  return pid > 0 && path_exists(root.proc(std::to_string(pid)));
}

std::vector<FoundTestCgroup> find_test_cgroups(const HostRoot& root, const std::string& parent) {
  constexpr std::size_t k_max_found = 64;
  constexpr std::size_t k_max_entries = 100000;  // a parent with very many children is not walked to the end
  std::vector<FoundTestCgroup> found;
  std::error_code ec;
  fs::directory_iterator it(parent, ec);
  std::size_t seen = 0;
  for (; !ec && it != fs::directory_iterator() && found.size() < k_max_found && seen < k_max_entries;
       it.increment(ec), ++seen) {
    const auto name = it->path().filename().string();
    const auto pid = test_cgroup_pid(name);
    std::error_code type_ec;
    if (!pid || !it->is_directory(type_ec)) {
      continue;
    }
    found.push_back({it->path().string(), *pid, process_exists(root, *pid)});
  }
  return found;
}

std::optional<std::uint64_t> read_start_time(const HostRoot& root, std::int64_t pid) {
  if (pid <= 0) {
    return std::nullopt;
  }
  auto stat = read_file(root.proc(std::to_string(pid) + "/stat"), k_max_small_file);
  if (!stat) {
    return std::nullopt;
  }
  return parse_stat_start_time(*stat);
}

std::optional<TestOwner> read_own_identity(const HostRoot& root) {
  std::error_code ec;
  const auto self = fs::read_symlink(root.proc("self"), ec);
  if (ec) {
    return std::nullopt;
  }
  const auto pid = parse_u64(self.filename().string());
  const auto pid_namespace = fs::read_symlink(root.proc("self/ns/pid"), ec);
  auto boot = read_file(root.proc("sys/kernel/random/boot_id"), k_max_small_file);
  if (!pid || ec || !boot) {
    return std::nullopt;
  }
  const auto start = read_start_time(root, static_cast<std::int64_t>(*pid));
  auto boot_id = std::string(trim(*boot));
  if (!start || boot_id.empty() || boot_id.find('/') != std::string::npos) {
    return std::nullopt;
  }
  return TestOwner{std::move(boot_id), pid_namespace.string(), static_cast<std::int64_t>(*pid), *start};
}

}  // namespace mw::probes
