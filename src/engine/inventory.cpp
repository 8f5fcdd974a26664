#include "engine/inventory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <system_error>
#include <thread>

#include "core/discovery.hpp"

namespace mw::engine {

namespace {

// What became of one container of the list.
struct Inspected {
  Result<ContainerMeta> meta = fail("docker", "not inspected");
  std::optional<Result<probes::CgroupLocation>> cgroup;  // a running container's, when the layout is known
  std::optional<MemoryRead> memory;                      // with read_memory, when its cgroup was found
};

void inspect_one(adapters::DockerClient& client, const adapters::ContainerSummary& summary,
                 const InventoryOptions& options, const std::optional<probes::CgroupLayout>& layout, Inspected& out) {
  out.meta = client.inspect(summary.id);
  if (out.meta && out.meta->state.running && layout) {
    out.cgroup = probes::locate_container_cgroup(options.root, *layout, out.meta->state.pid, out.meta->id);
    if (options.read_memory && *out.cgroup) {
      std::vector<Error> problems;
      auto memory = probes::read_cgroup_memory(*layout, **out.cgroup, problems);
      out.memory = MemoryRead{std::move(memory), std::move(problems)};
    }
  }
}

// Each container is inspected (and its cgroup located) by whichever connection is free next; the results land in
// the list's slots, so they keep the list's order whatever order the answers come in. One connection: the kept
// one, on this thread. More: the kept one on this thread and each other on a thread of its own; each connection
// is closed as soon as nothing is left for it, so that a server that serves one connection at a time (a proxy, a
// test's fake) still answers every request in turn. The kept one opens again on its next request.
std::vector<Inspected> inspect_all(adapters::DockerClient& client, const std::vector<adapters::ContainerSummary>& list,
                                   const InventoryOptions& options, const std::optional<probes::CgroupLayout>& layout) {
  std::vector<Inspected> out(list.size());
  const std::size_t connections = inspect_connections(list.size());
  if (connections == 1) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      inspect_one(client, list[i], options, layout, out[i]);
    }
    return out;
  }
  std::atomic<std::size_t> next{0};
  const auto work = [&](adapters::DockerClient& c) {
    for (std::size_t i = next++; i < list.size(); i = next++) {
      inspect_one(c, list[i], options, layout, out[i]);
    }
    c.close_connection();
  };
  std::vector<adapters::DockerClient> others;
  others.reserve(connections - 1);
  for (std::size_t i = 1; i < connections; ++i) {
    others.push_back(client.another_connection());
  }
  std::vector<std::thread> threads;
  threads.reserve(others.size());
  for (auto& other : others) {
    try {
      threads.emplace_back(work, std::ref(other));
    } catch (const std::system_error&) {
      break;  // no more threads to be had: the ones there (this one at least) do the rest
    }
  }
  work(client);
  for (auto& t : threads) {
    t.join();
  }
  return out;
}

}  // namespace

std::size_t inspect_connections(std::size_t containers) {
  const std::size_t wanted = (containers + k_containers_per_connection - 1) / k_containers_per_connection;
  return std::clamp<std::size_t>(wanted, 1, k_max_inspect_connections);
}

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
  auto inspected = inspect_all(*m_client, *list, m_options, inv.layout);
  for (auto& one : inspected) {
    if (!one.meta) {
      if (one.meta.error().code != ENOENT) {
        inv.problems.push_back(std::move(one.meta).error());
      }
      continue;
    }
    auto& meta = *one.meta;
    if (meta.state.running) {
      if (!inv.layout) {
        inv.cgroup_errors.emplace(meta.id, Error{meta.name, "the host's cgroup layout is unknown"});
      } else if (one.cgroup && *one.cgroup) {
        inv.cgroups.emplace(meta.id, **one.cgroup);
        if (one.memory) {
          inv.memory.emplace(meta.id, std::move(*one.memory));
        }
      } else if (one.cgroup) {
        inv.cgroup_errors.emplace(meta.id, one.cgroup->error());
      }
    }
    inv.containers.push_back(std::move(meta));
  }
  return inv;
}

Inventory read_inventory(const InventoryOptions& options) {
  InventoryReader reader(options);
  return reader.read();
}

}  // namespace mw::engine
