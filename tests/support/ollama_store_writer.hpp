// Writes Ollama model stores for tests: a manifest under manifests/<host>/<namespace>/<model>/<tag>,
// the model blob (a GGUF file whose data section is a hole, see gguf_writer.hpp), a config blob, and
// optional projector, adapter and license layers. Digests are made up from the name and the layer
// (valid "sha256:" + 64 hex, not the content's hash: memwarden never re-hashes blobs). Throws
// std::runtime_error on failure (no GoogleTest here).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf_writer.hpp"

namespace mw::test {

struct OllamaStoreModelSpec {
  std::string name;  // as a user types it: "deepseek-coder:33b"; parsed with mw::parse_ollama_model_name
  GgufSpec model;    // the model blob
  std::optional<GgufSpec> projector;   // adds an application/vnd.ollama.image.projector layer
  std::optional<GgufSpec> adapter;     // adds an application/vnd.ollama.image.adapter layer
  bool license = true;                 // adds a license layer (a small text blob)
  bool config = true;                  // writes a config layer and blob
  std::string model_family = "llama";  // config blob fields
  std::string model_type = "7B";       // parameter size
  std::string file_type = "Q4_0";      // quantization
};

struct WrittenOllamaModel {
  std::filesystem::path manifest;    // <models_dir>/manifests/...
  std::string manifest_json;         // what was written there
  std::string model_digest;          // "sha256:..."
  std::filesystem::path model_blob;  // <models_dir>/blobs/sha256-...
  std::uint64_t model_size = 0;
  std::optional<std::filesystem::path> projector_blob;
  std::optional<std::uint64_t> projector_size;
  std::optional<std::filesystem::path> adapter_blob;
  std::optional<std::filesystem::path> config_blob;
};

// "sha256:" and 64 lowercase hex digits derived from `seed` (the same seed, the same digest).
[[nodiscard]] std::string made_up_digest(std::string_view seed);

// A small GGUF spec (a few metadata entries, two tensors) for tests that do not care what the model is.
[[nodiscard]] GgufSpec tiny_gguf_spec(std::string_view architecture = "llama");

// Writes the model into the store at `models_dir` (created if needed).
WrittenOllamaModel write_ollama_model(const std::filesystem::path& models_dir, const OllamaStoreModelSpec& spec);

// Writes `text` to <models_dir>/manifests/<the name's path> (for malformed manifests).
std::filesystem::path write_ollama_manifest(const std::filesystem::path& models_dir, std::string_view name,
                                            std::string_view text);

}  // namespace mw::test
