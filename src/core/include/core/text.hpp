// Small text helpers shared by the layers: ASCII case folding and the edit distance behind "did you
// mean" suggestions (config keys, model names).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mw {

[[nodiscard]] constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
[[nodiscard]] std::string ascii_lower(std::string_view text);
[[nodiscard]] bool equals_ignoring_case(std::string_view a, std::string_view b);

// Levenshtein distance between two strings, ignoring ASCII case.
[[nodiscard]] std::size_t edit_distance_ignoring_case(std::string_view a, std::string_view b);

// Text from outside (a label, a container name, a server's answer) made safe for one log line or a
// notification: control characters become \n, \r, \t or \xNN, so a value cannot start a forged line.
[[nodiscard]] std::string escape_control(std::string_view text);

}  // namespace mw
