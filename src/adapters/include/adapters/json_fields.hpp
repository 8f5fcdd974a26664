// Typed access to JSON fields that names the field in errors, for parsing
// what services send: unknown fields are ignored, missing optional fields take
// a default, a field of the wrong type is an error.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mw::adapters {

class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string source, std::string prefix = "")
      : m_object(object), m_source(std::move(source)), m_prefix(std::move(prefix)) {}

  // The first wrong-typed field seen, if any.
  [[nodiscard]] const std::optional<Error>& error() const { return m_error; }

  [[nodiscard]] std::string string(std::string_view key, std::string fallback = "");
  [[nodiscard]] std::optional<std::int64_t> integer(std::string_view key);
  [[nodiscard]] std::optional<double> number(std::string_view key);
  [[nodiscard]] bool boolean(std::string_view key, bool fallback = false);
  // The member if it is an object (or null/absent → nullptr); wrong type is an error.
  [[nodiscard]] const nlohmann::json* object(std::string_view key);
  [[nodiscard]] const nlohmann::json* array(std::string_view key);

  [[nodiscard]] std::string field_name(std::string_view key) const { return m_prefix + std::string(key); }
  void wrong_type(std::string_view key, std::string_view expected);

 private:
  [[nodiscard]] const nlohmann::json* member(std::string_view key) const;

  const nlohmann::json& m_object;
  std::string m_source;
  std::string m_prefix;
  std::optional<Error> m_error;
};

// Parses text as JSON; the error names the source and says where it broke.
[[nodiscard]] Result<nlohmann::json> parse_json(std::string_view text, std::string_view source);

}  // namespace mw::adapters
