#include "cli/deploy_export.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/bytes.hpp"

// Which Compose dialect, and why (checked against Debian 12's docker-compose 1.29.2 and the Compose v2 sources):
// - No `version:` key. 1.29.2 reads such a file as the Compose Specification (its `config` reports 3.9) and
//   accepts mem_limit and memswap_limit beside `deploy.resources.reservations.devices`; since 1.28 it turns
//   the reservation into the container's DeviceRequests without --compatibility (compose/project.py
//   get_device_requests). A `version: "2.4"` file would need `runtime: nvidia` for the GPU instead, and
//   1.27 and older rejected `devices` under reservations ("does not match any of the regexes: '^x-'").
// - The limit is mem_limit and memswap_limit (equal: no swap), not deploy.resources.limits.memory: both
//   Compose versions honour mem_limit without Swarm, and Compose v2 lets limits.memory override it, so one
//   key keeps one number.
// - GPUs by id are `device_ids` without `count`: Compose v2 refuses the two together ("count" and
//   "device_ids" attributes are exclusive). 1.29.2 then sends Count -1 with the ids, which the engine
//   refuses at start ("cannot set both Count and DeviceIDs on device request"): with 1.29.2 only
//   `count: all` works; a file with GPU ids needs Compose v2 (Portainer bundles it).
// - The store volume is written in the long syntax (type, source, target), so that no ':' in a value can
//   add a mount option; its top-level entry sets `name:` so an existing volume is reused as it is, not
//   created again as <project>_<volume>.

namespace mw::cli {

namespace {

// ---- YAML scalars

struct CodePoint {
  char32_t value = 0;
  std::size_t length = 1;
  bool valid = false;
};

// The code point starting at text[at]; an invalid sequence is one byte, not valid.
CodePoint decode_utf8(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  if (lead < 0x80) {
    return {.value = lead, .length = 1, .valid = true};
  }
  std::size_t length = 0;
  char32_t value = 0;
  char32_t least = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, least = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, least = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, least = 0x10000;
  } else {
    return {.value = 0xFFFD, .length = 1, .valid = false};
  }
  if (at + length > text.size()) {
    return {.value = 0xFFFD, .length = 1, .valid = false};
  }
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) {
      return {.value = 0xFFFD, .length = 1, .valid = false};
    }
    value = (value << 6) | (byte(at + i) & 0x3F);
  }
  if (value < least || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    return {.value = 0xFFFD, .length = 1, .valid = false};
  }
  return {.value = value, .length = length, .valid = true};
}

// A YAML double-quoted scalar that reads back as `text` in yaml-cpp and in PyYAML (docker-compose 1.x):
// quotes and backslashes escaped, every control character, DEL, the C1 range (NEL is a line break in YAML
// 1.1), the Unicode line and paragraph separators and the non-characters PyYAML refuses written as escapes.
// Bytes that are not UTF-8 cannot be in a YAML file at all: each becomes U+FFFD.
std::string quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (std::size_t at = 0; at < text.size();) {
    const auto cp = decode_utf8(text, at);
    switch (cp.value) {
      case U'"':
        out += "\\\"";
        break;
      case U'\\':
        out += "\\\\";
        break;
      case U'\n':
        out += "\\n";
        break;
      case U'\t':
        out += "\\t";
        break;
      case U'\r':
        out += "\\r";
        break;
      default:
        if (!cp.valid) {
          out += "\\uFFFD";
        } else if (cp.value < 0x20 || (cp.value >= 0x7F && cp.value <= 0x9F)) {
          out += fmt::format("\\x{:02X}", static_cast<unsigned>(cp.value));
        } else if (cp.value == 0x2028 || cp.value == 0x2029 || cp.value == 0xFEFF || cp.value == 0xFFFE ||
                   cp.value == 0xFFFF) {
          out += fmt::format("\\u{:04X}", static_cast<unsigned>(cp.value));
        } else {
          out += text.substr(at, cp.length);
        }
    }
    at += cp.length;
  }
  out += '"';
  return out;
}

// A value as Compose reads it: `$` starts an interpolation, `$$` is a literal `$`.
std::string literal(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    escaped += c;
    if (c == '$') {
      escaped += '$';
    }
  }
  return quote(escaped);
}

std::string seconds(std::uint32_t s) {
  return fmt::format("{}s", s);
}

// ---- the tunables

