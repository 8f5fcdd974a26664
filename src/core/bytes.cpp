#include "core/bytes.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>

namespace mw {

namespace {

constexpr double k_size_limit = 9223372036854775808.0;  // 2^63

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text, std::string_view source) {
  const std::string src(source);
  const auto bad = [&](std::string_view why) {
    return fail(src, fmt::format("invalid size '{}': {} (use e.g. 4G, 512M, 1.5GiB)", text, why));
  };
  std::size_t digits = 0;
  while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) {
    return bad("no number");
  }
  const auto number_text = text.substr(0, digits);
  const auto number = parse_double(number_text);
  if (!number) {
    // Well formed, yet beyond a double ("1" and 400 zeros): too large rather than malformed.
    const bool one_point = number_text.find('.') == number_text.rfind('.');
    const auto integer_part = number_text.substr(0, number_text.find('.'));
    const bool above_one = integer_part.find_first_not_of('0') != std::string_view::npos;
    return bad(one_point && above_one ? "too large" : "not a number");
  }
  std::string unit;
  for (char c : text.substr(digits)) {
    unit += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  struct Suffix {
    std::string_view name;
    std::uint64_t factor;
  };
  static constexpr std::array<Suffix, 15> k_suffixes{{{"", 1},
                                                      {"B", 1},
                                                      {"K", k_kib},
                                                      {"KB", k_kib},
                                                      {"KIB", k_kib},
                                                      {"M", k_mib},
                                                      {"MB", k_mib},
                                                      {"MIB", k_mib},
                                                      {"G", k_gib},
                                                      {"GB", k_gib},
                                                      {"GIB", k_gib},
                                                      {"T", k_tib},
                                                      {"TB", k_tib},
                                                      {"TIB", k_tib},
                                                      {"BYTES", 1}}};
  for (const auto& suffix : k_suffixes) {
    if (unit == suffix.name) {
      // Below 2^63 (8 EiB): llround's long long holds it, and so does an SQLite integer or a JSON number.
      const double bytes = *number * static_cast<double>(suffix.factor);
      if (bytes >= k_size_limit) {
        return bad("too large");
      }
      return static_cast<std::uint64_t>(std::llround(bytes));
    }
  }
  return bad(fmt::format("unknown unit '{}'", text.substr(digits)));
}

std::string format_cap(std::uint64_t bytes) {
  if (bytes >= k_mib && bytes % k_mib == 0) {
    return fmt::format("{} MiB", bytes / k_mib);
  }
  if (bytes >= k_kib && bytes % k_kib == 0) {
    return fmt::format("{} KiB", bytes / k_kib);
  }
  return fmt::format("{} bytes", bytes);
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 6> k_units{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < k_kib) {
    return fmt::format("{} B", bytes);
  }
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < k_units.size()) {
    value /= 1024.0;
    ++unit;
  }
  // Three significant digits at most: "25.2 GiB", "624 KiB", "1.50 GiB".
  if (value >= 99.95) {
    return fmt::format("{:.0f} {}", value, k_units[unit]);
  }
  if (value >= 9.995) {
    return fmt::format("{:.1f} {}", value, k_units[unit]);
  }
  return fmt::format("{:.2f} {}", value, k_units[unit]);
}

}  // namespace mw
