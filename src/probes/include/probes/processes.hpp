// Processes from /proc/<pid>/{status,comm,cmdline} and cgroup.procs.
// parse_* are pure; read_* and find_* read under the host root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/process.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

// /proc/<pid>/status: Pid, PPid, Name (into comm), VmRSS, RssAnon, RssFile, RssShmem (kB -> bytes).
// Fields a kernel thread or an older kernel lacks stay nullopt. A line without "Key:" or a used
// field with a bad value is an error; a file without a Name line is not a status file.
[[nodiscard]] Result<ProcessInfo> parse_proc_status(std::string_view text, std::string_view source);

// /proc/<pid>/cmdline: arguments separated by NUL; one trailing NUL is dropped. Empty text (a
// kernel thread, a zombie) gives no arguments.
[[nodiscard]] std::vector<std::string> parse_cmdline(std::string_view text);

// Reads status, comm and cmdline of one process. A process that does not exist (or exits while
// being read) gives an error with code ENOENT.
[[nodiscard]] Result<ProcessInfo> read_process(const HostRoot& root, std::int64_t pid);

// The value of `name` in /proc/<pid>/environ (NUL-separated NAME=value entries, as the process
// started); nullopt when it is not set. The first entry wins, as in getenv().
[[nodiscard]] std::optional<std::string> parse_environ_value(std::string_view environ, std::string_view name);
// Reading another user's environ needs root (or the same user): EACCES is then the error.
[[nodiscard]] Result<std::optional<std::string>> read_environ_value(const HostRoot& root, std::int64_t pid,
                                                                    std::string_view name);

// cgroup.procs: one pid per line. Sorted and without duplicates (v1 allows both); 0 (a process
// in a pid namespace the reader cannot see) is dropped.
[[nodiscard]] Result<std::vector<std::int64_t>> parse_cgroup_procs(std::string_view text, std::string_view source);

// The pids in a container's memory cgroup and in the cgroups below it (memory is accounted to
// the whole subtree). Fails when the cgroup itself cannot be read; a child cgroup that vanishes
// while being read is skipped.
[[nodiscard]] Result<std::vector<std::int64_t>> read_cgroup_pids(const CgroupLayout& layout,
                                                                 const CgroupLocation& where);

// Sorted pids of every /proc/<pid> whose comm equals `comm`. The kernel keeps 15 characters of a
// name, so a longer `comm` ("ollama_llama_server") matches on its first 15. Entries that vanish or
// cannot be read while scanning are skipped; fails only when /proc cannot be listed.
[[nodiscard]] Result<std::vector<std::int64_t>> find_processes_by_comm(const HostRoot& root, std::string_view comm);

}  // namespace mw::probes
