#include "core/ram_test.hpp"
#include "core/text.hpp"

#include <vector>

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

std::string owner_label(const TestOwner& owner) {
  return fmt::format("{}/{}/{}/{}", owner.boot_id, owner.pid_namespace, owner.pid, owner.start_time);
}

std::optional<TestOwner> parse_owner_label(std::string_view text) {
  std::vector<std::string_view> parts;
  while (parts.size() < 5) {
    const auto slash = text.find('/');
    parts.push_back(text.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    text.remove_prefix(slash + 1);
  }
  if (parts.size() != 4 || parts[0].empty() || parts[1].empty()) {
    return std::nullopt;
  }
  const auto pid = parse_u64(parts[2]);
  const auto start = parse_u64(parts[3]);
  if (!pid || *pid == 0 || *pid > (1ULL << 31) || !start) {
    return std::nullopt;
  }
  return TestOwner{std::string(parts[0]), std::string(parts[1]), static_cast<std::int64_t>(*pid), *start};
}

std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) {
    return std::nullopt;
  }
  stat.remove_prefix(close + 1);
  // After the command: field 3 (state) is the first; the start time is field 22, the 20th from here.
  for (int field = 3; field <= 22; ++field) {
    while (!stat.empty() && stat.front() == ' ') {
      stat.remove_prefix(1);
    }
    const auto end = stat.find(' ');
    const auto word = stat.substr(0, end);
    if (word.empty()) {
      return std::nullopt;
    }
    if (field == 22) {
      return parse_u64(word);
    }
    stat.remove_prefix(end == std::string_view::npos ? stat.size() : end);
  }
  return std::nullopt;
}

OwnerState owner_state(const TestOwner& owner, const std::optional<TestOwner>& self,
                       std::optional<std::uint64_t> start_time_now) {
  if (!self) {
    return OwnerState::unknown;
  }
  if (owner.boot_id != self->boot_id) {
    return OwnerState::gone;  // the host was restarted since: that memwarden is gone with it
  }
  if (owner.pid_namespace != self->pid_namespace) {
    return OwnerState::unknown;  // its pids are not ours to look up
  }
  return start_time_now == owner.start_time ? OwnerState::alive : OwnerState::gone;
}

Leftover leftover_action(OwnerState owner, bool expired) {
  return owner == OwnerState::gone || expired ? Leftover::remove : Leftover::leave;
}

}  // namespace mw
