#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/ollama_name.hpp"
#include "ollama_store_writer.hpp"
#include "probes/ollama_store.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::probes;
using mw::test::OllamaStoreModelSpec;
using mw::test::TempDir;

namespace fs = std::filesystem;

namespace {

// The gemma:2b manifest from ollama.md §5 (Ollama v0.1.48).
constexpr std::string_view k_gemma_manifest =
    R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
    R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:887433b89a901c156f7e6944442f3c9e57f3c55d6ed52042cbb7303aea994290","size":483},)"
    R"("layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:c1864a5eb19305c40519da12cc543519e48a0697ecd30e15d5ac228644957d12","size":1678447520},)"
    R"({"mediaType":"application/vnd.ollama.image.license","digest":"sha256:097a36493f718248845233af1d3fefe7a303f864fae13bc31a3a9704229378ca","size":8433},)"
    R"({"mediaType":"application/vnd.ollama.image.template","digest":"sha256:109037bec39c0becc8221222ae23557559bc594290945a2c4221ab4f303b8871","size":136},)"
    R"({"mediaType":"application/vnd.ollama.image.params","digest":"sha256:22a838ceb7fb22755a3b0ae9b4eadde629d19be1f651f73efb8c6b4e2cd0eea0","size":84}]})";

const std::string k_digest = "sha256:" + std::string(64, 'a');

OllamaModelName name_of(std::string_view text) {
  auto name = parse_ollama_model_name(text);
  EXPECT_TRUE(name) << name.error().line();
  return name ? *name : OllamaModelName{};
}

OllamaStoreModelSpec spec_for(std::string name) {
  OllamaStoreModelSpec spec;
  spec.name = std::move(name);
  spec.model = test::tiny_gguf_spec();
  return spec;
}

std::vector<std::string> paths_of(const OllamaStoreLocations& where) {
  std::vector<std::string> out;
  for (const auto& d : where.dirs) {
    out.push_back(d.path.string());
  }
  return out;
}

std::vector<std::string> displays(const std::vector<OllamaModelName>& names) {
  std::vector<std::string> out;
  for (const auto& n : names) {
    out.push_back(n.display());
  }
  return out;
}

// A host root with the stores a test writes under <root>/<host path>.
class OllamaStoreTest : public ::testing::Test {
 protected:
  [[nodiscard]] fs::path real(const fs::path& host_path) const { return m_dir.path() / host_path.relative_path(); }
  [[nodiscard]] HostRoot root() const { return HostRoot(m_dir.path()); }
  test::WrittenOllamaModel write(const fs::path& host_models_dir, const OllamaStoreModelSpec& spec) const {
    return test::write_ollama_model(real(host_models_dir), spec);
  }
  [[nodiscard]] OllamaStoreLocations locations(OllamaStoreHints hints = {.ollama_models = std::nullopt,
                                                                         .home = "/home/ana"}) const {
    return find_ollama_model_dirs(root(), hints);
  }
  [[nodiscard]] Result<OllamaStoreModel> resolve(std::string_view name,
                                                 OllamaStoreHints hints = {.ollama_models = std::nullopt,
                                                                           .home = "/home/ana"}) const {
    return resolve_ollama_model(root(), locations(std::move(hints)), name_of(name));
  }

  TempDir m_dir;
};

}  // namespace

// ---- parsers

TEST(OllamaManifest, ParsesARealManifest) {
  const auto manifest = parse_ollama_manifest(k_gemma_manifest, "gemma");
  ASSERT_TRUE(manifest) << manifest.error().line();
  EXPECT_EQ(manifest->schema_version, 2);
  EXPECT_EQ(manifest->media_type, "application/vnd.docker.distribution.manifest.v2+json");
  ASSERT_TRUE(manifest->config);
  EXPECT_EQ(manifest->config->media_type, k_ollama_config_media_type);
  EXPECT_EQ(manifest->config->size, 483U);
  ASSERT_EQ(manifest->layers.size(), 4U);
  const auto* model = manifest->find_layer(k_ollama_model_media_type);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->digest, "sha256:c1864a5eb19305c40519da12cc543519e48a0697ecd30e15d5ac228644957d12");
  EXPECT_EQ(model->size, 1678447520U);
  EXPECT_EQ(manifest->find_layer(k_ollama_projector_media_type), nullptr);
  EXPECT_EQ(manifest->layers[3].media_type, "application/vnd.ollama.image.params");
  EXPECT_EQ(manifest->layers[3].size, 84U);
}

