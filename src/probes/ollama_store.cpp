#include "probes/ollama_store.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>

namespace mw::probes {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view k_sha256_prefix = "sha256:";

// A host path under the root: "/usr/share/x" -> <root>/usr/share/x (operator/ with an absolute
// right-hand side would drop the root).
fs::path under_root(const HostRoot& root, const fs::path& host_path) {
  return root.root() / host_path.relative_path();
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// One line: nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: ..." without
// its bracketed prefix and without line breaks.
std::string json_error_text(const std::exception& e) {
  std::string text = e.what();
  if (text.starts_with('[')) {
    if (const auto end = text.find("] "); end != std::string::npos) {
      text.erase(0, end + 2);
    }
  }
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

Result<json> parse_json_object(std::string_view text, std::string_view source, std::string_view what) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return fail(std::string(source), fmt::format("not valid JSON ({}): {}", what, json_error_text(e)));
  }
  if (!doc.is_object()) {
    return fail(std::string(source), fmt::format("not {}: the JSON is not an object", what));
  }
  return doc;
}

// A layer object; `where` names it in errors ("config", "layers[2]").
Result<OllamaLayer> parse_layer(const json& j, std::string_view source, const std::string& where) {
  if (!j.is_object()) {
    return fail(std::string(source), where + ": not an object");
  }
  OllamaLayer layer;
  const auto media_type = j.find("mediaType");
  if (media_type == j.end() || !media_type->is_string()) {
    return fail(std::string(source), where + ": mediaType is missing or not a string");
  }
  layer.media_type = media_type->get<std::string>();
  const auto digest = j.find("digest");
  if (digest == j.end() || !digest->is_string()) {
    return fail(std::string(source), where + ": digest is missing or not a string");
  }
  layer.digest = digest->get<std::string>();
  if (!is_valid_ollama_digest(layer.digest)) {
    auto shown = layer.digest.substr(0, 80);
    std::replace_if(
        shown.begin(), shown.end(), [](char c) { return c < 0x20 || c == 0x7f; }, '?');
    return fail(std::string(source),
                fmt::format("{}: digest \"{}\" is not sha256: followed by 64 hex digits", where, shown));
  }
  const auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer()) {
    return fail(std::string(source), where + ": size is missing or not an integer");
  }
  if (!size->is_number_unsigned()) {
    return fail(std::string(source), fmt::format("{}: size {} is negative", where, size->get<std::int64_t>()));
  }
  layer.size = size->get<std::uint64_t>();
  return layer;
}

// Reads a small JSON file (a manifest or a config blob), refusing anything that is not a regular
// file or is larger than k_ollama_max_json_bytes.
Result<std::string> read_small_file(const fs::path& path) {
  return read_regular_file(path, k_ollama_max_json_bytes);
}

