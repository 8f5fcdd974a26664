// Ollama's model store on disk: where it lives, the manifest of a model name, the blobs it names,
// and the free disk space where the models are kept.
//
// A store is a models directory holding manifests/<host>/<namespace>/<model>/<tag> (JSON) and
// blobs/sha256-<hex> (content-addressed files: the GGUF weights, a vision projector, adapters, the
// config, template, license...). memwarden never re-hashes a blob (they are tens of GB): a digest is
// only checked to be "sha256:" and 64 hex digits, so that a path can never be built from junk, and
// a blob's size is compared with the manifest's (a short blob is an incomplete pull).
//
// Paths: a store's location (OllamaModelsDir::path) is as seen on the host ("/root/.ollama/models");
// every path that is opened, and every path in a result or an error, is under the injected host
// root (the same when the root is "/").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/error.hpp"
#include "core/ollama_name.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

// Layer media types (manifest/manifest.go, server/images.go).
inline constexpr std::string_view k_ollama_model_media_type = "application/vnd.ollama.image.model";
inline constexpr std::string_view k_ollama_projector_media_type = "application/vnd.ollama.image.projector";
inline constexpr std::string_view k_ollama_adapter_media_type = "application/vnd.ollama.image.adapter";
inline constexpr std::string_view k_ollama_config_media_type = "application/vnd.docker.container.image.v1+json";
// Manifests and config blobs are a few hundred bytes; anything past this is not one.
inline constexpr std::uint64_t k_ollama_max_json_bytes = k_mib;

struct OllamaLayer {
  std::string media_type;
  std::string digest;  // "sha256:<64 hex>", checked by the parser
  std::uint64_t size = 0;

  friend bool operator==(const OllamaLayer&, const OllamaLayer&) = default;
};

struct OllamaManifest {
  std::optional<std::int64_t> schema_version;  // 2 for every manifest Ollama writes
  std::optional<std::string> media_type;
  std::optional<OllamaLayer> config;  // the config blob (model family, parameter size, quantization)
  std::vector<OllamaLayer> layers;

  // The first layer of that media type; nullptr when there is none.
  [[nodiscard]] const OllamaLayer* find_layer(std::string_view type) const;
};

// "sha256:" followed by 64 hex digits (either case, as Ollama's GetBlobsPath accepts).
[[nodiscard]] bool is_valid_ollama_digest(std::string_view digest);

// A manifest's JSON: {schemaVersion, mediaType, config: Layer, layers: [Layer]}, each Layer with
// mediaType (string), digest (checked) and size (a non-negative integer); other fields are ignored.
// Errors are one line naming `source` and the field: "<source>: layers[1]: digest "x" is not ...".
[[nodiscard]] Result<OllamaManifest> parse_ollama_manifest(std::string_view json, std::string_view source);

// <models_dir>/blobs/sha256-<hex> for a digest "sha256:<hex>"; an invalid digest is an error.
[[nodiscard]] Result<std::filesystem::path> ollama_blob_path(const std::filesystem::path& models_dir,
                                                             std::string_view digest);

// The config blob's fields that say what the model is. Absent fields (or fields of another type)
// stay nullopt; only text that is not a JSON object is an error.
struct OllamaModelConfig {
  std::optional<std::string> model_format;  // "gguf"
  std::optional<std::string> model_family;  // "llama"
  std::vector<std::string> model_families;  // ["llama", "clip"]
  std::optional<std::string> model_type;    // the parameter size: "33B"
  std::optional<std::string> file_type;     // the quantization: "Q4_0"
};
[[nodiscard]] Result<OllamaModelConfig> parse_ollama_model_config(std::string_view json, std::string_view source);

// One place a store may be.
struct OllamaModelsDir {
  std::filesystem::path path;  // as on the host
  std::string origin;          // why it is searched: "$OLLAMA_MODELS", "~/.ollama/models", "Docker volume ollama"