TEST(OllamaManifest, SizesPastFourGiBAndExtraFields) {
  const auto manifest =
      parse_ollama_manifest(R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":")" + k_digest +
                                R"(","size":40000000000,"from":"/x","name":"y"}],"extra":true})",
                            "m");
  ASSERT_TRUE(manifest) << manifest.error().line();
  EXPECT_FALSE(manifest->schema_version);
  EXPECT_FALSE(manifest->config);
  EXPECT_EQ(manifest->layers.at(0).size, 40'000'000'000U);
}

TEST(OllamaManifest, MalformedManifestsGiveOneLineNamingTheSourceAndField) {
  struct Case {
    std::string json;
    std::string message;
  };
  const auto layer = [](std::string_view digest, std::string_view size) {
    return R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":")" + std::string(digest) +
           R"(","size":)" + std::string(size) + "}]}";
  };
  const std::vector<Case> cases = {
      {"[]", "not an Ollama manifest: the JSON is not an object"},
      {"{}", "not an Ollama manifest: \"layers\" is missing or not an array"},
      {R"({"layers":{}})", "not an Ollama manifest: \"layers\" is missing or not an array"},
      {R"({"layers":[1]})", "layers[0]: not an object"},
      {R"({"layers":[{"digest":")" + k_digest + R"(","size":1}]})", "layers[0]: mediaType is missing or not a string"},
      {layer("sha256:abc", "1"), "layers[0]: digest \"sha256:abc\" is not sha256: followed by 64 hex digits"},
      {layer("sha256:../../../../etc/passwd", "1"),
       "layers[0]: digest \"sha256:../../../../etc/passwd\" is not sha256: followed by 64 hex digits"},
      {layer("sha512:" + std::string(64, 'a'), "1"),
       "layers[0]: digest \"sha512:" + std::string(64, 'a') + "\" is not sha256: followed by 64 hex digits"},
      {layer("sha256:" + std::string(63, 'a') + "g", "1"),
       "layers[0]: digest \"sha256:" + std::string(63, 'a') + "g\" is not sha256: followed by 64 hex digits"},
      {layer(k_digest, "-5"), "layers[0]: size -5 is negative"},
      {layer(k_digest, "\"5\""), "layers[0]: size is missing or not an integer"},
      {layer(k_digest, "1.5"), "layers[0]: size is missing or not an integer"},
      {R"({"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]})",
       "config: digest \"sha256:zz\" is not sha256: followed by 64 hex digits"},
      {R"({"schemaVersion":"2","layers":[]})", "schemaVersion is not an integer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    const auto manifest = parse_ollama_manifest(c.json, "/models/manifests/x");
    ASSERT_FALSE(manifest);
    EXPECT_EQ(manifest.error().source, "/models/manifests/x");
    EXPECT_EQ(manifest.error().message, c.message);
  }
}

TEST(OllamaManifest, InvalidJsonIsOneLine) {
  const auto manifest = parse_ollama_manifest("{\"layers\": [\n{oops", "/m/manifests/a");
  ASSERT_FALSE(manifest);
  const auto line = manifest.error().line();
  EXPECT_TRUE(line.starts_with("/m/manifests/a: not valid JSON (an Ollama manifest): parse error at line 2")) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_FALSE(parse_ollama_manifest("", "empty"));
}

TEST(OllamaManifest, EmptyLayersParse) {
  const auto manifest = parse_ollama_manifest(R"({"layers":[]})", "m");
  ASSERT_TRUE(manifest);
  EXPECT_TRUE(manifest->layers.empty());
  EXPECT_EQ(manifest->find_layer(k_ollama_model_media_type), nullptr);
}

