#include "core/duration.hpp"

#include <fmt/format.h>

#include <cmath>

#include "core/bytes.hpp"

namespace mw {

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view source) {
  std::size_t digits = 0;
  while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  const auto number = parse_double(text.substr(0, digits));
  const auto unit = text.substr(digits);
  double factor = 0;
  if (unit.empty() || unit == "s") {
    factor = 1000;
  } else if (unit == "ms") {
    factor = 1;
  } else if (unit == "m" || unit == "min") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  }
  if (!number || factor == 0) {
    return fail(std::string(source), fmt::format("invalid duration '{}' (use e.g. 2s, 500ms, 5m, 1h)", text));
  }
  const double ms = *number * factor;
  if (ms > 1e12) {
    return fail(std::string(source), fmt::format("duration '{}' is too long", text));
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

}  // namespace mw
