#include "engine/limit_advice.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "adapters/http.hpp"
#include "adapters/ollama.hpp"
#include "core/deploy.hpp"
#include "core/discovery.hpp"
#include "core/plan.hpp"
#include "engine/plan.hpp"

namespace mw::engine {

namespace {

// The server's installed models; the k_max_planned_models largest on disk when it has more (the largest sets the
// limit of a server that loads one at a time, so the limit holds for the rest).
std::optional<std::vector<std::string>> installed_models(const std::string& url, const ServerLimitOptions& o,
                                                         std::vector<std::string>& problems,
                                                         std::vector<std::string>& notes) {
  auto endpoint = adapters::parse_endpoint(url, "optimize");
  if (!endpoint) {
    problems.push_back(endpoint.error().line());
    return std::nullopt;
  }
  adapters::OllamaClient client(*endpoint, o.api_timeout);
  auto tags = client.tags();
  if (!tags) {
    problems.push_back(tags.error().line());
    return std::nullopt;
  }
  std::vector<const OllamaModel*> models;
  for (const auto& m : *tags) {
    if (m.folded == 0 && !m.name.empty()) {
      models.push_back(&m);
    }
  }
  const auto most = std::max<std::size_t>(1, std::min(o.max_models, k_max_planned_models));
  if (models.size() > most) {
    std::stable_sort(models.begin(), models.end(),
                     [](const OllamaModel* a, const OllamaModel* b) { return a->size > b->size; });
    notes.push_back(fmt::format("{} lists {} models; the {} largest are planned", url, models.size(), most));
    models.resize(most);
  }
  std::vector<std::string> names;
  for (const auto* m : models) {
    names.push_back(m->name);
  }
  return names;
}

}  // namespace

ServerLimitPlan plan_server_limit(const ContainerMeta& container, const ServerLimitOptions& o) {
  ServerLimitPlan out;
  const auto api = ollama_api_address(container);
  std::vector<std::string> names;
  if (!o.for_models.empty()) {
    out.basis = "--for";
    names = o.for_models;
  } else {
    std::optional<std::vector<std::string>> installed;
    if (api) {
      installed = installed_models(api->url, o, out.problems, out.notes);
    } else {
      out.problems.push_back(fmt::format("{}: no API address to ask for its installed models", container.name));
    }
    if (installed) {
      out.basis = "installed models";
      names = std::move(*installed);
    } else if (auto it = container.labels.find(std::string(k_label_profile)); it != container.labels.end()) {
      if (auto profile = find_profile(o.profiles, it->second, "label memwarden.profile")) {
        out.basis = "profile " + profile->name;
        names = profile->models;
      } else {
        out.problems.push_back(profile.error().line());
      }
    }
  }
  if (names.empty()) {
    out.limit = limit_from_models({}, out.basis.empty() ? std::string("its models are unknown") : out.basis);
    return out;
  }

  PlanOptions p;
  p.root = o.root;
  p.models = names;
  const auto settings = server_settings_from_env(container.server_env, container.name);
  p.settings.num_ctx = settings.num_ctx;
  p.parallel = settings.parallel;
  p.kv_type = settings.kv_type;
  p.ram = o.cap + o.reserve;  // the plan's usable RAM is then the cap
  p.reserve = o.reserve;
  p.vram = o.vram;
  p.nvml_library = o.nvml_library;
  p.api_timeout = o.api_timeout;
  if (api) {
    p.ollama_url = api->url;
    p.source = ModelSource::server;
  } else {
    p.source = ModelSource::catalog;
  }
  out.headroom_percent = p.settings.headroom_percent;
  const auto plan = collect_plan(p);
  for (const auto& name : names) {
    ServedModel m;
    m.name = name;
    if (const auto* found = plan_named(plan, name)) {
      m.plan = *found;
    } else {
      m.error = error_naming(plan, name).value_or("could not be sized");
      out.problems.push_back(fmt::format("{}: {}", name, m.error));
    }
    out.models.push_back(std::move(m));
  }
  out.limit = limit_from_models(out.models, out.basis);
  return out;
}

}  // namespace mw::engine
