#include "engine/plan.hpp"

#include "engine/inventory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>

#include "adapters/docker.hpp"
#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "core/catalog.hpp"
#include "core/discovery.hpp"
#include "core/ollama_name.hpp"
#include "core/text.hpp"
#include "probes/gguf_file.hpp"
#include "probes/gpu.hpp"
#include "probes/host_memory.hpp"
#include "probes/ollama_store.hpp"

namespace mw::engine {

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
  // A vision tower inside the model's file is placed as a projector is.
  m.extra_weights += m.shape.vision_bytes;
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
    auto m = from_gguf_file(path, arg, "GGUF file " + path.string());
    if (!m) {
      return m;
    }
    auto projector = m_options.mmproj.empty() ? projector_beside(path) : std::optional<fs::path>(m_options.mmproj);
    if (projector) {
      if (auto error = add_projector(*m, *projector)) {
        return unexpected(std::move(*error));
      }
    }
    return m;
  }

  // llama.cpp's vision models come as the model and an mmproj file in the same directory: the one file named
  // mmproj*.gguf there (none, or several, and nothing is guessed). At most 4096 entries are looked at.
  static std::optional<fs::path> projector_beside(const fs::path& model) {
    std::error_code ec;
    fs::directory_iterator it(model.parent_path().empty() ? fs::path(".") : model.parent_path(), ec);
    std::optional<fs::path> found;
    int seen = 0;
    for (; !ec && it != fs::directory_iterator() && seen < 4096; it.increment(ec), ++seen) {
      const auto name = ascii_lower(it->path().filename().string());
      if (name.starts_with("mmproj") && name.ends_with(".gguf") && it->path() != model) {
        if (found) {
          return std::nullopt;
        }
        found = it->path();
      }
    }
    return found;
  }

  // nullopt when added, else why not.
  static std::optional<Error> add_projector(PlanModel& m, const fs::path& path) {
    auto file = probes::read_gguf(path);
    if (!file) {
      return file.error();
    }
    const auto arch = file->architecture().value_or("");
    if (arch != "clip" && arch != "mmproj") {
      return Error{path.string(), fmt::format("not a vision projector (general.architecture is '{}', not clip)", arch)};
    }
    std::uint64_t bytes = 0;
    for (const auto& t : file->tensors) {
      bytes += t.bytes;
    }
    m.extra_weights += bytes;
    m.file_bytes += file->file_size.value_or(bytes);
    m.source += fmt::format(" + projector {} ({})", path.filename().string(), format_bytes(bytes));
    return std::nullopt;
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
    std::uint64_t blobs = found->projector ? found->projector->size : 0;
    for (const auto& adapter : found->adapters) {
      blobs += adapter.size;
    }
    m->extra_weights += blobs;
    m->file_bytes += blobs;
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
    if (const auto sizing = architecture_sizing(show->architecture); !sizing.known) {
      return fail(arg, fmt::format("{} /api/show: {}; give the GGUF file instead, whose weights memwarden can read",
                                   url, sizing.note));
    }
    const auto dims = dims_from_show(*show);
    if (!dims) {
      return fail(arg, fmt::format("{} /api/show gives no complete {} dimensions (block_count, embedding_length, "
                                   "feed_forward_length, head_count, vocab_size): give the GGUF file instead",
                                   url, show->architecture.empty() ? "model" : show->architecture));
    }
    const auto quant = known_quantization(show->quantization_level);
    if (!quant) {
      return fail(arg, fmt::format("{} quantization '{}' is not a llama.cpp file type memwarden can lay out: give "
                                   "the GGUF file instead",
                                   url, show->quantization_level));
    }
    auto shape = quantized_shape(*dims, *quant, arg);
    if (!shape) {
      return unexpected(shape.error());
    }
    PlanModel m;
    m.name = arg;
    m.source = fmt::format("server {} (/api/show; tensors laid out from its dimensions)", url);
    m.basis = FigureBasis::server;
    m.shape = std::move(*shape);
    m.dims = dims;
    m.quantization = *quant;
    m.file_bytes = m.shape.weight_bytes();
    m.downloaded = true;
    if (auto tags = client.tags()) {
      const auto wanted = parse_ollama_model_name(arg);
      for (const auto& t : *tags) {
        const auto listed = parse_ollama_model_name(t.name);
        if (wanted && listed && wanted->equals_ignoring_case(*listed) && t.size > 0) {
          // The download. Not used to scale the layout: /api/tags counts every layer of the model (a vision
          // projector, the template) in its size, so it is not the model file's.
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
    auto shape = catalog_shape(*match, arg);
    if (!shape) {
      return unexpected(shape.error());
    }
    PlanModel m;
    m.name = arg;
    m.source = match->model->name == arg ? std::string("built-in catalog")
                                         : fmt::format("built-in catalog ({})", match->model->name);
    m.basis = FigureBasis::catalog;
    m.published_size = match->published.has_value();
    m.dims = match->model->dims;
    m.quantization = match->quantization;
    m.extra_weights = match->model->projector_bytes;
    m.file_bytes = match->published.value_or(shape->weight_bytes() + m.extra_weights);
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
  InventoryOptions io;
  io.root = o.root;
  io.docker_host = o.docker_host;
  io.timeout = o.docker_timeout;
  const auto inv = read_inventory(io);
  if (!inv.docker.reachable) {
    r.host_notes.push_back(fmt::format("Docker: not reachable ({}); containers' stores and settings are not used",
                                       inv.docker.error ? inv.docker.error->line() : std::string("unknown")));
    return;
  }
  for (const auto& p : inv.problems) {
    r.host_notes.push_back("Docker: " + p.line());
  }
  for (const auto& container : inv.containers) {
    const auto* meta = &container;
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

const ModelPlan* plan_named(const PlanResult& result, std::string_view name) {
  const auto found =
      std::find_if(result.plans.begin(), result.plans.end(), [&](const ModelPlan& p) { return p.name == name; });
  return found == result.plans.end() ? nullptr : &*found;
}

std::optional<std::string> error_naming(const PlanResult& result, std::string_view name) {
  for (const auto& e : result.errors) {
    auto line = e.line();
    if (line.find(name) != std::string::npos) {
      return line;
    }
  }
  return std::nullopt;
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

}  // namespace mw::engine
