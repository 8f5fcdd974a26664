#include "engine/inventory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "core/discovery.hpp"

namespace mw::engine {

Inventory InventoryReader::read() {
  Inventory inv;
  auto& st = inv.docker;
  st.endpoint = m_options.docker_host;
  auto endpoint = adapters::parse_endpoint(m_options.docker_host, "docker host");
  if (!endpoint) {
    st.error = endpoint.error();
    st.hint = "use unix:///path/to/docker.sock or tcp://host:port";
    return inv;
  }
  Result<std::vector<adapters::ContainerSummary>> list = fail("docker", "not connected");
  if (m_client) {
    list = m_client->list_containers(m_options.scope);
  }
  if (!list) {  // not connected yet, or the engine went away: connect (again)
    m_client.reset();
    auto client = adapters::DockerClient::connect(*endpoint, m_options.timeout);
    if (client) {
      m_client = std::move(client).value();
      list = m_client->list_containers(m_options.scope);
    } else {
      list = unexpected(client.error());
    }
  }
  if (!list) {
    st.error = list.error();
    st.hint = adapters::docker_error_hint(list.error(), *endpoint);
    m_client.reset();
    return inv;
  }
  st.reachable = true;
  st.api_version = m_client->api_version().text();
  if (list->size() > m_options.max_containers) {
    // Inference servers (by image or label, as the list shows them) are inspected first.
    const auto server_like = [](const adapters::ContainerSummary& c) {
      ContainerMeta meta;
      meta.image = c.image;
      meta.labels = c.labels;
      return is_inference_server(meta);
    };
    std::stable_partition(list->begin(), list->end(), server_like);
    inv.left_out = list->size() - m_options.max_containers;
    list->resize(m_options.max_containers);
  }
  if (auto layout = probes::detect_cgroup_layout(m_options.root)) {
    inv.layout = *layout;
  } else {
    inv.problems.push_back(layout.error());
  }
  for (const auto& summary : *list) {
    auto meta = m_client->inspect(summary.id);
    if (!meta) {
      if (meta.error().code != ENOENT) {
        inv.problems.push_back(meta.error());
      }
      continue;
    }
    if (meta->state.running) {
      if (!inv.layout) {
        inv.cgroup_errors.emplace(meta->id, Error{meta->name, "the host's cgroup layout is unknown"});
      } else if (auto where = probes::locate_container_cgroup(m_options.root, *inv.layout, meta->state.pid, meta->id)) {
        inv.cgroups.emplace(meta->id, *where);
      } else {
        inv.cgroup_errors.emplace(meta->id, where.error());
      }
    }
    inv.containers.push_back(std::move(meta).value());
  }
  return inv;
}

Inventory read_inventory(const InventoryOptions& options) {
  InventoryReader reader(options);
  return reader.read();
}

}  // namespace mw::engine
