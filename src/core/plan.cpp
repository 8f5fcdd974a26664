#include "core/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "core/bytes.hpp"
#include "core/text.hpp"

namespace mw {

const GpuBudget* HostBudget::best_gpu() const {
  const auto it = std::max_element(gpus.begin(), gpus.end(),
                                   [](const GpuBudget& a, const GpuBudget& b) { return a.free < b.free; });
  return it == gpus.end() ? nullptr : &*it;
}

std::uint64_t HostBudget::vram_total() const {
  std::uint64_t total = 0;
  for (const auto& g : gpus) {
    total += g.total;
  }
  return total;
}

ServerSettings server_settings_from_env(const std::map<std::string, std::string>& env, std::string_view server) {
  ServerSettings out;
  // Ollama's envconfig.Var: spaces around the value and quotes around it are dropped.
  std::map<std::string, std::string> values;
  for (const auto& [key, raw] : env) {
    std::string_view v = raw;
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
      v.remove_prefix(1);
    }
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
      v.remove_suffix(1);
    }
    while (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
      v.remove_prefix(1);
    }
    while (!v.empty() && (v.back() == '"' || v.back() == '\'')) {
      v.remove_suffix(1);
    }
    if (!v.empty()) {
      values.emplace(key, std::string(v));
    }
  }
  const auto get = [&](const char* key) -> const std::string* {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  };
  const auto count = [&](const char* key, std::uint64_t max) -> std::optional<std::uint64_t> {
    const auto* text = get(key);
    if (text == nullptr) {
      return std::nullopt;
    }
    const auto n = parse_u64(*text);
    if (n && *n > 0 && *n <= max) {
      return n;
    }
    if (n && *n == 0) {
      return std::nullopt;  // 0 is Ollama's "automatic"
    }
    out.notes.push_back(fmt::format("{}: {}='{}' is not a count Ollama uses; ignored", server, key, *text));
    return std::nullopt;
  };
  out.num_ctx = count("OLLAMA_CONTEXT_LENGTH", 1ULL << 24);
  out.parallel = count("OLLAMA_NUM_PARALLEL", 256);
  if (const auto* kv = get("OLLAMA_KV_CACHE_TYPE")) {
    out.kv_type = parse_kv_type(ascii_lower(*kv));
    if (!out.kv_type) {
      out.notes.push_back(
          fmt::format("{}: OLLAMA_KV_CACHE_TYPE='{}' is not f16, q8_0 or q4_0; Ollama uses f16", server, *kv));
    }
  }
  if (const auto* fa = get("OLLAMA_FLASH_ATTENTION"); fa != nullptr && out.kv_type && *out.kv_type != KvType::f16 &&
                                                      (*fa == "0" || equals_ignoring_case(*fa, "false"))) {
    out.notes.push_back(
        fmt::format("{}: OLLAMA_KV_CACHE_TYPE={} without flash attention (OLLAMA_FLASH_ATTENTION={}): "
                    "Ollama uses f16",
                    server, to_string(*out.kv_type), *fa));
    out.kv_type = KvType::f16;
  }
  if (const auto* dir = get("OLLAMA_MODELS")) {
    out.models_dir = *dir;
  }
  return out;
}

std::uint64_t ollama_default_ctx(std::uint64_t vram_total) {
  constexpr std::uint64_t k_one_gib = 1ULL << 30;
  if (vram_total >= 47 * k_one_gib) {
    return 262144;
  }
  if (vram_total >= 23 * k_one_gib) {
    return 32768;
  }
  return 4096;
}

const char* to_string(FitVerdict v) {
  switch (v) {
    case FitVerdict::gpu:
      return "fits on GPU";
    case FitVerdict::split:
      return "split";
    case FitVerdict::cpu:
      return "CPU only";
    case FitVerdict::no_fit:
      return "does not fit";
  }
  return "?";
}

