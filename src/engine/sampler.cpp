#include "engine/sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <thread>

#include "core/discovery.hpp"
#include "core/text.hpp"
#include "engine/status.hpp"
#include "probes/host_memory.hpp"
#include "probes/processes.hpp"

namespace mw::engine {

namespace {

// The processes of one server read per sample (of them, k_max_processes_kept are kept).
constexpr std::size_t k_max_processes_read = 64;
// The most of an API error's source and message a sample keeps.
constexpr std::size_t k_max_error_bytes = 512;

}  // namespace

Timestamp SteadyClock::now() const {
  return Timestamp{std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())};
}

void SteadyClock::sleep_until(Timestamp until) {
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(until.time_since_epoch()));
}

Sampler::Sampler(SamplerOptions options, Clock& clock)
    : m_options(std::move(options)), m_clock(clock), m_host(m_options.capacity) {}

std::optional<probes::CgroupMode> Sampler::cgroup_mode() const {
  if (!m_layout) {
    return std::nullopt;
  }
  return m_layout->mode;
}

void Sampler::note(const Error& problem) {
  const auto same = [&](const Error& e) { return e.source == problem.source && e.message == problem.message; };
  if (std::none_of(m_problems.begin(), m_problems.end(), same)) {
    m_problems.push_back(problem);
  }
}

namespace {

bool matches_target(const ContainerMeta& c, const std::vector<std::string>& targets) {
  return std::any_of(targets.begin(), targets.end(),
                     [&](const std::string& t) { return t == c.name || (t.size() >= 4 && c.id.starts_with(t)); });
}

}  // namespace

Inventory Sampler::discover() {
  InventoryOptions io;
  io.root = m_options.root;
  io.docker_host = m_options.docker_host;
  io.timeout = m_options.docker_timeout;
  const auto inv = read_inventory(io);
  if (!inv.docker.reachable && inv.docker.error) {
    Error e = *inv.docker.error;
    if (!inv.docker.hint.empty()) {
      e.message += "; " + inv.docker.hint;
    }
    note(e);
  }
  for (const auto& p : inv.problems) {
    note(p);
  }
  rediscover(inv);
  return inv;
}

void Sampler::rediscover(const Inventory& inventory) {
  m_previous = std::move(m_servers);
  m_servers.clear();
  if (inventory.layout) {
    m_layout = inventory.layout;
  } else if (auto layout = probes::detect_cgroup_layout(m_options.root)) {
    m_layout = *layout;
  } else {
    note(layout.error());
  }
  discover_containers(inventory);
  discover_host_processes();
  m_previous.clear();
}

void Sampler::seed(const std::string& server_name, const std::vector<ServerSample>& samples) {
  for (auto& w : m_servers) {
    if (w->server.name == server_name) {
      for (const auto& s : samples) {
        w->history.push(s);
      }
    }
  }
}

void Sampler::seed_host(const std::vector<HostSample>& samples) {
  for (const auto& s : samples) {
    m_host.push(s);
  }
}

void Sampler::set_planned_limit(const std::string& server_name, std::optional<std::uint64_t> limit, std::string basis) {
  for (auto& w : m_servers) {
    if (w->server.name == server_name) {
      w->server.planned_limit = limit;
      w->server.planned_basis = basis;
    }
  }
}

void Sampler::forget_history(const std::string& server_name) {
  for (auto& w : m_servers) {
    if (w->server.name == server_name) {
      w->history.clear();
    }
  }
}

std::unique_ptr<WatchedServer> Sampler::take_previous(const InferenceServer& server) {
  const auto same = [&](const std::unique_ptr<WatchedServer>& w) {
    return w->server.kind == server.kind &&
           (server.kind == ServerKind::container ? w->server.container_id == server.container_id
                                                 : w->server.pid == server.pid);
  };
  const auto it = std::find_if(m_previous.begin(), m_previous.end(), same);
  if (it == m_previous.end()) {
    return nullptr;
  }
  auto found = std::move(*it);
  m_previous.erase(it);
  return found;
}

void Sampler::add_server(InferenceServer server, std::optional<probes::CgroupLocation> where) {
  if (auto known = take_previous(server)) {
    const bool same_api = known->server.api_url == server.api_url;
    auto problem = std::move(known->server.api_url_problem);
    if (server.planned_basis.empty() && !server.has_memory_limit) {  // planned before: kept until planned again
      server.planned_limit = known->server.planned_limit;
      server.planned_basis = std::move(known->server.planned_basis);
    }
    known->server = std::move(server);
    known->cgroup = std::move(where);
    if (same_api) {
      known->server.api_url_problem = std::move(problem);  // the same address, the same verdict
      m_servers.push_back(std::move(known));
      return;
    }
    known->api.reset();
    known->api_version.clear();
    connect_api(*known);
    m_servers.push_back(std::move(known));
    return;
  }
  auto watched = std::make_unique<WatchedServer>(m_options.capacity);
  watched->server = std::move(server);
  watched->cgroup = std::move(where);
  connect_api(*watched);
  m_servers.push_back(std::move(watched));
}

