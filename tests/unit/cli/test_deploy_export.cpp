// `memwarden export compose` and `export portainer-templates`: the Compose file read back with yaml-cpp
// says what the spec says, hostile values stay values, and the templates agree with the Compose files.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "cli/deploy_export.hpp"
#include "core/bytes.hpp"

using namespace mw;
using namespace mw::cli;
using json = nlohmann::json;

namespace {

constexpr std::uint64_t k_limit = 26306674688;  // 24.5 GiB

DeploySpec large_spec() {
  DeploySpec spec;
  spec.name = "ollama-large-33b";
  spec.profile.name = "large-33b";
  spec.profile.description = "One large model with the RAM to itself.";
  spec.profile.models = {"qwen2.5-coder:32b"};
  spec.profile.context_length = 16384;
  spec.profile.parallel = 1;
  spec.profile.port = 11434;
  spec.profile.container_port = 11434;
  spec.image = "ollama/ollama:0.5.7";
  spec.memory_limit = k_limit;
  spec.gpu.kind = GpuRequest::Kind::all;
  spec.network = NetworkKind::bridge;
  spec.bind_address = "127.0.0.1";
  spec.store_volume = "ollama";
  spec.env = {{"OLLAMA_CONTEXT_LENGTH", "16384"},
              {"OLLAMA_NUM_PARALLEL", "1"},
              {"OLLAMA_KEEP_ALIVE", "5m"},
              {"OLLAMA_HOST", "0.0.0.0:11434"},
              {"OLLAMA_FLASH_ATTENTION", "1"}};
  spec.labels = {{"memwarden.enable", "true"},
                 {"memwarden.kind", "ollama"},
                 {"memwarden.profile", "large-33b"},
                 {"memwarden.deployed", "true"}};
  spec.health.test = {"CMD", "ollama", "list"};
  spec.health.interval_s = 30;
  spec.health.timeout_s = 10;
  spec.health.retries = 3;
  spec.health.start_period_s = 60;
  return spec;
}

DeploySpec standard_spec() {
  DeploySpec spec = large_spec();
  spec.name = "ollama-standard";
  spec.profile.name = "standard";
  spec.profile.models = {"llama3.1:8b", "qwen2.5:7b"};
  spec.profile.context_length = 8192;
  spec.profile.parallel = 2;
  spec.profile.port = 11435;
  spec.memory_limit = 8 * k_gib;
  spec.env["OLLAMA_CONTEXT_LENGTH"] = "8192";
  spec.env["OLLAMA_NUM_PARALLEL"] = "2";
  spec.labels["memwarden.profile"] = "standard";
  return spec;
}

YAML::Node compose(const std::vector<DeploySpec>& specs, ComposeOptions options = {}) {
  return YAML::Load(compose_file(specs, options));
}

YAML::Node service(const YAML::Node& file, const std::string& name) {
  return file["services"][name];
}

// Compose reads `$$` as a literal `$`.
std::string uninterpolated(std::string text) {
  for (auto at = text.find("$$"); at != std::string::npos; at = text.find("$$", at + 1)) {
    text.erase(at, 1);
  }
  return text;
}

std::map<std::string, std::string> as_map(const YAML::Node& node) {
  std::map<std::string, std::string> out;
  for (const auto& entry : node) {
    out[entry.first.as<std::string>()] = entry.second.as<std::string>();
  }
  return out;
}

std::set<std::string> keys(const YAML::Node& node) {
  std::set<std::string> out;
  for (const auto& entry : node) {
    out.insert(entry.first.as<std::string>());
  }
  return out;
}

// Every ${NAME:-default} that Compose would interpolate in `text` (not an escaped $${...}), by name.
std::map<std::string, std::string> interpolations(std::string text) {
  for (auto at = text.find("$$"); at != std::string::npos; at = text.find("$$", at)) {
    text.replace(at, 2, "#");
  }
  std::map<std::string, std::string> out;
  const std::regex pattern(R"(\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\})");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern); it != std::sregex_iterator(); ++it) {
    out[(*it)[1].str()] = (*it)[2].str();
  }
  return out;
}

}  // namespace

