// Container memory from cgroup files: v1, v2 and hybrid hosts, cgroupfs and
// systemd Docker drivers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
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

// The descriptors of a cgroup's memory files, kept open between reads by read_cgroup_memory, on a cgroup file
// system only and from a file's second read on (a one-off read such as `memwarden status` keeps none): a read then
// costs a pread per file instead of an open, two reads and a close (about a quarter of the time on cgroup v1;
// docs/PERFORMANCE.md, section 5). The files of a removed cgroup answer ENODEV on their kept descriptors: the file
// is then opened afresh, which tells "gone" (ENOENT) as before, and a cgroup made again under the same path (a
// restart) is read anew. Any other failure on a kept descriptor is handled the same way. The process keeps at most
// half its RLIMIT_NOFILE soft limit (8192 at most) of these descriptors in all; past that a file is opened for each
// read. Thread-safe.
class CgroupFiles {
 public:
  enum class Keep {
    on_cgroup_fs,       // descriptors of files on cgroup and cgroup2 file systems (fstatfs)
    on_any_file_system  // also of regular files (tests; a file replaced by another one is then not seen)
  };
  explicit CgroupFiles(Keep keep = Keep::on_cgroup_fs) : m_keep(keep) {}
  ~CgroupFiles();
  CgroupFiles(const CgroupFiles&) = delete;
  CgroupFiles& operator=(const CgroupFiles&) = delete;
  CgroupFiles(CgroupFiles&&) = delete;
  CgroupFiles& operator=(CgroupFiles&&) = delete;

  // The file `name` in `dir`, read now through its kept descriptor (at most k_max_file_bytes); nullopt when none
  // is kept (or it failed and was dropped): the caller opens the file, reads it and offers the descriptor.
  [[nodiscard]] std::optional<Expected<void, Error>> reread(const std::filesystem::path& dir, std::string_view name,
                                                            std::string& buffer);
  // A descriptor of `dir`/`name` that the caller opened and read whole: kept when the file was read before, else
  // closed (and the read remembered).
  void offer(const std::filesystem::path& dir, std::string_view name, int fd);
  // Descriptors held now.
  [[nodiscard]] std::size_t kept() const;

 private:
  struct File {
    std::string dir;
    std::string name;
    int fd = -1;  // -1: read once, not kept
  };
  [[nodiscard]] File* find(const std::filesystem::path& dir, std::string_view name);

  mutable std::mutex m_mutex;
  Keep m_keep;
  bool m_not_cgroup_fs = false;  // a file turned out not to be on a cgroup file system: keep none
  std::vector<File> m_files;
};

// Where a process's memory is accounted, relative to the layout's roots (no leading '/').
struct CgroupLocation {
  std::string memory_path;                  // under CgroupLayout::memory_root
  std::optional<std::string> unified_path;  // under CgroupLayout::unified_root (hybrid PSI)
  // Set by locate_container_cgroup: the memory files' descriptors, kept between reads and shared by the copies of
  // this location. Null: each read opens the files.
  std::shared_ptr<CgroupFiles> files = nullptr;
};

// The memory controller's path for a v1/hybrid host, or the "0::" path on v2.
[[nodiscard]] std::optional<CgroupLocation> location_from_entries(const std::vector<ProcCgroupEntry>& entries,
                                                                  CgroupMode mode);

// The 64-hex container id in a cgroup path ("/docker/<id>", "/system.slice/docker-<id>.scope",
// ".../cri-containerd-<id>.scope"), or nullopt.
[[nodiscard]] std::optional<std::string> container_id_from_cgroup_path(std::string_view path);

// Finds a container's cgroup: from the id under the cgroupfs and systemd drivers' paths (docker/<id>,
// system.slice/docker-<id>.scope), else from /proc/<pid>/cgroup when pid > 0 (a --cgroup-parent, rootless Docker).
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