void Sampler::connect_api(WatchedServer& w) {
  if (w.server.api_url.empty()) {
    return;
  }
  auto endpoint = adapters::parse_endpoint(w.server.api_url, w.server.name + " API address");
  if (!endpoint) {
    note(endpoint.error());
    w.server.api_url_problem = escape_control(endpoint.error().message);
    w.server.api_url = escape_control(w.server.api_url);  // shown in reports: one line
    return;
  }
  w.api = std::make_unique<adapters::OllamaClient>(*endpoint, m_options.api_timeout);
}

void Sampler::discover_containers(const Inventory& inventory) {
  std::vector<std::string> found_targets;
  for (const auto& m : inventory.containers) {
    if (m_servers.size() >= k_max_servers) {
      note(Error{"docker", fmt::format("more than {} inference servers run; memwarden watches the first {}",
                                       k_max_servers, k_max_servers)});
      break;
    }
    const bool targeted = !m_options.targets.empty() && matches_target(m, m_options.targets);
    if (m_options.targets.empty() ? !is_inference_server(m) : !targeted) {
      continue;
    }
    for (const auto& t : m_options.targets) {
      if (t == m.name || m.id.starts_with(t)) {
        found_targets.push_back(t);
      }
    }
    std::optional<probes::CgroupLocation> where;
    if (const auto it = inventory.cgroups.find(m.id); it != inventory.cgroups.end()) {
      where = it->second;
    } else if (const auto why = inventory.cgroup_errors.find(m.id); why != inventory.cgroup_errors.end()) {
      note(why->second);
    }
    add_server(server_from_container(m), std::move(where));
  }
  for (const auto& t : m_options.targets) {
    if (std::find(found_targets.begin(), found_targets.end(), t) == found_targets.end()) {
      note(Error{"docker", fmt::format("no running container named '{}'", t), ENOENT});
    }
  }
}

void Sampler::discover_host_processes() {
  if (!m_options.targets.empty() || !m_layout) {
    return;  // named targets are containers
  }
  auto pids = probes::find_processes_by_comm(m_options.root, "ollama");
  if (!pids) {
    note(pids.error());
    return;
  }
  std::size_t found = 0;
  for (const auto pid : *pids) {
    auto process = probes::read_process(m_options.root, pid);
    if (!process || process->argv.size() < 2 || process->argv[1] != "serve") {
      continue;  // runners are children of a server; they are sampled with it
    }
    if (found >= k_max_host_servers || m_servers.size() >= k_max_servers) {
      note(Error{"/proc", fmt::format("more than {} 'ollama serve' processes on the host; memwarden watches {}",
                                      k_max_host_servers, found)});
      break;
    }
    const auto path = m_options.root.proc(std::to_string(pid) + "/cgroup");
    auto text = probes::read_file(path);
    if (!text) {
      note(text.error());
      continue;
    }
    auto entries = probes::parse_proc_cgroup(*text, path.string());
    if (!entries) {
      note(entries.error());
      continue;
    }
    auto where = probes::location_from_entries(*entries, m_layout->mode);
    if (!where || probes::container_id_from_cgroup_path(where->memory_path)) {
      continue;  // inside a container: found through Docker, or not ours
    }
    InferenceServer server;
    server.kind = ServerKind::host_process;
    server.pid = pid;
    server.name = fmt::format("ollama (host, pid {})", pid);
    HostPort address;
    if (auto env = probes::read_environ_value(m_options.root, pid, "OLLAMA_HOST"); env && *env) {
      if (auto parsed = parse_ollama_host(**env)) {
        address = *parsed;
      }
    }
    if (address.host.empty()) {
      address.host = "127.0.0.1";
    }
    server.api_url = fmt::format("http://{}:{}", address.host, address.port);
    server.api_url_source = "OLLAMA_HOST of the process, or Ollama's default";
    add_server(std::move(server), std::move(where));
    ++found;
  }
}

