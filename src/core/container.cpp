#include "core/container.hpp"

#include <algorithm>

namespace mw {

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

}  // namespace mw
