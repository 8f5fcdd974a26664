// collect_plan end to end: models from GGUF files, an Ollama store, a fake Ollama server and the
// catalog; the host from fixture trees, the fake NVML or --ram/--vram.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <mutex>
#include <numeric>

#include "cli/plan.hpp"
#include "core/catalog.hpp"
#include "fake_services.hpp"
#include "gguf_writer.hpp"
#include "ollama_store_writer.hpp"
#include "probes/gguf_file.hpp"
#include "probes/host_memory.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using json = nlohmann::json;

namespace {

const char* const k_incident = "hosts/v2-systemd-incident";

PlanOptions options(std::vector<std::string> models) {
  PlanOptions o;
  o.root = probes::HostRoot(test::fixture_path(k_incident));
  o.models = std::move(models);
  o.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  o.settings.num_ctx = 2048;
  return o;
}

// A hypothetical 32 GiB host with a 16 GiB GPU.
PlanOptions roomy(std::vector<std::string> models) {
  auto o = options(std::move(models));
  o.ram = 32 * k_gib;
  o.vram = 16 * k_gib;
  return o;
}

// A host root with the incident's meminfo, for tests that put a model store in it.
void write_incident_meminfo(const test::TempDir& root) {
  root.write("proc/meminfo", test::read_fixture(std::string(k_incident) + "/proc/meminfo"));
}

// mistral:7b (compact vocabulary) in the store at `models_dir`.
void write_mistral_store(const std::filesystem::path& models_dir) {
  test::OllamaStoreModelSpec spec;
  spec.name = "mistral:7b";
  spec.model = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
  test::write_ollama_model(models_dir, spec);
}

std::uint64_t tensor_bytes(const std::filesystem::path& gguf) {
  const auto file = probes::read_gguf(gguf);
  EXPECT_TRUE(file) << file.error().line();
  std::uint64_t total = 0;
  for (const auto& t : file->tensors) {
    total += t.bytes;
  }
  return total;
}

}  // namespace

TEST(PlanCommand, AGgufFileIsSizedFromItsRealTensors) {
  test::TempDir dir;
  const auto path = dir.path() / "mistral.gguf";
  test::write_gguf(path, test::gguf_preset(test::GgufPreset::mistral_7b_q4_0));
  const auto r = collect_plan(roomy({path.string()}));
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  ASSERT_EQ(r.plans.size(), 1U);
  const auto& p = r.plans[0];
  EXPECT_EQ(p.source, "GGUF file " + path.string());
  EXPECT_EQ(p.quantization, "q4_0");  // general.file_type 2
  EXPECT_EQ(p.placement.weights, tensor_bytes(path));
  EXPECT_EQ(p.verdict, FitVerdict::gpu);
  EXPECT_EQ(p.disk_needed, 0U);  // it is on disk
  EXPECT_EQ(r.models[0].file_bytes, std::filesystem::file_size(path));
  // The layout of the same model from the catalog's dimensions agrees with the real file within 1%.
  const auto entry = catalog_find("mistral:7b");
  ASSERT_TRUE(entry);
  const auto catalog = quantized_shape(entry->model->dims, "q4_0", "mistral:7b");
  ASSERT_TRUE(catalog);
  const auto catalog_weights = catalog->weight_bytes();
  EXPECT_NEAR(static_cast<double>(p.placement.weights), static_cast<double>(catalog_weights),
              static_cast<double>(catalog_weights) * 0.01);
  EXPECT_EQ(plan_exit_code(r), PlanExit::fits);
}

