#include "core/deploy.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/text.hpp"

namespace mw {

std::optional<GpuRequest> parse_gpu_request(std::string_view text) {
  if (text == "all") {
    return GpuRequest{GpuRequest::Kind::all, {}};
  }
  if (text == "none") {
    return GpuRequest{GpuRequest::Kind::none, {}};
  }
  GpuRequest out{GpuRequest::Kind::ids, {}};
  constexpr std::size_t k_max_ids = 16;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto id = text.substr(0, comma);
    const bool ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    });
    if (!ok || out.device_ids.size() == k_max_ids) {
      return std::nullopt;
    }
    out.device_ids.emplace_back(id);
    if (comma == std::string_view::npos) {
      break;
    }
    text.remove_prefix(comma + 1);
    if (text.empty()) {
      return std::nullopt;  // "0,"
    }
  }
  if (out.device_ids.empty()) {
    return std::nullopt;
  }
  return out;
}

std::string to_string(const GpuRequest& request) {
  switch (request.kind) {
    case GpuRequest::Kind::all:
      return "all";
    case GpuRequest::Kind::none:
      return "none";
    case GpuRequest::Kind::ids:
      break;
  }
  std::string out;
  for (const auto& id : request.device_ids) {
    out += out.empty() ? id : "," + id;
  }
  return out;
}

const char* to_string(NetworkKind kind) {
  return kind == NetworkKind::host ? "host" : "bridge";
}

std::optional<NetworkKind> parse_network_kind(std::string_view text) {
  if (text == "bridge") {
    return NetworkKind::bridge;
  }
  if (text == "host") {
    return NetworkKind::host;
  }
  return std::nullopt;
}

namespace {

std::string listen_address(const Profile& p, const DeployChoices& c) {
  // On the host's network the server itself listens where the port is to be; behind a bridge it listens on
  // every address of its own network namespace, and the engine publishes the port.
  if (c.network == NetworkKind::host) {
    const bool v6 = c.bind_address.find(':') != std::string::npos;
    return v6 ? fmt::format("[{}]:{}", c.bind_address, p.port) : fmt::format("{}:{}", c.bind_address, p.port);
  }
  return fmt::format("0.0.0.0:{}", p.container_port);
}

}  // namespace

DeploySpec make_deploy_spec(const Profile& profile, const DeployChoices& choices) {
  DeploySpec s;
  s.name = choices.name.empty() ? profile.name : choices.name;
  s.profile = profile;
  if (choices.network == NetworkKind::host) {
    s.profile.container_port = profile.port;  // no mapping: the server listens on the host's port
  }
  s.image = profile.tag.empty() ? profile.image : profile.image + ":" + profile.tag;
  s.memory_limit = choices.memory_limit;
  s.flash_attention = choices.flash_attention || profile.kv_type != KvType::f16;
  s.gpu = profile.gpu == GpuUse::none ? GpuRequest{} : choices.gpu;
  s.network = choices.network;
  s.bind_address = choices.bind_address;
  s.store_volume = choices.store_volume.empty() ? profile.store_volume : choices.store_volume;

  const auto& p = s.profile;
  if (p.api == ServerApi::ollama) {
    s.env["OLLAMA_HOST"] = listen_address(p, choices);
    s.env["OLLAMA_CONTEXT_LENGTH"] = std::to_string(p.context_length);
    s.env["OLLAMA_NUM_PARALLEL"] = std::to_string(p.parallel);
    s.env["OLLAMA_MAX_LOADED_MODELS"] = std::to_string(p.max_loaded_models);
    s.env["OLLAMA_KEEP_ALIVE"] = p.keep_alive;
    s.env["OLLAMA_KV_CACHE_TYPE"] = to_string(p.kv_type);
    if (s.flash_attention) {
      s.env["OLLAMA_FLASH_ATTENTION"] = "1";
    }
    s.health.test = {"CMD", "ollama", "list"};
  } else {
    // LocalAI's names for the same settings (its --address, --context-size, --parallel-requests,
    // --single-active-backend, --models-path and idle watchdog).
    s.env["LOCALAI_ADDRESS"] = listen_address(p, choices);
    s.env["LOCALAI_CONTEXT_SIZE"] = std::to_string(p.context_length);
    s.env["LOCALAI_PARALLEL_REQUESTS"] = p.parallel > 1 ? "true" : "false";
    s.env["LOCALAI_SINGLE_ACTIVE_BACKEND"] = p.max_loaded_models <= 1 ? "true" : "false";
    s.env["LOCALAI_MODELS_PATH"] = p.store_path;
    s.env["LOCALAI_WATCHDOG_IDLE"] = "true";
    s.env["LOCALAI_WATCHDOG_IDLE_TIMEOUT"] = p.keep_alive;
    const auto port = choices.network == NetworkKind::host ? p.port : p.container_port;
    s.health.test = {"CMD", "curl", "-fsS", fmt::format("http://127.0.0.1:{}/readyz", port)};
  }
  s.labels[std::string(k_label_enable)] = "true";
  s.labels[std::string(k_label_kind)] = p.api == ServerApi::ollama ? "ollama" : "localai";
  s.labels[std::string(k_label_profile)] = p.name;
  s.labels[std::string(k_label_deployed)] = "true";
  return s;
}

const char* to_string(HeldMemory::Basis basis) {
  switch (basis) {
    case HeldMemory::Basis::limit:
      return "limit";
    case HeldMemory::Basis::peak:
      return "peak use";
    case HeldMemory::Basis::usage:
      return "use now";
    case HeldMemory::Basis::unknown:
      break;
  }
  return "unknown";
}

Admission admit(std::uint64_t ram_total, std::uint64_t reserve, std::uint64_t limit, std::vector<HeldMemory> others,
                Exclusivity exclusivity, std::uint64_t disk_needed, std::optional<std::uint64_t> disk_available) {
  Admission a;
  a.ram_total = ram_total;
  a.reserve = reserve;
  a.limit = limit;
  a.disk_needed = disk_needed;
  a.disk_available = disk_available;
  a.disk_fits = !disk_available || disk_needed <= *disk_available;
  std::stable_sort(others.begin(), others.end(), [](const auto& l, const auto& r) { return l.bytes > r.bytes; });
  for (auto& o : others) {
    if (!o.running) {
      continue;  // a stopped container holds nothing
    }
    if (exclusivity == Exclusivity::exclusive && o.inference_server && !o.protect) {
      a.set_aside.push_back(std::move(o));
      continue;
    }
    a.held += o.bytes;
    a.counted.push_back(std::move(o));
  }
  const std::uint64_t need = limit + a.held + reserve;
  a.ram_fits = need <= ram_total;
  if (a.ram_fits) {
    return a;
  }
  a.shortfall = need - ram_total;
  std::uint64_t freed = 0;
  for (const auto& o : a.counted) {
    if (freed >= a.shortfall) {
      break;
    }
    if (!o.protect && o.bytes > 0) {
      a.would_free.push_back(o);
      freed += o.bytes;
    }
  }
  if (freed < a.shortfall) {
    a.would_free.clear();
  }
  return a;
}

}  // namespace mw