TEST(OllamaManifest, DigestsAndBlobPaths) {
  EXPECT_TRUE(is_valid_ollama_digest(k_digest));
  EXPECT_TRUE(is_valid_ollama_digest("sha256:" + std::string(32, 'A') + std::string(32, '9')));
  EXPECT_FALSE(is_valid_ollama_digest("sha256-" + std::string(64, 'a')));
  EXPECT_FALSE(is_valid_ollama_digest("sha256:" + std::string(65, 'a')));
  EXPECT_FALSE(is_valid_ollama_digest(""));
  const auto path = ollama_blob_path("/models", k_digest);
  ASSERT_TRUE(path);
  EXPECT_EQ(*path, fs::path("/models/blobs/sha256-" + std::string(64, 'a')));
  const auto bad = ollama_blob_path("/models", "sha256:/../../etc/passwd");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().line(), "/models: not a sha256 digest, no blob path is made from it");
}

TEST(OllamaModelConfigParse, ReadsFieldsAndToleratesOddOnes) {
  const auto config =
      parse_ollama_model_config(R"({"model_format":"gguf","model_family":"llama","model_families":["llama","clip",3],)"
                                R"("model_type":"33B","file_type":"Q4_0","architecture":"amd64","os":"linux"})",
                                "cfg");
  ASSERT_TRUE(config) << config.error().line();
  EXPECT_EQ(config->model_format, "gguf");
  EXPECT_EQ(config->model_family, "llama");
  EXPECT_EQ(config->model_families, (std::vector<std::string>{"llama", "clip"}));
  EXPECT_EQ(config->model_type, "33B");
  EXPECT_EQ(config->file_type, "Q4_0");

  const auto odd = parse_ollama_model_config(R"({"model_type":33,"model_families":"llama"})", "cfg");
  ASSERT_TRUE(odd);
  EXPECT_FALSE(odd->model_type);
  EXPECT_FALSE(odd->model_family);
  EXPECT_TRUE(odd->model_families.empty());

  const auto bad = parse_ollama_model_config("\"text\"", "cfg");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().line(), "cfg: not an Ollama model config: the JSON is not an object");
}

// ---- where stores are

TEST_F(OllamaStoreTest, DefaultLocationsInOrder) {
  const auto where = locations({.ollama_models = "/srv/models", .home = "/home/ana"});
  EXPECT_EQ(paths_of(where),
            (std::vector<std::string>{"/srv/models", "/home/ana/.ollama/models", "/usr/share/ollama/.ollama/models"}));
  EXPECT_EQ(where.dirs[0].origin, "$OLLAMA_MODELS");
  EXPECT_EQ(where.dirs[1].origin, "~/.ollama/models");
  EXPECT_TRUE(where.not_searched.empty());

  EXPECT_EQ(paths_of(locations({})), (std::vector<std::string>{"/usr/share/ollama/.ollama/models"}));
}

TEST_F(OllamaStoreTest, DuplicateLocationsAreSearchedOnce) {
  const auto where = locations({.ollama_models = "/usr/share/ollama/.ollama/models/", .home = "/usr/share/ollama"});
  EXPECT_EQ(paths_of(where), (std::vector<std::string>{"/usr/share/ollama/.ollama/models"}));
  EXPECT_EQ(where.dirs[0].origin, "$OLLAMA_MODELS");
}

TEST_F(OllamaStoreTest, DockerVolumesHoldingAStore) {
  write("/var/lib/docker/volumes/aaa-store/_data/models", spec_for("a:1"));
  write("/var/lib/docker/volumes/ollama/_data/models", spec_for("b:1"));
  write("/var/lib/docker/volumes/models-at-top/_data", spec_for("c:1"));  // mounted at $OLLAMA_MODELS
  fs::create_directories(real("/var/lib/docker/volumes/postgres/_data/base"));
  fs::create_directories(real("/var/lib/docker/volumes/empty-ollama/_data/models/blobs"));  // no manifests/
  write("/home/ana/.local/share/docker/volumes/ollama/_data/models", spec_for("d:1"));

  const auto where = locations();
  EXPECT_EQ(paths_of(where), (std::vector<std::string>{
                                 "/home/ana/.ollama/models",
                                 "/usr/share/ollama/.ollama/models",
                                 "/var/lib/docker/volumes/ollama/_data/models",
                                 "/var/lib/docker/volumes/aaa-store/_data/models",
                                 "/var/lib/docker/volumes/models-at-top/_data",
                                 "/home/ana/.local/share/docker/volumes/ollama/_data/models",
                             }));
  EXPECT_EQ(where.dirs[2].origin, "Docker volume ollama");
  EXPECT_EQ(where.dirs[5].origin, "rootless Docker volume ollama");
}