TEST(ExportCompose, ServiceCarriesThePlannedSpec) {
  const auto spec = large_spec();
  const auto file = compose({spec});
  EXPECT_FALSE(file["version"]) << "the Compose Specification has no version key";
  ASSERT_EQ(file["services"].size(), 1U);
  const auto s = service(file, spec.name);
  ASSERT_TRUE(s.IsMap());
  EXPECT_EQ(s["container_name"].as<std::string>(), spec.name);
  EXPECT_EQ(s["image"].as<std::string>(), spec.image);
  EXPECT_EQ(s["mem_limit"].as<std::uint64_t>(), k_limit);
  EXPECT_EQ(s["memswap_limit"].as<std::uint64_t>(), k_limit);
  EXPECT_EQ(s["restart"].as<std::string>(), "unless-stopped");

  ASSERT_EQ(s["ports"].size(), 1U);
  EXPECT_EQ(s["ports"][0].as<std::string>(), "127.0.0.1:11434:11434");
  EXPECT_FALSE(s["network_mode"]);

  EXPECT_EQ(as_map(s["environment"]), spec.env);
  EXPECT_EQ(as_map(s["labels"]), spec.labels);

  const auto health = s["healthcheck"];
  EXPECT_EQ(health["test"].as<std::vector<std::string>>(), spec.health.test);
  EXPECT_EQ(health["interval"].as<std::string>(), "30s");
  EXPECT_EQ(health["timeout"].as<std::string>(), "10s");
  EXPECT_EQ(health["retries"].as<int>(), 3);
  EXPECT_EQ(health["start_period"].as<std::string>(), "60s");
}

TEST(ExportCompose, StoreVolumeIsReusedByItsExactName) {
  const auto file = compose({large_spec()});
  const auto mounts = service(file, "ollama-large-33b")["volumes"];
  ASSERT_EQ(mounts.size(), 1U);
  EXPECT_EQ(mounts[0]["type"].as<std::string>(), "volume");
  EXPECT_EQ(mounts[0]["target"].as<std::string>(), "/root/.ollama");
  const auto key = mounts[0]["source"].as<std::string>();
  ASSERT_TRUE(file["volumes"][key]) << key;
  EXPECT_EQ(file["volumes"][key]["name"].as<std::string>(), "ollama");
  EXPECT_FALSE(file["volumes"][key]["external"]);
}

TEST(ExportCompose, ServicesSharingAVolumeShareOneEntry) {
  auto other = standard_spec();
  auto localai = standard_spec();
  localai.name = "localai";
  localai.store_volume = "localai models";  // not a valid key: the key changes, the name does not
  localai.profile.store_path = "/build/models";
  const auto file = compose({large_spec(), other, localai});
  ASSERT_EQ(file["services"].size(), 3U);
  ASSERT_EQ(file["volumes"].size(), 2U);
  std::map<std::string, std::string> names;  // service -> volume name
  for (const auto& name : {"ollama-large-33b", "ollama-standard", "localai"}) {
    const auto key = service(file, name)["volumes"][0]["source"].as<std::string>();
    names[name] = file["volumes"][key]["name"].as<std::string>();
  }
  EXPECT_EQ(names["ollama-large-33b"], "ollama");
  EXPECT_EQ(names["ollama-standard"], "ollama");
  EXPECT_EQ(names["localai"], "localai models");
  EXPECT_EQ(service(file, "localai")["volumes"][0]["target"].as<std::string>(), "/build/models");
}

