// Small text helpers shared by the layers: ASCII case folding, the edit distance behind "did you
// mean" suggestions (config keys, model names), and the strict parsers of numbers typed by people.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mw {

[[nodiscard]] constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
[[nodiscard]] std::string ascii_lower(std::string_view text);

// Without the spaces and tabs at both ends, and a carriage return at the end (a line read from a file or a
// header).
[[nodiscard]] std::string_view trim(std::string_view text);

// The whole text as a decimal number; nullopt for anything else (empty, a sign where none belongs, spaces,
// trailing characters, out of range). parse_double also refuses a sign, NaN and infinities.
[[nodiscard]] std::optional<std::uint64_t> parse_u64(std::string_view text);
[[nodiscard]] std::optional<std::int64_t> parse_i64(std::string_view text);
[[nodiscard]] std::optional<double> parse_double(std::string_view text);
[[nodiscard]] bool equals_ignoring_case(std::string_view a, std::string_view b);

// Levenshtein distance between two strings, ignoring ASCII case.
[[nodiscard]] std::size_t edit_distance_ignoring_case(std::string_view a, std::string_view b);

// Text from outside (a label, a container name, a server's answer) made safe for one log line or a
// notification: control characters become \n, \r, \t or \xNN, so a value cannot start a forged line.
[[nodiscard]] std::string escape_control(std::string_view text);

// A whole number typed by people (a command-line option), from min to max inclusive. Decimal digits only,
// the whole string: no sign, no spaces, no "0x"; leading zeros are decimal ("010" is 10, never 8). The
// error names `source` (e.g. "--budget"): "'-1' is not a whole number from 0 to 1000".
[[nodiscard]] Result<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t min, std::uint64_t max,
                                                   std::string_view source);

// A decimal number typed by people, from min to max inclusive: digits with at most one '.' ("256", "0.5",
// ".5"), the whole string: no sign, no exponent, no "nan" or "inf", no spaces, no hexadecimal. The error
// names `source`: "'nan' is not a number from 0.1 to 1048576".
[[nodiscard]] Result<double> parse_finite_double(std::string_view text, double min, double max,
                                                 std::string_view source);

}  // namespace mw
