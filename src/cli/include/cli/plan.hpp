// `memwarden plan`: the plans (engine/plan.hpp) as text or JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/plan.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_plan(const engine::PlanResult& result);
[[nodiscard]] nlohmann::json plan_to_json(const engine::PlanResult& result);

}  // namespace mw::cli
