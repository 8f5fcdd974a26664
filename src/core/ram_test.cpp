#include "core/ram_test.hpp"

#include <fmt/format.h>

#include "core/bytes.hpp"

namespace mw {

const char* to_string(StopReason reason) {
  switch (reason) {
    case StopReason::reached:
      return "reached";
    case StopReason::reserve:
      return "reserve";
    case StopReason::swap_in:
      return "swap-in";
    case StopReason::swap_out:
      return "swap-out";
    case StopReason::pressure:
      return "pressure";
    case StopReason::unreadable:
      return "unreadable";
    case StopReason::allocation_failed:
      return "allocation-failed";
    case StopReason::interrupted:
      return "interrupted";
  }
  return "?";
}

std::optional<StopReason> check_floor(const SafetyFloor& floor, const HostGauge& baseline, const HostGauge& now,
                                      std::uint64_t next_chunk) {
  if (!now.mem_available || !now.pswpin || !baseline.pswpin) {
    return StopReason::unreadable;
  }
  if (*now.pswpin > *baseline.pswpin) {
    return StopReason::swap_in;
  }
  if (now.pswpout && baseline.pswpout && *now.pswpout > *baseline.pswpout) {
    return StopReason::swap_out;
  }
  if (now.psi_full_avg10 && *now.psi_full_avg10 > floor.psi_full_max) {
    return StopReason::pressure;
  }
  if (*now.mem_available < floor.reserve || *now.mem_available - floor.reserve < next_chunk) {
    return StopReason::reserve;
  }
  return std::nullopt;
}

std::optional<std::string> refuse_size(std::uint64_t size, std::optional<std::uint64_t> mem_total,
                                       std::uint64_t reserve, const std::string& source) {
  if (size == 0) {
    return fmt::format("{}: a size of 0 tests nothing", source);
  }
  if (!mem_total) {
    return fmt::format("{}: the host's MemTotal is unknown, so no size can be checked against it", source);
  }
  if (*mem_total <= reserve || size > *mem_total - reserve) {
    return fmt::format("{}: {} is more than this host's {} less the {} reserve", source, format_bytes(size),
                       format_bytes(*mem_total), format_bytes(reserve));
  }
  return std::nullopt;
}

Leftover leftover_action(std::string_view state, std::optional<bool> owner_alive) {
  if (state == "exited" || state == "dead") {
    return Leftover::remove;
  }
  if (state == "created" && owner_alive != true) {
    return Leftover::remove;
  }
  return Leftover::leave_busy;
}

}  // namespace mw