TEST(ExportCompose, GpuReservationFollowsTheRequestAndTheRuntime) {
  auto spec = large_spec();
  const auto devices = [](const YAML::Node& s) { return s["deploy"]["resources"]["reservations"]["devices"]; };

  auto all = devices(service(compose({spec}), spec.name));
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0]["driver"].as<std::string>(), "nvidia");
  EXPECT_EQ(all[0]["count"].as<std::string>(), "all");
  EXPECT_FALSE(all[0]["device_ids"]);
  EXPECT_EQ(all[0]["capabilities"].as<std::vector<std::string>>(), std::vector<std::string>{"gpu"});

  spec.gpu = {.kind = GpuRequest::Kind::ids, .device_ids = {"0", "GPU-4b1a2c3d"}};
  auto ids = devices(service(compose({spec}), spec.name));
  ASSERT_EQ(ids.size(), 1U);
  EXPECT_EQ(ids[0]["device_ids"].as<std::vector<std::string>>(), spec.gpu.device_ids);
  EXPECT_FALSE(ids[0]["count"]) << "count and device_ids are exclusive in Compose v2";
  EXPECT_EQ(ids[0]["capabilities"].as<std::vector<std::string>>(), std::vector<std::string>{"gpu"});

  EXPECT_FALSE(service(compose({spec}, {.values = ComposeValues::plain, .gpu_runtime = GpuRuntime::absent}),
                       spec.name)["deploy"])
      << "no NVIDIA runtime: no reservation";

  spec.gpu = {.kind = GpuRequest::Kind::none, .device_ids = {}};
  EXPECT_FALSE(service(compose({spec}), spec.name)["deploy"]);
  // The limit stays without the GPU.
  EXPECT_EQ(service(compose({spec}), spec.name)["mem_limit"].as<std::uint64_t>(), k_limit);
}

TEST(ExportCompose, HostNetworkPublishesNoPort) {
  auto spec = large_spec();
  spec.network = NetworkKind::host;
  const auto s = service(compose({spec}), spec.name);
  EXPECT_EQ(s["network_mode"].as<std::string>(), "host");
  EXPECT_FALSE(s["ports"]);

  const auto tuned =
      service(compose({spec}, {.values = ComposeValues::tunable, .gpu_runtime = GpuRuntime::nvidia}), spec.name);
  EXPECT_FALSE(tuned["ports"]);
  for (const auto& v : stack_variables(spec)) {
    EXPECT_NE(v.name, "MEMWARDEN_PORT") << "no port to change on the host network";
  }
}

TEST(ExportCompose, PortIsPublishedOnTheBindAddress) {
  auto spec = large_spec();
  spec.bind_address = "::1";
  EXPECT_EQ(service(compose({spec}), spec.name)["ports"][0].as<std::string>(), "[::1]:11434:11434");
  spec.bind_address = "";
  EXPECT_EQ(service(compose({spec}), spec.name)["ports"][0].as<std::string>(), "11434:11434");
  spec.bind_address = "0.0.0.0";
  spec.profile.port = 18080;
  spec.profile.container_port = 8080;
  EXPECT_EQ(service(compose({spec}), spec.name)["ports"][0].as<std::string>(), "0.0.0.0:18080:8080");
}