bool directory_exists(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool file_exists(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// The names of the directories in `dir`, sorted; an error when it cannot be listed.
Result<std::vector<std::string>> list_subdirectories(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return fail(dir.string(), ec.message(), ec.value());
  }
  std::vector<std::string> out;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec)) {
      out.push_back(it->path().filename().string());
    }
  }
  if (ec) {
    return fail(dir.string(), ec.message(), ec.value());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Docker named volumes under `volumes` (a host path) that hold a store, "ollama" first.
void add_docker_volumes(const HostRoot& root, const fs::path& volumes, std::string_view kind, OllamaStoreLocations& out,
                        std::vector<OllamaModelsDir>& found) {
  auto names = list_subdirectories(under_root(root, volumes));
  if (!names) {
    if (names.error().code != ENOENT && names.error().code != ENOTDIR) {
      out.not_searched.push_back(fmt::format("{}: {}", volumes.string(), names.error().message));
    }
    return;
  }
  std::stable_partition(names->begin(), names->end(), [](const std::string& n) { return n == "ollama"; });
  for (const auto& name : *names) {
    const auto data = volumes / name / "_data";
    for (const auto& candidate : {data / "models", data}) {
      if (directory_exists(under_root(root, candidate) / "manifests")) {
        found.push_back({candidate, fmt::format("{} {}", kind, name)});
        break;
      }
    }
  }
}

std::string blob_role(std::string_view media_type) {
  if (media_type == k_ollama_model_media_type) {
    return "model";
  }
  if (media_type == k_ollama_projector_media_type) {
    return "projector";
  }
  if (media_type == k_ollama_adapter_media_type) {
    return "adapter";
  }
  return "config";
}

// The blob of a layer: present, a regular file, and the size the manifest says.
Result<OllamaBlob> check_blob(const fs::path& models_dir, const OllamaLayer& layer, const OllamaModelName& name) {
  auto path = ollama_blob_path(models_dir, layer.digest);
  if (!path) {
    return unexpected(path.error());
  }
  const auto role = blob_role(layer.media_type);
  struct stat st {};
  if (::stat(path->c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      return fail(path->string(),
                  fmt::format("the {} blob of {} is missing (an incomplete pull or a pruned store? `ollama pull {}`)",
                              role, name.display(), name.display()),
                  err);
    }
    return fail(path->string(), std::strerror(err), err);
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(path->string(), fmt::format("the {} blob of {} is not a regular file", role, name.display()));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size != layer.size) {
    const char* why =
        size < layer.size ? "an incomplete pull? `ollama pull " : "the store is inconsistent; `ollama pull ";
    return fail(path->string(), fmt::format("the {} blob of {} has {} bytes, but its manifest says {} ({}{}`)", role,
                                            name.display(), size, layer.size, why, name.display()));
  }
  return OllamaBlob{layer.digest, std::move(*path), size};
}

std::optional<std::string> string_field(const json& j, std::string_view key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return std::nullopt;
  }
  return it->get<std::string>();
}

}  // namespace

const OllamaLayer* OllamaManifest::find_layer(std::string_view type) const {
  const auto it = std::find_if(layers.begin(), layers.end(), [&](const auto& l) { return l.media_type == type; });
  return it == layers.end() ? nullptr : &*it;
}

bool is_valid_ollama_digest(std::string_view digest) {
  if (!digest.starts_with(k_sha256_prefix)) {
    return false;
  }
  const auto hex = digest.substr(k_sha256_prefix.size());
  return hex.size() == 64 && std::all_of(hex.begin(), hex.end(), is_hex);
}

Result<OllamaManifest> parse_ollama_manifest(std::string_view text, std::string_view source) {
  auto doc = parse_json_object(text, source, "an Ollama manifest");
  if (!doc) {
    return unexpected(doc.error());
  }
  OllamaManifest manifest;
  if (const auto it = doc->find("schemaVersion"); it != doc->end()) {
    if (!it->is_number_integer()) {
      return fail(std::string(source), "schemaVersion is not an integer");
    }
    manifest.schema_version = it->get<std::int64_t>();
  }
  manifest.media_type = string_field(*doc, "mediaType");
  if (const auto it = doc->find("config"); it != doc->end() && !it->is_null()) {
    auto config = parse_layer(*it, source, "config");
    if (!config) {
      return unexpected(config.error());
    }
    manifest.config = std::move(*config);
  }
  const auto layers = doc->find("layers");
  if (layers == doc->end() || !layers->is_array()) {
    return fail(std::string(source), "not an Ollama manifest: \"layers\" is missing or not an array");
  }
  for (std::size_t i = 0; i < layers->size(); ++i) {
    auto layer = parse_layer((*layers)[i], source, fmt::format("layers[{}]", i));
    if (!layer) {
      return unexpected(layer.error());
    }
    manifest.layers.push_back(std::move(*layer));
  }
  return manifest;
}

Result<fs::path> ollama_blob_path(const fs::path& models_dir, std::string_view digest) {
  if (!is_valid_ollama_digest(digest)) {
    return fail(models_dir.string(), "not a sha256 digest, no blob path is made from it");
  }
  // manifest/paths.go: the ':' becomes '-'.
  return models_dir / "blobs" / ("sha256-" + std::string(digest.substr(k_sha256_prefix.size())));
}

Result<OllamaModelConfig> parse_ollama_model_config(std::string_view text, std::string_view source) {
  auto doc = parse_json_object(text, source, "an Ollama model config");
  if (!doc) {
    return unexpected(doc.error());
  }
  OllamaModelConfig config;
  config.model_format = string_field(*doc, "model_format");
  config.model_family = string_field(*doc, "model_family");
  config.model_type = string_field(*doc, "model_type");
  config.file_type = string_field(*doc, "file_type");
  if (const auto it = doc->find("model_families"); it != doc->end() && it->is_array()) {
    for (const auto& family : *it) {
      if (family.is_string()) {
        config.model_families.push_back(family.get<std::string>());
      }
    }
  }
  return config;
}

