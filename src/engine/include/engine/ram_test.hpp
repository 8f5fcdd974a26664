// `memwarden test ram SIZE...` (issue 14, in progress): for each size, memwarden's static helper
// (memwarden-alloc) allocates and writes SIZE inside a container limited to it, checking the safety floor
// before every chunk, and reports what it reached. The image is made by memwarden from the helper itself
// (docker import of an in-memory tarball): no registry.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/ram_test.hpp"
#include "engine/defaults.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

// Where each size runs.
enum class RamIsolation {
  container,  // a container limited to it (memwarden's own image, or --image)
  cgroup,     // --no-docker: the helper as a child process in a transient cgroup of its own
};

struct RamTestOptions {
  probes::HostRoot root;
  std::string docker_host;
  std::chrono::milliseconds docker_timeout{k_docker_timeout};
  std::vector<std::uint64_t> sizes;
  SafetyFloor floor;
  std::string image;        // --image: one holding /memwarden-alloc; "" = memwarden's own
  std::string helper_path;  // the static helper put into memwarden's own image
  std::chrono::milliseconds per_size_limit{std::chrono::minutes(10)};
  // --container-limit: the container's limit instead of ram_test_limit(size) (to see what a smaller one does).
  std::optional<std::uint64_t> container_limit;
  RamIsolation isolation = RamIsolation::container;
  // --hold: the whole size is held this long before it is freed (the floor is still checked meanwhile).
  std::chrono::milliseconds hold{0};
  const std::atomic<bool>* stop = nullptr;  // set by Ctrl-C: the running size stops, frees and is removed
};

// The limit of the container a size runs in: the size, plus the helper itself and the page tables the kernel
// charges to the container (8 bytes per 4 KiB page: size/512; twice that for room).
[[nodiscard]] constexpr std::uint64_t ram_test_limit(std::uint64_t size) {
  return size + (64ULL << 20) + size / 256;
}

// What a size's run says about the host (issue 14's exit codes: 0, 4, 3).
enum class RamVerdict {
  passed,          // reached
  not_possible,    // refused as larger than the host, stopped by the floor, OOM-killed, an allocation failed
  source_missing,  // MemTotal, MemAvailable or the swap counters could not be read
  failed,          // the engine or the helper failed
  interrupted,     // Ctrl-C, SIGTERM, or the time limit
};

struct RamTestRun {
  std::uint64_t size = 0;
  std::optional<std::string> refused;  // before anything was allocated
  std::optional<std::string> error;    // the engine or the helper failed
  RamVerdict verdict = RamVerdict::failed;
  std::optional<std::uint64_t> reached;  // unknown when the helper was killed before it could say
  double seconds = 0;
  std::optional<std::uint64_t> min_available;
  std::uint64_t swap_in_pages = 0;
  std::uint64_t swap_out_pages = 0;
  std::uint64_t container_limit = 0;
  std::optional<double> psi_full_peak;
  std::string stop;  // the helper's reason: "reached", "reserve", "swap-in", ...; "oom-killed"; "" when it did not run
  bool oom_killed = false;
  std::optional<double> held_seconds;  // --hold: how long the whole size was held (unknown when not said)
  std::string cgroup;                  // --no-docker: the cgroup's directory

  [[nodiscard]] std::optional<double> gb_per_s() const;
};

struct RamTestResult {
  RamIsolation isolation = RamIsolation::container;
  std::string image;  // "" with --no-docker
  // Leftovers of earlier runs: removed ones, and those of another memwarden still running (left alone).
  std::vector<std::string> notes;
  std::vector<RamTestRun> runs;
};

// The label of every ram-test container, and the one naming the memwarden process that made it.
inline constexpr const char* k_ram_test_label = "memwarden.test";
inline constexpr const char* k_ram_test_label_value = "ram";
inline constexpr const char* k_ram_test_pid_label = "memwarden.pid";
inline constexpr const char* k_ram_test_owner_label = "memwarden.owner";      // core::owner_label
inline constexpr const char* k_ram_test_expires_label = "memwarden.expires";  // unix seconds

[[nodiscard]] Expected<RamTestResult, Error> run_ram_test(const RamTestOptions& options);

}  // namespace mw::engine
