// What the kernel says about the host's memory. Every field is optional: a
// key the kernel did not print is unknown, never zero.
#pragma once

#include <cstdint>
#include <optional>

namespace mw {

// /proc/meminfo, converted from kB to bytes.
struct MemInfo {
  std::optional<std::uint64_t> mem_total;
  std::optional<std::uint64_t> mem_free;
  std::optional<std::uint64_t> mem_available;  // absent before Linux 3.14
  std::optional<std::uint64_t> buffers;
  std::optional<std::uint64_t> cached;  // page cache, includes Shmem
  std::optional<std::uint64_t> swap_cached;
  std::optional<std::uint64_t> active_file;
  std::optional<std::uint64_t> inactive_file;
  std::optional<std::uint64_t> anon_pages;
  std::optional<std::uint64_t> mapped;
  std::optional<std::uint64_t> shmem;
  std::optional<std::uint64_t> swap_total;
  std::optional<std::uint64_t> swap_free;

  // MemTotal - MemAvailable: what free(1) calls "used" since procps 4.
  [[nodiscard]] std::optional<std::uint64_t> used() const;
  // SwapTotal - SwapFree.
  [[nodiscard]] std::optional<std::uint64_t> swap_used() const;
};

// One line of a PSI file: share of wall time stalled on memory, in percent.
struct PressureLine {
  double avg10 = 0;
  double avg60 = 0;
  double avg300 = 0;
  std::uint64_t total_us = 0;  // cumulative stall time in microseconds
};

// /proc/pressure/memory or a cgroup's memory.pressure. "full" is absent on
// some kernels' system-wide CPU file, so both lines are optional.
struct Pressure {
  std::optional<PressureLine> some;
  std::optional<PressureLine> full;
};

// Counters from /proc/vmstat (cumulative since boot).
struct VmStat {
  std::optional<std::uint64_t> pswpin;   // pages swapped in
  std::optional<std::uint64_t> pswpout;  // pages swapped out
  std::optional<std::uint64_t> pgmajfault;
  std::optional<std::uint64_t> oom_kill;  // since Linux 4.13
};

}  // namespace mw