TEST_F(OllamaStoreTest, AVolumesDirectoryThatCannotBeListedIsReported) {
  fs::create_directories(real("/var/lib/docker"));
  fs::create_directory_symlink("volumes", real("/var/lib/docker/volumes"));  // a loop: ELOOP, even for root
  const auto where = locations();
  ASSERT_EQ(where.not_searched.size(), 1U);
  EXPECT_TRUE(where.not_searched[0].starts_with("/var/lib/docker/volumes: ")) << where.not_searched[0];

  const auto missing = resolve("mistral:7b");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("could not look in: /var/lib/docker/volumes: "), std::string::npos)
      << missing.error().line();
}

// ---- resolving a name

TEST_F(OllamaStoreTest, ResolvesInTheHomeStore) {
  auto spec = spec_for("deepseek-coder:33b");
  spec.model_family = "llama";
  spec.model_type = "33B";
  spec.file_type = "Q4_0";
  const auto written = write("/home/ana/.ollama/models", spec);

  const auto found = resolve("deepseek-coder:33b");
  ASSERT_TRUE(found) << found.error().line();
  EXPECT_EQ(found->name.display(), "deepseek-coder:33b");
  EXPECT_EQ(found->models_dir.path, "/home/ana/.ollama/models");
  EXPECT_EQ(found->models_dir.origin, "~/.ollama/models");
  EXPECT_EQ(found->manifest_path, written.manifest);
  EXPECT_EQ(found->model.path, written.model_blob);
  EXPECT_EQ(found->model.digest, written.model_digest);
  EXPECT_EQ(found->model.size, written.model_size);
  EXPECT_EQ(found->model.size, test::gguf_file_size(spec.model));
  EXPECT_FALSE(found->projector);
  EXPECT_TRUE(found->adapters.empty());
  ASSERT_TRUE(found->config);
  EXPECT_EQ(found->config->model_family, "llama");
  EXPECT_EQ(found->config->model_type, "33B");
  EXPECT_EQ(found->config->file_type, "Q4_0");
  EXPECT_EQ(found->config->model_format, "gguf");
  EXPECT_TRUE(found->notes.empty());
  EXPECT_EQ(found->manifest.layers.size(), 3U);  // model, license, params
}

TEST_F(OllamaStoreTest, ResolvesInTheServiceStore) {
  write("/usr/share/ollama/.ollama/models", spec_for("llama3.1"));
  const auto found = resolve("llama3.1:latest", {});
  ASSERT_TRUE(found) << found.error().line();
  EXPECT_EQ(found->models_dir.path, "/usr/share/ollama/.ollama/models");
  EXPECT_EQ(found->name.display(), "llama3.1:latest");
}

TEST_F(OllamaStoreTest, OllamaModelsWinsOverTheOthers) {
  write("/home/ana/.ollama/models", spec_for("mistral:7b"));
  write("/usr/share/ollama/.ollama/models", spec_for("mistral:7b"));
  const auto env = write("/data/ollama", spec_for("mistral:7b"));

  const auto found = resolve("mistral:7b", {.ollama_models = "/data/ollama", .home = "/home/ana"});
  ASSERT_TRUE(found) << found.error().line();
  EXPECT_EQ(found->models_dir.path, "/data/ollama");
  EXPECT_EQ(found->models_dir.origin, "$OLLAMA_MODELS");
  EXPECT_EQ(found->model.path, env.model_blob);

  // Without it, the home store comes first.
  const auto home = resolve("mistral:7b");
  ASSERT_TRUE(home);
  EXPECT_EQ(home->models_dir.path, "/home/ana/.ollama/models");
}

