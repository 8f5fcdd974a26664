// A process as /proc describes it.
#pragma once

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

}  // namespace mw
