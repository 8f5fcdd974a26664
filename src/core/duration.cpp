#include "core/duration.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstdint>

#include "core/bytes.hpp"

namespace mw {

namespace {

struct Unit {
  std::string_view name;
  double ms;
};

// A bare number is seconds. "d" is a day of 24 h, as the configuration file has always read it.
constexpr std::array<Unit, 7> k_units{
    {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"min", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};

// About 31.7 years: far beyond any time-out, retention or window memwarden has, and exact in a double.
constexpr double k_longest_ms = 1e12;

}  // namespace

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view source) {
  const auto invalid = [&] {
    return fail(std::string(source), fmt::format("invalid duration '{}' (use e.g. 2s, 500ms, 5m, 1h, 1d)", text));
  };
  // Digits and a point, then a unit: no sign (nothing lasts less than 0), no exponent, no "nan" or "inf".
  std::size_t digits = 0;
  while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  const auto number_text = text.substr(0, digits);
  const auto unit_text = text.substr(digits);
  const Unit* unit = nullptr;
  for (const auto& u : k_units) {
    if (u.name == unit_text) {
      unit = &u;
    }
  }
  if (unit == nullptr) {
    return invalid();
  }
  const auto number = parse_double(number_text);
  if (!number) {
    // Well formed, yet beyond a double ("1" and 400 zeros): too long rather than malformed.
    const bool one_point = number_text.find('.') == number_text.rfind('.');
    const auto integer_part = number_text.substr(0, number_text.find('.'));
    if (one_point && integer_part.find_first_not_of('0') != std::string_view::npos) {
      return fail(std::string(source), fmt::format("duration '{}' is too long", text));
    }
    return invalid();
  }
  const double ms = *number * unit->ms;
  if (ms > k_longest_ms) {
    return fail(std::string(source), fmt::format("duration '{}' is too long", text));
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

}  // namespace mw
