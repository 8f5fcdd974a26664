// Ollama model names ("deepseek-coder:33b", "user/model:tag", "hf.co/owner/repo:Q4_K_M") as Ollama's
// types/model/name.go parses them, and the manifest path each one names in a model store
// (manifests/<host>/<namespace>/<model>/<tag>). A name that parses can never lead out of the store:
// every part starts with a letter, digit or '_', holds only letters, digits, '_', '-', '.' (and ':'
// in the host, for a port), and no part is empty, so "..", "/" in a tag and absolute paths are refused.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace mw {

inline constexpr std::string_view k_ollama_default_host = "registry.ollama.ai";
inline constexpr std::string_view k_ollama_default_namespace = "library";
inline constexpr std::string_view k_ollama_default_tag = "latest";
inline constexpr std::size_t k_ollama_max_host_length = 350;  // name.go isValidLen
inline constexpr std::size_t k_ollama_max_part_length = 80;   // namespace, model and tag

struct OllamaModelName {
  std::string host;   // "registry.ollama.ai", "hf.co", "localhost:5000"
  std::string ns;     // the namespace: "library", a user or an organisation
  std::string model;  // "deepseek-coder"
  std::string tag;    // "33b", "latest"

  // The short form `ollama list` shows: "deepseek-coder:33b", "user/model:tag",
  // "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M" (the tag is always there, as in Ollama).
  [[nodiscard]] std::string display() const;
  // Every part: "registry.ollama.ai/library/deepseek-coder:33b".
  [[nodiscard]] std::string full() const;
  // Relative to the models directory: "manifests/registry.ollama.ai/library/deepseek-coder/33b".
  [[nodiscard]] std::string manifest_path() const;
  // Ollama compares names without regard to ASCII case (Name.EqualFold): "Mistral" is "mistral".
  [[nodiscard]] bool equals_ignoring_case(const OllamaModelName& other) const;
  // Same host, namespace and model (ignoring case), whatever the tag.
  [[nodiscard]] bool same_model_ignoring_case(const OllamaModelName& other) const;

  friend bool operator==(const OllamaModelName&, const OllamaModelName&) = default;
};

// [http(s)://][[host/]namespace/]model[:tag], missing parts filled with the defaults; the case is
// kept as given (a store lookup falls back to a case-insensitive match, as Ollama's pull does). The
// error's source is the name as given, e.g. "../etc/passwd: the namespace \"..\" must start with a
// letter, a digit or '_'". A digest suffix ("@sha256:...") is refused: Ollama no longer parses one.
[[nodiscard]] Result<OllamaModelName> parse_ollama_model_name(std::string_view text);

// A name from the four directories of a manifest's path under manifests/ (host, namespace, model,
// tag), checked by the same rules.
[[nodiscard]] Result<OllamaModelName> ollama_model_name_from_parts(std::string_view host, std::string_view ns,
                                                                   std::string_view model, std::string_view tag);

// Names in `available` close to `wanted`, best first, at most `limit`: the same model under other
// tags (or another case), then models whose name contains the wanted one or is within a few edits
// of it ("deepseek-coder" for "deepseek-coda"). `wanted` itself (ignoring case) is not suggested.
[[nodiscard]] std::vector<OllamaModelName> suggest_ollama_names(const OllamaModelName& wanted,
                                                                const std::vector<OllamaModelName>& available,
                                                                std::size_t limit = 3);

}  // namespace mw
