#include "cli/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "adapters/docker.hpp"
#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "core/catalog.hpp"
#include "core/discovery.hpp"
#include "core/ollama_name.hpp"
#include "probes/gguf_file.hpp"
#include "probes/gpu.hpp"
#include "probes/host_memory.hpp"
#include "probes/ollama_store.hpp"

namespace mw::cli {

namespace fs = std::filesystem;

std::optional<ModelSource> parse_model_source(std::string_view text) {
  if (text == "auto") {
    return ModelSource::automatic;
  }
  if (text == "file") {
    return ModelSource::file;
  }
  if (text == "store") {
    return ModelSource::store;
  }
  if (text == "server") {
    return ModelSource::server;
  }
  if (text == "catalog") {
    return ModelSource::catalog;
  }
  return std::nullopt;
}

namespace {

std::uint64_t weights_of(const ModelShape& m) {
  return std::accumulate(m.block_bytes.begin(), m.block_bytes.end(), m.token_embd_bytes + m.output_bytes);
}

// ---------------------------------------------------------------- model sources

Result<PlanModel> from_gguf_file(const fs::path& path, std::string name, std::string source) {
  auto file = probes::read_gguf(path);
  if (!file) {
    return unexpected(file.error());
  }
  auto shape = shape_from_gguf(*file, path.string());
  if (!shape) {
    return unexpected(shape.error());
  }
  PlanModel m;
  m.name = std::move(name);
  m.source = std::move(source);
  m.shape = std::move(*shape);
  m.dims = dims_from_gguf(*file);
  if (const auto type = file->get_u64("general.file_type")) {
    if (const auto type_name = file_type_name(*type)) {
      m.quantization = known_quantization(*type_name).value_or(std::string(*type_name));
    }
  }
  m.file_bytes = file->file_size.value_or(0);
  m.downloaded = true;
  return m;
}

bool looks_like_a_path(std::string_view arg) {
  return arg.ends_with(".gguf") || arg.starts_with("/") || arg.starts_with("./") || arg.starts_with("../");
}

probes::OllamaStoreHints store_hints(const PlanOptions& o) {
  probes::OllamaStoreHints hints;
  if (!o.models_dir.empty()) {
    hints.ollama_models = fs::path(o.models_dir);
  } else if (!o.ollama_models.empty()) {
    hints.ollama_models = fs::path(o.ollama_models);
  }
  if (!o.home.empty()) {
    hints.home = fs::path(o.home);
  }
  return hints;
}

class Finder {
 public:
  // `servers`: Ollama containers found through Docker; their stores are searched after --models-dir and
  // $OLLAMA_MODELS, and their APIs are asked before the catalog.
  Finder(const PlanOptions& options, const std::vector<PlanServer>& servers)
      : m_options(options),
        m_servers(servers),
        m_where(probes::find_ollama_model_dirs(options.root, store_hints(options))) {
    auto& dirs = m_where.dirs;
    std::size_t at = store_hints(options).ollama_models && !dirs.empty() ? 1 : 0;
    // Each container's store goes right after --models-dir / $OLLAMA_MODELS, named after the container,
    // whether or not the volume scan listed it already.
    const auto normal = [](const fs::path& p) {
      auto n = p.lexically_normal().string();
      while (n.size() > 1 && n.ends_with('/')) {
        n.pop_back();
      }
      return n;
    };
    for (const auto& server : servers) {
      if (!server.store) {
        continue;
      }
      const auto path = normal(fs::path(*server.store));
      probes::OllamaModelsDir dir{fs::path(path), "container " + server.name};
      const auto found = static_cast<std::size_t>(
          std::find_if(dirs.begin(), dirs.end(), [&](const auto& d) { return normal(d.path) == path; }) - dirs.begin());
      if (found < at) {
        continue;  // the command line, $OLLAMA_MODELS or another container named it already
      }
      if (found < dirs.size()) {
        dir.origin = dirs[found].origin + ", container " + server.name;
        dirs.erase(dirs.begin() + static_cast<std::ptrdiff_t>(found));
      }
      dirs.insert(dirs.begin() + static_cast<std::ptrdiff_t>(at), std::move(dir));
      ++at;
    }
  }