enum class Target { memory_limit, port, environment };

struct Tunable {
  StackVariable variable;
  Target target = Target::environment;
  std::string env_key;  // the environment entry it replaces (Target::environment)
};

// A default that `${VAR:-default}` carries as it is in both Compose versions: no `}`, `$`, quote or space.
bool safe_default(std::string_view value) {
  return !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '+' || c == '-' || c == '_';
  });
}

// "ollama-large.33b" -> "_OLLAMA_LARGE_33B": a variable-name suffix for a file with several services.
std::string variable_suffix(std::string_view service) {
  std::string suffix = "_";
  for (const char c : service) {
    suffix += std::isalnum(static_cast<unsigned char>(c)) != 0
                  ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                  : '_';
  }
  return suffix;
}

std::vector<Tunable> tunables(const DeploySpec& spec, std::string_view suffix) {
  std::vector<Tunable> out;
  if (spec.memory_limit > 0) {
    out.push_back(
        {.variable = {.name = fmt::format("MEMWARDEN_MEM_LIMIT{}", suffix),
                      .label = "Memory limit (bytes)",
                      .description = fmt::format(
                          "The container's RAM limit, swap included (mem_limit and memswap_limit). memwarden's "
                          "plan gives {} ({}); a size such as 24g works too. Lower and the models may not load; "
                          "higher and the host may run short of RAM.",
                          spec.memory_limit, format_bytes(spec.memory_limit)),
                      .default_value = std::to_string(spec.memory_limit)},
         .target = Target::memory_limit,
         .env_key = {}});
  }
  if (spec.network == NetworkKind::bridge) {
    out.push_back(
        {.variable = {.name = fmt::format("MEMWARDEN_PORT{}", suffix),
                      .label = "Host port",
                      .description = fmt::format("The port published on {} for the server's API (port {} "
                                                 "in the container).",
                                                 spec.bind_address.empty() ? "every address" : spec.bind_address,
                                                 spec.profile.container_port),
                      .default_value = std::to_string(spec.profile.port)},
         .target = Target::port,
         .env_key = {}});
  }
  struct EnvTunable {
    std::string_view key;
    std::string_view variable;
    std::string_view label;
    std::string_view description;
  };
  static constexpr std::array<EnvTunable, 3> k_env{{
      {"OLLAMA_CONTEXT_LENGTH", "MEMWARDEN_CONTEXT_LENGTH", "Context length (tokens)",
       "OLLAMA_CONTEXT_LENGTH. The memory limit was planned for this context: a longer one needs more RAM."},
      {"OLLAMA_NUM_PARALLEL", "MEMWARDEN_NUM_PARALLEL", "Parallel requests (slots)",
       "OLLAMA_NUM_PARALLEL. Each slot has its own KV cache: the memory limit was planned for this many."},
      {"OLLAMA_KEEP_ALIVE", "MEMWARDEN_KEEP_ALIVE", "Keep-alive",
       "OLLAMA_KEEP_ALIVE: how long an idle model stays loaded (5m, 1h, -1 for ever, 0 to unload at once)."},
  }};
  for (const auto& e : k_env) {
    const auto it = spec.env.find(std::string(e.key));
    if (it == spec.env.end() || !safe_default(it->second)) {
      continue;
    }
    out.push_back({.variable = {.name = fmt::format("{}{}", e.variable, suffix),
                                .label = std::string(e.label),
                                .description = std::string(e.description),
                                .default_value = it->second},
                   .target = Target::environment,
                   .env_key = std::string(e.key)});
  }
  return out;
}

std::string interpolation(const StackVariable& v) {
  return fmt::format("${{{}:-{}}}", v.name, v.default_value);
}

const Tunable* find_tunable(const std::vector<Tunable>& list, Target target, std::string_view env_key = {}) {
  for (const auto& t : list) {
    if (t.target == target && t.env_key == env_key) {
      return &t;
    }
  }
  return nullptr;
}

// ---- the store volumes

// A top-level volume key for the volume named `name`: the name itself where Compose allows it as a key
// ([a-zA-Z0-9._-]), else with the other characters replaced; `name:` keeps the exact name either way.
std::string volume_key(std::string_view name) {
  std::string key;
  for (const char c : name) {
    key += std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-' ? c : '_';
  }
  return key.empty() ? std::string("store") : key;
}