TEST(PlanCommand, AnOllamaNameIsFoundInTheStoreWithItsProjector) {
  // The host root holds the store at /models (and the incident's meminfo).
  test::TempDir dir;
  write_incident_meminfo(dir);
  const auto models = dir.path() / "models";
  test::OllamaStoreModelSpec spec;
  spec.name = "deepseek-coder:33b";
  spec.model = test::gguf_preset(test::GgufPreset::deepseek_coder_33b_q4_0, test::GgufVocab::compact);
  spec.projector = test::tiny_gguf_spec("clip");
  const auto written = test::write_ollama_model(models, spec);
  auto o = roomy({"deepseek-coder:33b"});
  o.root = probes::HostRoot(dir.path());
  o.models_dir = "/models";
  const auto r = collect_plan(o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  ASSERT_EQ(r.plans.size(), 1U);
  EXPECT_EQ(r.plans[0].source.rfind("Ollama store /models (", 0), 0U) << r.plans[0].source;  // as on the host
  ASSERT_TRUE(written.projector_size);
  EXPECT_EQ(r.models[0].extra_weights, *written.projector_size);
  EXPECT_EQ(r.plans[0].placement.weights, tensor_bytes(written.model_blob) + *written.projector_size);
  EXPECT_EQ(r.plans[0].disk_needed, 0U);
  ASSERT_TRUE(r.disk_path);  // the free disk is measured where the store is
  EXPECT_EQ(*r.disk_path, models.string());
  EXPECT_TRUE(r.host.disk_available);
}

TEST(PlanCommand, ANameTheStoreLacksComesFromTheCatalog) {
  test::TempDir dir;
  auto o = roomy({"codellama:34b"});
  o.models_dir = (dir.path() / "models").string();
  o.home = dir.path().string();
  const auto r = collect_plan(o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  EXPECT_EQ(r.plans[0].source, "built-in catalog (not in the Ollama store)");
  EXPECT_GT(r.plans[0].disk_needed, 17 * k_gib);  // the download
}

TEST(PlanCommand, ANameNobodyKnowsIsOneErrorWithBothReasons) {
  test::TempDir dir;
  auto o = roomy({"nosuchmodel:1b", "mistral:7b"});
  o.models_dir = (dir.path() / "models").string();
  const auto r = collect_plan(o);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0].source, "nosuchmodel:1b");
  EXPECT_NE(r.errors[0].message.find("Ollama model store"), std::string::npos) << r.errors[0].message;
  EXPECT_NE(r.errors[0].message.find("catalog"), std::string::npos);
  // The rest of the work goes on.
  ASSERT_EQ(r.plans.size(), 1U);
  EXPECT_EQ(plan_exit_code(r), PlanExit::partial);
  const auto j = plan_to_json(r);
  EXPECT_EQ(j["errors"][0]["source"], "nosuchmodel:1b");
  EXPECT_NE(render_plan(r).find("error: nosuchmodel:1b: "), std::string::npos);
}

TEST(PlanCommand, AnUnreadableGgufFileIsAnErrorNamingIt) {
  test::TempDir dir;
  dir.write("broken.gguf", "GGUF but not really");
  const auto r = collect_plan(roomy({(dir.path() / "broken.gguf").string()}));
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0].source, (dir.path() / "broken.gguf").string());
}

TEST(PlanCommand, ARunningServerIsAskedThroughApiShow) {
  test::TempDir dir;
  std::vector<std::string> paths;
  std::mutex mutex;
  test::FakeHttpServer server(dir.path() / "ollama.sock", [&](const std::string& method, const std::string& path) {
    const std::lock_guard lock(mutex);
    paths.push_back(method + " " + path);
    if (path == "/api/show") {
      return test::FakeHttpServer::Reply{200, R"({"details":{"family":"llama","parameter_size":"8.0B",
        "quantization_level":"Q4_K_M"},"model_info":{"general.architecture":"llama",
        "general.parameter_count":8030261248,"llama.attention.head_count":32,"llama.attention.head_count_kv":8,
        "llama.block_count":32,"llama.context_length":131072,"llama.embedding_length":4096,
        "llama.feed_forward_length":14336,"llama.vocab_size":128256}})"};
    }
    if (path == "/api/tags") {
      return test::FakeHttpServer::Reply{200, R"({"models":[{"name":"llama3.1:8b","model":"llama3.1:8b",
        "size":4920753328,"digest":"46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e"}]})"};
    }
    return test::FakeHttpServer::Reply{404, R"({"error":"not found"})"};
  });
  auto o = roomy({"llama3.1:8b"});
  o.ollama_url = server.address();
  const auto r = collect_plan(o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  EXPECT_NE(r.plans[0].source.find("server " + server.address()), std::string::npos);
  EXPECT_EQ(r.plans[0].quantization, "q4_K_M");
  EXPECT_EQ(r.models[0].file_bytes, 4920753328U);
  // Laid out from the dimensions as the catalog's llama3.1:8b is (the layout, not scaled: /api/tags's size
  // counts every layer of the model, a projector too), within 1% of the file.
  const auto entry = catalog_find("llama3.1:8b");
  ASSERT_TRUE(entry);
  const auto layout = quantized_shape(entry->model->dims, "q4_K_M", "llama3.1:8b");
  ASSERT_TRUE(layout);
  EXPECT_EQ(r.models[0].shape.block_bytes, layout->block_bytes);
  EXPECT_NEAR(static_cast<double>(r.models[0].shape.weight_bytes()), 4920753328.0, 4920753328.0 * 0.01);
  EXPECT_FALSE(r.models[0].published_size);
  EXPECT_EQ(r.plans[0].accuracy.basis, FigureBasis::server);
  EXPECT_FALSE(r.plans[0].accuracy.weights_exact);
  const std::lock_guard lock(mutex);
  EXPECT_EQ(paths.front(), "POST /api/show");
}