TEST_F(OllamaStoreTest, ResolvesInADockerVolume) {
  const auto written = write("/var/lib/docker/volumes/ollama/_data/models", spec_for("qwen2.5:7b"));
  const auto found = resolve("qwen2.5:7b");
  ASSERT_TRUE(found) << found.error().line();
  EXPECT_EQ(found->models_dir.path, "/var/lib/docker/volumes/ollama/_data/models");
  EXPECT_EQ(found->models_dir.origin, "Docker volume ollama");
  EXPECT_EQ(found->model.path, written.model_blob);
}

TEST_F(OllamaStoreTest, ResolvesOtherNamespacesAndHosts) {
  write("/home/ana/.ollama/models", spec_for("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"));
  write("/home/ana/.ollama/models", spec_for("ana/coder:v2"));
  const auto hf = resolve("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  ASSERT_TRUE(hf) << hf.error().line();
  EXPECT_EQ(hf->manifest_path,
            real("/home/ana/.ollama/models/manifests/hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF/Q4_K_M"));
  EXPECT_TRUE(resolve("ana/coder:v2"));
}

TEST_F(OllamaStoreTest, LookupIgnoresCaseAndReportsTheStoredSpelling) {
  write("/home/ana/.ollama/models", spec_for("Mistral:7B"));
  const auto found = resolve("mistral:7b");
  ASSERT_TRUE(found) << found.error().line();
  EXPECT_EQ(found->name.model, "Mistral");
  EXPECT_EQ(found->name.tag, "7B");
  EXPECT_EQ(found->manifest_path, real("/home/ana/.ollama/models/manifests/registry.ollama.ai/library/Mistral/7B"));
}

TEST_F(OllamaStoreTest, MissingModelNamesTheDirsAndSuggestsOtherTags) {
  write("/home/ana/.ollama/models", spec_for("deepseek-coder:6.7b"));
  write("/var/lib/docker/volumes/ollama/_data/models", spec_for("deepseek-coder:1.3b"));
  write("/var/lib/docker/volumes/ollama/_data/models", spec_for("llama3.1:8b"));

  const auto missing = resolve("deepseek-coder:33b");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().line(),
            "deepseek-coder:33b: not found in the Ollama model store (searched: /home/ana/.ollama/models, "
            "/usr/share/ollama/.ollama/models (absent), /var/lib/docker/volumes/ollama/_data/models); did you mean "
            "deepseek-coder:1.3b, deepseek-coder:6.7b?");
}

TEST_F(OllamaStoreTest, MissingModelSuggestsCloseNamesOrAPull) {
  write("/home/ana/.ollama/models", spec_for("mistral:7b"));
  const auto typo = resolve("mistrl:7b");
  ASSERT_FALSE(typo);
  EXPECT_TRUE(typo.error().message.ends_with("; did you mean mistral:7b?")) << typo.error().line();

  const auto unknown = resolve("qwen2.5:72b");
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(unknown.error().message.ends_with("; `ollama pull qwen2.5:72b` fetches it")) << unknown.error().line();
}

TEST_F(OllamaStoreTest, MalformedManifestNamesTheFile) {
  const auto path = test::write_ollama_manifest(real("/home/ana/.ollama/models"), "mistral:7b", "{\"layers\":[tru");
  const auto found = resolve("mistral:7b");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().source, path.string());
  EXPECT_TRUE(found.error().message.starts_with("not valid JSON (an Ollama manifest): ")) << found.error().line();
  EXPECT_EQ(found.error().line().find('\n'), std::string::npos);
}

TEST_F(OllamaStoreTest, ManifestTooLargeIsRefusedUnread) {
  const auto path = test::write_ollama_manifest(real("/home/ana/.ollama/models"), "mistral:7b", "{}");
  fs::resize_file(path, k_ollama_max_json_bytes + 1);
  const auto found = resolve("mistral:7b");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().source, path.string());
  EXPECT_NE(found.error().message.find("larger than"), std::string::npos) << found.error().line();
}