class Volumes {
 public:
  // The key of the volume named `name`, added on first use.
  const std::string& key(const std::string& name) {
    if (const auto it = m_by_name.find(name); it != m_by_name.end()) {
      return it->second;
    }
    std::string key = volume_key(name);
    for (int n = 2; taken(key); ++n) {
      key = fmt::format("{}_{}", volume_key(name), n);
    }
    m_order.push_back(name);
    return m_by_name.emplace(name, key).first->second;
  }

  void write(std::string& out) const {
    if (m_order.empty()) {
      return;
    }
    out += "volumes:\n";
    for (const auto& name : m_order) {
      out += fmt::format("  {}:\n    name: {}\n", quote(m_by_name.at(name)), literal(name));
    }
  }

 private:
  bool taken(const std::string& key) const {
    return std::any_of(m_by_name.begin(), m_by_name.end(), [&](const auto& entry) { return entry.second == key; });
  }

  std::map<std::string, std::string> m_by_name;
  std::vector<std::string> m_order;
};

// ---- one service

void write_gpu(std::string& out, const GpuRequest& gpu) {
  out += "    deploy:\n      resources:\n        reservations:\n          devices:\n";
  out += "            - driver: nvidia\n";
  if (gpu.kind == GpuRequest::Kind::all) {
    out += "              count: all\n";
  } else {
    std::vector<std::string> ids;
    ids.reserve(gpu.device_ids.size());
    for (const auto& id : gpu.device_ids) {
      ids.push_back(literal(id));
    }
    out += fmt::format("              device_ids: [{}]\n", fmt::join(ids, ", "));
  }
  out += "              capabilities: [gpu]\n";
}

std::string published_port(const DeploySpec& spec, const Tunable* port) {
  const std::string host_port = port != nullptr ? interpolation(port->variable) : std::to_string(spec.profile.port);
  std::string address;
  if (!spec.bind_address.empty()) {
    // An IPv6 address is written in brackets: [::1]:11434:11434.
    const bool ipv6 = spec.bind_address.find(':') != std::string::npos;
    std::string escaped;
    for (const char c : spec.bind_address) {
      escaped += c == '$' ? std::string("$$") : std::string(1, c);
    }
    address = ipv6 ? fmt::format("[{}]:", escaped) : escaped + ":";
  }
  return quote(fmt::format("{}{}:{}", address, host_port, spec.profile.container_port));
}

void write_service(std::string& out, const DeploySpec& spec, const ComposeOptions& options,
                   const std::vector<Tunable>& tuned, Volumes& volumes) {
  out += fmt::format("  {}:\n", quote(spec.name));
  out += fmt::format("    container_name: {}\n", literal(spec.name));
  out += fmt::format("    image: {}\n", literal(spec.image));
  if (spec.memory_limit > 0) {
    const auto* memory = find_tunable(tuned, Target::memory_limit);
    const std::string limit =
        memory != nullptr ? quote(interpolation(memory->variable)) : std::to_string(spec.memory_limit);
    out += fmt::format("    mem_limit: {}\n    memswap_limit: {}\n", limit, limit);
  }
  const bool gpu_requested = spec.gpu.kind == GpuRequest::Kind::all ||
                             (spec.gpu.kind == GpuRequest::Kind::ids && !spec.gpu.device_ids.empty());
  if (gpu_requested && options.gpu_runtime == GpuRuntime::nvidia) {
    write_gpu(out, spec.gpu);
  }
  if (!spec.store_volume.empty()) {
    out += fmt::format("    volumes:\n      - type: volume\n        source: {}\n        target: {}\n",
                       quote(volumes.key(spec.store_volume)), literal(spec.profile.store_path));
  }
  if (spec.network == NetworkKind::host) {
    out += "    network_mode: host\n";
  } else {
    out += fmt::format("    ports:\n      - {}\n", published_port(spec, find_tunable(tuned, Target::port)));
  }
  if (!spec.env.empty()) {
    out += "    environment:\n";
    for (const auto& [key, value] : spec.env) {
      const auto* tunable = find_tunable(tuned, Target::environment, key);
      out += fmt::format("      {}: {}\n", quote(key),
                         tunable != nullptr ? quote(interpolation(tunable->variable)) : literal(value));
    }
  }
  if (!spec.labels.empty()) {
    out += "    labels:\n";
    for (const auto& [key, value] : spec.labels) {
      out += fmt::format("      {}: {}\n", quote(key), literal(value));
    }
  }
  if (!spec.health.test.empty()) {
    std::vector<std::string> test;
    test.reserve(spec.health.test.size());
    for (const auto& word : spec.health.test) {
      test.push_back(literal(word));
    }
    out += fmt::format(
        "    healthcheck:\n      test: [{}]\n      interval: {}\n      timeout: {}\n      retries: {}\n"
        "      start_period: {}\n",
        fmt::join(test, ", "), seconds(spec.health.interval_s), seconds(spec.health.timeout_s), spec.health.retries,
        seconds(spec.health.start_period_s));
  }
  out += "    restart: unless-stopped\n";
}

