// `memwarden diagnose`: the result (engine/diagnose.hpp) as text or JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/diagnose.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_diagnosis(const engine::DiagnoseResult& result);
[[nodiscard]] nlohmann::json diagnosis_to_json(const engine::DiagnoseResult& result);

}  // namespace mw::cli
