#include "ollama_store_writer.hpp"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/ollama_name.hpp"

namespace mw::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void write_text(const fs::path& path, std::string_view text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

fs::path blob_path(const fs::path& models_dir, std::string_view digest) {
  return models_dir / "blobs" / ("sha256-" + std::string(digest.substr(7)));
}

json layer(std::string_view media_type, const std::string& digest, std::uint64_t size) {
  return json{{"mediaType", media_type}, {"digest", digest}, {"size", size}};
}

OllamaModelName parsed_name(std::string_view name) {
  auto parsed = parse_ollama_model_name(name);
  if (!parsed) {
    throw std::runtime_error(parsed.error().line());
  }
  return *parsed;
}

}  // namespace

std::string made_up_digest(std::string_view seed) {
  // FNV-1a, four rounds with different starting points: 4 x 16 hex digits.
  std::string hex;
  for (std::uint64_t round = 0; round < 4; ++round) {
    std::uint64_t h = 14695981039346656037ULL ^ (round * 0x9e3779b97f4a7c15ULL);
    for (const char c : seed) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
    hex += fmt::format("{:016x}", h);
  }
  return "sha256:" + hex;
}

GgufSpec tiny_gguf_spec(std::string_view architecture) {
  GgufSpec spec;
  spec.add("general.architecture", GgufValue{std::string(architecture)});
  spec.add("general.name", GgufValue{std::string("tiny")});
  spec.tensors.push_back({"token_embd.weight", {64, 32}, ggml_id(GgmlType::f32), std::nullopt});
  spec.tensors.push_back({"output.weight", {64, 32}, ggml_id(GgmlType::f32), std::nullopt});
  return spec;
}

WrittenOllamaModel write_ollama_model(const fs::path& models_dir, const OllamaStoreModelSpec& spec) {
  const auto name = parsed_name(spec.name);
  const auto seed = name.full();
  WrittenOllamaModel out;

  json layers = json::array();
  out.model_digest = made_up_digest(seed + "#model");
  out.model_blob = blob_path(models_dir, out.model_digest);
  fs::create_directories(out.model_blob.parent_path());
  write_gguf(out.model_blob, spec.model);
  out.model_size = fs::file_size(out.model_blob);
  layers.push_back(layer("application/vnd.ollama.image.model", out.model_digest, out.model_size));

  if (spec.projector) {
    const auto digest = made_up_digest(seed + "#projector");
    out.projector_blob = blob_path(models_dir, digest);
    write_gguf(*out.projector_blob, *spec.projector);
    out.projector_size = fs::file_size(*out.projector_blob);
    layers.push_back(layer("application/vnd.ollama.image.projector", digest, *out.projector_size));
  }
  if (spec.adapter) {
    const auto digest = made_up_digest(seed + "#adapter");
    out.adapter_blob = blob_path(models_dir, digest);
    write_gguf(*out.adapter_blob, *spec.adapter);
    layers.push_back(layer("application/vnd.ollama.image.adapter", digest, fs::file_size(*out.adapter_blob)));
  }
  if (spec.license) {
    const std::string text = "Made-up license for " + name.display() + "\n";
    const auto digest = made_up_digest(seed + "#license");
    write_text(blob_path(models_dir, digest), text);
    layers.push_back(layer("application/vnd.ollama.image.license", digest, text.size()));
  }
  const std::string params = R"({"stop":["<|end|>"]})";
  const auto params_digest = made_up_digest(seed + "#params");
  write_text(blob_path(models_dir, params_digest), params);
  layers.push_back(layer("application/vnd.ollama.image.params", params_digest, params.size()));

  json manifest{{"schemaVersion", 2}, {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"}};
  if (spec.config) {
    json families = json::array({spec.model_family});
    if (spec.projector) {
      families.push_back("clip");
    }
    const json config{{"model_format", "gguf"},
                      {"model_family", spec.model_family},
                      {"model_families", families},
                      {"model_type", spec.model_type},
                      {"file_type", spec.file_type},
                      {"architecture", "amd64"},
                      {"os", "linux"},
                      {"rootfs", {{"type", "layers"}, {"diff_ids", json::array()}}}};
    const auto text = config.dump();
    const auto digest = made_up_digest(seed + "#config");
    out.config_blob = blob_path(models_dir, digest);
    write_text(*out.config_blob, text);
    manifest["config"] = layer("application/vnd.docker.container.image.v1+json", digest, text.size());
  }
  manifest["layers"] = layers;
  out.manifest_json = manifest.dump();
  out.manifest = models_dir / name.manifest_path();
  write_text(out.manifest, out.manifest_json);
  return out;
}

fs::path write_ollama_manifest(const fs::path& models_dir, std::string_view name, std::string_view text) {
  const auto path = models_dir / parsed_name(name).manifest_path();
  write_text(path, text);
  return path;
}

}  // namespace mw::test