const char* verdict_key(FitVerdict v) {
  switch (v) {
    case FitVerdict::gpu:
      return "gpu";
    case FitVerdict::split:
      return "split";
    case FitVerdict::cpu:
      return "cpu";
    case FitVerdict::no_fit:
      return "no_fit";
  }
  return "?";
}

std::uint64_t container_limit_for(std::uint64_t ram_needed, std::uint64_t headroom_percent) {
  constexpr std::uint64_t k_step = 256ULL << 20;
  const auto with_headroom = ram_needed + ram_needed / 100 * headroom_percent;
  return (with_headroom + k_step - 1) / k_step * k_step;
}

namespace {

constexpr std::uint64_t k_ctx_step = 256;       // llama.cpp pads each slot's context to 256 cells
constexpr std::uint64_t k_smallest_ctx = 2048;  // smaller contexts are not offered as a fix

int rank(FitVerdict v) {
  switch (v) {
    case FitVerdict::no_fit:
      return 0;
    case FitVerdict::cpu:
      return 1;
    case FitVerdict::split:
      return 2;
    case FitVerdict::gpu:
      return 3;
  }
  return 0;
}

// One placement and what it means for the host.
struct Outcome {
  Placement placement;
  FitVerdict verdict = FitVerdict::no_fit;
  std::uint64_t ram_needed = 0;
};

// Places `shape` with `gpu_free` bytes of VRAM and `ram_free` of RAM. A projector goes to the GPU with
// the model when the model is on it (Ollama puts it there first), else it is mapped on the CPU side.
Result<Outcome> place(const ModelShape& shape, std::uint64_t extra, const EstimateOptions& o, const PlanSettings& s,
                      std::uint64_t gpu_free, std::uint64_t ram_free) {
  auto placed = place_model(shape, o, gpu_free > extra ? gpu_free - extra : 0);
  if (!placed) {
    return unexpected(placed.error());
  }
  Outcome out{std::move(*placed)};
  auto& p = out.placement;
  if (p.vram > 0) {
    p.vram += extra;
  } else if (o.loading == WeightLoading::mmap) {
    p.ram_page_cache += extra;
  } else {
    p.ram_resident += extra;
  }
  p.weights += extra;
  out.ram_needed = p.ram_resident + p.ram_page_cache + s.runtime_ram;
  if (out.ram_needed > ram_free) {
    out.verdict = FitVerdict::no_fit;
  } else if (p.full_offload()) {
    out.verdict = FitVerdict::gpu;
  } else if (p.vram > 0) {
    out.verdict = FitVerdict::split;  // some layers, or a mixture of experts' attention without any experts
  } else {
    out.verdict = FitVerdict::cpu;
  }
  return out;
}

std::uint64_t gpu_free_of(const HostBudget& host) {
  const auto* gpu = host.best_gpu();
  return gpu == nullptr ? 0 : gpu->free;
}

EstimateOptions options_for(KvType kv, std::uint64_t num_ctx, const PlanSettings& s, std::string_view arch) {
  EstimateOptions o;
  o.num_ctx = num_ctx;
  o.parallel = std::max<std::uint64_t>(s.parallel, 1);
  o.kv_type = kv;
  o.flash_attention = kv != KvType::f16 || flash_attention_by_default(arch);
  o.loading = s.loading;
  o.gpu_reserve = s.gpu_reserve;
  return o;
}

std::string gib(std::uint64_t bytes) {
  return format_bytes(bytes);
}

class Suggester {
 public:
  Suggester(const PlanModel& model, const PlanSettings& settings, const HostBudget& host, const ModelPlan& plan)
      : m_model(model), m_settings(settings), m_host(host), m_plan(plan) {}

  std::vector<Suggestion> run() {
    smaller_context();
    smaller_kv_cache();
    fewer_slots();
    other_quantization();
    return std::move(m_out);
  }

 private:
  [[nodiscard]] std::optional<Outcome> try_with(const ModelShape& shape, const EstimateOptions& o) const {
    auto out = place(shape, m_model.extra_weights, o, m_settings, gpu_free_of(m_host), m_host.ram_usable());
    return out ? std::optional<Outcome>(std::move(*out)) : std::nullopt;
  }
  [[nodiscard]] bool better(const Outcome& o) const { return rank(o.verdict) > rank(m_plan.verdict); }

