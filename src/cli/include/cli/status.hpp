// `memwarden status`: the report (engine/status.hpp) as a table or JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/status.hpp"

namespace mw::cli {

// A table that fits 100 columns; missing values print as "-", never as 0.
[[nodiscard]] std::string render_status_table(const engine::StatusResult& result);
// The documented, stable JSON schema (docs/status-json.md): bytes as integers, unknown as null.
[[nodiscard]] nlohmann::json status_to_json(const engine::StatusResult& result);

}  // namespace mw::cli