TEST(ExportCompose, HostileValuesStayValues) {
  const std::string hostile = "a: b # c \"d\" 'e'\nf: g\n  h: - [i] {j} & *k ! | > % @ ` $HOME ${X:-y} $$ \\ \t\r end";
  auto spec = large_spec();
  spec.image = "registry.example:5000/ollama:" + hostile;
  spec.profile.store_path = "/data:ro,\n" + hostile;
  spec.env["EVIL"] = hostile;
  spec.env["KEY: with\n\"quotes\" # and $"] = "v";
  spec.labels["memwarden.note"] = hostile;
  spec.labels["x"] = "line1\nrestart: \"no\"\nprivileged: true";
  spec.health.test = {"CMD-SHELL", "curl -f http://localhost:11434/ || exit 1 # " + hostile};
  const auto text = compose_file(std::vector{spec}, {});
  const auto file = YAML::Load(text);
  ASSERT_EQ(keys(file), (std::set<std::string>{"services", "volumes"}));
  const auto s = service(file, spec.name);
  EXPECT_EQ(keys(s), (std::set<std::string>{"container_name", "image", "mem_limit", "memswap_limit", "deploy",
                                            "volumes", "ports", "environment", "labels", "healthcheck", "restart"}));
  EXPECT_EQ(s["restart"].as<std::string>(), "unless-stopped");
  EXPECT_FALSE(s["privileged"]);
  EXPECT_EQ(uninterpolated(s["image"].as<std::string>()), spec.image);
  EXPECT_EQ(uninterpolated(s["volumes"][0]["target"].as<std::string>()), spec.profile.store_path);

  ASSERT_EQ(s["environment"].size(), spec.env.size());
  for (const auto& [key, value] : spec.env) {
    ASSERT_TRUE(s["environment"][key]) << key;
    EXPECT_EQ(uninterpolated(s["environment"][key].as<std::string>()), value) << key;
  }
  ASSERT_EQ(s["labels"].size(), spec.labels.size());
  for (const auto& [key, value] : spec.labels) {
    EXPECT_EQ(uninterpolated(s["labels"][key].as<std::string>()), value) << key;
  }
  auto test = s["healthcheck"]["test"].as<std::vector<std::string>>();
  ASSERT_EQ(test.size(), spec.health.test.size());
  for (std::size_t i = 0; i < test.size(); ++i) {
    EXPECT_EQ(uninterpolated(test[i]), spec.health.test[i]);
  }
  // Every `$` from a value is doubled: nothing is left for Compose to interpolate.
  EXPECT_TRUE(interpolations(text).empty()) << text;
  EXPECT_NE(s["environment"]["EVIL"].as<std::string>().find("$${X:-y}"), std::string::npos);
}

TEST(ExportCompose, ControlAndNonUtf8CharactersAreEscaped) {
  auto spec = large_spec();
  const std::string controls = std::string("bell\a del\x7f nel\xc2\x85 ls\xe2\x80\xa8 nul") + '\0' + "end";
  const std::string unicode = "caf\xc3\xa9 \xf0\x9f\x98\x80";
  spec.labels["controls"] = controls;
  spec.labels["unicode"] = unicode;
  spec.labels["broken"] = "a\xff\xc3z";
  const auto text = compose_file(std::vector{spec}, {});
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_TRUE(byte >= 0x20 || c == '\n') << "raw control byte " << static_cast<int>(byte);
    EXPECT_NE(byte, 0x7F);
  }
  const auto labels = service(YAML::Load(text), spec.name)["labels"];
  EXPECT_EQ(labels["controls"].as<std::string>(), controls);
  EXPECT_EQ(labels["unicode"].as<std::string>(), unicode);
  EXPECT_EQ(labels["broken"].as<std::string>(), "a\xef\xbf\xbd\xef\xbf\xbdz") << "each stray byte is U+FFFD";
}

TEST(ExportCompose, TunableValuesInterpolateThePlannedDefaults) {
  const auto spec = large_spec();
  const ComposeOptions tunable{.values = ComposeValues::tunable, .gpu_runtime = GpuRuntime::nvidia};
  const auto text = compose_file(std::vector{spec}, tunable);
  const auto s = service(YAML::Load(text), spec.name);
  const auto limit = fmt::format("${{MEMWARDEN_MEM_LIMIT:-{}}}", k_limit);
  EXPECT_EQ(s["mem_limit"].as<std::string>(), limit);
  EXPECT_EQ(s["memswap_limit"].as<std::string>(), limit);
  EXPECT_EQ(s["ports"][0].as<std::string>(), "127.0.0.1:${MEMWARDEN_PORT:-11434}:11434");
  EXPECT_EQ(s["environment"]["OLLAMA_CONTEXT_LENGTH"].as<std::string>(), "${MEMWARDEN_CONTEXT_LENGTH:-16384}");
  EXPECT_EQ(s["environment"]["OLLAMA_NUM_PARALLEL"].as<std::string>(), "${MEMWARDEN_NUM_PARALLEL:-1}");
  EXPECT_EQ(s["environment"]["OLLAMA_KEEP_ALIVE"].as<std::string>(), "${MEMWARDEN_KEEP_ALIVE:-5m}");
  EXPECT_EQ(s["environment"]["OLLAMA_HOST"].as<std::string>(), "0.0.0.0:11434") << "not a tunable";

  // The variables stack_variables names are exactly those the file reads, with the same defaults.
  std::map<std::string, std::string> declared;
  for (const auto& v : stack_variables(spec)) {
    declared[v.name] = v.default_value;
    EXPECT_FALSE(v.label.empty()) << v.name;
    EXPECT_FALSE(v.description.empty()) << v.name;
  }
  EXPECT_EQ(interpolations(text), declared);
  EXPECT_EQ(declared.at("MEMWARDEN_MEM_LIMIT"), std::to_string(k_limit));

  // Without tunables: the same values, plain.
  EXPECT_TRUE(interpolations(compose_file(std::vector{spec}, {})).empty());
}