TEST(PlanCommand, AServerThatCannotBeReachedIsAnError) {
  test::TempDir dir;
  auto o = roomy({"llama3.1:8b"});
  o.ollama_url = "unix://" + (dir.path() / "nobody.sock").string();
  const auto r = collect_plan(o);
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0].source, "llama3.1:8b");
  EXPECT_NE(r.errors[0].message.find("nobody.sock"), std::string::npos) << r.errors[0].message;
}

TEST(PlanCommand, TheHostsRamComesFromMeminfoLessTheReserve) {
  const auto r = collect_plan(options({"mistral:7b"}));
  const auto meminfo = probes::read_meminfo(probes::HostRoot(test::fixture_path(k_incident)));
  ASSERT_TRUE(meminfo && meminfo->mem_available);
  EXPECT_EQ(r.host.ram_available, *meminfo->mem_available);
  EXPECT_EQ(r.host.ram_total, meminfo->mem_total);
  // The incident host: 1.9 GB available is less than the 4 GiB reserve, so nothing fits.
  EXPECT_EQ(r.host.ram_usable(), 0U);
  ASSERT_EQ(r.plans.size(), 1U);
  EXPECT_EQ(r.plans[0].verdict, FitVerdict::no_fit);
  EXPECT_EQ(plan_exit_code(r), PlanExit::no_fit);
  EXPECT_TRUE(r.host.gpus.empty());
  const auto has = [&](std::string_view text) {
    return std::any_of(r.host_notes.begin(), r.host_notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("GPU: none found"));
  EXPECT_TRUE(has("nothing is left for models"));
}

TEST(PlanCommand, GpusComeFromNvml) {
  auto o = options({"mistral:7b"});
  o.ram = 32 * k_gib;
  o.nvml_library = FAKE_NVML_PATH;
  ::setenv("FAKE_NVML_SCENARIO", "ok", 1);
  const auto r = collect_plan(o);
  ::unsetenv("FAKE_NVML_SCENARIO");
  ASSERT_FALSE(r.host.gpus.empty());
  for (const auto& g : r.host.gpus) {
    EXPECT_EQ(g.total, 16 * k_gib);  // the fake's figures (tests/support/fake_nvml.c)
    EXPECT_EQ(g.free, 14763950080U);
    EXPECT_EQ(g.name.rfind("GPU ", 0), 0U);
  }
  EXPECT_EQ(r.plans[0].verdict, FitVerdict::gpu);
  EXPECT_LE(r.plans[0].placement.vram, 14763950080U);
}

TEST(PlanCommand, TheTextSaysTheVerdictAndTheLimit) {
  const auto r = collect_plan(roomy({"codellama:34b", "mistral:7b"}));
  const auto text = render_plan(r);
  EXPECT_NE(text.find("split: "), std::string::npos) << text;
  EXPECT_NE(text.find("layers on the GPU"), std::string::npos);
  EXPECT_NE(text.find("docker run --memory "), std::string::npos);
  EXPECT_NE(text.find("Together"), std::string::npos);
  EXPECT_NE(text.find("hypothetical"), std::string::npos);
}

TEST(PlanCommand, TheJsonHasEveryFigureAndNullForWhatIsUnknown) {
  auto o = roomy({"codellama:34b", "mistral:7b"});
  const auto r = collect_plan(o);
  const auto j = plan_to_json(r);
  EXPECT_EQ(j["host"]["ram_total_bytes"], 32 * k_gib);
  EXPECT_EQ(j["host"]["ram_usable_bytes"], 28 * k_gib);
  ASSERT_EQ(j["models"].size(), 2U);
  const auto& m = j["models"][0];
  EXPECT_EQ(m["name"], "codellama:34b");
  EXPECT_EQ(m["verdict"], "split");
  EXPECT_EQ(m["num_ctx"], 2048);
  EXPECT_EQ(m["placement"]["layers_total"], 49);
  EXPECT_EQ(m["container_limit_bytes"], r.plans[0].container_limit);
  EXPECT_EQ(j["models"][1]["verdict"], "gpu");
  EXPECT_EQ(j["models"][1]["placement"]["processor"], "100% GPU");
  EXPECT_TRUE(j["models"][1]["vram_full_offload_bytes"].is_null());
  EXPECT_EQ(j["models"][0]["vram_full_offload_bytes"], *r.plans[0].vram_full_offload);
  // codellama takes the GPU, so mistral cannot be loaded beside it: one at a time.
  EXPECT_EQ(j["together"]["fit"], false);
  EXPECT_TRUE(j["together"]["container_limit_together_bytes"].is_null());
  EXPECT_EQ(j["together"]["container_limit_exclusive_bytes"],
            std::max(r.plans[0].container_limit, r.plans[1].container_limit));

  // A model that does not fit has no container limit: null, not 0.
  auto tiny = roomy({"llama3.1:70b"});
  tiny.ram = 16 * k_gib;
  const auto jt = plan_to_json(collect_plan(tiny));
  EXPECT_EQ(jt["models"][0]["verdict"], "no_fit");
  EXPECT_TRUE(jt["models"][0]["container_limit_bytes"].is_null());
  EXPECT_TRUE(jt["together"].is_null());

  // No meminfo: RAM is null, not 0, and the error says why.
  test::TempDir empty;
  auto bare = options({"mistral:7b"});
  bare.root = probes::HostRoot(empty.path());
  const auto none = collect_plan(bare);
  const auto jn = plan_to_json(none);
  EXPECT_TRUE(jn["host"]["ram_total_bytes"].is_null());
  EXPECT_TRUE(jn["host"]["ram_available_bytes"].is_null());
  EXPECT_TRUE(jn["models"].empty());
  ASSERT_FALSE(none.errors.empty());
  EXPECT_NE(none.errors[0].source.find("meminfo"), std::string::npos);
  EXPECT_EQ(plan_exit_code(none), PlanExit::partial);
}

TEST(PlanCommand, AnOllamaContainersStoreAndSettingsAreUsed) {
  test::TempDir dir;
  write_incident_meminfo(dir);
  // The container keeps its store on a bind mount: /srv/ollama on the host is /root/.ollama inside.
  write_mistral_store(dir.path() / "srv/ollama/models");
  auto doc = test::inspect_like(std::string(64, 'a'), "ollama-gpu", 4242, 0, "http://127.0.0.1:1");
  doc["Config"]["Env"] = {"OLLAMA_NUM_PARALLEL=2", "OLLAMA_CONTEXT_LENGTH=8192", "PATH=/bin"};
  doc["Mounts"] = json::array({{{"Type", "bind"}, {"Source", "/srv/ollama"}, {"Destination", "/root/.ollama"}}});
  test::FakeEngine engine(dir.path() / "docker.sock", {doc});

  auto o = roomy({"mistral:7b"});
  o.root = probes::HostRoot(dir.path());
  o.settings.num_ctx.reset();
  o.docker_host = engine.address();
  const auto r = collect_plan(o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  ASSERT_EQ(r.servers.size(), 1U);
  EXPECT_EQ(r.servers[0].name, "ollama-gpu");
  EXPECT_EQ(r.servers[0].store, "/srv/ollama/models");
  EXPECT_FALSE(r.servers[0].memory_limit);
  EXPECT_EQ(r.plans[0].source, "Ollama store /srv/ollama/models (container ollama-gpu)");
  EXPECT_EQ(r.plans[0].options.num_ctx, 8192U);
  EXPECT_EQ(r.plans[0].options.parallel, 2U);
  const auto said = std::any_of(r.host_notes.begin(), r.host_notes.end(), [](const std::string& n) {
    return n == "settings from container ollama-gpu: OLLAMA_CONTEXT_LENGTH=8192, OLLAMA_NUM_PARALLEL=2";
  });
  EXPECT_TRUE(said);
  EXPECT_NE(render_plan(r).find("ollama-gpu has no limit now"), std::string::npos);
  EXPECT_TRUE(plan_to_json(r)["servers"][0]["memory_limit_bytes"].is_null());

  // The command line wins.
  o.parallel = 1;
  o.settings.num_ctx = 2048;
  const auto mine = collect_plan(o);
  EXPECT_EQ(mine.plans[0].options.parallel, 1U);
  EXPECT_EQ(mine.plans[0].options.num_ctx, 2048U);
}

TEST(PlanCommand, WithoutDockerThePlanGoesOnAndSaysWhy) {
  test::TempDir dir;
  auto o = roomy({"mistral:7b"});
  o.docker_host = "unix://" + (dir.path() / "no-docker.sock").string();
  const auto r = collect_plan(o);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.plans.size(), 1U);
  const auto said = std::any_of(r.host_notes.begin(), r.host_notes.end(),
                                [](const std::string& n) { return n.starts_with("Docker: not reachable"); });
  EXPECT_TRUE(said);
}

TEST(PlanCommand, AKernelWithoutMemAvailableIsAnErrorNotZeroBytes) {
  test::TempDir dir;
  dir.write("proc/meminfo", "MemTotal:       32768000 kB\nMemFree:         1000000 kB\n");
  auto o = options({"mistral:7b"});
  o.root = probes::HostRoot(dir.path());
  const auto r = collect_plan(o);
  EXPECT_TRUE(r.plans.empty());
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_NE(r.errors[0].message.find("--ram"), std::string::npos);
  EXPECT_TRUE(plan_to_json(r)["host"]["ram_available_bytes"].is_null());
  EXPECT_EQ(plan_exit_code(r), PlanExit::partial);
  // With --ram it plans.
  o.ram = 32 * k_gib;
  EXPECT_EQ(collect_plan(o).plans.size(), 1U);
}

TEST(PlanCommand, TheSameModelTwiceIsPlannedOnce) {
  const auto r = collect_plan(roomy({"mistral:7b", "mistral:7b"}));
  EXPECT_EQ(r.plans.size(), 1U);
  EXPECT_FALSE(r.together);
}

TEST(PlanCommand, AContainersNamedVolumeStoreComesFirstAndNamesTheContainer) {
  test::TempDir dir;
  write_incident_meminfo(dir);
  // The documented `-v ollama:/root/.ollama`: the volume scan finds the store too.
  write_mistral_store(dir.path() / "var/lib/docker/volumes/ollama/_data/models");
  write_mistral_store(dir.path() / "home/me/.ollama/models");  // an older copy in $HOME
  auto doc = test::inspect_like(std::string(64, 'b'), "ollama", 4242, 0, "http://127.0.0.1:1");
  doc["Mounts"] = json::array({{{"Type", "volume"},
                                {"Name", "ollama"},
                                {"Source", "/var/lib/docker/volumes/ollama/_data/"},
                                {"Destination", "/root/.ollama"}}});
  test::FakeEngine engine(dir.path() / "docker.sock", {doc});
  auto o = roomy({"mistral:7b"});
  o.root = probes::HostRoot(dir.path());
  o.home = "/home/me";
  o.docker_host = engine.address();
  const auto r = collect_plan(o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  EXPECT_EQ(r.plans[0].source.rfind("Ollama store /var/lib/docker/volumes/ollama/_data/models (", 0), 0U)
      << r.plans[0].source;
  EXPECT_NE(r.plans[0].source.find("container ollama"), std::string::npos) << r.plans[0].source;
}

TEST(PlanCommand, AServerAnswerThatCannotBeSizedIsAnErrorNamingTheServer) {
  test::TempDir dir;
  std::string show;
  test::FakeHttpServer server(dir.path() / "ollama.sock", [&](const std::string&, const std::string& path) {
    return path == "/api/show" ? test::FakeHttpServer::Reply{200, show}
                               : test::FakeHttpServer::Reply{200, R"({"models":[]})"};
  });
  auto o = roomy({"some:model"});
  o.ollama_url = server.address();
  const auto first_error = [&] {
    const auto r = collect_plan(o);
    EXPECT_EQ(r.errors.size(), 1U);
    return r.errors.empty() ? std::string() : r.errors[0].line();
  };
  // An architecture memwarden does not size, one without its dimensions, a missing dimension, a
  // quantization llama.cpp does not make, junk.
  show = R"({"details":{"quantization_level":"Q4_K_M"},"model_info":{"general.architecture":"mamba"}})";
  const auto recurrent = first_error();
  EXPECT_NE(recurrent.find("'mamba' is a recurrent or hybrid model"), std::string::npos) << recurrent;
  EXPECT_NE(recurrent.find("give the GGUF file instead"), std::string::npos) << recurrent;
  show = R"({"details":{"quantization_level":"Q4_K_M"},"model_info":{"general.architecture":"gemma3"}})";
  EXPECT_NE(first_error().find("gives no complete gemma3 dimensions"), std::string::npos);
  show = R"({"details":{"quantization_level":"Q4_K_M"},"model_info":{"general.architecture":"llama",
    "llama.block_count":32,"llama.embedding_length":4096,"llama.attention.head_count":32,"llama.vocab_size":1000}})";
  EXPECT_NE(first_error().find("feed_forward_length"), std::string::npos);
  show = R"({"details":{"quantization_level":"Q7_K_X"},"model_info":{"general.architecture":"llama",
    "llama.block_count":32,"llama.embedding_length":4096,"llama.feed_forward_length":14336,
    "llama.attention.head_count":32,"llama.vocab_size":1000}})";
  const auto quant = first_error();
  EXPECT_NE(quant.find("'Q7_K_X' is not a llama.cpp file type"), std::string::npos) << quant;
  EXPECT_EQ(quant.rfind("some:model: " + server.address(), 0), 0U) << quant;
  show = "not json";
  EXPECT_EQ(first_error().rfind("some:model: ", 0), 0U);
}

