#include "engine/model_test.hpp"

#include "model_server.hpp"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "adapters/http.hpp"
#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "core/discovery.hpp"
#include "core/ollama_name.hpp"
#include "core/text.hpp"
#include "engine/inventory.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_memory.hpp"

namespace mw::engine {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto k_ollama_api_timeout = std::chrono::seconds(10);
constexpr auto k_unload_poll = std::chrono::milliseconds(250);

bool stopped(const ModelTestOptions& o) {
  return o.stop != nullptr && o.stop->load();
}

bool is_url(const std::string& server) {
  return server.starts_with("http://") || server.starts_with("https://");
}

std::string without_trailing_slash(std::string url) {
  while (url.size() > 1 && url.back() == '/') {
    url.pop_back();
  }
  return url;
}

std::optional<std::uint64_t> added(const std::optional<std::uint64_t>& before,
                                   const std::optional<std::uint64_t>& after) {
  if (!before || !after) {
    return std::nullopt;
  }
  return *after > *before ? *after - *before : 0;
}

// Ollama's words when a model does not fit ("model requires more system memory (...) than is available (...)"),
// a runner killed by the kernel, and the usual out-of-memory phrases of other servers.
bool says_lack_of_memory(const std::string& error) {
  const auto lower = ascii_lower(error);
  for (const char* phrase : {"more system memory", "out of memory", "cudamalloc failed", "signal: killed",
                             "insufficient memory", "not enough memory"}) {
    if (lower.find(phrase) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> names_gone(const std::vector<OllamaModel>& before, const std::vector<OllamaModel>& after) {
  std::vector<std::string> gone;
  for (const auto& m : before) {
    if (listed(after, m.name) == nullptr) {
      gone.push_back(m.name);
    }
  }
  return gone;
}

// Unloads the model on every way out of a measurement once its load was asked for (a load that timed out may
// still finish on the server), unless --keep.
class UnloadGuard {
 public:
  UnloadGuard(adapters::OllamaClient& api, std::string model) : m_api(api), m_model(std::move(model)) {}
  UnloadGuard(const UnloadGuard&) = delete;
  UnloadGuard& operator=(const UnloadGuard&) = delete;
  ~UnloadGuard() {
    if (m_armed) {
      static_cast<void>(m_api.unload(m_model));
    }
  }
  void disarm() { m_armed = false; }

 private:
  adapters::OllamaClient& m_api;
  std::string m_model;
  bool m_armed = true;
};

std::optional<std::string> store(const ModelTestOptions& o, const ServerTarget& server, const ModelTestRun& run) {
  if (o.state_dir.empty()) {
    return std::nullopt;
  }
  const auto& m = *run.load;
  const auto& p = *run.plan;
  adapters::EstimateRecord r;
  r.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
  r.model = run.model;
  r.server = server.name;
  r.quantization = p.quantization;
  r.num_ctx = m.context_length ? m.context_length : std::optional<std::uint64_t>(p.options.num_ctx);
  r.planned_ram = p.placement.ram_resident + p.placement.ram_page_cache;
  r.planned_vram = p.placement.vram;
  r.measured_ram = m.checks.empty() ? std::nullopt : m.checks.front().measured;
  r.server_size = m.ps_size;
  r.server_vram = m.ps_vram;
  r.load_seconds = m.load_seconds;
  r.kept_after_unload = m.unload.kept;
  auto db = adapters::SampleStore::open(o.state_dir);
  if (!db) {
    return db.error().line();
  }
  if (auto ok = db->append_estimate(r); !ok) {
    return ok.error().line();
  }
  return std::nullopt;
}

}  // namespace

// Shared with bench (model_server.hpp).
Expected<FoundServer, Error> find_server(const ModelTestOptions& o) {
  FoundServer found;
  Inventory inventory;
  if (!o.plan.docker_host.empty()) {
    InventoryOptions io;
    io.root = o.plan.root;
    io.docker_host = o.plan.docker_host;
    io.timeout = o.plan.docker_timeout;
    inventory = read_inventory(io);
  }
  const bool docker = inventory.docker.reachable;
  const auto docker_error = [&] {
    return inventory.docker.error ? inventory.docker.error->line() : std::string("Docker is not used");
  };
  const ContainerMeta* container = nullptr;
  if (is_url(o.server)) {
    ServerTarget t;
    t.name = o.server;
    t.url = without_trailing_slash(o.server);
    if (docker) {
      for (const auto& c : inventory.containers) {
        const auto s = server_from_container(c);
        if (!s.api_url.empty() && without_trailing_slash(s.api_url) == t.url) {
          container = &c;
          t.name = c.name;
        }
      }
    }
    if (container == nullptr) {
      found.notes.push_back(fmt::format("{} is not a container memwarden found ({}): its memory is not measured",
                                        o.server, docker ? "no container serves that address" : docker_error()));
    }
    found.target = std::move(t);
  } else {
    if (!docker) {
      if (!o.server.empty()) {
        return unexpected(
            Error{"--server", fmt::format("cannot look up container '{}': {}", o.server, docker_error())});
      }
      if (o.load == ModelLoad::load) {
        return unexpected(Error{"--load", fmt::format("no server to load on: {}; give --server URL", docker_error())});
      }
      found.notes.push_back(fmt::format("no server asked: {}", docker_error()));
      return found;
    }
    std::vector<const ContainerMeta*> servers;
    for (const auto& c : inventory.containers) {
      if (!o.server.empty() ? c.name == o.server : is_inference_server(c)) {
        servers.push_back(&c);
      }
    }
    if (!o.server.empty() && servers.empty()) {
      return unexpected(Error{"--server", fmt::format("no running container is named '{}'", o.server)});
    }
    if (servers.size() != 1) {
      if (o.load == ModelLoad::plan_only) {
        found.notes.push_back(servers.empty() ? "no inference server is running: the plan uses the model store "
                                                "and the catalog"
                                              : "several inference servers are running: name one with --server to "
                                                "ask it about the model");
        return found;
      }
      std::string names;
      for (const auto* c : servers) {
        names += (names.empty() ? "" : ", ") + c->name;
      }
      return unexpected(Error{"--load", servers.empty()
                                            ? std::string("no inference server is running: start one, or give "
                                                          "--server NAME|URL")
                                            : fmt::format("several inference servers are running ({}): name one "
                                                          "with --server",
                                                          names)});
    }
    container = servers.front();
    const auto s = server_from_container(*container);
    if (s.api_url.empty() || !s.api_url_problem.empty()) {
      return unexpected(Error{container->name, s.api_url_problem.empty()
                                                   ? std::string("memwarden finds no way to reach its API (publish "
                                                                 "its port, or label it memwarden.ollama.url)")
                                                   : s.api_url_problem});
    }
    ServerTarget t;
    t.name = container->name;
    t.url = without_trailing_slash(s.api_url);
    found.target = std::move(t);
  }
  if (container != nullptr) {
    found.discovered = is_inference_server(*container);
    found.target->container_id = container->id;
    found.target->memory_limit = container->memory_limit;
    found.watch.layout = inventory.layout;
    if (const auto it = inventory.cgroups.find(container->id); it != inventory.cgroups.end()) {
      found.watch.location = it->second;
    } else {
      const auto why = inventory.cgroup_errors.find(container->id);
      found.notes.push_back(fmt::format("{}: its cgroup was not found ({}): its memory is not measured",
                                        container->name,
                                        why != inventory.cgroup_errors.end() ? why->second.line() : "unknown"));
    }
  }
  return found;
}

const OllamaModel* listed(const std::vector<OllamaModel>& models, const std::string& wanted) {
  const auto name = parse_ollama_model_name(wanted);
  for (const auto& m : models) {
    const auto other = parse_ollama_model_name(m.name);
    if (m.name == wanted || m.model == wanted || (name && other && name->equals_ignoring_case(*other))) {
      return &m;
    }
  }
  return nullptr;
}

void fill_fit(ModelTestRun& run, const HostBudget& host) {
  const auto& p = *run.plan;
  run.ram_fits = p.verdict != FitVerdict::no_fit && p.ram_short == 0;
  const auto* gpu = host.best_gpu();
  run.vram_fits = p.placement.vram == 0 || (gpu != nullptr && p.placement.vram <= gpu->free);
  run.disk_fits = !p.disk_short;
}

LoadMeasurement measure_load(const ModelTestOptions& o, const FoundServer& server, const ModelPlan& plan,
                             const std::string& model, const std::vector<OllamaModel>& loaded_before) {
  LoadMeasurement m;
  m.after_load = o.after_load;
  auto endpoint = adapters::parse_endpoint(server.target->url, "--server");
  if (!endpoint) {
    m.error = endpoint.error().line();
    return m;
  }
  adapters::OllamaClient loader(*endpoint, o.load_timeout);
  adapters::OllamaClient api(*endpoint, k_ollama_api_timeout);
  const auto oom_before = server.watch.read();
  m.before = server.watch.now();
  // Long enough for the measurement, not forever: a memwarden killed mid-test leaves the model to expire.
  const auto keep_for =
      std::chrono::duration_cast<std::chrono::seconds>(o.load_timeout + o.unload_wait) + std::chrono::minutes(5);
  std::optional<UnloadGuard> guard;
  if (o.after_load != AfterLoad::keep) {
    guard.emplace(api, model);
  }
  const auto started = Clock::now();
  auto loaded = loader.load(model, fmt::format("{}s", keep_for.count()), o.plan.settings.num_ctx);
  m.load_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const auto oom_after = server.watch.read();
  if (oom_before && oom_after && oom_before->oom_kills && oom_after->oom_kills) {
    m.oom_kills = *oom_after->oom_kills - std::min(*oom_after->oom_kills, *oom_before->oom_kills);
  }
  if (!loaded) {
    m.error = loaded.error().line();
    m.model_missing = loaded.error().code == ENOENT;
    m.lack_of_memory = m.oom_kills.value_or(0) > 0 || says_lack_of_memory(*m.error);
    if (m.oom_kills && *m.oom_kills > 0) {
      *m.error += fmt::format(" (the kernel killed {} process(es) in the container for lack of memory{})", *m.oom_kills,
                              server.target->memory_limit
                                  ? fmt::format(": its limit is {}", format_bytes(*server.target->memory_limit))
                                  : std::string());
    }
    return m;  // the guard unloads it, in case the server finishes the load after all
  }
  m.loaded = server.watch.now();
  std::optional<std::uint64_t> measured_ram = added(m.before.held(), m.loaded.held());
  if (auto ps = api.ps()) {
    if (const auto* entry = listed(*ps, model)) {
      m.ps_size = entry->size;
      m.ps_vram = entry->size_vram;
      m.context_length = entry->context_length;
      m.processor = processor_split(entry->size, entry->size_vram);
    } else {
      m.ps_error = "loaded, but /api/ps does not list it";
    }
    m.evicted = names_gone(loaded_before, *ps);
    if (!m.evicted.empty()) {
      measured_ram.reset();  // what the evicted models gave back is mixed into the change
    }
  } else {
    m.ps_error = ps.error().line();
  }
  const auto& placement = plan.placement;
  const auto model_ram = placement.ram_resident + placement.ram_page_cache;
  // The KV cache and the compute graph are reserved at the load and touched as requests fill the context.
  const auto fills_later = placement.kv + std::max(placement.graph.full, placement.graph.partial);
  m.checks.push_back(check_estimate("RAM (container)", model_ram, measured_ram, CheckRole::decides, fills_later));
  // What the server says: Ollama's size and size_vram are what its scheduler planned, shown beside memwarden's.
  m.checks.push_back(check_estimate("VRAM (/api/ps)", placement.vram, m.ps_vram, CheckRole::compares));
  m.checks.push_back(
      check_estimate("server's size (/api/ps)", model_ram + placement.vram, m.ps_size, CheckRole::compares));
  if (o.after_load == AfterLoad::keep) {
    // Left to the server's own keep_alive from now on, as if a client had used it.
    if (auto ok = api.load(model, "", o.plan.settings.num_ctx); !ok) {
      m.unload_error = "kept, but the server's default keep_alive could not be set: " + ok.error().line();
    }
    return m;
  }
  guard->disarm();
  if (o.after_load == AfterLoad::hand_over) {
    return m;
  }
  unload_and_check(o, server, model, m);
  return m;
}

void unload_and_check(const ModelTestOptions& o, const FoundServer& server, const std::string& model,
                      LoadMeasurement& m) {
  auto endpoint = adapters::parse_endpoint(server.target->url, "--server");
  if (!endpoint) {
    m.unload_error = endpoint.error().line();
    return;
  }
  adapters::OllamaClient api(*endpoint, k_ollama_api_timeout);
  if (auto ok = api.unload(model); !ok) {
    m.unload_error = ok.error().line();
    return;
  }
  // Ollama answers the unload at once and stops the runner after; wait until /api/ps no longer lists it.
  const auto deadline = Clock::now() + o.unload_wait;
  for (;;) {
    auto ps = api.ps();
    if (ps && listed(*ps, model) == nullptr) {
      break;
    }
    if (Clock::now() >= deadline) {
      m.unload_error = ps ? fmt::format("/api/ps still lists it {} s after the unload",
                                        std::chrono::duration_cast<std::chrono::seconds>(o.unload_wait).count())
                          : ps.error().line();
      return;  // still loaded (or unknown): whether memory came back cannot be said
    }
    std::this_thread::sleep_for(k_unload_poll);
  }
  m.after = server.watch.now();
  m.unload = check_unload(m.before.anon, m.loaded.anon, m.after.anon);
}

std::optional<std::vector<OllamaModel>> ps_now(const FoundServer& server) {
  auto endpoint = adapters::parse_endpoint(server.target->url, "--server");
  if (!endpoint) {
    return std::nullopt;
  }
  adapters::OllamaClient api(*endpoint, k_ollama_api_timeout);
  auto ps = api.ps();
  return ps ? std::optional<std::vector<OllamaModel>>(std::move(*ps)) : std::nullopt;
}

// Why --load must not load this model now (nullopt: it may). Room is checked against what the host and the
// server's container have now, not when the plan was read: an earlier model may have changed it.
std::optional<std::string> refuse_load(const ModelTestOptions& o, const FoundServer& server, ModelTestRun& run,
                                       const std::vector<OllamaModel>& loaded_before,
                                       const std::optional<std::string>& stop_loading) {
  if (stop_loading) {
    return "not loaded: " + *stop_loading;
  }
  const auto& plan = *run.plan;
  const auto model_ram = plan.placement.ram_resident + plan.placement.ram_page_cache;
  if (!run.ram_fits || !run.vram_fits) {
    run.not_loaded_for_room = true;
    return "not loaded: the plan says it does not fit this host now (the host would swap)";
  }
  if (const auto meminfo = probes::read_meminfo(o.plan.root); meminfo && meminfo->mem_available) {
    const auto available = *meminfo->mem_available;
    const auto usable = available > o.plan.reserve ? available - o.plan.reserve : 0;
    if (model_ram > usable) {
      run.not_loaded_for_room = true;
      return fmt::format(
          "not loaded: MemAvailable is {} now; less the reserve of {} that leaves {}, and the model "
          "needs {}",
          format_bytes(available), format_bytes(o.plan.reserve), format_bytes(usable), format_bytes(model_ram));
    }
  }
  if (const auto& limit = server.target->memory_limit) {
    const auto memory = server.watch.read();
    const auto used = memory && memory->usage ? *memory->usage : 0;
    const auto room = *limit > used ? *limit - used : 0;
    if (memory && memory->usage && model_ram > room) {
      run.not_loaded_for_room = true;
      return fmt::format(
          "not loaded: {}'s memory limit of {} leaves {} beside the {} it uses, and the model needs "
          "{}: the kernel would kill processes in it (`memwarden plan` gives the limit it needs: {})",
          server.target->name, format_bytes(*limit), format_bytes(room), format_bytes(used), format_bytes(model_ram),
          format_bytes(plan.container_limit));
    }
  }
  if (listed(loaded_before, run.model) != nullptr) {
    return "not loaded: it is loaded on the server already, perhaps for someone else: memwarden neither loads nor "
           "unloads it; unload it first to measure a load";
  }
  return std::nullopt;
}

Expected<ModelTestResult, Error> run_model_test(const ModelTestOptions& options) {
  ModelTestResult result;
  auto found = find_server(options);
  if (!found) {
    return unexpected(found.error());
  }
  result.server = found->target;
  result.notes = found->notes;
  auto plan_options = options.plan;
  // The plan finds a model as `memwarden plan` does: a file, the Ollama stores (the exact tensor sizes), the
  // inference servers running, the catalog. A server it would not find by itself (a URL, a container without an
  // Ollama image or label) is asked first.
  if (found->target && !found->discovered && plan_options.ollama_url.empty()) {
    plan_options.ollama_url = found->target->url;
  }
  result.plan = collect_plan(plan_options);
  std::vector<OllamaModel> loaded_before;
  if (options.load == ModelLoad::load && found->target) {
    if (auto ps = ps_now(*found)) {
      loaded_before = std::move(*ps);
    }
  }
  std::optional<std::string> stop_loading;
  for (const auto& name : options.plan.models) {
    ModelTestRun run;
    run.model = name;
    for (std::size_t i = 0; i < result.plan.models.size() && i < result.plan.plans.size(); ++i) {
      if (result.plan.models[i].name == name) {
        run.plan = result.plan.plans[i];
      }
    }
    if (!run.plan) {
      const auto it = std::find_if(result.plan.errors.begin(), result.plan.errors.end(),
                                   [&](const Error& e) { return e.source == name; });
      run.plan_error = it != result.plan.errors.end() ? *it : Error{name, "could not be found or sized"};
      result.runs.push_back(std::move(run));
      continue;
    }
    fill_fit(run, result.plan.host);
    if (options.load == ModelLoad::load && !stopped(options)) {
      if (auto why = refuse_load(options, *found, run, loaded_before, stop_loading)) {
        run.not_loaded = std::move(*why);
      } else {
        run.load = measure_load(options, *found, *run.plan, name, loaded_before);
        if (!run.load->error) {
          if (auto not_stored = store(options, *found->target, run)) {
            result.notes.push_back(fmt::format("{}: not stored in the history: {}", name, *not_stored));
            run.load->stored = std::move(not_stored);
          }
        }
        // A server that did not give the memory back (or could not be asked to) changes what the host has:
        // the next models are not loaded on top of it.
        if (run.load->unload_error || run.load->unload.verdict == UnloadVerdict::kept) {
          stop_loading = "the last model's memory did not come back";
        }
        if (options.after_load == AfterLoad::keep) {
          if (auto ps = ps_now(*found)) {
            loaded_before = std::move(*ps);
          }
        }
      }
    }
    result.runs.push_back(std::move(run));
  }
  result.interrupted = stopped(options);
  return result;
}

ModelTestExit model_test_exit(const ModelTestResult& result) {
  if (result.interrupted) {
    return ModelTestExit::interrupted;
  }
  int code = 0;
  for (const auto& run : result.runs) {
    if (run.plan_error) {
      code = std::max(code, static_cast<int>(ModelTestExit::source_missing));
      continue;
    }
    if (!run.ram_fits || !run.vram_fits || !run.disk_fits) {
      code = std::max(code, static_cast<int>(ModelTestExit::not_possible));
    }
    if (run.not_loaded) {
      code = std::max(code,
                      static_cast<int>(run.not_loaded_for_room ? ModelTestExit::not_possible : ModelTestExit::failed));
    }
    if (!run.load) {
      continue;
    }
    const auto& m = *run.load;
    if (m.error) {
      const auto why = m.lack_of_memory  ? ModelTestExit::not_possible
                       : m.model_missing ? ModelTestExit::source_missing
                                         : ModelTestExit::failed;
      code = std::max(code, static_cast<int>(why));
      continue;
    }
    const bool off = std::any_of(m.checks.begin(), m.checks.end(), [](const EstimateCheck& c) {
      return c.role == CheckRole::decides && c.measured && !c.within;
    });
    if (off || m.ps_error || m.unload_error || m.unload.verdict == UnloadVerdict::kept) {
      code = std::max(code, static_cast<int>(ModelTestExit::failed));
    }
  }
  return static_cast<ModelTestExit>(code);
}

Result<std::vector<adapters::EstimateRecord>> estimate_history(const std::string& state_dir, std::size_t limit) {
  std::error_code ec;
  if (!std::filesystem::exists(adapters::StateDir(state_dir).samples(), ec)) {
    return std::vector<adapters::EstimateRecord>{};  // nothing stored yet: read, do not create
  }
  auto db = adapters::SampleStore::open(state_dir);
  if (!db) {
    return unexpected(db.error());
  }
  return db->estimates(limit);
}

}  // namespace mw::engine
