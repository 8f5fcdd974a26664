// `memwarden profiles` and `memwarden deploy`: the engine's results (engine/profiles.hpp,
// engine/deploy.hpp) as text or JSON.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/deploy.hpp"
#include "engine/profiles.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_profiles(const engine::ProfilesResult& result);
[[nodiscard]] nlohmann::json profiles_to_json(const engine::ProfilesResult& result);

// What a deployment will create (or did): the container, its limit beside the plan, admission.
[[nodiscard]] std::string render_prepared(const engine::PreparedDeployment& prepared);
[[nodiscard]] nlohmann::json prepared_to_json(const engine::PreparedDeployment& prepared);
[[nodiscard]] std::string render_report(const engine::DeployReport& report);
[[nodiscard]] nlohmann::json report_to_json(const engine::DeployReport& report);
[[nodiscard]] std::string render_load(const std::vector<engine::LoadComparison>& loads);
[[nodiscard]] nlohmann::json load_to_json(const std::vector<engine::LoadComparison>& loads);

}  // namespace mw::cli