  void add(std::string change, std::string why, const Outcome& o) {
    m_out.push_back({std::move(change), std::move(why), o.verdict, o.placement, o.ram_needed});
  }

  // The largest n in [lo, hi] whose outcome is as good as at(lo)'s, when that is better than now. Memory
  // only grows with n, so the verdict only worsens: a binary search finds the edge.
  template <class At>
  std::optional<std::pair<std::uint64_t, Outcome>> largest_better(std::uint64_t lo, std::uint64_t hi, At at) const {
    auto first = at(lo);
    if (!first || !better(*first)) {
      return std::nullopt;
    }
    const int target = rank(first->verdict);
    Outcome best = std::move(*first);
    while (lo < hi) {
      const auto mid = lo + (hi - lo + 1) / 2;
      if (auto o = at(mid); o && rank(o->verdict) >= target) {
        lo = mid;
        best = std::move(*o);
      } else {
        hi = mid - 1;
      }
    }
    return std::pair{lo, std::move(best)};
  }

  // The largest context (a multiple of 256, at least 2048) that gives a better verdict.
  void smaller_context() {
    const auto ctx = m_plan.options.num_ctx;
    if (ctx <= k_smallest_ctx) {
      return;
    }
    const auto found = largest_better(k_smallest_ctx / k_ctx_step, (ctx - 1) / k_ctx_step, [&](std::uint64_t steps) {
      auto o = m_plan.options;
      o.num_ctx = steps * k_ctx_step;
      return try_with(m_model.shape, o);
    });
    if (!found) {
      return;
    }
    const auto new_ctx = found->first * k_ctx_step;
    add(fmt::format("--ctx {}", new_ctx),
        fmt::format("a context of {} tokens instead of {}: KV cache {} instead of {}", new_ctx, ctx,
                    gib(found->second.placement.kv), gib(m_plan.placement.kv)),
        found->second);
  }

  void smaller_kv_cache() {
    for (const auto kv : {KvType::q8_0, KvType::q4_0}) {
      if (static_cast<int>(kv) <= static_cast<int>(m_plan.options.kv_type)) {
        continue;
      }
      auto o = m_plan.options;
      o.kv_type = kv;
      o.flash_attention = true;
      const auto out = try_with(m_model.shape, o);
      if (out && better(*out)) {
        add(fmt::format("--kv-type {}", to_string(kv)),
            fmt::format("a {} KV cache ({} instead of {}; Ollama needs OLLAMA_FLASH_ATTENTION=1 and "
                        "OLLAMA_KV_CACHE_TYPE={}, which applies to every model it serves)",
                        to_string(kv), gib(out->placement.kv), gib(m_plan.placement.kv), to_string(kv)),
            *out);
        return;  // q8_0 loses less quality than q4_0: offer the first that is enough
      }
    }
  }

  // The most slots (fewer than now) that give a better verdict.
  void fewer_slots() {
    if (m_plan.options.parallel <= 1) {
      return;
    }
    const auto found = largest_better(1, m_plan.options.parallel - 1, [&](std::uint64_t slots) {
      auto o = m_plan.options;
      o.parallel = slots;
      return try_with(m_model.shape, o);
    });
    if (!found) {
      return;
    }
    const auto slots = found->first;
    add(fmt::format("--parallel {}", slots),
        fmt::format("{} (OLLAMA_NUM_PARALLEL={}): KV cache {} instead of {}",
                    slots == 1 ? std::string("one request at a time") : fmt::format("{} requests at a time", slots),
                    slots, gib(found->second.placement.kv), gib(m_plan.placement.kv)),
        found->second);
  }