TEST(PlanCommand, EveryCatalogModelPlansOnTheSeedsHost) {
  // The seed's host: 32 GiB of RAM (4 GiB kept for the monitoring stack) and a 16 GiB GPU, Ollama's default
  // context for it (4096). Every entry is sized, placed sanely and said to come from the catalog.
  std::vector<std::string> names;
  for (const auto& e : catalog()) {
    names.push_back(e.name);
  }
  auto o = roomy(names);
  o.settings.num_ctx.reset();
  o.source = ModelSource::catalog;
  const auto r = collect_plan(o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  ASSERT_EQ(r.plans.size(), names.size());
  for (std::size_t i = 0; i < r.plans.size(); ++i) {
    const auto& p = r.plans[i];
    const auto& m = r.models[i];
    const auto& pl = p.placement;
    SCOPED_TRACE(p.name);
    EXPECT_EQ(p.accuracy.basis, FigureBasis::catalog);
    EXPECT_TRUE(p.accuracy.cache_known);
    EXPECT_GT(p.accuracy.margin_percent, 0U);
    EXPECT_LE(pl.vram, 16 * k_gib);
    EXPECT_LE(pl.layers_on_gpu, pl.layers_total);
    EXPECT_GE(m.file_bytes, pl.weights);  // the download holds every weight
    EXPECT_GT(pl.graph.partial, 0U);
    EXPECT_EQ(pl.kv == 0, m.shape.embedding_only);
    // What fits the GPU with room to spare goes there whole; what is larger than it does not.
    if (pl.weights + pl.kv + 3 * k_gib < 16 * k_gib) {
      EXPECT_EQ(p.verdict, FitVerdict::gpu);
    }
    if (pl.weights > 16 * k_gib) {
      EXPECT_NE(p.verdict, FitVerdict::gpu);
      EXPECT_GT(pl.ram_page_cache, 0U);
    }
    if (p.verdict != FitVerdict::no_fit) {
      EXPECT_GE(p.container_limit, p.ram_needed);
      EXPECT_LE(p.ram_needed, 28 * k_gib);
    } else {
      EXPECT_GT(p.ram_needed, 28 * k_gib);
    }
  }
  // The figures a user sees: 70B does not fit whole, gpt-oss:20b fits, qwen3:30b is split with its experts.
  const auto verdict = [&](std::string_view name) {
    for (const auto& p : r.plans) {
      if (p.name == name) {
        return p.verdict;
      }
    }
    return FitVerdict::no_fit;
  };
  EXPECT_EQ(verdict("gpt-oss:20b"), FitVerdict::gpu);
  EXPECT_EQ(verdict("gemma3:12b"), FitVerdict::gpu);
  EXPECT_EQ(verdict("llama3.1:70b"), FitVerdict::split);
  EXPECT_EQ(verdict("qwen3:235b"), FitVerdict::no_fit);
  for (const auto& p : r.plans) {
    if (p.name == "qwen3:30b") {
      EXPECT_EQ(p.verdict, FitVerdict::split);
      EXPECT_TRUE(p.placement.experts_split);
    }
  }
}

TEST(PlanCommand, AnArchitectureItDoesNotKnowGetsExactWeightsAndAnUnknownCache) {
  test::TempDir dir;
  const auto path = dir.path() / "odd.gguf";
  auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
  spec.metadata[0] = {"general.architecture", GgufValue{std::string("frobnicator")}};
  for (auto& kv : spec.metadata) {
    if (kv.key.starts_with("llama.")) {
      kv.key = "frobnicator." + kv.key.substr(6);
    }
  }
  test::write_gguf(path, spec);
  const auto r = collect_plan(roomy({path.string()}));
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  const auto& p = r.plans[0];
  EXPECT_EQ(p.placement.weights, tensor_bytes(path));
  EXPECT_FALSE(p.accuracy.cache_known);
  const auto text = render_plan(r);
  EXPECT_NE(text.find("KV cache unknown, compute graph unknown"), std::string::npos) << text;
  EXPECT_NE(text.find("verdict    at least: "), std::string::npos) << text;
  EXPECT_NE(text.find("does not know the architecture 'frobnicator'"), std::string::npos) << text;
  const auto j = plan_to_json(r)["models"][0];
  EXPECT_TRUE(j["placement"]["kv_bytes"].is_null());
  EXPECT_TRUE(j["placement"]["graph_full_bytes"].is_null());
  EXPECT_EQ(j["placement"]["weights_bytes"], tensor_bytes(path));
  EXPECT_TRUE(j["verdict_is_lower_bound"].get<bool>());
  EXPECT_TRUE(j["accuracy"]["margin_percent"].is_null());
  EXPECT_EQ(j["accuracy"]["basis"], "file");
}

TEST(PlanCommand, AProjectorBesideAGgufFileIsCounted) {
  test::TempDir dir;
  const auto model = dir.path() / "llava.gguf";
  test::write_gguf(model, test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact));
  const auto alone = collect_plan(roomy({model.string()}));
  ASSERT_TRUE(alone.errors.empty()) << alone.errors[0].line();
  const auto projector = dir.path() / "mmproj-model-f16.gguf";
  test::write_gguf(projector, test::gguf_preset(test::GgufPreset::clip_llava_projector_f16));
  const auto with = collect_plan(roomy({model.string()}));
  ASSERT_TRUE(with.errors.empty()) << with.errors[0].line();
  const auto projector_bytes = tensor_bytes(projector);
  EXPECT_EQ(with.plans[0].placement.weights, alone.plans[0].placement.weights + projector_bytes);
  EXPECT_EQ(with.plans[0].placement.vram, alone.plans[0].placement.vram + projector_bytes);
  EXPECT_NE(with.plans[0].source.find("+ projector mmproj-model-f16.gguf"), std::string::npos) << with.plans[0].source;
  // Two candidates beside it: none is guessed.
  test::write_gguf(dir.path() / "mmproj-other.gguf", test::gguf_preset(test::GgufPreset::clip_llava_projector_f16));
  const auto two = collect_plan(roomy({model.string()}));
  EXPECT_EQ(two.plans[0].placement.weights, alone.plans[0].placement.weights);
  // --mmproj names it; a file that is not a projector is an error naming it.
  auto named = roomy({model.string()});
  named.mmproj = projector.string();
  EXPECT_EQ(collect_plan(named).plans[0].placement.weights, with.plans[0].placement.weights);
  named.mmproj = model.string();
  const auto wrong = collect_plan(named);
  ASSERT_EQ(wrong.errors.size(), 1U);
  EXPECT_NE(wrong.errors[0].line().find("not a vision projector"), std::string::npos) << wrong.errors[0].line();
  // A projector given as the model says what it is.
  const auto as_model = collect_plan(roomy({projector.string()}));
  ASSERT_EQ(as_model.errors.size(), 1U);
  EXPECT_NE(as_model.errors[0].line().find("a vision projector (mmproj), not a model"), std::string::npos);
}