TEST(ExportCompose, ValueThatCannotBeADefaultStaysPlain) {
  auto spec = large_spec();
  spec.env["OLLAMA_KEEP_ALIVE"] = "5m} ${HOME";
  const auto text =
      compose_file(std::vector{spec}, {.values = ComposeValues::tunable, .gpu_runtime = GpuRuntime::nvidia});
  const auto s = service(YAML::Load(text), spec.name);
  EXPECT_EQ(uninterpolated(s["environment"]["OLLAMA_KEEP_ALIVE"].as<std::string>()), "5m} ${HOME");
  for (const auto& v : stack_variables(spec)) {
    EXPECT_NE(v.name, "MEMWARDEN_KEEP_ALIVE");
  }
  EXPECT_FALSE(interpolations(text).contains("MEMWARDEN_KEEP_ALIVE"));
}

TEST(ExportCompose, SeveralTunableServicesReadTheirOwnVariables) {
  const auto text = compose_file(std::vector{large_spec(), standard_spec()},
                                 {.values = ComposeValues::tunable, .gpu_runtime = GpuRuntime::nvidia});
  const auto file = YAML::Load(text);
  EXPECT_EQ(service(file, "ollama-large-33b")["mem_limit"].as<std::string>(),
            fmt::format("${{MEMWARDEN_MEM_LIMIT_OLLAMA_LARGE_33B:-{}}}", k_limit));
  EXPECT_EQ(service(file, "ollama-standard")["mem_limit"].as<std::string>(),
            fmt::format("${{MEMWARDEN_MEM_LIMIT_OLLAMA_STANDARD:-{}}}", 8 * k_gib));
  const auto found = interpolations(text);
  EXPECT_EQ(found.size(), 2 * stack_variables(large_spec()).size());
}

TEST(ExportCompose, NoLimitWritesNoLimitKeys) {
  auto spec = large_spec();
  spec.memory_limit = 0;
  const auto s =
      service(compose({spec}, {.values = ComposeValues::tunable, .gpu_runtime = GpuRuntime::nvidia}), spec.name);
  EXPECT_FALSE(s["mem_limit"]);
  EXPECT_FALSE(s["memswap_limit"]);
}

// ---- Portainer

namespace {

std::vector<PortainerStack> stacks() {
  return {{.spec = large_spec(),
           .stackfile = "stacks/large-33b/compose.yml",
           .host_ram = 32 * k_gib,
           .host_vram = 16 * k_gib},
          {.spec = standard_spec(),
           .stackfile = "stacks/standard/compose.yml",
           .host_ram = 32 * k_gib,
           .host_vram = std::nullopt}};
}

}  // namespace

