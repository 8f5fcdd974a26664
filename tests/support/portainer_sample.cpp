// Prints sample output of the deploy exporters for the scripts that check it (tests/CMakeLists.txt):
//   portainer_sample            Portainer v3 App Templates for a few hand-made deployment specs
//   portainer_sample compose    the Compose file of the same specs, tunable (as a Portainer stack has it)
#include <cstdio>
#include <string_view>
#include <vector>

#include "cli/deploy_export.hpp"
#include "core/bytes.hpp"

namespace {

mw::DeploySpec spec(const char* name, const char* profile, std::uint64_t limit, std::uint16_t port) {
  mw::DeploySpec s;
  s.name = name;
  s.profile.name = profile;
  s.profile.models = {"qwen2.5-coder:32b"};
  s.profile.context_length = 16384;
  s.profile.port = port;
  s.image = "ollama/ollama:latest";
  s.memory_limit = limit;
  s.gpu.kind = mw::GpuRequest::Kind::all;
  s.store_volume = "ollama";
  s.env = {{"OLLAMA_CONTEXT_LENGTH", "16384"},
           {"OLLAMA_NUM_PARALLEL", "1"},
           {"OLLAMA_KEEP_ALIVE", "5m"},
           {"NOTE", "a: b # \"c\" 'd'\n$HOME"}};
  s.labels = {{"memwarden.enable", "true"}, {"memwarden.profile", profile}};
  s.health.test = {"CMD", "ollama", "list"};
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mw;
  auto cpu = spec("ollama-cpu", "cpu-only", 12 * k_gib, 11436);
  cpu.gpu = {.kind = GpuRequest::Kind::none, .device_ids = {}};
  auto host = spec("ollama-host", "host-network", 6 * k_gib, 11437);
  host.network = NetworkKind::host;
  const std::vector<cli::PortainerStack> stacks{
      {.spec = spec("ollama-large-33b", "large-33b", 26306674688, 11434),
       .stackfile = "stacks/large-33b/compose.yml",
       .host_ram = 32 * k_gib,
       .host_vram = 16 * k_gib},
      {.spec = cpu, .stackfile = "stacks/cpu-only/compose.yml", .host_ram = 32 * k_gib, .host_vram = std::nullopt},
      {.spec = host, .stackfile = "stacks/host-network/compose.yml", .host_ram = 32 * k_gib, .host_vram = 16 * k_gib},
  };
  if (argc == 2 && std::string_view(argv[1]) == "compose") {
    std::vector<DeploySpec> specs;
    for (const auto& s : stacks) {
      specs.push_back(s.spec);
    }
    std::fputs(cli::compose_file(specs, {.values = cli::ComposeValues::tunable, .gpu_runtime = cli::GpuRuntime::nvidia})
                   .c_str(),
               stdout);
    return 0;
  }
  if (argc != 1) {
    std::fputs("usage: portainer_sample [compose]\n", stderr);
    return 2;
  }
  std::fputs(cli::portainer_templates(stacks, "https://git.example/ops/llm-stacks.git").c_str(), stdout);
  return 0;
}