  // The largest quantization smaller than the model's that gives a better verdict.
  void other_quantization() {
    if (!m_model.dims) {
      return;
    }
    for (const auto& quant : catalog_quantizations()) {
      if (quant == m_model.quantization) {
        continue;
      }
      auto shape = quantized_shape(*m_model.dims, quant, m_model.name);
      if (!shape) {
        continue;
      }
      const auto out = try_with(*shape, m_plan.options);
      if (!out || out->placement.weights >= m_plan.placement.weights || !better(*out)) {
        continue;
      }
      add(fmt::format("quantization {}", quant),
          fmt::format("{} weights instead of {}{}", gib(out->placement.weights), gib(m_plan.placement.weights),
                      m_model.quantization.empty() ? std::string() : " (" + m_model.quantization + ")"),
          *out);
      return;
    }
  }

  const PlanModel& m_model;
  const PlanSettings& m_settings;
  const HostBudget& m_host;
  const ModelPlan& m_plan;
  std::vector<Suggestion> m_out;
};

}  // namespace

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    s += (s.empty() ? "" : ", ") + n;
  }
  return s;
}

// The container limit for a RAM need, cut to what the host has for models (never below the need).
std::uint64_t capped_limit(std::uint64_t ram_needed, const PlanSettings& s, const HostBudget& host) {
  constexpr std::uint64_t k_step = 256ULL << 20;
  const auto limit = container_limit_for(ram_needed, s.headroom_percent);
  if (limit <= host.ram_usable() || ram_needed > host.ram_usable()) {
    return limit;
  }
  return std::max(container_limit_for(ram_needed, 0), host.ram_usable() / k_step * k_step);
}

// What is particular about the model's shape, said once in the plan's notes.
void shape_notes(const ModelShape& m, const EstimateOptions& o, std::vector<std::string>& notes) {
  if (!m.sizing.known) {
    notes.push_back(m.sizing.note + "; the figures are the weights alone, so the model needs more than they say");
    return;
  }
  if (m.embedding_only) {
    notes.push_back("an embedding model: no KV cache");
  }
  if (m.sliding_window > 0 && !m.layer_swa.empty()) {
    const auto sliding = static_cast<std::uint64_t>(std::count(m.layer_swa.begin(), m.layer_swa.end(), true));
    notes.push_back(
        fmt::format("sliding-window attention: {} of {} layers keep only the last {} tokens ({} cells "
                    "per slot instead of {})",
                    sliding, m.block_count, m.sliding_window, swa_cells(m, o) / std::max<std::uint64_t>(o.parallel, 1),
                    kv_cells(o) / std::max<std::uint64_t>(o.parallel, 1)));
  }
  if (m.moe()) {
    notes.push_back(
        fmt::format("a mixture of experts: {} of weights, of which {} are routed experts; a token reads "
                    "about {} ({} of {} experts)",
                    gib(m.weight_bytes()), gib(m.expert_bytes()), gib(m.active_weight_bytes()), m.expert_used_count,
                    m.expert_count));
  }
  if (m.latent_cache) {
    notes.push_back(
        fmt::format("multi-head latent attention: the cache holds {} values per token and layer", m.key_length));
  }
  if (flash_attention_by_default(m.architecture) && o.kv_type == KvType::f16) {
    notes.push_back(fmt::format("Ollama runs {} with flash attention by default", m.architecture));
  }
}

}  // namespace

const char* basis_key(FigureBasis b) {
  switch (b) {
    case FigureBasis::gguf_file:
      return "file";
    case FigureBasis::server:
      return "server";
    case FigureBasis::catalog:
      return "catalog";
  }
  return "?";
}

