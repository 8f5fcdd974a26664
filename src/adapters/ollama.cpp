#include "adapters/ollama.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <tuple>

#include "adapters/json_fields.hpp"
#include "core/text.hpp"

namespace mw::adapters {

using nlohmann::json;

namespace {

// A size in bytes: an integer >= 0. nullopt when absent or wrong (the error is then in `f`).
std::optional<std::uint64_t> read_size(JsonFields& f, std::string_view key) {
  const auto value = f.integer(key);
  if (!value) {
    return std::nullopt;
  }
  if (*value < 0) {
    f.wrong_type(key, fmt::format("a non-negative integer, got {}", *value));
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(*value);
}

// One entry of /api/ps or /api/tags; both share the fields they have in common, and /api/ps adds
// size_vram, expires_at and context_length.
Result<OllamaModel> parse_model(const json& item, std::string_view source, std::size_t index) {
  const std::string src(source);
  const std::string prefix = fmt::format("models[{}].", index);
  if (!item.is_object()) {
    return fail(src, fmt::format("field models[{}]: expected an object", index));
  }
  JsonFields f(item, src, prefix);
  OllamaModel m;
  m.name = f.string("name");
  m.model = f.string("model");
  m.digest = f.string("digest");
  m.size = read_size(f, "size").value_or(0);
  m.size_vram = read_size(f, "size_vram").value_or(0);
  m.context_length = read_size(f, "context_length");
  m.expires_at = f.string("expires_at");
  if (const auto* details = f.object("details")) {
    JsonFields df(*details, src, prefix + "details.");
    m.family = df.string("family");
    m.parameter_size = df.string("parameter_size");
    m.quantization_level = df.string("quantization_level");
    if (df.error()) {
      return unexpected(*df.error());
    }
  }
  if (f.error()) {
    return unexpected(*f.error());
  }
  if (m.name.empty() && m.model.empty()) {
    return fail(src, fmt::format("models[{}] has no name", index));
  }
  if (m.name.empty()) {
    m.name = m.model;
  } else if (m.model.empty()) {
    m.model = m.name;
  }
  return m;
}

Result<std::vector<OllamaModel>> parse_model_list(std::string_view text, std::string_view source) {
  auto doc = parse_json(text, source);
  if (!doc) {
    return unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return fail(std::string(source), "expected a JSON object with a models array");
  }
  JsonFields f(*doc, std::string(source));
  const auto* models = f.array("models");
  if (f.error()) {
    return unexpected(*f.error());
  }
  std::vector<OllamaModel> out;
  if (models == nullptr) {
    return out;  // "models": null or absent: nothing loaded
  }
  out.reserve(models->size());
  std::size_t index = 0;
  for (const auto& item : *models) {
    auto model = parse_model(item, source, index++);
    if (!model) {
      return unexpected(model.error());
    }
    out.push_back(std::move(*model));
  }
  return out;
}

// A body from an HTTP error: Ollama sends {"error": "..."}.
std::string error_message(const HttpResponse& response) {
  const auto doc = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && doc.contains("error") && doc["error"].is_string()) {
    return fmt::format("HTTP {}: {}", response.status, doc["error"].get<std::string>());
  }
  return fmt::format("HTTP {}", response.status);
}

// The last non-empty line: a streamed answer ends with the object that says done.
std::string_view last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  const auto nl = text.rfind('\n');
  return nl == std::string_view::npos ? text : text.substr(nl + 1);
}

// Serializes a request body; text that is not UTF-8 is replaced rather than thrown on.
std::string dump(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Result<std::string> parse_ollama_version(std::string_view text, std::string_view source) {
  auto doc = parse_json(text, source);
  if (!doc) {
    return unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return fail(std::string(source), "expected a JSON object from /api/version");
  }
  JsonFields f(*doc, std::string(source));
  auto version = f.string("version");
  if (f.error()) {
    return unexpected(*f.error());
  }
  if (version.empty()) {
    return fail(std::string(source), "no version in the response");
  }
  return version;
}

Result<std::vector<OllamaModel>> parse_ollama_ps(std::string_view text, std::string_view source) {
  return parse_model_list(text, source);
}

Result<std::vector<OllamaModel>> parse_ollama_tags(std::string_view text, std::string_view source) {
  return parse_model_list(text, source);
}

Result<OllamaShow> parse_ollama_show(std::string_view text, std::string_view source) {
  const std::string src(source);
  auto doc = parse_json(text, source);
  if (!doc) {
    return unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return fail(src, "expected a JSON object from /api/show");
  }
  JsonFields f(*doc, src);
  OllamaShow show;
  if (const auto* details = f.object("details")) {
    JsonFields df(*details, src, "details.");
    show.family = df.string("family");
    show.parameter_size = df.string("parameter_size");
    show.quantization_level = df.string("quantization_level");
    if (df.error()) {
      return unexpected(*df.error());
    }
  }
  if (const auto* info = f.object("model_info")) {
    JsonFields mf(*info, src, "model_info.");
    show.architecture = mf.string("general.architecture");
    show.parameter_count = read_size(mf, "general.parameter_count");
    if (mf.error()) {
      return unexpected(*mf.error());
    }
    for (const auto& [key, value] : info->items()) {
      if (value.is_number()) {
        show.numeric_info.emplace(key, value.get<double>());
      }
    }
  }
  if (f.error()) {
    return unexpected(*f.error());
  }
  return show;
}

Expected<void, Error> parse_ollama_unload(std::string_view text, std::string_view source) {
  auto doc = parse_json(last_line(text), source);
  if (!doc) {
    return unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return fail(std::string(source), "expected a JSON object from /api/generate");
  }
  JsonFields f(*doc, std::string(source));
  const auto reason = f.string("done_reason");
  const bool done = f.boolean("done");
  if (f.error()) {
    return unexpected(*f.error());
  }
  if (reason == "unload" || done) {
    return {};
  }
  return fail(std::string(source),
              fmt::format("the server did not confirm the unload (done_reason '{}', done false)", reason));
}

OllamaClient::OllamaClient(Endpoint endpoint, std::chrono::milliseconds timeout)
    : m_http(std::move(endpoint), timeout) {}

std::string OllamaClient::source(std::string_view method, std::string_view path) const {
  return fmt::format("{} ({} {})", m_http.endpoint().text, method, path);
}

Result<std::string> OllamaClient::request(std::string_view method, std::string_view path, std::size_t max_body,
                                          std::string_view body) {
  const auto options = RequestOptions::capped(max_body);
  auto response = method == "POST" ? m_http.post(path, body, options) : m_http.get(path, options);
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 200) {
    return fail(source(method, path), error_message(*response), response->status == 404 ? ENOENT : 0);
  }
  return std::move(response->body);
}

Result<std::string> OllamaClient::version() {
  auto body = request("GET", "/api/version", k_max_version_bytes);
  if (!body) {
    return unexpected(body.error());
  }
  return parse_ollama_version(*body, source("GET", "/api/version"));
}

Result<std::vector<OllamaModel>> OllamaClient::ps() {
  auto body = request("GET", "/api/ps", k_max_ps_bytes);
  if (!body) {
    return unexpected(body.error());
  }
  return parse_ollama_ps(*body, source("GET", "/api/ps"));
}

Result<std::vector<OllamaModel>> OllamaClient::tags() {
  auto body = request("GET", "/api/tags", k_max_tags_bytes);
  if (!body) {
    return unexpected(body.error());
  }
  return parse_ollama_tags(*body, source("GET", "/api/tags"));
}

Result<OllamaShow> OllamaClient::show(std::string_view model) {
  if (model.empty()) {
    return fail(source("POST", "/api/show"), "no model name given");
  }
  // "name" is what older servers read; newer ones take "model" and ignore the rest.
  const json body = {{"model", std::string(model)}, {"name", std::string(model)}};
  auto answer = request("POST", "/api/show", k_max_show_bytes, dump(body));
  if (!answer) {
    return unexpected(answer.error());
  }
  return parse_ollama_show(*answer, source("POST", "/api/show"));
}

Expected<void, Error> OllamaClient::unload(std::string_view model) {
  if (model.empty()) {
    return fail(source("POST", "/api/generate"), "no model name given");
  }
  const json body = {{"model", std::string(model)}, {"keep_alive", 0}};
  auto answer = request("POST", "/api/generate", k_max_unload_bytes, dump(body));
  if (!answer) {
    return unexpected(answer.error());
  }
  return parse_ollama_unload(*answer, source("POST", "/api/generate"));
}

Expected<void, Error> OllamaClient::load(std::string_view model, std::string_view keep_alive,
                                         std::optional<std::uint64_t> num_ctx) {
  if (model.empty()) {
    return fail(source("POST", "/api/generate"), "no model name given");
  }
  // No prompt: the server loads the model and answers with done true and an empty response. Ollama reads a string
  // keep_alive as a Go duration ("5m", "-1s"), where "300" or "-1" is an error: a plain number goes as a number
  // (seconds), and "" leaves it out (the server's default applies).
  json body = {{"model", std::string(model)}, {"stream", false}};
  if (const auto seconds = parse_i64(keep_alive)) {
    body["keep_alive"] = *seconds;
  } else if (!keep_alive.empty()) {
    body["keep_alive"] = std::string(keep_alive);
  }
  if (num_ctx) {
    body["options"] = {{"num_ctx", *num_ctx}};
  }
  auto answer = request("POST", "/api/generate", k_max_unload_bytes, dump(body));
  if (!answer) {
    return unexpected(answer.error());
  }
  return {};
}

}  // namespace mw::adapters