TEST_F(OllamaStoreTest, ManifestWithoutAModelLayer) {
  const auto path = test::write_ollama_manifest(
      real("/home/ana/.ollama/models"), "embed:1",
      R"({"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.tensor","digest":")" + k_digest +
          R"(","size":10},{"mediaType":"application/vnd.ollama.image.license","digest":")" + k_digest +
          R"(","size":3}]})");
  const auto found = resolve("embed:1");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().line(),
            path.string() +
                ": embed:1 has no application/vnd.ollama.image.model layer, so no GGUF weights to plan with (its "
                "layers: application/vnd.ollama.image.tensor, application/vnd.ollama.image.license)");
}

TEST_F(OllamaStoreTest, MissingBlob) {
  const auto written = write("/home/ana/.ollama/models", spec_for("mistral:7b"));
  fs::remove(written.model_blob);
  const auto found = resolve("mistral:7b");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, ENOENT);
  EXPECT_EQ(found.error().line(), written.model_blob.string() +
                                      ": the model blob of mistral:7b is missing (an incomplete pull or a pruned "
                                      "store? `ollama pull mistral:7b`)");
}

TEST_F(OllamaStoreTest, TruncatedBlobIsAnIncompletePull) {
  const auto written = write("/home/ana/.ollama/models", spec_for("mistral:7b"));
  fs::resize_file(written.model_blob, written.model_size - 100);
  const auto found = resolve("mistral:7b");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().line(), written.model_blob.string() + ": the model blob of mistral:7b has " +
                                      std::to_string(written.model_size - 100) + " bytes, but its manifest says " +
                                      std::to_string(written.model_size) +
                                      " (an incomplete pull? `ollama pull mistral:7b`)");
}

TEST_F(OllamaStoreTest, BlobLongerThanTheManifestSays) {
  const auto written = write("/home/ana/.ollama/models", spec_for("mistral:7b"));
  fs::resize_file(written.model_blob, written.model_size + 1);
  const auto found = resolve("mistral:7b");
  ASSERT_FALSE(found);
  EXPECT_NE(found.error().message.find("the store is inconsistent"), std::string::npos) << found.error().line();
}

TEST_F(OllamaStoreTest, BlobThatIsADirectory) {
  const auto written = write("/home/ana/.ollama/models", spec_for("mistral:7b"));
  fs::remove(written.model_blob);
  fs::create_directory(written.model_blob);
  const auto found = resolve("mistral:7b");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().line(), written.model_blob.string() + ": the model blob of mistral:7b is not a regular file");
}

TEST_F(OllamaStoreTest, ProjectorAndAdapterLayers) {
  auto spec = spec_for("llava:7b");
  spec.projector = test::tiny_gguf_spec("clip");
  spec.adapter = test::tiny_gguf_spec("llama");
  const auto written = write("/home/ana/.ollama/models", spec);
  const auto found = resolve("llava:7b");
  ASSERT_TRUE(found) << found.error().line();
  ASSERT_TRUE(found->projector);
  EXPECT_EQ(found->projector->path, *written.projector_blob);
  EXPECT_EQ(found->projector->size, *written.projector_size);
  ASSERT_EQ(found->adapters.size(), 1U);
  EXPECT_EQ(found->adapters[0].path, *written.adapter_blob);
  ASSERT_TRUE(found->config);
  EXPECT_EQ(found->config->model_families, (std::vector<std::string>{"llama", "clip"}));

  // A vision model without its projector cannot load: the same error as a missing model blob.
  fs::remove(*written.projector_blob);
  const auto broken = resolve("llava:7b");
  ASSERT_FALSE(broken);
  EXPECT_TRUE(broken.error().message.starts_with("the projector blob of llava:7b is missing")) << broken.error().line();
}