Accuracy accuracy_of(const PlanModel& model) {
  Accuracy a;
  a.basis = model.basis;
  a.weights_exact = model.basis == FigureBasis::gguf_file;
  a.cache_known = model.shape.sizing.known;
  if (!a.cache_known) {
    a.text = fmt::format("{}; KV cache and compute graph unknown",
                         a.weights_exact ? "weights exact (GGUF on disk)" : "weights laid out");
    return a;
  }
  // The layout from dimensions adds its own error: a few percent for the quantization mix, less when the
  // catalog's published size fixes the total.
  const unsigned layout = model.basis == FigureBasis::gguf_file ? 0 : model.published_size ? 2 : 5;
  a.margin_percent = model.shape.sizing.margin_percent + layout;
  const char* basis = model.basis == FigureBasis::gguf_file ? "exact weights (GGUF on disk)"
                      : model.basis == FigureBasis::server  ? "from the server (/api/show; tensors laid out)"
                      : model.published_size                ? "from the catalog (published size, tensors laid out)"
                                                            : "from the catalog (tensors laid out, no published size)";
  a.text = fmt::format("{}; within about ±{}%{}{}", basis, a.margin_percent,
                       model.shape.sizing.note.empty() ? "" : ": ", model.shape.sizing.note);
  return a;
}

Result<ModelPlan> plan_model(const PlanModel& model, const PlanSettings& settings, const HostBudget& host) {
  ModelPlan plan;
  plan.name = model.name;
  plan.source = model.source;
  plan.quantization = model.quantization;

  std::uint64_t ctx = 0;
  if (settings.num_ctx) {
    ctx = *settings.num_ctx;
  } else {
    ctx = ollama_default_ctx(host.vram_total());
    plan.notes.push_back(fmt::format("context {}: Ollama's default for {} of VRAM (OLLAMA_CONTEXT_LENGTH unset)", ctx,
                                     host.gpus.empty() ? std::string("no GPU") : gib(host.vram_total())));
  }
  if (model.shape.context_length > 0 && ctx > model.shape.context_length) {
    plan.notes.push_back(fmt::format("context {} is more than the model was trained for; Ollama uses {}", ctx,
                                     model.shape.context_length));
    ctx = model.shape.context_length;
  }
  plan.options = options_for(settings.kv_type, ctx, settings, model.shape.architecture);
  plan.accuracy = accuracy_of(model);
  shape_notes(model.shape, plan.options, plan.notes);
  if (settings.kv_type != KvType::f16) {
    plan.notes.push_back(fmt::format("a {} KV cache needs OLLAMA_FLASH_ATTENTION=1 and OLLAMA_KV_CACHE_TYPE={}",
                                     to_string(settings.kv_type), to_string(settings.kv_type)));
  }
  if (host.gpus.empty()) {
    plan.notes.push_back("no GPU: the model runs on the CPU");
  }

  auto outcome = place(model.shape, model.extra_weights, plan.options, settings, gpu_free_of(host), host.ram_usable());
  if (!outcome) {
    return fail(model.name, outcome.error().message);
  }
  plan.placement = outcome->placement;
  plan.verdict = outcome->verdict;
  plan.ram_needed = outcome->ram_needed;
  plan.ram_short = plan.ram_needed > host.ram_usable() ? plan.ram_needed - host.ram_usable() : 0;
  plan.container_limit = capped_limit(plan.ram_needed, settings, host);
  if (plan.container_limit < container_limit_for(plan.ram_needed, settings.headroom_percent)) {
    plan.notes.push_back(
        fmt::format("the container limit's headroom is cut to the {} the host has for models", gib(host.ram_usable())));
  }
  plan.disk_needed = model.downloaded ? 0 : model.file_bytes;
  if (host.disk_available && plan.disk_needed > *host.disk_available) {
    plan.disk_short = true;
    plan.notes.push_back(fmt::format("the download ({}) does not fit the {} free where the models live",
                                     gib(plan.disk_needed), gib(*host.disk_available)));
  }
  if (plan.verdict != FitVerdict::gpu) {
    plan.suggestions = Suggester(model, settings, host, plan).run();
    constexpr std::uint64_t k_unbounded = std::uint64_t{1} << 62;
    if (auto all = place(model.shape, model.extra_weights, plan.options, settings, k_unbounded, k_unbounded);
        all && all->placement.full_offload() && !plan.placement.full_offload()) {
      plan.vram_full_offload = all->placement.vram;
    }
  }
  return plan;
}