TEST(PlanCommand, ThePlanSaysHowSureItIs) {
  test::TempDir dir;
  const auto path = dir.path() / "mistral.gguf";
  test::write_gguf(path, test::gguf_preset(test::GgufPreset::mistral_7b_q4_0));
  const auto r = collect_plan(roomy({path.string(), "gemma3:12b", "qwen3:30b-q8_0"}));
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].line();
  ASSERT_EQ(r.plans.size(), 3U);
  EXPECT_EQ(r.plans[0].accuracy.basis, FigureBasis::gguf_file);
  EXPECT_TRUE(r.plans[0].accuracy.weights_exact);
  EXPECT_EQ(r.plans[0].accuracy.margin_percent, 5U);
  EXPECT_EQ(r.plans[1].accuracy.basis, FigureBasis::catalog);
  EXPECT_FALSE(r.plans[1].accuracy.weights_exact);
  EXPECT_GT(r.plans[1].accuracy.margin_percent, r.plans[0].accuracy.margin_percent);
  const auto text = render_plan(r);
  EXPECT_NE(text.find("accuracy   exact weights (GGUF on disk); within about ±5%"), std::string::npos) << text;
  EXPECT_NE(text.find("sliding-window attention: 40 of 48 layers keep only the last 1024 tokens"), std::string::npos)
      << text;
  EXPECT_NE(text.find("a mixture of experts"), std::string::npos) << text;
  const auto j = plan_to_json(r);
  EXPECT_EQ(j["models"][1]["accuracy"]["basis"], "catalog");
  EXPECT_EQ(j["models"][2]["architecture"], "qwen3moe");
  EXPECT_LT(j["models"][2]["active_weights_bytes"].get<std::uint64_t>(),
            j["models"][2]["placement"]["weights_bytes"].get<std::uint64_t>() / 4);
}

TEST(PlanCommand, ATensorTypeItDoesNotKnowIsAnErrorAndTheRestIsPlanned) {
  test::TempDir dir;
  const auto path = dir.path() / "future.gguf";
  auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
  spec.tensors[3].type = 77;  // a type a newer ggml might define
  test::write_gguf(path, spec);
  const auto r = collect_plan(roomy({path.string(), "gemma3:4b"}));
  ASSERT_EQ(r.errors.size(), 1U);
  const auto line = r.errors[0].line();
  EXPECT_EQ(line.rfind(path.string() + ": ", 0), 0U) << line;
  EXPECT_NE(line.find("'" + spec.tensors[3].name + "': ggml type 77 is not one memwarden knows"), std::string::npos)
      << line;
  ASSERT_EQ(r.plans.size(), 1U);
  EXPECT_EQ(r.plans[0].name, "gemma3:4b");
  EXPECT_EQ(plan_exit_code(r), PlanExit::partial);
}
