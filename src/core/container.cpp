#include "core/container.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "core/footprint.hpp"

namespace mw {

namespace {

std::size_t cut(std::string& text, std::size_t max = ContainerBounds::text_bytes) {
  if (text.size() <= max) {
    return 0;
  }
  text.resize(max);
  text.shrink_to_fit();
  return 1;
}

template <class T>
std::size_t cut(std::vector<T>& list, std::size_t max = ContainerBounds::list_entries) {
  if (list.size() <= max) {
    return 0;
  }
  const auto dropped = list.size() - max;
  list.resize(max);
  list.shrink_to_fit();
  return dropped;
}

}  // namespace

namespace {

// Labels and variables memwarden reads: kept before any other, so that no number of other entries can
// push out memwarden.protect or OLLAMA_HOST.
constexpr std::array<std::string_view, 5> k_labels_read = {"memwarden.protect", "memwarden.enable", "memwarden.kind",
                                                           "memwarden.ollama.url", "memwarden.profile"};
constexpr std::array<std::string_view, 10> k_env_read = {
    "OLLAMA_HOST",          "OLLAMA_MODELS",          "OLLAMA_CONTEXT_LENGTH",    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_KV_CACHE_TYPE", "OLLAMA_FLASH_ATTENTION", "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_KEEP_ALIVE",
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"};

template <std::size_t N>
bool listed(const std::array<std::string_view, N>& names, std::string_view key) {
  return std::find(names.begin(), names.end(), key) != names.end();
}

// Keeps at most `max` entries of `map` that `fits`, by rank (0 first), each rank in key order.
template <class Fits, class Rank>
std::size_t keep_entries(std::map<std::string, std::string>& map, std::size_t max, Fits fits, Rank rank) {
  std::size_t dropped = 0;
  std::map<std::string, std::string> kept;
  for (int pass = 0; pass <= 2; ++pass) {
    for (const auto& [key, value] : map) {
      if (rank(key) != pass) {
        continue;
      }
      if (!fits(key, value) || kept.size() >= max) {
        ++dropped;
        continue;
      }
      kept.emplace(key, value);
    }
  }
  map = std::move(kept);
  return dropped;
}

}  // namespace

std::size_t bound_labels(std::map<std::string, std::string>& labels) {
  const auto fits = [](const std::string& key, const std::string& value) {
    const auto max_value =
        key.starts_with("memwarden.") ? ContainerBounds::label_value_bytes : ContainerBounds::other_label_value_bytes;
    return key.size() <= ContainerBounds::label_key_bytes && value.size() <= max_value;
  };
  const bool all_fit =
      labels.size() <= ContainerBounds::labels &&
      std::all_of(labels.begin(), labels.end(), [&](const auto& kv) { return fits(kv.first, kv.second); });
  if (all_fit) {
    return 0;
  }
  // The labels memwarden reads first, then its other labels, then everything else.
  return keep_entries(labels, ContainerBounds::labels, fits, [](const std::string& key) {
    return listed(k_labels_read, key) ? 0 : key.starts_with("memwarden.") ? 1 : 2;
  });
}

std::size_t bound_container(ContainerMeta& meta) {
  std::size_t changed = bound_labels(meta.labels);
  changed += cut(meta.name) + cut(meta.image) + cut(meta.network_mode) + cut(meta.state.status) +
             cut(meta.state.started_at) + cut(meta.restart_policy.name);
  for (auto& [key, value] : meta.server_env) {
    changed += cut(value);
  }
  if (meta.server_env.size() > ContainerBounds::server_env) {
    changed += keep_entries(
        meta.server_env, ContainerBounds::server_env,
        [](const std::string& key, const std::string&) { return key.size() <= ContainerBounds::label_key_bytes; },
        [](const std::string& key) { return listed(k_env_read, key) ? 0 : 1; });
  }
  changed += cut(meta.mounts) + cut(meta.ports) + cut(meta.ip_addresses) + cut(meta.device_requests);
  for (auto& m : meta.mounts) {
    changed += cut(m.type) + cut(m.name) + cut(m.source) + cut(m.destination);
  }
  for (auto& p : meta.ports) {
    changed += cut(p.container_port) + cut(p.host_ip) + cut(p.host_port);
  }
  for (auto& a : meta.ip_addresses) {
    changed += cut(a);
  }
  for (auto& d : meta.device_requests) {
    changed += cut(d.driver) + cut(d.device_ids) + cut(d.capabilities);
    for (auto& id : d.device_ids) {
      changed += cut(id);
    }
    for (auto& set : d.capabilities) {
      changed += cut(set);
      for (auto& c : set) {
        changed += cut(c);
      }
    }
  }
  return changed;
}

bool DeviceRequest::requests_gpu() const {
  if (driver == "nvidia") {
    return true;
  }
  return std::any_of(capabilities.begin(), capabilities.end(),
                     [](const auto& set) { return std::find(set.begin(), set.end(), "gpu") != set.end(); });
}

std::optional<std::string> host_path_through_mounts(const std::vector<ContainerMount>& mounts,
                                                    std::string_view container_path) {
  const ContainerMount* best = nullptr;
  std::string_view rest;
  for (const auto& m : mounts) {
    if ((m.type != "volume" && m.type != "bind") || m.source.empty() || !m.destination.starts_with('/')) {
      continue;
    }
    std::string_view dest = m.destination;
    while (dest.size() > 1 && dest.ends_with('/')) {
      dest.remove_suffix(1);
    }
    const bool holds = container_path == dest || dest == "/" ||
                       (container_path.starts_with(dest) && container_path[dest.size()] == '/');
    if (!holds || (best != nullptr && dest.size() <= best->destination.size())) {
      continue;
    }
    best = &m;
    rest = container_path.substr(dest == "/" ? 0 : dest.size());
  }
  if (best == nullptr) {
    return std::nullopt;
  }
  std::string out = best->source;
  while (out.size() > 1 && out.ends_with('/')) {
    out.pop_back();
  }
  if (!rest.empty()) {
    out += rest.starts_with('/') ? std::string(rest) : "/" + std::string(rest);
  }
  return out;
}

std::size_t footprint(const ContainerMeta& m) {
  using owned::heap;
  using owned::heap_block;
  std::size_t n = sizeof m + heap(m.id) + heap(m.name) + heap(m.image) + heap(m.labels) + heap(m.network_mode) +
                  heap(m.state.status) + heap(m.state.started_at) + heap(m.restart_policy.name) + heap(m.server_env) +
                  heap(m.ip_addresses);
  if (m.device_requests.capacity() > 0) {
    n += heap_block(m.device_requests.capacity() * sizeof(DeviceRequest));
  }
  for (const auto& d : m.device_requests) {
    n += heap(d.driver) + heap(d.device_ids);
    if (d.capabilities.capacity() > 0) {
      n += heap_block(d.capabilities.capacity() * sizeof(std::vector<std::string>));
    }
    for (const auto& set : d.capabilities) {
      n += heap(set);
    }
  }
  if (m.ports.capacity() > 0) {
    n += heap_block(m.ports.capacity() * sizeof(PortBinding));
  }
  for (const auto& p : m.ports) {
    n += heap(p.container_port) + heap(p.host_ip) + heap(p.host_port);
  }
  if (m.mounts.capacity() > 0) {
    n += heap_block(m.mounts.capacity() * sizeof(ContainerMount));
  }
  for (const auto& mount : m.mounts) {
    n += heap(mount.type) + heap(mount.name) + heap(mount.source) + heap(mount.destination);
  }
  return n;
}

}  // namespace mw