TogetherPlan plan_together(const std::vector<PlanModel>& models, const std::vector<ModelPlan>& alone,
                           const PlanSettings& settings, const HostBudget& host) {
  TogetherPlan out;
  std::uint64_t gpu_left = gpu_free_of(host);
  std::uint64_t ram_left = host.ram_usable();
  std::vector<std::string> fit_alone;
  std::vector<std::string> no_fit_alone;
  std::string blocked;
  std::string blocked_why;
  for (std::size_t i = 0; i < models.size() && i < alone.size(); ++i) {
    out.disk_needed += alone[i].disk_needed;
    if (alone[i].verdict == FitVerdict::no_fit) {
      no_fit_alone.push_back(models[i].name);
    } else {
      fit_alone.push_back(models[i].name);
      out.container_limit_exclusive = std::max(out.container_limit_exclusive.value_or(0), alone[i].container_limit);
    }
    auto placed = place(models[i].shape, models[i].extra_weights, alone[i].options, settings, gpu_left, ram_left);
    if (!placed) {
      continue;  // plan_model reported it
    }
    // Ollama's scheduler loads a model beside loaded ones only when it fits them entirely on the GPU
    // (on a host without GPUs: in RAM); otherwise it unloads them first. Each runner is its own process
    // with its own CUDA context, so its whole estimate, reserve included, is taken from the GPU.
    const bool beside =
        i == 0 || (host.gpus.empty() ? placed->verdict != FitVerdict::no_fit : placed->verdict == FitVerdict::gpu);
    if (!beside && blocked.empty()) {
      blocked = models[i].name;
      if (host.gpus.empty()) {
        blocked_why = "does not fit in the RAM the models before it left";
      } else if (placed->verdict == FitVerdict::no_fit) {
        blocked_why = "does not fit beside the models before it, neither on the GPU nor in the RAM they left";
      } else {
        blocked_why = "does not fit on the GPU beside the models before it, so Ollama would unload them to load it";
      }
    }
    gpu_left = gpu_left > placed->placement.vram ? gpu_left - placed->placement.vram : 0;
    ram_left = ram_left > placed->ram_needed ? ram_left - placed->ram_needed : 0;
    out.ram_needed += placed->ram_needed;
    out.vram_needed += placed->placement.vram;
    out.placements.push_back(placed->placement);
    out.verdicts.push_back(placed->verdict);
  }
  out.fit = blocked.empty() && no_fit_alone.empty() && !out.verdicts.empty();
  if (out.fit) {
    out.container_limit_together = capped_limit(out.ram_needed, settings, host);
  }
  out.disk_short = host.disk_available && out.disk_needed > *host.disk_available;

  const auto limit_text = [](const std::optional<std::uint64_t>& v) { return v ? gib(*v) : std::string("-"); };
  if (!no_fit_alone.empty()) {
    out.advice = fmt::format("{} {} not fit this host even alone", join_names(no_fit_alone),
                             no_fit_alone.size() == 1 ? "does" : "do");
    if (fit_alone.size() > 1) {
      out.advice += fmt::format("; plan the others ({}) again without it", join_names(fit_alone));
    } else if (fit_alone.size() == 1) {
      out.advice += fmt::format("; {} fits alone in a container limited to {}", fit_alone.front(),
                                limit_text(out.container_limit_exclusive));
    }
  } else if (!out.fit) {
    out.advice = fmt::format(
        "not together: {} {}. Load one at a time (OLLAMA_MAX_LOADED_MODELS=1, the exclusive large-model mode) in "
        "a container limited to {}",
        blocked, blocked_why, limit_text(out.container_limit_exclusive));
  } else {
    out.advice = fmt::format("together they fit: OLLAMA_MAX_LOADED_MODELS={} or more, in a container limited to {}",
                             out.verdicts.size(), limit_text(out.container_limit_together));
  }
  if (out.disk_short) {
    out.advice += fmt::format("; the downloads ({} in all) do not fit the {} free", gib(out.disk_needed),
                              gib(*host.disk_available));
  }
  return out;
}

}  // namespace mw
