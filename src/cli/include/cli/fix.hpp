// `memwarden fix`: the result (engine/fix.hpp) as text or JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/fix.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_fix(const engine::FixResult& result, engine::RunMode mode);
[[nodiscard]] nlohmann::json fix_to_json(const engine::FixResult& result, engine::RunMode mode);

}  // namespace mw::cli