OllamaStoreLocations find_ollama_model_dirs(const HostRoot& root, const OllamaStoreHints& hints) {
  OllamaStoreLocations out;
  std::vector<OllamaModelsDir> found;
  if (hints.ollama_models && !hints.ollama_models->empty()) {
    found.push_back({*hints.ollama_models, "$OLLAMA_MODELS"});
  }
  if (hints.home && !hints.home->empty()) {
    found.push_back({*hints.home / ".ollama" / "models", "~/.ollama/models"});
  }
  found.push_back({"/usr/share/ollama/.ollama/models", "the Linux service's store"});
  add_docker_volumes(root, "/var/lib/docker/volumes", "Docker volume", out, found);
  if (hints.home && !hints.home->empty()) {
    add_docker_volumes(root, *hints.home / ".local" / "share" / "docker" / "volumes", "rootless Docker volume", out,
                       found);
  }
  for (auto& dir : found) {
    dir.path = dir.path.lexically_normal();
    if (dir.path.has_relative_path() && !dir.path.has_filename()) {  // "/a/b/" -> "/a/b"
      dir.path = dir.path.parent_path();
    }
    const bool duplicate =
        std::any_of(out.dirs.begin(), out.dirs.end(), [&](const auto& seen) { return seen.path == dir.path; });
    if (!duplicate) {
      out.dirs.push_back(std::move(dir));
    }
  }
  return out;
}

Result<std::vector<OllamaModelName>> list_ollama_models(const HostRoot& root, const fs::path& models_dir) {
  const auto manifests = under_root(root, models_dir) / "manifests";
  auto hosts = list_subdirectories(manifests);
  if (!hosts) {
    return unexpected(hosts.error());
  }
  std::vector<OllamaModelName> out;
  for (const auto& host : *hosts) {
    for (const auto& ns : list_subdirectories(manifests / host).value_or(std::vector<std::string>{})) {
      for (const auto& model : list_subdirectories(manifests / host / ns).value_or(std::vector<std::string>{})) {
        const auto dir = manifests / host / ns / model;
        std::error_code ec;
        fs::directory_iterator it(dir, ec);
        for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
          std::error_code type_ec;
          if (!it->is_regular_file(type_ec)) {
            continue;  // a 5-part (host/namespace/kind/model/tag) entry is not a model
          }
          if (auto name = ollama_model_name_from_parts(host, ns, model, it->path().filename().string())) {
            out.push_back(std::move(*name));
          }
        }
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.display() < b.display(); });
  return out;
}

