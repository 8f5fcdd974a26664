// `memwarden plan` as a user runs it: the real binary against the Ollama simulator in a real container
// (/api/show, /api/tags) and against a model store on disk (sparse GGUF blobs, real statvfs).
#include <gtest/gtest.h>

#include <numeric>

#include "core/catalog.hpp"
#include "engine_support.hpp"
#include "gguf_writer.hpp"
#include "ollama_store_writer.hpp"

using namespace mw;
using namespace mw::it;
using json = nlohmann::json;

namespace {

test::ProcessResult plan(std::vector<std::string> args) {
  args.insert(args.begin(), {MEMWARDEN_BIN, "plan"});
  return test::run_process(args);
}

// A store with deepseek-coder:33b (the real architecture's tensor list, a sparse 18 GB blob).
struct Store {
  test::TempDir dir;
  std::filesystem::path models = dir.path() / "models";
  test::WrittenOllamaModel written;
  Store() {
    test::OllamaStoreModelSpec spec;
    spec.name = "deepseek-coder:33b";
    spec.model = test::gguf_preset(test::GgufPreset::deepseek_coder_33b_q4_0, test::GgufVocab::full);
    spec.model_type = "33B";
    written = test::write_ollama_model(models, spec);
  }
};

}  // namespace

TEST(PlanEngine, ARunningServerIsAskedThroughItsApi) {
  const int port = 18801;
  Container sim("mwit-plan-sim",
                {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:" + std::to_string(port), "-m", "1g"},
                {"/bin/ollama-sim", "--model", "planme:8b=4700"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening")) << sim.logs();
  const auto r = plan({"planme:8b", "--ollama", "http://127.0.0.1:" + std::to_string(port), "--ram", "32G", "--vram",
                       "16G", "--ctx", "4096", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["models"].size(), 1U) << r.out;
  const auto& m = j["models"][0];
  EXPECT_NE(m["source"].get<std::string>().find("server http://127.0.0.1:18801"), std::string::npos);
  EXPECT_EQ(m["quantization"], "q4_K_M");                   // the simulator's quantization_level Q4_K_M
  EXPECT_EQ(m["file_bytes"], std::uint64_t{4700} * k_mib);  // /api/tags size
  // The simulator describes an 8B model as 32 blocks of 4096: 33 layers with the output layer.
  EXPECT_EQ(m["placement"]["layers_total"], 33);
  EXPECT_EQ(m["verdict"], "gpu");
  EXPECT_TRUE(j["errors"].empty());

  // A name the server does not have: exit 3, and the server's answer in the error.
  const auto missing = plan(
      {"nosuch:1b", "--ollama", "http://127.0.0.1:" + std::to_string(port), "--ram", "32G", "--vram", "16G", "--json"});
  EXPECT_EQ(missing.exit_code, 3) << missing.out << missing.err;
  const auto jm = parse_output(missing);
  ASSERT_EQ(jm["errors"].size(), 1U);
  EXPECT_EQ(jm["errors"][0]["source"], "nosuch:1b");
  EXPECT_NE(jm["errors"][0]["message"].get<std::string>().find("not found"), std::string::npos) << missing.out;
}

TEST(PlanEngine, AModelInTheStoreIsReadFromItsBlob) {
  const Store store;
  const auto r = plan({"deepseek-coder:33b", "--models-dir", store.models.string(), "--ram", "32G", "--vram", "16G",
                       "--ctx", "2048", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  const auto& m = j["models"][0];
  EXPECT_EQ(m["source"].get<std::string>().rfind("Ollama store " + store.models.string(), 0), 0U) << m["source"];
  EXPECT_EQ(m["quantization"], "q4_0");
  EXPECT_EQ(m["file_bytes"], store.written.model_size);
  EXPECT_EQ(m["disk_needed_bytes"], 0);
  EXPECT_EQ(m["placement"]["layers_total"], 63);  // 62 blocks and the output layer
  EXPECT_EQ(m["verdict"], "split");
  // The file's real tensors and the catalog's layout of deepseek-coder:33b agree within 1%.
  const auto catalog = catalog_shape("deepseek-coder:33b");
  ASSERT_TRUE(catalog);
  const auto catalog_weights = std::accumulate(catalog->block_bytes.begin(), catalog->block_bytes.end(),
                                               catalog->token_embd_bytes + catalog->output_bytes);
  expect_within(m["placement"]["weights_bytes"].get<double>(), static_cast<double>(catalog_weights), 0.01, "weights");
  // The free disk is measured where the store is.
  EXPECT_EQ(j["host"]["disk_path"], store.models.string());
  EXPECT_GT(j["host"]["disk_available_bytes"].get<std::uint64_t>(), 0U);
}

TEST(PlanEngine, ATypoGetsTheStoresNamesAndExit3) {
  const Store store;
  const auto r = plan({"deepseek-coder:34b", "--models-dir", store.models.string(), "--ram", "32G", "--vram", "16G"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("error: deepseek-coder:34b: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("deepseek-coder:33b"), std::string::npos) << r.out;  // did you mean
}

TEST(PlanEngine, AModelTooLargeForTheHostExits4WithTheShortfall) {
  const Store store;
  const auto r =
      plan({"llama3.1:70b", "--models-dir", store.models.string(), "--ram", "16G", "--vram", "0", "--ctx", "2048"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("does not fit in RAM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("more RAM than the"), std::string::npos) << r.out;
}

TEST(PlanEngine, BadOptionsAreOneLineAndExit2) {
  const auto r = plan({"mistral:7b", "--kv-type", "q5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "memwarden: --kv-type: 'q5' is not f16, q8_0 or q4_0\n");
  const auto ctx = plan({"mistral:7b", "--ctx", "lots"});
  EXPECT_EQ(ctx.exit_code, 2);
  EXPECT_NE(ctx.err.find("--ctx"), std::string::npos);
}

TEST(PlanEngine, AnOllamaContainersBindMountedStoreAndSettingsAreFound) {
  // The store on the host at <tmp>/ollama/models, mounted as the container's /root/.ollama.
  test::TempDir dir;
  test::OllamaStoreModelSpec spec;
  spec.name = "deepseek-coder:33b";
  spec.model = test::gguf_preset(test::GgufPreset::deepseek_coder_33b_q4_0, test::GgufVocab::compact);
  const auto written = test::write_ollama_model(dir.path() / "ollama/models", spec);
  const int port = 18802;
  Container sim("mwit-plan-store",
                {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:" + std::to_string(port), "-e",
                 "OLLAMA_NUM_PARALLEL=2", "-v", (dir.path() / "ollama").string() + ":/root/.ollama", "-m", "1g"},
                {"/bin/ollama-sim", "--model", "small:1=100"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening")) << sim.logs();

  const auto r = plan({"deepseek-coder:33b", "--docker-host", docker_host(), "--ram", "32G", "--vram", "16G", "--ctx",
                       "2048", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["servers"].size(), 1U) << r.out;
  EXPECT_EQ(j["servers"][0]["name"], "mwit-plan-store");
  EXPECT_EQ(j["servers"][0]["store"], (dir.path() / "ollama/models").string());
  EXPECT_EQ(j["servers"][0]["memory_limit_bytes"], std::uint64_t{1} << 30);
  const auto& m = j["models"][0];
  EXPECT_EQ(m["source"], "Ollama store " + (dir.path() / "ollama/models").string() + " (container mwit-plan-store)");
  EXPECT_EQ(m["file_bytes"], written.model_size);
  EXPECT_EQ(m["parallel"], 2);    // the container's OLLAMA_NUM_PARALLEL
  EXPECT_EQ(m["num_ctx"], 2048);  // the command line's --ctx
}