TEST(ExportPortainer, TemplatesAreVersion3ComposeStacksWithUniqueIds) {
  const auto all = stacks();
  const auto doc = json::parse(portainer_templates(all, "https://git.example/ops/stacks.git"));
  ASSERT_TRUE(doc["version"].is_string());
  EXPECT_EQ(doc["version"], "3");
  ASSERT_EQ(doc["templates"].size(), all.size());
  std::set<std::int64_t> ids;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& t = doc["templates"][i];
    ASSERT_TRUE(t["id"].is_number_integer()) << t.dump();
    ids.insert(t["id"].get<std::int64_t>());
    EXPECT_EQ(t["type"], 3);
    EXPECT_EQ(t["categories"], json::array({"llm"}));
    EXPECT_EQ(t["platform"], "linux");
    EXPECT_EQ(t["name"], all[i].spec.name);
    EXPECT_EQ(t["repository"]["url"], "https://git.example/ops/stacks.git");
    EXPECT_EQ(t["repository"]["stackfile"], all[i].stackfile);
    const auto title = t["title"].get<std::string>();
    EXPECT_NE(title.find(all[i].spec.profile.name), std::string::npos) << title;
    EXPECT_NE(title.find(format_bytes(all[i].spec.memory_limit)), std::string::npos) << title;
  }
  EXPECT_EQ(ids, (std::set<std::int64_t>{1, 2}));
}

TEST(ExportPortainer, DescriptionSaysWhatWasPlannedForWhichHost) {
  const auto all = stacks();
  const auto doc = json::parse(portainer_templates(all, "https://git.example/ops/stacks.git"));
  const auto large = doc["templates"][0]["description"].get<std::string>();
  EXPECT_NE(large.find("qwen2.5-coder:32b"), std::string::npos) << large;
  EXPECT_NE(large.find("16384"), std::string::npos) << large;
  EXPECT_NE(large.find(format_bytes(k_limit)), std::string::npos) << large;
  EXPECT_NE(large.find(std::to_string(k_limit)), std::string::npos) << large;
  EXPECT_NE(large.find(format_bytes(32 * k_gib) + " of RAM"), std::string::npos) << large;
  EXPECT_NE(large.find(format_bytes(16 * k_gib) + " of VRAM"), std::string::npos) << large;
  const auto standard = doc["templates"][1]["description"].get<std::string>();
  EXPECT_NE(standard.find("llama3.1:8b, qwen2.5:7b"), std::string::npos) << standard;
  EXPECT_NE(standard.find("no GPU"), std::string::npos) << standard;
}

TEST(ExportPortainer, EnvDefaultsAreTheComposeInterpolationDefaults) {
  const auto all = stacks();
  const auto doc = json::parse(portainer_templates(all, "https://git.example/ops/stacks.git"));
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto text =
        compose_file(std::span(&all[i].spec, 1), {.values = ComposeValues::tunable, .gpu_runtime = GpuRuntime::nvidia});
    std::map<std::string, std::string> env;
    for (const auto& e : doc["templates"][i]["env"]) {
      env[e["name"].get<std::string>()] = e["default"].get<std::string>();
      EXPECT_TRUE(e["label"].is_string() && e["description"].is_string()) << e.dump();
    }
    EXPECT_EQ(env, interpolations(text)) << all[i].spec.name;
    EXPECT_EQ(env.at("MEMWARDEN_MEM_LIMIT"), std::to_string(all[i].spec.memory_limit));
  }
}

TEST(ExportPortainer, HostileTextStaysValidJson) {
  auto all = stacks();
  all[0].spec.profile.description = "quote \" backslash \\ newline \n broken \xff";
  all[0].stackfile = "stacks/\"odd\"/compose.yml";
  const auto doc = json::parse(portainer_templates(all, "https://git.example/a\"b"));
  EXPECT_EQ(doc["templates"][0]["repository"]["stackfile"], "stacks/\"odd\"/compose.yml");
  EXPECT_EQ(doc["templates"][0]["repository"]["url"], "https://git.example/a\"b");
  EXPECT_EQ(doc["templates"].size(), 2U);
}

TEST(ExportPortainer, NoStacksIsAnEmptyList) {
  const auto doc = json::parse(portainer_templates({}, "https://git.example/ops/stacks.git"));
  EXPECT_EQ(doc["version"], "3");
  EXPECT_TRUE(doc["templates"].is_array());
  EXPECT_TRUE(doc["templates"].empty());
}