Result<OllamaStoreModel> resolve_ollama_model(const HostRoot& root, const OllamaStoreLocations& where,
                                              const OllamaModelName& name) {
  // Refuse a name that did not come from the parser (a hand-made one could hold "..").
  if (auto valid = ollama_model_name_from_parts(name.host, name.ns, name.model, name.tag); !valid) {
    return unexpected(valid.error());
  }
  std::vector<std::string> searched;
  std::vector<OllamaModelName> seen;
  for (const auto& dir : where.dirs) {
    const auto real_dir = under_root(root, dir.path);
    std::optional<OllamaModelName> stored;
    Result<std::vector<OllamaModelName>> listed = std::vector<OllamaModelName>{};
    if (file_exists(real_dir / name.manifest_path())) {
      stored = name;
    } else {
      listed = list_ollama_models(root, dir.path);
    }
    if (!stored && listed) {
      const auto it = std::find_if(listed->begin(), listed->end(),
                                   [&](const auto& candidate) { return candidate.equals_ignoring_case(name); });
      if (it != listed->end()) {
        stored = *it;
      }
    }
    if (!stored) {
      if (listed) {
        searched.push_back(dir.path.string());
        seen.insert(seen.end(), listed->begin(), listed->end());
      } else if (listed.error().code == ENOENT) {
        searched.push_back(dir.path.string() + " (absent)");
      } else {
        searched.push_back(fmt::format(
            "{} ({})", dir.path.string(),
            listed.error().code != 0 ? std::strerror(listed.error().code) : listed.error().message.c_str()));
      }
      continue;
    }

    OllamaStoreModel found;
    found.name = *stored;
    found.models_dir = dir;
    found.manifest_path = real_dir / stored->manifest_path();
    auto text = read_small_file(found.manifest_path);
    if (!text) {
      return unexpected(text.error());
    }
    auto manifest = parse_ollama_manifest(*text, found.manifest_path.string());
    if (!manifest) {
      return unexpected(manifest.error());
    }
    found.manifest = std::move(*manifest);

    const auto* model_layer = found.manifest.find_layer(k_ollama_model_media_type);
    if (model_layer == nullptr) {
      std::vector<std::string> types;
      for (const auto& layer : found.manifest.layers) {
        types.push_back(layer.media_type);
      }
      return fail(found.manifest_path.string(),
                  fmt::format("{} has no {} layer, so no GGUF weights to plan with (its layers: {})", stored->display(),
                              k_ollama_model_media_type,
                              types.empty() ? std::string("none") : fmt::format("{}", fmt::join(types, ", "))));
    }
    auto model = check_blob(real_dir, *model_layer, *stored);
    if (!model) {
      return unexpected(model.error());
    }
    found.model = std::move(*model);
    if (const auto* projector = found.manifest.find_layer(k_ollama_projector_media_type)) {
      auto blob = check_blob(real_dir, *projector, *stored);
      if (!blob) {
        return unexpected(blob.error());
      }
      found.projector = std::move(*blob);
    }
    for (const auto& layer : found.manifest.layers) {
      if (layer.media_type == k_ollama_adapter_media_type) {
        auto blob = check_blob(real_dir, layer, *stored);
        if (!blob) {
          return unexpected(blob.error());
        }
        found.adapters.push_back(std::move(*blob));
      }
    }

    if (found.manifest.config) {
      auto config_path = ollama_blob_path(real_dir, found.manifest.config->digest);
      auto config_text =
          config_path ? read_small_file(*config_path) : Result<std::string>(unexpected(config_path.error()));
      auto config = config_text ? parse_ollama_model_config(*config_text, config_path->string())
                                : Result<OllamaModelConfig>(unexpected(config_text.error()));
      if (config) {
        found.config = std::move(*config);
      } else {
        found.notes.push_back("the model's config blob could not be read: " + config.error().line());
      }
    }
    return found;
  }

  std::string message = fmt::format("not found in the Ollama model store (searched: {}", fmt::join(searched, ", "));
  if (!where.not_searched.empty()) {
    message += fmt::format("; could not look in: {}", fmt::join(where.not_searched, ", "));
  }
  message += ")";
  const auto suggestions = suggest_ollama_names(name, seen);
  if (!suggestions.empty()) {
    std::vector<std::string> shown;
    for (const auto& s : suggestions) {
      shown.push_back(s.display());
    }
    message += fmt::format("; did you mean {}?", fmt::join(shown, ", "));
  } else {
    message += fmt::format("; `ollama pull {}` fetches it", name.display());
  }
  return fail(name.display(), std::move(message), ENOENT);
}

Result<DiskSpace> read_disk_space(const HostRoot& root, const fs::path& path) {
  // Walks up no further than the root: a fixture tree's missing store is not measured on the live disk.
  const auto top = root.root().lexically_normal();
  auto target = under_root(root, path).lexically_normal();
  for (;;) {
    std::error_code ec;
    if (fs::exists(target, ec) || target == top || !target.has_relative_path() || target.parent_path() == target) {
      break;
    }
    target = target.parent_path();
  }
  struct statvfs st {};
  if (::statvfs(target.c_str(), &st) != 0) {
    const int err = errno;
    return fail(target.string(), std::string("statvfs failed: ") + std::strerror(err), err);
  }
  const auto block = static_cast<std::uint64_t>(st.f_frsize != 0 ? st.f_frsize : st.f_bsize);
  return DiskSpace{target, static_cast<std::uint64_t>(st.f_blocks) * block,
                   static_cast<std::uint64_t>(st.f_bavail) * block};
}

}  // namespace mw::probes