  friend bool operator==(const OllamaModelsDir&, const OllamaModelsDir&) = default;
};

struct OllamaStoreLocations {
  std::vector<OllamaModelsDir> dirs;      // in the order they are searched, without duplicates
  std::vector<std::string> not_searched;  // places that could not be listed: "<path>: Permission denied"
};

// What the caller knows about the environment (the probe does not read its own environment: the
// server's OLLAMA_MODELS may come from its process's environ or a container's Env).
struct OllamaStoreHints {
  std::optional<std::filesystem::path> ollama_models;  // $OLLAMA_MODELS; should be absolute
  std::optional<std::filesystem::path> home;           // $HOME of the user who runs `ollama serve`
};

// The places to search, in order: $OLLAMA_MODELS; <home>/.ollama/models; /usr/share/ollama/.ollama/models
// (the Linux service's user); then every Docker named volume holding a store (the documented
// `-v ollama:/root/.ollama` gives /var/lib/docker/volumes/ollama/_data/models; a volume mounted at
// $OLLAMA_MODELS holds manifests/ at its top), the volume "ollama" first, then by name; and the same
// under <home>/.local/share/docker/volumes (rootless Docker). The first three are always listed
// (they need not exist); a volume only when its manifests/ directory exists.
[[nodiscard]] OllamaStoreLocations find_ollama_model_dirs(const HostRoot& root, const OllamaStoreHints& hints);

struct OllamaBlob {
  std::string digest;
  std::filesystem::path path;  // under the root
  std::uint64_t size = 0;      // the manifest's, equal to the file's
};

struct OllamaStoreModel {
  OllamaModelName name;  // as the store spells it (a lookup ignores case, as Ollama's pull does)
  OllamaModelsDir models_dir;
  std::filesystem::path manifest_path;  // under the root
  OllamaManifest manifest;
  OllamaBlob model;                         // the GGUF weights
  std::optional<OllamaBlob> projector;      // a vision model's mmproj: loaded too, so it takes memory
  std::vector<OllamaBlob> adapters;         // LoRA adapters: loaded with the model
  std::optional<OllamaModelConfig> config;  // nullopt when there is none or it cannot be read
  std::vector<std::string> notes;           // what could not be read but did not stop the lookup
};

// Looks `name` up in each directory in turn; the first that holds its manifest (exactly, or else
// ignoring case) wins. Errors, each one line:
// - not found: names the directories searched (and those that could not be) and suggests close
//   names found there: the same model with other tags, or names a few edits away;
// - a manifest that cannot be read, is not valid JSON, or has no model layer (names the file);
// - a model, projector or adapter blob that is missing, not a file, or not the size the manifest
//   says (an incomplete pull).
// The config blob is optional: when it cannot be read the model still resolves, with a note.
[[nodiscard]] Result<OllamaStoreModel> resolve_ollama_model(const HostRoot& root, const OllamaStoreLocations& where,
                                                            const OllamaModelName& name);

// Every valid name with a manifest in one store, sorted by display(). Entries that are not valid
// names or not files are skipped (as Ollama's Manifests does). Fails (errno in Error::code, ENOENT
// for a store that does not exist) when <models_dir>/manifests cannot be listed.
[[nodiscard]] Result<std::vector<OllamaModelName>> list_ollama_models(const HostRoot& root,
                                                                      const std::filesystem::path& models_dir);

struct DiskSpace {
  std::filesystem::path measured;  // the directory statvfs was given: `path` or its nearest existing ancestor
  std::uint64_t total = 0;         // bytes in the file system
  std::uint64_t available = 0;     // bytes an unprivileged user may still write
};

// statvfs on `path` (a host path) or, when it does not exist yet, its nearest existing ancestor.
[[nodiscard]] Result<DiskSpace> read_disk_space(const HostRoot& root, const std::filesystem::path& path);

}  // namespace mw::probes
