#include "core/profile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "core/text.hpp"

namespace mw {

namespace {

template <class Enum, std::size_t N>
std::optional<Enum> parse_named(std::string_view text, const std::array<Enum, N>& all) {
  for (const auto value : all) {
    if (text == to_string(value)) {
      return value;
    }
  }
  return std::nullopt;
}

constexpr std::uint64_t k_gb = 1'000'000'000;  // the seed's "28GB" are decimal gigabytes, as Docker's -m 28g is not

Profile ollama_profile(std::string name, std::string description, std::vector<std::string> models, DeployMode mode,
                       std::uint64_t seed_gb) {
  Profile p;
  p.name = std::move(name);
  p.description = std::move(description);
  p.models = std::move(models);
  p.mode = mode;
  p.seed_limit_bytes = seed_gb * k_gb;
  return p;
}

}  // namespace

const char* to_string(DeployMode mode) {
  switch (mode) {
    case DeployMode::standard:
      return "standard";
    case DeployMode::exclusive:
      return "exclusive";
  }
  return "unknown";
}

std::optional<DeployMode> parse_deploy_mode(std::string_view text) {
  return parse_named(text, std::array{DeployMode::standard, DeployMode::exclusive});
}

const char* to_string(ServerApi api) {
  switch (api) {
    case ServerApi::ollama:
      return "ollama";
    case ServerApi::openai:
      return "openai";
  }
  return "unknown";
}

std::optional<ServerApi> parse_server_api(std::string_view text) {
  return parse_named(text, std::array{ServerApi::ollama, ServerApi::openai});
}

const char* to_string(GpuUse use) {
  switch (use) {
    case GpuUse::all:
      return "all";
    case GpuUse::none:
      return "none";
  }
  return "unknown";
}

std::optional<GpuUse> parse_gpu_use(std::string_view text) {
  return parse_named(text, std::array{GpuUse::all, GpuUse::none});
}

const std::vector<Profile>& builtin_profiles() {
  static const std::vector<Profile> profiles = [] {
    std::vector<Profile> out;
    out.push_back(ollama_profile("large-33b", "deepseek-coder:33b with the host to itself (the seed's create-33b)",
                                 {"deepseek-coder:33b"}, DeployMode::exclusive, 28));
    out.push_back(ollama_profile("large-70b", "llama3.1:70b with the host to itself (the seed's create-70b)",
                                 {"llama3.1:70b"}, DeployMode::exclusive, 30));
    auto standard = ollama_profile("standard", "a 7-8B model beside other servers (the seed's 6-8 GB containers)",
                                   {"llama3.1:8b"}, DeployMode::standard, 8);
    standard.port = 11435;  // beside an Ollama already on 11434
    out.push_back(std::move(standard));
    Profile localai;
    localai.name = "localai";
    localai.description = "LocalAI's OpenAI-compatible API on 8080, with its models volume (the seed's LocalAI GPU)";
    localai.api = ServerApi::openai;
    localai.models = {"llama3.1:8b"};
    localai.image = "localai/localai";
    localai.tag = "latest-gpu-nvidia-cuda-12";
    localai.port = 8080;
    localai.container_port = 8080;
    localai.store_volume = "localai-models";
    localai.store_path = "/models";
    localai.seed_limit_bytes = 12 * k_gb;
    out.push_back(std::move(localai));
    return out;
  }();
  return profiles;
}

Result<Profile> find_profile(std::span<const Profile> profiles, std::string_view name, std::string_view source) {
  for (const auto& p : profiles) {
    if (equals_ignoring_case(p.name, name)) {
      return p;
    }
  }
  std::vector<std::string> names;
  const Profile* closest = nullptr;
  std::size_t best = 0;
  for (const auto& p : profiles) {
    names.push_back(p.name);
    const auto d = edit_distance_ignoring_case(p.name, name);
    if (d <= std::max<std::size_t>(2, p.name.size() / 3) && (closest == nullptr || d < best)) {
      closest = &p;
      best = d;
    }
  }
  std::string message = fmt::format("no profile '{}'", escape_control(name));
  if (closest != nullptr) {
    message += fmt::format("; did you mean {}?", closest->name);
  }
  message += names.empty() ? " (there are none)" : fmt::format(" (profiles: {})", fmt::join(names, ", "));
  return unexpected(Error{std::string(source), std::move(message)});
}

std::vector<Profile> merge_profiles(std::span<const Profile> builtin, std::span<const Profile> overrides) {
  std::vector<Profile> out(builtin.begin(), builtin.end());
  for (const auto& o : overrides) {
    const auto same = std::find_if(out.begin(), out.end(), [&](const Profile& p) { return p.name == o.name; });
    if (same != out.end()) {
      *same = o;
    } else {
      out.push_back(o);
    }
  }
  return out;
}

}  // namespace mw
