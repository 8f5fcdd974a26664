// Byte quantities: parsing sizes typed by people and formatting them back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

#include "core/text.hpp"  // parse_u64, parse_double: most callers of the byte helpers want them too

namespace mw {

inline constexpr std::uint64_t k_kib = 1024;
inline constexpr std::uint64_t k_mib = 1024 * k_kib;
inline constexpr std::uint64_t k_gib = 1024 * k_mib;
inline constexpr std::uint64_t k_tib = 1024 * k_gib;

// "4G", "4GiB", "4gb", "512M", "1.5G", "1048576" -> bytes. Suffixes are binary
// (K = 1024), as in `docker run -m`. The error names `source` (e.g. "--reserve"). Refused: empty, a sign,
// an exponent, "nan", "inf", an unknown unit, and 8 EiB (2^63 bytes) or more.
[[nodiscard]] Result<std::uint64_t> parse_size(std::string_view text, std::string_view source);

// Bytes in the largest binary unit that keeps the number >= 1: "25.2 GiB", "624 KiB", "0 B".
[[nodiscard]] std::string format_bytes(std::uint64_t bytes);
// A cap, exactly: "64 MiB", "256 KiB", "1000 bytes" (whole MiB or KiB only when it divides).
[[nodiscard]] std::string format_cap(std::uint64_t bytes);

// a - b, or 0 when b > a (kernel counters are sampled non-atomically).
[[nodiscard]] constexpr std::uint64_t saturating_sub(std::uint64_t a, std::uint64_t b) {
  return a > b ? a - b : 0;
}

}  // namespace mw
