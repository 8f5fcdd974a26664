// Durations typed by people: "2s", "500ms", "1.5m", "1h"; a bare number is seconds.
#pragma once

#include <chrono>
#include <string_view>

#include "core/error.hpp"

namespace mw {

[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view source);

}  // namespace mw
