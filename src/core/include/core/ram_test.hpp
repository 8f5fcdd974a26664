// `memwarden test ram` (issue 14, in progress): the safety floor an allocation test checks before every
// chunk, and the refusal of sizes the host cannot give at all. Pure: the readings come in, the decision
// comes out; the allocation itself and the host's files are elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mw {

// When a test must stop at once and free everything.
struct SafetyFloor {
  std::uint64_t reserve = 4ULL << 30;  // MemAvailable may not fall under it (--reserve)
  double psi_full_max = 10.0;          // /proc/pressure/memory full avg10, percent
};

// What the host says now; a value the kernel did not give is unknown, never 0.
struct HostGauge {
  std::optional<std::uint64_t> mem_available;  // /proc/meminfo
  std::optional<std::uint64_t> pswpin;         // /proc/vmstat, pages swapped in since boot
  std::optional<std::uint64_t> pswpout;        // pages swapped out: the host pushing others out for the test
  std::optional<double> psi_full_avg10;        // /proc/pressure/memory (kernels without PSI: unknown)
};

enum class StopReason {
  reached,            // the whole size was allocated and touched
  reserve,            // the next chunk would take MemAvailable under the reserve
  swap_in,            // the host swapped in since the test began
  swap_out,           // the host swapped out since the test began
  pressure,           // PSI full avg10 rose above the threshold
  unreadable,         // MemAvailable or the swap counter could not be read: no floor, no test
  allocation_failed,  // mmap or MADV_POPULATE_WRITE failed (inside the limit: the cgroup said no)
  interrupted,        // Ctrl-C or SIGTERM
};
[[nodiscard]] const char* to_string(StopReason reason);  // "reached", "reserve", "swap-in", ...

// Before a chunk of `next_chunk` bytes: the reason to stop now, or nullopt to go on. `baseline` is the
// reading before the first chunk; any swap-in since then stops the test.
[[nodiscard]] std::optional<StopReason> check_floor(const SafetyFloor& floor, const HostGauge& baseline,
                                                    const HostGauge& now, std::uint64_t next_chunk);

// A size the host cannot give even empty (more than MemTotal less the reserve, or 0): why, in one line
// naming `source`; nullopt when it may be tried.
[[nodiscard]] std::optional<std::string> refuse_size(std::uint64_t size, std::optional<std::uint64_t> mem_total,
                                                     std::uint64_t reserve, const std::string& source);

// Who started a ram-test container, labelled on it: enough to tell later whether that memwarden still runs.
struct TestOwner {
  std::string boot_id;        // /proc/sys/kernel/random/boot_id
  std::string pid_namespace;  // where /proc/self/ns/pid points: "pid:[4026531836]"
  std::int64_t pid = 0;
  std::uint64_t start_time = 0;  // /proc/<pid>/stat field 22: clock ticks after boot
  friend bool operator==(const TestOwner&, const TestOwner&) = default;
};
// "<boot_id>/<pid namespace>/<pid>/<start time>".
[[nodiscard]] std::string owner_label(const TestOwner& owner);
[[nodiscard]] std::optional<TestOwner> parse_owner_label(std::string_view text);
// The start time in a /proc/<pid>/stat line (field 22, after the command in parentheses, which may hold spaces
// and parentheses itself).
[[nodiscard]] std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat);

enum class OwnerState {
  alive,    // the same process is still there
  gone,     // an earlier boot, or in this memwarden's pid namespace no such process (or another one) now
  unknown,  // another pid namespace (a memwarden in a container), or this memwarden cannot tell
};
// `self`: this memwarden; `start_time_now`: the start time of the owner's pid as this memwarden sees it (nullopt:
// no such process).
[[nodiscard]] OwnerState owner_state(const TestOwner& owner, const std::optional<TestOwner>& self,
                                     std::optional<std::uint64_t> start_time_now);

// What a new run does with a ram-test container from an earlier one: it goes only when its memwarden is gone, or
// when it outlived the time any memwarden gives a size (`expired`: its owner would have removed it by then).
enum class Leftover { remove, leave };
[[nodiscard]] Leftover leftover_action(OwnerState owner, bool expired);

}  // namespace mw