  [[nodiscard]] const probes::OllamaStoreLocations& where() const { return m_where; }
  [[nodiscard]] const std::optional<fs::path>& store_used() const { return m_store_used; }

  Result<PlanModel> find(const std::string& arg) {
    switch (m_options.source) {
      case ModelSource::file:
        return file(arg);
      case ModelSource::store:
        return store(arg);
      case ModelSource::server:
        return server(arg, m_options.ollama_url);
      case ModelSource::catalog:
        return catalog(arg);
      case ModelSource::automatic:
        break;
    }
    if (looks_like_a_path(arg) || fs::is_regular_file(fs::path(arg))) {
      return file(arg);
    }
    if (!m_options.ollama_url.empty()) {
      return server(arg, m_options.ollama_url);
    }
    auto stored = store(arg);
    if (stored || stored.error().code != ENOENT) {
      return stored;
    }
    // Not in a store memwarden can read (a volume it may not see): a running Ollama container may have it.
    for (const auto& s : m_servers) {
      if (s.api_url) {
        if (auto asked = server(arg, *s.api_url)) {
          asked->source += fmt::format(" (container {})", s.name);
          return asked;
        }
      }
    }
    auto known = catalog(arg);
    if (known) {
      known->source += " (not in the Ollama store)";
      return known;
    }
    return fail(arg, fmt::format("{}; {}", stored.error().message, known.error().message), ENOENT);
  }

 private:
  Result<PlanModel> file(const std::string& arg) {
    const fs::path path(arg);
    return from_gguf_file(path, arg, "GGUF file " + path.string());
  }

  Result<PlanModel> store(const std::string& arg) {
    auto name = parse_ollama_model_name(arg);
    if (!name) {
      return unexpected(name.error());
    }
    auto found = probes::resolve_ollama_model(m_options.root, m_where, *name);
    if (!found) {
      return unexpected(found.error());
    }
    auto m =
        from_gguf_file(found->model.path, arg,
                       fmt::format("Ollama store {} ({})", found->models_dir.path.string(), found->models_dir.origin));
    if (!m) {
      return unexpected(m.error());
    }
    if (found->projector) {
      m->extra_weights += found->projector->size;
    }
    for (const auto& adapter : found->adapters) {
      m->extra_weights += adapter.size;
    }
    m->file_bytes += m->extra_weights;
    if (!m_store_used) {
      m_store_used = found->models_dir.path;
    }
    return m;
  }

  Result<PlanModel> server(const std::string& arg, const std::string& url) {
    auto endpoint = adapters::parse_endpoint(url, "--ollama");
    if (!endpoint) {
      return unexpected(endpoint.error());
    }
    adapters::OllamaClient client(*endpoint, m_options.api_timeout);
    auto show = client.show(arg);
    if (!show) {
      return fail(arg, show.error().line(), show.error().code);
    }
    const auto dims = dims_from_show(*show);
    if (!dims) {
      return fail(arg, fmt::format("{} /api/show gives no complete {} dimensions (block_count, embedding_length, "
                                   "feed_forward_length, head_count, vocab_size): give the GGUF file instead",
                                   url, show->architecture.empty() ? "model" : show->architecture));
    }
    const auto quant = known_quantization(show->quantization_level);
    if (!quant) {
      return fail(arg, fmt::format("{} quantization '{}' cannot be laid out from /api/show (memwarden lays out "
                                   "F16, Q8_0, Q4_K_M and Q4_0): give the GGUF file instead",
                                   url, show->quantization_level));
    }
    auto shape = quantized_shape(*dims, *quant, arg);
    if (!shape) {
      return unexpected(shape.error());
    }
    PlanModel m;
    m.name = arg;
    m.source = fmt::format("server {} (/api/show; tensors laid out from its dimensions)", url);
    m.shape = std::move(*shape);
    m.dims = dims;
    m.quantization = *quant;
    m.file_bytes = weights_of(m.shape);
    m.downloaded = true;
    if (auto tags = client.tags()) {
      const auto wanted = parse_ollama_model_name(arg);
      for (const auto& t : *tags) {
        const auto listed = parse_ollama_model_name(t.name);
        if (wanted && listed && wanted->equals_ignoring_case(*listed) && t.size > 0) {
          m.file_bytes = t.size;
        }
      }
    }
    return m;
  }

