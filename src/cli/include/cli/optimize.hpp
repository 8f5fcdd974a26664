// `memwarden optimize`: the report of a run (text, JSON) and of --undo.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/optimize.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_optimize(const engine::OptimizeRun& run, engine::SettingsUse settings);
[[nodiscard]] nlohmann::json optimize_to_json(const engine::OptimizeRun& run);
[[nodiscard]] std::string render_undo(const engine::UndoReport& report);
[[nodiscard]] nlohmann::json undo_to_json(const engine::UndoReport& report);

}  // namespace mw::cli
