// `memwarden test vram`: the result (engine/vram_test.hpp) as text or JSON, and its exit code.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/vram_test.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_vram_test(const engine::VramTestResult& result);
[[nodiscard]] nlohmann::json vram_test_to_json(const engine::VramTestResult& result);
// 0 reached, 4 not possible (refused, the reserve, out of memory), 1 a failure (the GPU lost, a driver error,
// memory not given back), 130 interrupted. A missing source (3) never gets this far.
[[nodiscard]] int vram_test_exit_code(const engine::VramTestResult& result);

}  // namespace mw::cli
