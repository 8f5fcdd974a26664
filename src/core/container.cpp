#include "core/container.hpp"

#include <algorithm>

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

std::size_t bound_labels(std::map<std::string, std::string>& labels) {
  std::size_t changed = 0;
  for (const auto& [key, value] : labels) {
    const auto max_value =
        key.starts_with("memwarden.") ? ContainerBounds::label_value_bytes : ContainerBounds::other_label_value_bytes;
    if (key.size() > ContainerBounds::label_key_bytes || value.size() > max_value) {
      ++changed;
    }
  }
  if (changed == 0 && labels.size() <= ContainerBounds::labels) {
    return 0;
  }
  changed = 0;
  std::map<std::string, std::string> kept;
  const auto keep = [&](bool ours) {
    for (auto& [key, value] : labels) {
      if (key.starts_with("memwarden.") != ours) {
        continue;
      }
      const auto max_value = ours ? ContainerBounds::label_value_bytes : ContainerBounds::other_label_value_bytes;
      if (key.size() > ContainerBounds::label_key_bytes || value.size() > max_value ||
          kept.size() >= ContainerBounds::labels) {
        ++changed;
        continue;
      }
      kept.emplace(key, std::move(value));
    }
  };
  keep(true);
  keep(false);
  labels = std::move(kept);
  return changed;
}

std::size_t bound_container(ContainerMeta& meta) {
  std::size_t changed = bound_labels(meta.labels);
  changed += cut(meta.name) + cut(meta.image) + cut(meta.network_mode) + cut(meta.state.status) +
             cut(meta.state.started_at) + cut(meta.restart_policy.name);
  if (meta.server_env.size() > ContainerBounds::server_env) {
    changed += meta.server_env.size() - ContainerBounds::server_env;
    meta.server_env.erase(std::next(meta.server_env.begin(), ContainerBounds::server_env), meta.server_env.end());
  }
  for (auto& [key, value] : meta.server_env) {
    changed += cut(value);
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
