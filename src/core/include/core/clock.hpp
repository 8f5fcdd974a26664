// Time as the rest of memwarden sees it: milliseconds on a monotonic clock.
// core never reads a clock; callers pass timestamps in, and code that needs
// "now" takes a Clock& so tests can inject a fake one.
#pragma once

#include <chrono>
#include <cstdint>

namespace mw {

using Duration = std::chrono::milliseconds;

// The clock Timestamp's epoch belongs to: CLOCK_MONOTONIC on Linux (std::chrono::steady_clock). core
// never calls it; it only names the epoch, so that a Timestamp is a point in time: one minus another is
// a Duration, a Timestamp plus a Duration is a Timestamp, and two Timestamps cannot be added.
struct MonotonicEpoch {
  using rep = Duration::rep;
  using period = Duration::period;
  using duration = Duration;
  using time_point = std::chrono::time_point<MonotonicEpoch, Duration>;
  static constexpr bool is_steady = true;
};
using Timestamp = MonotonicEpoch::time_point;

// Milliseconds since the epoch, for storage, JSON and logs; and back.
[[nodiscard]] constexpr std::int64_t to_ms(Timestamp t) {
  return t.time_since_epoch().count();
}
[[nodiscard]] constexpr Timestamp timestamp_from_ms(std::int64_t ms) {
  return Timestamp{Duration{ms}};
}

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Timestamp now() const = 0;
  // Blocks until `until` (a real clock sleeps; a fake one jumps there).
  virtual void sleep_until(Timestamp until) = 0;
};

}  // namespace mw
