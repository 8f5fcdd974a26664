// `memwarden test model` and `memwarden test --history`: the results (engine/model_test.hpp) as text or JSON.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model_test.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_model_test(const engine::ModelTestResult& result);
[[nodiscard]] nlohmann::json model_test_to_json(const engine::ModelTestResult& result);

[[nodiscard]] std::string render_estimate_history(const std::vector<adapters::EstimateRecord>& records);
[[nodiscard]] nlohmann::json estimate_history_to_json(const std::vector<adapters::EstimateRecord>& records);

}  // namespace mw::cli
