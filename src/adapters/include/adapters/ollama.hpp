// Ollama HTTP API client: version, loaded models (/api/ps), installed models (/api/tags),
// model details (/api/show) and unloading a model (POST /api/generate with keep_alive 0).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http.hpp"
#include "core/error.hpp"
#include "core/ollama.hpp"

namespace mw::adapters {

inline constexpr std::string_view k_default_ollama_host = "http://127.0.0.1:11434";

// Pure parsers of the server's JSON; `source` names the request in errors. Unknown fields are
// ignored and missing optional ones left empty (context_length exists since Ollama 0.10; details
// may be absent); a field of the wrong type or a negative size is an error naming the field.

// GET /api/version: {"version":"0.5.1"} -> "0.5.1".
[[nodiscard]] Result<std::string> parse_ollama_version(std::string_view json, std::string_view source);
// GET /api/ps: {"models":[...]}, the loaded models.
[[nodiscard]] Result<std::vector<OllamaModel>> parse_ollama_ps(std::string_view json, std::string_view source);
// GET /api/tags: {"models":[...]}, the installed models (size is bytes on disk).
[[nodiscard]] Result<std::vector<OllamaModel>> parse_ollama_tags(std::string_view json, std::string_view source);
// POST /api/show.
[[nodiscard]] Result<OllamaShow> parse_ollama_show(std::string_view json, std::string_view source);
// The answer to an unload request: done_reason "unload" or done true. A streamed (NDJSON)
// answer is judged by its last object.
[[nodiscard]] Expected<void, Error> parse_ollama_unload(std::string_view json, std::string_view source);

// The most memwarden reads of each answer (docs/serve.md, "Limits"): a server that says more is
// malformed ("response larger than 256 KiB"), and its answer is not parsed.
inline constexpr std::size_t k_max_version_bytes = 4U << 10;
inline constexpr std::size_t k_max_ps_bytes = 256U << 10;  // about 600 models; a real server loads a few
inline constexpr std::size_t k_max_tags_bytes = 4U << 20;  // about 10,000 installed models
inline constexpr std::size_t k_max_show_bytes = 4U << 20;  // license, template and model_info (not verbose)
inline constexpr std::size_t k_max_unload_bytes = 64U << 10;

class OllamaClient {
 public:
  explicit OllamaClient(Endpoint endpoint, std::chrono::milliseconds timeout = std::chrono::seconds(2));

  [[nodiscard]] const Endpoint& endpoint() const { return m_http.endpoint(); }

  // Errors name the endpoint and the request, e.g. "http://127.0.0.1:11434 (GET /api/ps)"; an HTTP
  // error carries the server's {"error": "..."} text ("HTTP 404: model 'x' not found", code ENOENT).
  [[nodiscard]] Result<std::string> version();
  [[nodiscard]] Result<std::vector<OllamaModel>> ps();
  [[nodiscard]] Result<std::vector<OllamaModel>> tags();
  [[nodiscard]] Result<OllamaShow> show(std::string_view model);
  // Asks the server to unload `model` now: POST /api/generate {"model": model, "keep_alive": 0}.
  [[nodiscard]] Expected<void, Error> unload(std::string_view model);
  // Asks the server to load `model` and keep it for `keep_alive` ("5m", or seconds as "300" or "-1", sent as a number;
  // "" = the server's default): POST /api/generate without a prompt. With `num_ctx` the runner is started with that
  // context (options.num_ctx), as the requests that follow will ask for it: Ollama reloads a model asked with
  // another context.
  [[nodiscard]] Expected<void, Error> load(std::string_view model, std::string_view keep_alive,
                                           std::optional<std::uint64_t> num_ctx = std::nullopt);
  // Drops the kept-alive connection, so that memwarden is not counted as a client while draining.
  void close() { m_http.close(); }

  // "http://127.0.0.1:11434 (GET /api/ps)": how errors name a request.
  [[nodiscard]] std::string source(std::string_view method, std::string_view path) const;

 private:
  [[nodiscard]] Result<std::string> request(std::string_view method, std::string_view path, std::size_t max_body,
                                            std::string_view body = {});

  HttpClient m_http;
};

}  // namespace mw::adapters
