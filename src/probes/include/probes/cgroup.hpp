// Container memory from cgroup files: v1, v2 and hybrid hosts, cgroupfs and
// systemd Docker drivers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cgroup_memory.hpp"
#include "core/error.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

enum class CgroupMode {
  v1,      // memory controller on /sys/fs/cgroup/memory, no unified hierarchy
  hybrid,  // v1 memory controller, plus a cgroup2 tree on /sys/fs/cgroup/unified (PSI lives there)
  v2,      // unified hierarchy on /sys/fs/cgroup
};

struct CgroupLayout {
  CgroupMode mode = CgroupMode::v2;
  std::filesystem::path memory_root;                  // where the memory controller's tree starts
  std::optional<std::filesystem::path> unified_root;  // the cgroup2 tree, if any
};

[[nodiscard]] const char* to_string(CgroupMode mode);

// Looks at <root>/sys/fs/cgroup to tell v1, hybrid and v2 apart.
[[nodiscard]] Result<CgroupLayout> detect_cgroup_layout(const HostRoot& root);

// One line of /proc/<pid>/cgroup: "4:memory:/docker/<id>" or "0::/system.slice/docker-<id>.scope".
struct ProcCgroupEntry {
  std::string hierarchy_id;
  std::vector<std::string> controllers;  // empty for the cgroup2 line
  std::string path;                      // absolute within the hierarchy, starts with '/'
};

[[nodiscard]] Result<std::vector<ProcCgroupEntry>> parse_proc_cgroup(std::string_view text, std::string_view source);

// Where a process's memory is accounted, relative to the layout's roots (no leading '/').
struct CgroupLocation {
  std::string memory_path;                  // under CgroupLayout::memory_root
  std::optional<std::string> unified_path;  // under CgroupLayout::unified_root (hybrid PSI)
};

// The memory controller's path for a v1/hybrid host, or the "0::" path on v2.
[[nodiscard]] std::optional<CgroupLocation> location_from_entries(const std::vector<ProcCgroupEntry>& entries,
                                                                  CgroupMode mode);

// The 64-hex container id in a cgroup path ("/docker/<id>", "/system.slice/docker-<id>.scope",
// ".../cri-containerd-<id>.scope"), or nullopt.
[[nodiscard]] std::optional<std::string> container_id_from_cgroup_path(std::string_view path);

// Finds a container's cgroup: from /proc/<pid>/cgroup when pid > 0, else (or when that path is
// not there, e.g. under a cgroup namespace) from the id under the cgroupfs and systemd drivers' paths.
[[nodiscard]] Result<CgroupLocation> locate_container_cgroup(const HostRoot& root, const CgroupLayout& layout,
                                                             std::int64_t pid, std::string_view container_id);

// Flat-keyed files (memory.stat, memory.events, memory.oom_control): "name value" per line.
// The views point into `text`.
using FlatKeyed = std::vector<std::pair<std::string_view, std::uint64_t>>;
[[nodiscard]] Result<FlatKeyed> parse_flat_keyed(std::string_view text, std::string_view source);
[[nodiscard]] std::optional<std::uint64_t> find_key(const FlatKeyed& fields, std::string_view key);

// v2 memory.max / memory.swap.max: "max" or a number.
[[nodiscard]] Result<MemoryLimit> parse_v2_limit(std::string_view text, std::string_view source);
// v1 memory.limit_in_bytes: a number; the kernel's "no limit" is PAGE_COUNTER_MAX pages (>= 2^62).
[[nodiscard]] Result<MemoryLimit> parse_v1_limit(std::string_view text, std::string_view source);
// A file holding one unsigned number.
[[nodiscard]] Result<std::uint64_t> parse_single_u64(std::string_view text, std::string_view source);

// Reads a cgroup's memory files. Fails only when the cgroup is gone or its usage
// cannot be read; a malformed optional file is added to `problems` and left unknown.
[[nodiscard]] Result<CgroupMemory> read_cgroup_memory(const CgroupLayout& layout, const CgroupLocation& where,
                                                      std::vector<Error>& problems);

}  // namespace mw::probes
