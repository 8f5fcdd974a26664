#include "adapters/json_fields.hpp"

#include <fmt/format.h>

namespace mw::adapters {

Result<nlohmann::json> parse_json(std::string_view text, std::string_view source) {
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    const auto preview = text.substr(0, 40);
    return fail(std::string(source), fmt::format("invalid JSON in the response (starts with '{}')",
                                                 text.empty() ? std::string_view("<empty>") : preview));
  }
  return parsed;
}

const nlohmann::json* JsonFields::member(std::string_view key) const {
  if (!m_object.is_object()) {
    return nullptr;
  }
  const auto it = m_object.find(key);
  if (it == m_object.end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

void JsonFields::wrong_type(std::string_view key, std::string_view expected) {
  if (!m_error) {
    m_error = Error{m_source, fmt::format("field {}: expected {}", field_name(key), expected)};
  }
}

std::string JsonFields::string(std::string_view key, std::string fallback) {
  const auto* v = member(key);
  if (v == nullptr) {
    return fallback;
  }
  if (!v->is_string()) {
    wrong_type(key, "a string");
    return fallback;
  }
  return v->get<std::string>();
}

std::optional<std::int64_t> JsonFields::integer(std::string_view key) {
  const auto* v = member(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_number_integer()) {
    return v->get<std::int64_t>();
  }
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(INT64_MAX)) {
      return static_cast<std::int64_t>(u);
    }
  }
  wrong_type(key, "an integer");
  return std::nullopt;
}

std::optional<double> JsonFields::number(std::string_view key) {
  const auto* v = member(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_number()) {
    wrong_type(key, "a number");
    return std::nullopt;
  }
  return v->get<double>();
}

bool JsonFields::boolean(std::string_view key, bool fallback) {
  const auto* v = member(key);
  if (v == nullptr) {
    return fallback;
  }
  if (!v->is_boolean()) {
    wrong_type(key, "true or false");
    return fallback;
  }
  return v->get<bool>();
}

const nlohmann::json* JsonFields::object(std::string_view key) {
  const auto* v = member(key);
  if (v != nullptr && !v->is_object()) {
    wrong_type(key, "an object");
    return nullptr;
  }
  return v;
}

const nlohmann::json* JsonFields::array(std::string_view key) {
  const auto* v = member(key);
  if (v != nullptr && !v->is_array()) {
    wrong_type(key, "an array");
    return nullptr;
  }
  return v;
}

}  // namespace mw::adapters
