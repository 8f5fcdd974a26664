// A process as /proc describes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mw {

struct ProcessInfo {
  std::int64_t pid = 0;
  std::optional<std::int64_t> ppid;
  std::string comm;                              // /proc/<pid>/comm (at most 15 characters)
  std::vector<std::string> argv;                 // /proc/<pid>/cmdline split at NUL; empty for kernel threads
  std::optional<std::uint64_t> rss_bytes;        // VmRSS
  std::optional<std::uint64_t> rss_anon_bytes;   // RssAnon (Linux 4.5+)
  std::optional<std::uint64_t> rss_file_bytes;   // RssFile
  std::optional<std::uint64_t> rss_shmem_bytes;  // RssShmem
};

// What a sample keeps of a server's processes (docs/serve.md, "Memory"): the processes that hold the
// most memory, and of each the first arguments, each cut to a length.
inline constexpr std::size_t k_max_processes_kept = 8;
inline constexpr std::size_t k_max_argv_kept = 4;
inline constexpr std::size_t k_max_arg_bytes = 128;

// Cuts argv to k_max_argv_kept arguments of at most k_max_arg_bytes each.
void bound_argv(std::vector<std::string>& argv);
// Keeps the `max` processes with the most resident memory (anon where known), in their order;
// returns how many were dropped.
std::size_t keep_largest_processes(std::vector<ProcessInfo>& processes, std::size_t max = k_max_processes_kept);

}  // namespace mw