  static Result<PlanModel> catalog(const std::string& arg) {
    auto match = catalog_find(arg);
    if (!match) {
      return unexpected(match.error());
    }
    auto shape = quantized_shape(match->model->dims, match->quantization, arg);
    if (!shape) {
      return unexpected(shape.error());
    }
    PlanModel m;
    m.name = arg;
    m.source = "built-in catalog";
    m.dims = match->model->dims;
    m.quantization = match->quantization;
    m.file_bytes = weights_of(*shape);
    m.shape = std::move(*shape);
    m.downloaded = false;
    return m;
  }

  const PlanOptions& m_options;
  const std::vector<PlanServer>& m_servers;
  probes::OllamaStoreLocations m_where;
  std::optional<fs::path> m_store_used;
};

// ---------------------------------------------------------------- Ollama containers

void find_servers(const PlanOptions& o, PlanResult& r) {
  if (o.docker_host.empty()) {
    return;
  }
  auto endpoint = adapters::parse_endpoint(o.docker_host, "--docker-host");
  if (!endpoint) {
    r.host_notes.push_back("Docker: " + endpoint.error().line());
    return;
  }
  auto client = adapters::DockerClient::connect(*endpoint, o.docker_timeout);
  if (!client) {
    r.host_notes.push_back(
        fmt::format("Docker: not reachable ({}); containers' stores and settings are not used", client.error().line()));
    return;
  }
  auto list = client->list_containers(adapters::ListScope::running);
  if (!list) {
    r.host_notes.push_back("Docker: " + list.error().line());
    return;
  }
  for (const auto& c : *list) {
    auto meta = client->inspect(c.id);
    if (!meta) {
      r.host_notes.push_back("Docker: " + meta.error().line());
      continue;
    }
    if (!is_inference_server(*meta)) {
      continue;
    }
    PlanServer server;
    server.name = meta->name;
    server.memory_limit = meta->memory_limit;
    server.settings = server_settings_from_env(meta->server_env, meta->name);
    // A relative OLLAMA_MODELS is taken from the container's root (its usual working directory).
    auto inside = server.settings.models_dir.value_or("/root/.ollama/models");
    if (!inside.starts_with('/')) {
      inside.insert(0, "/");
    }
    server.store = host_path_through_mounts(meta->mounts, inside);
    if (auto api = ollama_api_address(*meta)) {
      server.api_url = api->url;
    }
    r.servers.push_back(std::move(server));
  }
}

// The command line's settings, then the one Ollama container's, then Ollama's defaults.
PlanSettings resolve_settings(const PlanOptions& o, PlanResult& r) {
  auto s = o.settings;
  const ServerSettings* from = r.servers.size() == 1 ? &r.servers.front().settings : nullptr;
  std::vector<std::string> used;
  if (!s.num_ctx && from != nullptr && from->num_ctx) {
    s.num_ctx = from->num_ctx;
    used.push_back(fmt::format("OLLAMA_CONTEXT_LENGTH={}", *from->num_ctx));
  }
  s.parallel = o.parallel.value_or(1);
  if (!o.parallel && from != nullptr && from->parallel) {
    s.parallel = *from->parallel;
    used.push_back(fmt::format("OLLAMA_NUM_PARALLEL={}", *from->parallel));
  }
  s.kv_type = o.kv_type.value_or(KvType::f16);
  if (!o.kv_type && from != nullptr && from->kv_type) {
    s.kv_type = *from->kv_type;
    used.push_back(fmt::format("OLLAMA_KV_CACHE_TYPE={}", to_string(*from->kv_type)));
  }
  if (!used.empty()) {
    std::string list;
    for (const auto& u : used) {
      list += (list.empty() ? "" : ", ") + u;
    }
    r.host_notes.push_back(fmt::format("settings from container {}: {}", r.servers.front().name, list));
  }
  if (r.servers.size() > 1) {
    r.host_notes.push_back(
        fmt::format("{} Ollama containers: the plan uses Ollama's defaults for what the command "
                    "line does not set (--ctx, --parallel, --kv-type)",
                    r.servers.size()));
  }
  for (const auto& server : r.servers) {
    for (const auto& n : server.settings.notes) {
      r.host_notes.push_back(n);
    }
  }
  return s;
}

// ---------------------------------------------------------------- the host

void read_host(const PlanOptions& o, PlanResult& r) {
  auto& h = r.host;
  h.reserve = o.reserve;
  if (o.ram) {
    h.ram_total = *o.ram;
    h.ram_available = *o.ram;
    r.host_notes.push_back(fmt::format("RAM: hypothetical {} (--ram), all of it available", format_bytes(*o.ram)));
  } else if (auto info = probes::read_meminfo(o.root)) {
    if (info->mem_total && info->mem_available) {
      h.ram_total = info->mem_total;
      h.ram_available = *info->mem_available;
    } else {
      // Without both figures there is nothing to plan against: say so rather than plan for 0 bytes.
      r.errors.push_back(Error{o.root.proc("meminfo").string(),
                               "no MemTotal or MemAvailable (Linux before 3.14?): give the RAM with --ram"});
    }
  } else {
    r.errors.push_back(info.error());
  }

  if (h.ram_total && h.ram_usable() == 0) {
    r.host_notes.push_back(fmt::format("the reserve ({}) takes all the available RAM ({}): nothing is left for models",
                                       format_bytes(h.reserve), format_bytes(h.ram_available)));
  }
  if (o.vram) {
    if (*o.vram > 0) {
      h.gpus.push_back({"hypothetical GPU", *o.vram, *o.vram});
      r.host_notes.push_back(fmt::format("GPU: hypothetical {} (--vram), all of it free", format_bytes(*o.vram)));
    } else {
      r.host_notes.push_back("GPU: none (--vram 0)");
    }
    return;
  }
  probes::NvmlOptions nvml;
  nvml.library = o.nvml_library;
  const auto report = probes::read_gpus(o.root, nvml);
  if (report.availability != GpuAvailability::available) {
    r.host_notes.push_back(fmt::format("GPU: none found ({}); give --vram SIZE to plan for one", report.message));
    return;
  }
  for (const auto& g : report.gpus) {
    if (!g.memory_total || !g.memory_free) {
      r.host_notes.push_back(fmt::format("GPU {} {}: NVML gave no memory figures, so it is left out", g.index, g.name));
      continue;
    }
    h.gpus.push_back({fmt::format("GPU {} {}", g.index, g.name), *g.memory_total, *g.memory_free});
  }
  if (h.gpus.size() > 1) {
    r.host_notes.push_back(
        "several GPUs: each model is placed on the one with the most free memory (spreading one model across "
        "GPUs is not modelled)");
  }
}

void read_disk(const PlanOptions& o, const Finder& finder, PlanResult& r) {
  std::optional<fs::path> dir = finder.store_used();
  if (!dir) {
    for (const auto& d : finder.where().dirs) {
      std::error_code ec;
      if (fs::is_directory(o.root.root() / d.path.relative_path(), ec)) {
        dir = d.path;
        break;
      }
    }
  }
  if (!dir && !finder.where().dirs.empty()) {
    dir = finder.where().dirs.front().path;
  }
  if (!dir) {
    return;
  }
  if (auto space = probes::read_disk_space(o.root, *dir)) {
    r.host.disk_available = space->available;
    r.disk_path = space->measured.string();
  } else {
    r.host_notes.push_back("disk: " + space.error().line());
  }
}

// ---------------------------------------------------------------- text

std::string processor(const Placement& p) {
  // `ollama ps` (cmd/cmd.go): 100% CPU, 100% GPU, or round(cpu share)%/rest% CPU/GPU.
  if (p.vram == 0) {
    return "100% CPU";
  }
  const auto gpu = p.gpu_fraction();
  if (gpu >= 1.0) {
    return "100% GPU";
  }
  const auto cpu = static_cast<int>(std::lround((1.0 - gpu) * 100));
  return fmt::format("{}%/{}% CPU/GPU", cpu, 100 - cpu);
}

std::string verdict_line(FitVerdict v, const Placement& p) {
  switch (v) {
    case FitVerdict::gpu:
      return fmt::format("fits on the GPU: {}/{} layers (100% GPU)", p.layers_on_gpu, p.layers_total);
    case FitVerdict::split:
      return fmt::format("split: {}/{} layers on the GPU ({})", p.layers_on_gpu, p.layers_total, processor(p));
    case FitVerdict::cpu:
      return fmt::format("CPU only: 0/{} layers on the GPU", p.layers_total);
    case FitVerdict::no_fit:
      return p.layers_on_gpu > 0
                 ? fmt::format("does not fit: the RAM side is too large even with {}/{} layers on the GPU",
                               p.layers_on_gpu, p.layers_total)
                 : std::string("does not fit in RAM");
  }
  return "?";
}

std::string docker_memory(std::uint64_t bytes) {
  return fmt::format("{}m", bytes >> 20);
}

void render_host(const PlanResult& r, std::string& out) {
  const auto& h = r.host;
  out += "Host\n";
  if (h.ram_total) {
    out += fmt::format("  RAM    {} total, {} available, {} reserved for other services: {} for models\n",
                       format_bytes(*h.ram_total), format_bytes(h.ram_available), format_bytes(h.reserve),
                       format_bytes(h.ram_usable()));
  } else {
    out += "  RAM    unknown\n";
  }
  for (const auto& g : h.gpus) {
    out += fmt::format("  {}: {} total, {} free\n", g.name, format_bytes(g.total), format_bytes(g.free));
  }
  if (h.disk_available && r.disk_path) {
    out += fmt::format("  disk   {} free at {}\n", format_bytes(*h.disk_available), *r.disk_path);
  }
  for (const auto& s : r.servers) {
    out += fmt::format("  Ollama container {}: memory limit {}, store {}\n", s.name,
                       s.memory_limit ? format_bytes(*s.memory_limit) : std::string("none"),
                       s.store ? *s.store : std::string("not on a volume or bind mount"));
  }
  for (const auto& n : r.host_notes) {
    out += "  - " + n + "\n";
  }
}

void render_model(const ModelPlan& p, const PlanModel& m, const PlanResult& r, std::string& out) {
  const auto& host = r.host;
  const auto& pl = p.placement;
  out += fmt::format("\n{}\n", p.name);
  out += fmt::format("  from       {}\n", p.source);
  out += fmt::format("  settings   {}context {} x {} slot{}, {} KV cache{}\n",
                     p.quantization.empty() ? "" : p.quantization + ", ", p.options.num_ctx, p.options.parallel,
                     p.options.parallel == 1 ? "" : "s", to_string(p.options.kv_type),
                     p.options.flash_attention ? ", flash attention" : "");
  out += fmt::format("  verdict    {}\n", verdict_line(p.verdict, pl));
  out += fmt::format("  weights    {}, KV cache {}, compute graph {}\n", format_bytes(pl.weights), format_bytes(pl.kv),
                     format_bytes(pl.full_offload() ? pl.graph.full : pl.graph.partial));
  if (pl.vram > 0) {
    const auto* gpu = host.best_gpu();
    out += fmt::format("  VRAM       {}{}\n", format_bytes(pl.vram),
                       gpu == nullptr ? std::string() : fmt::format(" of {} free", format_bytes(gpu->free)));
  }
  out += fmt::format("  RAM        {}: {} mapped weights (page cache), {} resident, {} runtime\n",
                     format_bytes(p.ram_needed), format_bytes(pl.ram_page_cache), format_bytes(pl.ram_resident),
                     format_bytes(p.ram_needed - pl.ram_page_cache - pl.ram_resident));
  if (p.ram_short > 0) {
    out += fmt::format("             {} more RAM than the {} models may use\n", format_bytes(p.ram_short),
                       format_bytes(host.ram_usable()));
  }
  if (p.disk_needed > 0) {
    out += fmt::format("  disk       {} ({:.1f} GB, as `ollama list` counts) to download{}\n",
                       format_bytes(p.disk_needed), static_cast<double>(p.disk_needed) / 1e9,
                       host.disk_available ? fmt::format(" ({} free)", format_bytes(*host.disk_available)) : "");
  } else {
    out += fmt::format("  disk       {} on disk already\n", format_bytes(m.file_bytes));
  }
  if (p.verdict != FitVerdict::no_fit) {
    out += fmt::format("  container  memory limit {} (docker run --memory {}; the RAM need + headroom)\n",
                       format_bytes(p.container_limit), docker_memory(p.container_limit));
    if (r.servers.size() == 1) {
      const auto& s = r.servers.front();
      out += fmt::format("             {} has {} now\n", s.name,
                         s.memory_limit ? "a limit of " + format_bytes(*s.memory_limit) : std::string("no limit"));
    }
  }
  if (p.vram_full_offload) {
    const auto* gpu = host.best_gpu();
    const auto free = gpu == nullptr ? 0 : gpu->free;
    out += fmt::format("  all layers on the GPU would take {} of VRAM{}\n", format_bytes(*p.vram_full_offload),
                       *p.vram_full_offload > free
                           ? fmt::format(" ({} more than {})", format_bytes(*p.vram_full_offload - free),
                                         gpu == nullptr ? std::string("this host has") : std::string("is free"))
                           : std::string());
  }
  if (!p.suggestions.empty()) {
    out += "  to fit better:\n";
    for (const auto& s : p.suggestions) {
      out += fmt::format("    {:<20} {}: {}\n", s.change, verdict_line(s.verdict, s.placement), s.why);
    }
  }
  for (const auto& n : p.notes) {
    out += "  - " + n + "\n";
  }
}

void render_together(const PlanResult& r, std::string& out) {
  const auto& t = *r.together;
  out += "\nTogether\n";
  for (std::size_t i = 0; i < t.verdicts.size() && i < r.models.size(); ++i) {
    out += fmt::format("  {:<24} {}\n", r.models[i].name, verdict_line(t.verdicts[i], t.placements[i]));
  }
  out += fmt::format("  RAM {}, VRAM {} loaded together\n", format_bytes(t.ram_needed), format_bytes(t.vram_needed));
  out += "  " + t.advice + "\n";
}

nlohmann::json placement_json(const Placement& p) {
  return {{"layers_on_gpu", p.layers_on_gpu},
          {"layers_total", p.layers_total},
          {"processor", processor(p)},
          {"vram_bytes", p.vram},
          {"ram_resident_bytes", p.ram_resident},
          {"ram_page_cache_bytes", p.ram_page_cache},
          {"weights_bytes", p.weights},
          {"kv_bytes", p.kv},
          {"graph_full_bytes", p.graph.full},
          {"graph_partial_bytes", p.graph.partial}};
}

template <class T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

PlanResult collect_plan(const PlanOptions& options) {
  PlanResult r;
  read_host(options, r);
  find_servers(options, r);
  const auto settings = resolve_settings(options, r);
  Finder finder(options, r.servers);
  std::vector<std::string> seen;
  for (const auto& arg : options.models) {
    if (std::find(seen.begin(), seen.end(), arg) != seen.end()) {
      continue;  // the same model twice is one model
    }
    seen.push_back(arg);
    auto model = finder.find(arg);
    if (!model) {
      r.errors.push_back(model.error());
      continue;
    }
    r.models.push_back(std::move(*model));
  }
  read_disk(options, finder, r);
  if (!options.models_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(options.root.root() / fs::path(options.models_dir).relative_path(), ec)) {
      r.host_notes.push_back(fmt::format("--models-dir {}: no such directory", options.models_dir));
    }
  }
  if (!r.host.ram_total && !options.ram) {
    return r;  // without RAM figures there is nothing to plan against; the error says why
  }
  std::vector<PlanModel> sized;
  for (auto& m : r.models) {
    auto p = plan_model(m, settings, r.host);
    if (!p) {
      r.errors.push_back(p.error());
      continue;
    }
    r.plans.push_back(std::move(*p));
    sized.push_back(std::move(m));
  }
  r.models = std::move(sized);
  if (r.plans.size() > 1) {
    r.together = plan_together(r.models, r.plans, settings, r.host);
  }
  return r;
}

PlanExit plan_exit_code(const PlanResult& r) {
  if (!r.errors.empty()) {
    return PlanExit::partial;
  }
  for (const auto& p : r.plans) {
    if (p.verdict == FitVerdict::no_fit) {
      return PlanExit::no_fit;
    }
  }
  return PlanExit::fits;
}

std::string render_plan(const PlanResult& r) {
  std::string out;
  render_host(r, out);
  for (std::size_t i = 0; i < r.plans.size(); ++i) {
    render_model(r.plans[i], r.models[i], r, out);
  }
  if (r.together) {
    render_together(r, out);
  }
  if (!r.errors.empty()) {
    out += "\n";
    for (const auto& e : r.errors) {
      out += "error: " + e.line() + "\n";
    }
  }
  return out;
}

nlohmann::json plan_to_json(const PlanResult& r) {
  const auto& h = r.host;
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : h.gpus) {
    gpus.push_back({{"name", g.name}, {"total_bytes", g.total}, {"free_bytes", g.free}});
  }
  nlohmann::json host = {{"ram_total_bytes", optional_json(h.ram_total)},
                         {"ram_available_bytes", h.ram_total ? nlohmann::json(h.ram_available) : nullptr},
                         {"reserve_bytes", h.reserve},
                         {"ram_usable_bytes", h.ram_total ? nlohmann::json(h.ram_usable()) : nullptr},
                         {"gpus", gpus},
                         {"disk_available_bytes", optional_json(h.disk_available)},
                         {"disk_path", optional_json(r.disk_path)},
                         {"notes", r.host_notes}};
  nlohmann::json models = nlohmann::json::array();
  for (std::size_t i = 0; i < r.plans.size(); ++i) {
    const auto& p = r.plans[i];
    nlohmann::json suggestions = nlohmann::json::array();
    for (const auto& s : p.suggestions) {
      suggestions.push_back({{"change", s.change},
                             {"why", s.why},
                             {"verdict", verdict_key(s.verdict)},
                             {"ram_needed_bytes", s.ram_needed},
                             {"placement", placement_json(s.placement)}});
    }
    models.push_back(
        {{"name", p.name},
         {"source", p.source},
         {"quantization", p.quantization.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.quantization)},
         {"num_ctx", p.options.num_ctx},
         {"parallel", p.options.parallel},
         {"kv_type", to_string(p.options.kv_type)},
         {"flash_attention", p.options.flash_attention},
         {"verdict", verdict_key(p.verdict)},
         {"placement", placement_json(p.placement)},
         {"ram_needed_bytes", p.ram_needed},
         {"ram_short_bytes", p.ram_short},
         {"file_bytes", r.models[i].file_bytes},
         {"disk_needed_bytes", p.disk_needed},
         {"disk_short", p.disk_short},
         {"container_limit_bytes",
          p.verdict == FitVerdict::no_fit ? nlohmann::json(nullptr) : nlohmann::json(p.container_limit)},
         {"vram_full_offload_bytes", optional_json(p.vram_full_offload)},
         {"suggestions", suggestions},
         {"notes", p.notes}});
  }
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : r.errors) {
    errors.push_back({{"source", e.source}, {"message", e.message}});
  }
  nlohmann::json together = nullptr;
  if (r.together) {
    const auto& t = *r.together;
    nlohmann::json verdicts = nlohmann::json::array();
    for (std::size_t i = 0; i < t.verdicts.size(); ++i) {
      verdicts.push_back({{"name", r.models[i].name},
                          {"verdict", verdict_key(t.verdicts[i])},
                          {"placement", placement_json(t.placements[i])}});
    }
    together = {{"fit", t.fit},
                {"models", verdicts},
                {"ram_needed_bytes", t.ram_needed},
                {"vram_needed_bytes", t.vram_needed},
                {"container_limit_together_bytes", optional_json(t.container_limit_together)},
                {"container_limit_exclusive_bytes", optional_json(t.container_limit_exclusive)},
                {"disk_needed_bytes", t.disk_needed},
                {"disk_short", t.disk_short},
                {"advice", t.advice}};
  }
  nlohmann::json servers = nlohmann::json::array();
  for (const auto& s : r.servers) {
    servers.push_back({{"name", s.name},
                       {"store", optional_json(s.store)},
                       {"memory_limit_bytes", optional_json(s.memory_limit)},
                       {"api_url", optional_json(s.api_url)},
                       {"num_ctx", optional_json(s.settings.num_ctx)},
                       {"parallel", optional_json(s.settings.parallel)},
                       {"kv_type", s.settings.kv_type ? nlohmann::json(to_string(*s.settings.kv_type)) : nullptr}});
  }
  return {{"host", host}, {"servers", servers}, {"models", models}, {"together", together}, {"errors", errors}};
}

}  // namespace mw::cli
