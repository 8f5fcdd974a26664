// Durations typed by people: "2s", "500ms", "1.5m", "1h", "30d"; a bare number is seconds.
#pragma once

#include <chrono>
#include <string_view>

#include "core/error.hpp"

namespace mw {

// A decimal number (digits and at most one point) and a unit: ms, s, m or min, h, d (24 h); none is seconds.
// Refused, with an error naming `source` (an option, a config key, a query parameter): empty, a sign, an
// exponent, "nan", "inf", an unknown unit, spaces, and anything longer than 1e12 ms (about 31 years).
// Rounded to the nearest millisecond.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view source);

}  // namespace mw