ServerSample Sampler::sample_server(WatchedServer& w) {
  ServerSample s;
  s.at = m_clock.now();
  if (m_layout && w.cgroup) {
    std::vector<Error> problems;
    auto memory = probes::read_cgroup_memory(*m_layout, *w.cgroup, problems);
    if (!memory && memory.error().code == ENOENT && w.server.kind == ServerKind::container) {
      // Restarted or recreated: find the cgroup again.
      if (auto again = probes::locate_container_cgroup(m_options.root, *m_layout, 0, w.server.container_id)) {
        w.cgroup = *again;
        memory = probes::read_cgroup_memory(*m_layout, *w.cgroup, problems);
      }
    }
    if (memory) {
      s.memory = std::move(memory).value();
    } else {
      note(memory.error());
    }
    for (const auto& p : problems) {
      note(p);
    }
    if (auto pids = probes::read_cgroup_pids(*m_layout, *w.cgroup)) {
      // A server runs a handful of processes; a cgroup with thousands is read in part.
      const std::size_t read = std::min(pids->size(), k_max_processes_read);
      for (std::size_t i = 0; i < read; ++i) {
        if (auto process = probes::read_process(m_options.root, (*pids)[i])) {
          s.processes.push_back(std::move(process).value());
        }
      }
      if (pids->size() > read || keep_largest_processes(s.processes) > 0) {
        note(Error{w.server.name,
                   fmt::format("{} processes in its cgroup; a sample keeps the {} of the first {} that hold the most "
                               "memory",
                               pids->size() > read ? "more than " + std::to_string(read) : std::to_string(pids->size()),
                               k_max_processes_kept, read)});
      }
    }
  }
  if (w.api && m_fixing.count(w.server.name) > 0) {
    w.api->close();  // a fix job owns the API until it ends
    s.api_error =
        Error{w.api->source("GET", "/api/ps"), "not asked this sample: a fix is working on the server", EBUSY};
  } else if (w.api && s.at < w.api_retry_at) {
    s.api_error = Error{w.api->source("GET", "/api/ps"),
                        fmt::format("not asked this sample: it did not answer within the time-out; asking again in "
                                    "{} s",
                                    (w.api_retry_at - s.at).count() / 1000 + 1),
                        ETIMEDOUT};
  } else if (w.api && m_waited_this_round) {
    s.api_error = Error{w.api->source("GET", "/api/ps"),
                        "not asked this sample: another server's API used up this sample's wait", ETIMEDOUT};
  } else if (w.api) {
    auto models = w.api->ps();
    if (!models && models.error().code == ETIMEDOUT) {
      // One wait per sample at most, and a server that keeps not answering is asked less and less often.
      m_waited_this_round = true;
      ++w.api_timeouts;
      const auto backoff = std::min<std::int64_t>(1000LL << std::min(w.api_timeouts - 1, 6U), 60'000);
      w.api_retry_at = m_clock.now() + Duration(backoff);
    } else if (models) {
      w.api_timeouts = 0;
      if (w.api_version.empty()) {
        if (auto version = w.api->version()) {
          w.api_version = *version;
        }
      }
    }
    if (models) {
      s.models = std::move(models).value();
      if (fold_models(*s.models) > 0) {
        note(Error{w.api->source("GET", "/api/ps"),
                   fmt::format("lists more than {} models, or a name longer than {} bytes; a sample keeps the largest "
                               "one by one and adds up the rest as one entry",
                               k_max_models_kept, k_max_model_name_bytes)});
      }
    } else {
      // Kept for the whole window: an error that quotes a long answer is cut.
      Error e = models.error();
      for (auto* text : {&e.source, &e.message}) {
        if (text->size() > k_max_error_bytes) {
          text->resize(k_max_error_bytes);
          *text += "...";
        }
      }
      s.api_error = std::move(e);
    }
  }
  return s;
}

void Sampler::sample() {
  std::vector<Error> problems;
  m_last_host = read_host(m_options.root, problems);  // the one rule for meminfo, PSI and vmstat
  for (const auto& p : problems) {
    note(p);
  }
  HostSample host;
  host.at = m_clock.now();
  host.meminfo = m_last_host.meminfo;
  host.pressure = m_last_host.pressure;
  host.pressure_supported = m_last_host.pressure_supported;
  m_host.push(std::move(host));
  m_waited_this_round = false;
  // Each sample starts with another server, so that one that does not answer cannot keep the others
  // from being asked (only one API wait per sample).
  const std::size_t n = m_servers.size();
  for (std::size_t i = 0; i < n; ++i) {
    auto& w = *m_servers[(m_rounds + i) % n];
    w.history.push(sample_server(w));
  }
  ++m_rounds;
}

std::vector<ServerState> Sampler::states() const {
  std::vector<ServerState> out;
  for (const auto& w : m_servers) {
    out.push_back({w->server, &w->history});
  }
  return out;
}

}  // namespace mw::engine