TEST_F(OllamaStoreTest, UnreadableConfigIsANoteNotAFailure) {
  const auto written = write("/home/ana/.ollama/models", spec_for("mistral:7b"));
  fs::remove(*written.config_blob);
  const auto found = resolve("mistral:7b");
  ASSERT_TRUE(found) << found.error().line();
  EXPECT_FALSE(found->config);
  ASSERT_EQ(found->notes.size(), 1U);
  EXPECT_TRUE(
      found->notes[0].starts_with("the model's config blob could not be read: " + written.config_blob->string() + ": "))
      << found->notes[0];

  auto no_config = spec_for("phi3:mini");
  no_config.config = false;
  write("/home/ana/.ollama/models", no_config);
  const auto bare = resolve("phi3:mini");
  ASSERT_TRUE(bare) << bare.error().line();
  EXPECT_FALSE(bare->config);
  EXPECT_TRUE(bare->notes.empty());
}

TEST_F(OllamaStoreTest, RefusesAHandMadeNameThatWouldEscape) {
  const auto found =
      resolve_ollama_model(root(), locations(), OllamaModelName{"registry.ollama.ai", "..", "..", "passwd"});
  ASSERT_FALSE(found);
  EXPECT_NE(found.error().message.find("namespace"), std::string::npos) << found.error().line();
}

// ---- listing a store

TEST_F(OllamaStoreTest, ListsEveryModelInAStore) {
  const fs::path store = "/home/ana/.ollama/models";
  write(store, spec_for("mistral:7b"));
  write(store, spec_for("deepseek-coder:33b"));
  write(store, spec_for("deepseek-coder:6.7b"));
  write(store, spec_for("ana/coder:v2"));
  write(store, spec_for("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"));
  // Not models: a name Ollama would refuse, a 5-part (kind) entry, a stray file above the tag level.
  fs::create_directories(real(store / "manifests/registry.ollama.ai/library/bad name"));
  std::ofstream(real(store / "manifests/registry.ollama.ai/library/bad name/x")) << "{}";
  fs::create_directories(real(store / "manifests/registry.ollama.ai/ana/skill/helper"));
  std::ofstream(real(store / "manifests/registry.ollama.ai/ana/skill/helper/latest")) << "{}";
  std::ofstream(real(store / "manifests/registry.ollama.ai/library/README")) << "x";

  const auto listed = list_ollama_models(root(), store);
  ASSERT_TRUE(listed) << listed.error().line();
  EXPECT_EQ(displays(*listed), (std::vector<std::string>{
                                   "ana/coder:v2",
                                   "deepseek-coder:33b",
                                   "deepseek-coder:6.7b",
                                   "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
                                   "mistral:7b",
                               }));
}

TEST_F(OllamaStoreTest, ListingAMissingStoreIsENOENT) {
  const auto listed = list_ollama_models(root(), "/nowhere/models");
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, ENOENT);
  EXPECT_EQ(listed.error().source, real("/nowhere/models/manifests").string());

  fs::create_directories(real("/empty/models/manifests"));
  const auto empty = list_ollama_models(root(), "/empty/models");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

// ---- disk space

TEST_F(OllamaStoreTest, DiskSpaceOfATempDir) {
  fs::create_directories(real("/home/ana/.ollama/models"));
  const auto space = read_disk_space(root(), "/home/ana/.ollama/models");
  ASSERT_TRUE(space) << space.error().line();
  EXPECT_EQ(space->measured, real("/home/ana/.ollama/models"));
  EXPECT_GT(space->total, 0U);
  EXPECT_LE(space->available, space->total);
  const auto reference = fs::space(m_dir.path());
  EXPECT_EQ(space->total, reference.capacity);
  // Other writers share the disk: the free space may move a little between the two reads.
  const auto diff = space->available > reference.available ? space->available - reference.available
                                                           : reference.available - space->available;
  EXPECT_LT(diff, k_gib);
}

TEST_F(OllamaStoreTest, DiskSpaceOfAPathNotYetCreatedUsesItsNearestAncestor) {
  fs::create_directories(real("/srv"));
  const auto space = read_disk_space(root(), "/srv/ollama/models");
  ASSERT_TRUE(space) << space.error().line();
  EXPECT_EQ(space->measured, real("/srv"));
  EXPECT_GT(space->total, 0U);
}
