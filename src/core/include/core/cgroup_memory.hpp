// A cgroup's memory, the same shape for cgroup v1 and v2. Unknown values are
// nullopt; they are never reported as 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/host_memory.hpp"

namespace mw {

enum class CgroupVersion { v1, v2 };

// A memory limit: a number of bytes, or none at all.
struct MemoryLimit {
  std::optional<std::uint64_t> bytes;  // nullopt: unlimited

  [[nodiscard]] static MemoryLimit unlimited() { return {}; }
  [[nodiscard]] static MemoryLimit of(std::uint64_t b) { return MemoryLimit{b}; }
  [[nodiscard]] bool is_unlimited() const { return !bytes.has_value(); }
  bool operator==(const MemoryLimit&) const = default;
};

struct CgroupMemory {
  CgroupVersion version = CgroupVersion::v2;
  std::string path;  // relative to the memory hierarchy's mount, e.g. "docker/<id>"

  std::optional<std::uint64_t> usage;          // v2 memory.current, v1 memory.usage_in_bytes
  std::optional<MemoryLimit> limit;            // nullopt: could not be read
  std::optional<std::uint64_t> anon;           // v2 anon, v1 total_rss
  std::optional<std::uint64_t> file;           // page cache: v2 file, v1 total_cache
  std::optional<std::uint64_t> file_mapped;    // v2 file_mapped, v1 total_mapped_file
  std::optional<std::uint64_t> shmem;          // v2 shmem, v1 total_shmem
  std::optional<std::uint64_t> active_file;    // v2 active_file, v1 total_active_file
  std::optional<std::uint64_t> inactive_file;  // v2 inactive_file, v1 total_inactive_file
  std::optional<std::uint64_t> swap;           // v2 memory.swap.current, v1 total_swap
  std::optional<std::uint64_t> peak;           // v2 memory.peak (5.19+), v1 max_usage_in_bytes
  std::optional<std::uint64_t> limit_hits;     // v2 memory.events max, v1 memory.failcnt
  std::optional<std::uint64_t> oom_events;     // v2 memory.events oom (v1 has no counter)
  std::optional<std::uint64_t> oom_kills;      // v2 memory.events oom_kill, v1 memory.oom_control oom_kill
  std::optional<Pressure> pressure;            // memory.pressure, where the kernel has PSI for the cgroup

  // usage - inactive_file, floored at 0: what `docker stats` shows as MEM USAGE.
  [[nodiscard]] std::optional<std::uint64_t> working_set() const;
  // working_set / limit in percent; nullopt when unlimited or unknown.
  [[nodiscard]] std::optional<double> percent_of_limit() const;
};

[[nodiscard]] const char* to_string(CgroupVersion version);

}  // namespace mw