// ---- Portainer

std::string server_kind(const DeploySpec& spec) {
  if (spec.profile.api == ServerApi::ollama) {
    return "Ollama";
  }
  std::string image = spec.image;
  std::transform(image.begin(), image.end(), image.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return image.find("localai") != std::string::npos ? "LocalAI" : "OpenAI-compatible server";
}

std::string template_description(const PortainerStack& stack) {
  const auto& spec = stack.spec;
  const auto& profile = spec.profile;
  std::string text =
      profile.models.empty() ? std::string("No model named") : fmt::format("{}", fmt::join(profile.models, ", "));
  text += fmt::format(" at a context of {} tokens, {} slot{}.", profile.context_length, profile.parallel,
                      profile.parallel == 1 ? "" : "s");
  if (spec.memory_limit > 0) {
    text += fmt::format(" Memory limit {} ({} bytes, no swap) from memwarden's plan", format_bytes(spec.memory_limit),
                        spec.memory_limit);
    if (stack.host_ram > 0) {
      text += fmt::format(" for a host with {} of RAM", format_bytes(stack.host_ram));
      text +=
          stack.host_vram ? fmt::format(" and {} of VRAM", format_bytes(*stack.host_vram)) : std::string(" and no GPU");
    }
    text += ".";
  } else {
    text += " No memory limit.";
  }
  if (!profile.description.empty()) {
    text += " " + profile.description;
  }
  return text;
}

}  // namespace

std::vector<StackVariable> stack_variables(const DeploySpec& spec) {
  std::vector<StackVariable> out;
  for (auto& t : tunables(spec, "")) {
    out.push_back(std::move(t.variable));
  }
  return out;
}

std::string compose_file(std::span<const DeploySpec> specs, const ComposeOptions& options) {
  std::string out =
      "# Written by memwarden (export compose) from its plan: mem_limit is the planned limit, swap excluded.\n"
      "# The Compose Specification: docker compose v2, and docker-compose 1.28 or later.\n";
  out += "services:\n";
  Volumes volumes;
  for (const auto& spec : specs) {
    const auto tuned = options.values == ComposeValues::tunable
                           ? tunables(spec, specs.size() > 1 ? variable_suffix(spec.name) : std::string())
                           : std::vector<Tunable>{};
    write_service(out, spec, options, tuned, volumes);
  }
  volumes.write(out);
  return out;
}

std::string portainer_templates(std::span<const PortainerStack> stacks, std::string_view repo_url) {
  // Version "3" and an integer id on every template: Portainer 2.22 and later will not open a template
  // without one. Type 3 only: a type 1 (container) template cannot carry a memory limit or a GPU.
  auto templates = nlohmann::ordered_json::array();
  int id = 0;
  for (const auto& stack : stacks) {
    const auto& spec = stack.spec;
    auto env = nlohmann::ordered_json::array();
    for (const auto& v : stack_variables(spec)) {
      env.push_back(
          {{"name", v.name}, {"label", v.label}, {"description", v.description}, {"default", v.default_value}});
    }
    std::string title = fmt::format("{} {}", server_kind(spec), spec.profile.name);
    if (spec.memory_limit > 0) {
      title += fmt::format(" ({})", format_bytes(spec.memory_limit));
    }
    templates.push_back({{"id", ++id},
                         {"type", 3},
                         {"title", title},
                         {"description", template_description(stack)},
                         {"categories", nlohmann::ordered_json::array({"llm"})},
                         {"platform", "linux"},
                         {"name", spec.name},
                         {"repository", {{"url", repo_url}, {"stackfile", stack.stackfile}}},
                         {"env", env}});
  }
  const nlohmann::ordered_json document{{"version", "3"}, {"templates", templates}};
  return document.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace mw::cli
