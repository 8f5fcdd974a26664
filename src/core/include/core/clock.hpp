// Time as the rest of memwarden sees it: milliseconds on a monotonic clock.
// core never reads a clock; callers pass timestamps in, and code that needs
// "now" takes a Clock& so tests can inject a fake one.
#pragma once

#include <chrono>

namespace mw {

using Timestamp = std::chrono::milliseconds;  // since the monotonic clock's epoch (CLOCK_MONOTONIC on Linux)
using Duration = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Timestamp now() const = 0;
  // Blocks until `until` (a real clock sleeps; a fake one jumps there).
  virtual void sleep_until(Timestamp until) = 0;
};

}  // namespace mw
