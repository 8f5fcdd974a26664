#include "engine/deploy.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "adapters/docker.hpp"
#include "adapters/journal.hpp"
#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "core/discovery.hpp"
#include "engine/inventory.hpp"
#include "engine/profiles.hpp"
#include "engine/ready.hpp"
#include "probes/connections.hpp"

namespace mw::engine {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view k_kind_exclusive_stop = "exclusive_stop";
constexpr std::size_t k_max_deploy_name = 124;  // NAME-old must still be a name the engine takes (128)
constexpr std::string_view k_kind_restore = "restore";
constexpr std::size_t k_max_restore_lookback = 500;  // journal records read to find the last exclusive stop

DeployError deploy_error(DeployExit exit, std::string line) {
  return DeployError{exit, {std::move(line)}};
}

// "llama3.1:8b" -> "llama3.1-8b"; "/models/x.gguf" -> "x.gguf": a container name from a model's.
std::string name_from_model(std::string_view model) {
  if (const auto slash = model.rfind('/'); slash != std::string_view::npos) {
    model.remove_prefix(slash + 1);
  }
  std::string out;
  for (char c : model) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
    out += ok ? c : '-';
  }
  while (!out.empty() && std::isalnum(static_cast<unsigned char>(out.front())) == 0) {
    out.erase(out.begin());
  }
  if (out.size() > 64) {
    out.resize(64);
  }
  return out.empty() ? "model" : out;
}

bool label_is(const ContainerMeta& c, std::string_view key, std::string_view value) {
  const auto it = c.labels.find(std::string(key));
  return it != c.labels.end() && it->second == value;
}

// An inference server for an exclusive deployment: what discovery counts (Ollama by image or label), a
// deployed server of any API, or a LocalAI image.
bool serves_models(const ContainerMeta& c) {
  return is_inference_server(c) || c.labels.count(std::string(k_label_profile)) != 0 ||
         c.image.find("localai") != std::string::npos;
}

// The port a host-network server listens on, from OLLAMA_HOST ("127.0.0.1:11435", ":11435", "0.0.0.0").
std::optional<std::uint16_t> env_port(const ContainerMeta& c) {
  const auto it = c.server_env.find("OLLAMA_HOST");
  const std::string value = it == c.server_env.end() ? std::string() : it->second;
  const auto colon = value.rfind(':');
  if (colon == std::string::npos) {
    // Ollama's default port; another program on the host's network is found by the socket check instead.
    return c.network_mode == "host" && is_inference_server(c) ? std::optional<std::uint16_t>(11434) : std::nullopt;
  }
  const auto port = parse_u64(std::string_view(value).substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(*port);
}

// Whether `c` holds the host port `port`: published, or listening on the host's network.
bool holds_port(const ContainerMeta& c, std::uint16_t port) {
  if (!c.state.running) {
    return false;
  }
  const std::string text = std::to_string(port);
  for (const auto& p : c.ports) {
    if (p.host_port == text) {
      return true;
    }
  }
  return c.network_mode == "host" && env_port(c) == port;
}

HeldMemory held_by(const ContainerMeta& c, const Inventory& inventory) {
  HeldMemory h;
  h.name = c.name;
  h.running = c.state.running;
  h.inference_server = serves_models(c);
  h.protect = label_is(c, k_label_protect, "true");
  if (c.memory_limit) {
    h.bytes = *c.memory_limit;
    h.basis = HeldMemory::Basis::limit;
    return h;
  }
  if (const auto it = inventory.memory.find(c.id); it != inventory.memory.end() && it->second.memory) {
    const auto& m = *it->second.memory;
    if (m.peak) {
      h.bytes = *m.peak;
      h.basis = HeldMemory::Basis::peak;
    } else if (m.usage) {
      h.bytes = *m.usage;
      h.basis = HeldMemory::Basis::usage;
    }
  }
  return h;
}

std::string gib(std::uint64_t bytes) {
  return format_bytes(bytes);
}

}  // namespace

Expected<Profile, DeployError> resolve_profile(const DeployOptions& options) {
  if (options.targets.empty()) {
    return unexpected(deploy_error(DeployExit::usage, "deploy: name a profile or one or more models"));
  }
  Profile p;
  bool from_models = true;
  if (options.targets.size() == 1) {
    if (auto found = find_profile(options.profiles, options.targets.front(), "deploy")) {
      p = std::move(*found);
      from_models = false;
    }
  }
  if (from_models) {
    if (auto standard = find_profile(options.profiles, "standard", "deploy")) {
      p = std::move(*standard);
    }
    p.models = options.targets;
    p.name = name_from_model(options.targets.front());
    p.description = "models named on the command line";
    p.seed_limit_bytes.reset();
    p.mode = DeployMode::standard;
  }
  if (options.ctx) {
    p.context_length = *options.ctx;
  }
  if (options.parallel) {
    p.parallel = *options.parallel;
  }
  if (options.port) {
    p.port = *options.port;
  }
  if (options.gpus && options.gpus->kind == GpuRequest::Kind::none) {
    p.gpu = GpuUse::none;
  } else if (options.gpus) {
    p.gpu = GpuUse::all;
  }
  if (options.exclusive) {
    p.mode = DeployMode::exclusive;
  }
  return p;
}

Expected<PreparedDeployment, DeployError> prepare_deployment(const DeployOptions& options) {
  auto profile = resolve_profile(options);
  if (!profile) {
    return unexpected(profile.error());
  }
  const bool named_profile = options.targets.size() == 1 && profile->models != options.targets;
  const std::string name = options.name.empty() ? profile->name : options.name;
  if (!adapters::valid_container_name(name) || name.size() > k_max_deploy_name) {
    return unexpected(deploy_error(
        DeployExit::usage,
        fmt::format("deploy: '{}' is not a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most {} characters)", name,
                    k_max_deploy_name)));
  }

  // The plan: the limit, and whether the models fit at all.
  const std::vector<Profile> one{*profile};
  auto planned = plan_profiles(one, options.plan);
  auto& pp = planned.profiles.front();
  if (!pp.errors.empty()) {
    DeployError e{DeployExit::partial, {}};
    for (const auto& err : pp.errors) {
      e.lines.push_back(err.line());
    }
    if (!named_profile && options.targets.size() == 1) {
      // Neither a model that can be found nor a profile: say both, with the closest profile.
      e.exit = DeployExit::usage;
      if (auto as_profile = find_profile(options.profiles, options.targets.front(), "deploy"); !as_profile) {
        e.lines.push_back(as_profile.error().line());
      }
    }
    return unexpected(std::move(e));
  }
  if (!pp.limit || !pp.plan) {
    DeployError e{DeployExit::no_room, {}};
    if (pp.plan) {
      const auto& m = *pp.plan;
      e.lines.push_back(
          fmt::format("deploy: {} does not fit this host: it needs {} of RAM, {} short of what the "
                      "host has beside the {} reserve",
                      m.name, gib(m.ram_needed), gib(m.ram_short), gib(planned.host.reserve)));
      for (const auto& note : m.notes) {
        e.lines.push_back("  " + note);
      }
      for (const auto& s : m.suggestions) {
        e.lines.push_back(fmt::format("  {}: {} ({})", s.change, s.why, to_string(s.verdict)));
      }
    } else {
      e.lines.push_back(fmt::format("deploy: profile {} has no model to plan", profile->name));
    }
    return unexpected(std::move(e));
  }

  PreparedDeployment out;
  out.headroom_percent = options.plan.settings.headroom_percent;
  out.plan = pp.plan;
  out.host = planned.host;
  out.host_notes = planned.host_notes;

  // The engine: the containers (all of them: a stopped one may hold the name), their memory. Without one
  // (export compose), none of the checks against what runs now are made.
  const bool with_engine = !options.plan.docker_host.empty();
  InventoryOptions io;
  io.root = options.plan.root;
  io.docker_host = options.plan.docker_host;
  io.timeout = options.plan.docker_timeout;
  io.scope = adapters::ListScope::all;
  io.read_memory = true;
  const auto inventory = with_engine ? read_inventory(io) : Inventory{};
  if (with_engine && !inventory.docker.reachable) {
    DeployError e{DeployExit::failed, {}};
    e.lines.push_back(fmt::format("deploy: cannot reach the Docker engine: {}",
                                  inventory.docker.error ? inventory.docker.error->line() : inventory.docker.endpoint));
    if (!inventory.docker.hint.empty()) {
      e.lines.push_back("  " + inventory.docker.hint);
    }
    return unexpected(std::move(e));
  }
  for (const auto& problem : inventory.problems) {
    out.problems.push_back(problem.line());
  }
  const std::string old_name = name + "-old";
  for (const auto& c : inventory.containers) {
    if (c.name == name) {
      out.existing = c;
    }
  }
  for (const auto& c : inventory.containers) {
    if (c.name != old_name) {
      continue;
    }
    // Left by a re-deploy that was interrupted: with NAME gone it is the only copy of the server.
    return unexpected(deploy_error(
        DeployExit::usage,
        out.existing ? fmt::format("deploy: a container named {} is left from an earlier re-deploy; remove it "
                                   "(docker rm {}) or rename it first",
                                   old_name, old_name)
                     : fmt::format("deploy: {} is left from an interrupted re-deploy and {} is gone; bring it back "
                                   "first: docker rename {} {} && docker start {}",
                                   old_name, name, old_name, name, name)));
  }

  // Exclusive: the running servers to stop (never a protected one, nor the one being replaced).
  const bool exclusive = profile->mode == DeployMode::exclusive;
  std::vector<HeldMemory> others;
  for (const auto& c : inventory.containers) {
    if (out.existing && c.id == out.existing->id) {
      continue;  // replaced: its memory comes back
    }
    others.push_back(held_by(c, inventory));
    if (others.back().running && others.back().basis == HeldMemory::Basis::unknown) {
      out.problems.push_back(fmt::format("{} has no limit and its memory could not be read: counted as 0 B", c.name));
    }
    if (exclusive && c.state.running && serves_models(c) && !label_is(c, k_label_protect, "true")) {
      out.to_stop.push_back(c);
    }
  }

  // The port: no other container, nor anything else on the host, may hold it.
  const auto port = profile->port;
  for (const auto& c : inventory.containers) {
    const bool leaving =
        (out.existing && c.id == out.existing->id) ||
        std::any_of(out.to_stop.begin(), out.to_stop.end(), [&](const ContainerMeta& s) { return s.id == c.id; });
    if (!leaving && holds_port(c, port)) {
      return unexpected(deploy_error(
          DeployExit::usage,
          fmt::format("deploy: port {} is in use by container {}; choose another with --port", port, c.name)));
    }
  }
  const bool a_leaving_container_had_it =
      (out.existing && holds_port(*out.existing, port)) ||
      std::any_of(out.to_stop.begin(), out.to_stop.end(), [&](const ContainerMeta& c) { return holds_port(c, port); });
  if (with_engine && !a_leaving_container_had_it) {
    if (auto sockets = probes::read_connections(options.plan.root, 1)) {
      for (const auto& s : *sockets) {
        if (s.state == probes::TcpState::listen && s.local_port == port) {
          return unexpected(deploy_error(
              DeployExit::usage, fmt::format("deploy: port {} is in use on the host (listening on {}); choose another "
                                             "with --port",
                                             port, s.local_address)));
        }
      }
    } else {
      out.problems.push_back("the port check could not read the host's sockets: " + sockets.error().line());
    }
  }

  // The store: the volume an Ollama container already keeps its models in, so nothing is downloaded twice.
  DeployChoices choices;
  choices.name = name;
  choices.memory_limit = *pp.limit;
  choices.flash_attention = pp.plan->options.flash_attention;
  choices.network = options.network;
  choices.bind_address = options.bind_address;
  // Every GPU when the host has one; a hypothetical --vram gives one only where the plan is the point (export).
  const bool gpus_real = !options.plan.vram || options.gpu_default == GpuDefault::from_plan;
  choices.gpu = options.gpus
                    ? *options.gpus
                    : (planned.host.gpus.empty() || !gpus_real ? GpuRequest{} : GpuRequest{GpuRequest::Kind::all, {}});
  if (!options.gpus && options.plan.vram && *options.plan.vram > 0 && !gpus_real) {
    out.problems.push_back(
        "--vram is a plan for a GPU this host may not have: the container gets none (--gpus all "
        "gives it the host's)");
  }
  if (profile->api == ServerApi::ollama) {
    // The container being replaced first, then running Ollama containers, then stopped ones.
    std::vector<const ContainerMeta*> order;
    if (out.existing) {
      order.push_back(&*out.existing);
    }
    for (const bool running : {true, false}) {
      for (const auto& c : inventory.containers) {
        if (is_inference_server(c) && c.state.running == running && !(out.existing && c.id == out.existing->id)) {
          order.push_back(&c);
        }
      }
    }
    for (const auto* c : order) {
      const auto it = std::find_if(c->mounts.begin(), c->mounts.end(), [&](const ContainerMount& m) {
        return m.destination == profile->store_path && (m.type == "volume" || m.type == "bind");
      });
      if (it == c->mounts.end()) {
        continue;
      }
      if (it->type == "volume" && !it->name.empty()) {
        choices.store_volume = it->name;
        out.store_notes.push_back(fmt::format("store: volume {}, the one {} keeps its models in", it->name, c->name));
      } else {
        out.store_notes.push_back(
            fmt::format("note: {} keeps its models in the bind mount {}, which a deployment "
                        "does not reuse (it takes a named volume)",
                        c->name, it->source));
        continue;
      }
      break;
    }
  }
  if (choices.store_volume.empty()) {
    out.store_notes.push_back(
        fmt::format("store: volume {} (made by the engine if it does not exist)", profile->store_volume));
  }

  out.admission = admit(planned.host.ram_total.value_or(planned.host.ram_available), planned.host.reserve, *pp.limit,
                        std::move(others), exclusive ? Exclusivity::exclusive : Exclusivity::shared, pp.disk_needed,
                        planned.host.disk_available);
  out.spec = make_deploy_spec(*profile, choices);
  return out;
}

std::vector<std::string> admission_advice(const PreparedDeployment& prepared) {
  std::vector<std::string> lines;
  const auto& a = prepared.admission;
  if (!a.ram_fits) {
    lines.push_back(
        fmt::format("deploy: refused: the limit {} plus {} held by the other containers plus the {} "
                    "reserve is {}, {} more than the host's {}",
                    gib(a.limit), gib(a.held), gib(a.reserve), gib(a.limit + a.held + a.reserve), gib(a.shortfall),
                    gib(a.ram_total)));
    if (!a.would_free.empty()) {
      lines.emplace_back("  stopping these would make room:");
      for (const auto& h : a.would_free) {
        lines.push_back(fmt::format("    {}: frees {} ({})", h.name, gib(h.bytes), to_string(h.basis)));
      }
    } else {
      lines.emplace_back("  stopping every unprotected container would not make room");
    }
    if (prepared.plan) {
      for (const auto& s : prepared.plan->suggestions) {
        const auto limit = container_limit_for(s.ram_needed, prepared.headroom_percent);
        if (limit + a.held + a.reserve <= a.ram_total) {
          lines.push_back(fmt::format("  or {}: {}, a limit of {}", s.change, s.why, gib(limit)));
        }
      }
    }
    if (prepared.spec.profile.mode != DeployMode::exclusive) {
      lines.emplace_back("  or --exclusive: stop the other inference servers for this one");
    }
  }
  if (!a.disk_fits) {
    lines.push_back(fmt::format("deploy: refused: the downloads need {} of disk, {} is free", gib(a.disk_needed),
                                a.disk_available ? gib(*a.disk_available) : std::string("unknown")));
  }
  return lines;
}

namespace {

// The API address of the new server, as seen from this host.
std::string api_url(const DeploySpec& spec) {
  const bool any = spec.bind_address == "0.0.0.0" || spec.bind_address == "::" || spec.bind_address.empty();
  const std::string host = any                                                ? "127.0.0.1"
                           : spec.bind_address.find(':') != std::string::npos ? "[" + spec.bind_address + "]"
                                                                              : spec.bind_address;
  return fmt::format("http://{}:{}", host, spec.profile.port);
}

// Polls the API (GET /api/version for Ollama, /v1/models for an OpenAI-compatible server) until it answers,
// the container stops running, or the wait ends.
Expected<void, Error> wait_for_api(adapters::DockerClient& docker, const std::string& id, const DeploySpec& spec,
                                   std::chrono::milliseconds limit) {
  return wait_for_http(docker, id, api_url(spec), spec.profile.api == ServerApi::ollama ? "/api/version" : "/v1/models",
                       limit);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The journal record of one deployment: nothing is changed unless it could be begun (problem empty).
struct JournalHandle {
  std::optional<adapters::Journal> journal;
  std::optional<std::int64_t> id;
  std::string problem;

  void step(const std::string& name, const std::string& detail, bool ok) {
    if (journal && id) {
      (void)journal->add_step(*id, adapters::JournalStep{name, detail, now_ms(), 0, ok});
    }
  }
  void finish(ActionOutcome outcome, const std::string& message) {
    if (journal && id) {
      (void)journal->finish(*id, outcome, message, std::nullopt, now_ms());
    }
  }
};

JournalHandle open_journal(const std::string& state_dir, adapters::JournalRecord record) {
  JournalHandle h;
  if (state_dir.empty()) {
    return h;
  }
  auto j = adapters::Journal::open(state_dir);
  if (!j) {
    h.problem = j.error().line();
    return h;
  }
  h.journal = std::move(*j);
  record.started_at_ms = now_ms();
  auto id = h.journal->begin(record);
  if (!id) {
    h.problem = id.error().line();
    return h;
  }
  h.id = *id;
  return h;
}

}  // namespace

namespace {

// The engine at --docker-host, connected once for the checks and the changes.
Expected<adapters::DockerClient, DeployError> connect_engine(const DeployOptions& options) {
  auto endpoint = adapters::parse_endpoint(options.plan.docker_host, "--docker-host");
  if (!endpoint) {
    return unexpected(deploy_error(DeployExit::usage, endpoint.error().line()));
  }
  auto docker = adapters::DockerClient::connect(*endpoint, options.plan.docker_timeout);
  if (!docker) {
    return unexpected(deploy_error(DeployExit::failed, "deploy: " + docker.error().line()));
  }
  return std::move(*docker);
}

Expected<void, DeployError> check_ready(adapters::DockerClient& docker, const PreparedDeployment& prepared,
                                        const RunOptions& run) {
  const auto& spec = prepared.spec;
  if (!prepared.admission.admitted()) {
    return unexpected(DeployError{DeployExit::no_room, admission_advice(prepared)});
  }
  if (prepared.existing && !label_is(*prepared.existing, k_label_deployed, "true") &&
      run.existing != Existing::replace) {
    return unexpected(deploy_error(DeployExit::usage,
                                   fmt::format("deploy: the name {} is taken by a container memwarden did not create "
                                               "({}); pass --replace to replace it, or choose another --name",
                                               spec.name, prepared.existing->image)));
  }
  if (!prepared.to_stop.empty() && run.confirm != Confirm::yes) {
    DeployError e{DeployExit::usage, {}};
    std::string names;
    for (const auto& c : prepared.to_stop) {
      names += names.empty() ? c.name : ", " + c.name;
    }
    e.lines.push_back(
        fmt::format("deploy: {} is exclusive and would stop {}; pass --yes to go ahead "
                    "(memwarden deploy --restore starts them again)",
                    spec.name, names));
    return unexpected(std::move(e));
  }
  if (auto present = docker.image_present(spec.image); !present) {
    return unexpected(deploy_error(DeployExit::failed, "deploy: " + present.error().line()));
  } else if (!*present) {
    return unexpected(deploy_error(DeployExit::usage,
                                   fmt::format("deploy: image {} is not present on {}; pull it first: docker pull {}",
                                               spec.image, docker.endpoint().text, spec.image)));
  }
  return {};
}

}  // namespace

Expected<void, DeployError> preflight(const PreparedDeployment& prepared, const DeployOptions& options,
                                      const RunOptions& run) {
  auto docker = connect_engine(options);
  if (!docker) {
    return unexpected(docker.error());
  }
  return check_ready(*docker, prepared, run);
}

Expected<DeployReport, DeployError> run_deployment(const PreparedDeployment& prepared, const DeployOptions& options,
                                                   const RunOptions& run) {
  const auto& spec = prepared.spec;
  auto docker = connect_engine(options);
  if (!docker) {
    return unexpected(docker.error());
  }
  if (auto ready = check_ready(*docker, prepared, run); !ready) {
    return unexpected(ready.error());
  }

  DeployReport report;
  report.api_url = api_url(spec);
  auto add = [&](JournalHandle& j, std::string name, std::string detail, bool ok) {
    j.step(name, detail, ok);
    report.steps.push_back(DeployStep{std::move(name), std::move(detail), ok});
  };

  // Exclusive: stop the others first, journaled as one record that --restore reads.
  if (!prepared.to_stop.empty()) {
    nlohmann::json planned = nlohmann::json::array();
    for (const auto& c : prepared.to_stop) {
      planned.push_back({{"id", c.id}, {"name", c.name}});
    }
    adapters::JournalRecord record;
    record.server = spec.name;
    record.kind = std::string(k_kind_exclusive_stop);
    record.reason = fmt::format("exclusive deployment of {}", spec.name);
    record.evidence_json = nlohmann::json{{"to_stop", planned}}.dump();
    auto j = open_journal(run.state_dir, record);
    if (!j.problem.empty()) {
      return unexpected(deploy_error(DeployExit::failed,
                                     "deploy: not stopping anything: the journal could not record it: " + j.problem));
    }
    bool all = true;
    for (const auto& c : prepared.to_stop) {
      auto ok = docker->stop(c.id, run.stop_timeout);
      add(j, "stop", ok ? c.name : c.name + ": " + ok.error().line(), static_cast<bool>(ok));
      if (ok) {
        report.stopped.push_back(c.name);
      }
      all = all && static_cast<bool>(ok);
    }
    j.finish(all ? ActionOutcome::succeeded : ActionOutcome::failed,
             fmt::format("stopped {} of {}", report.stopped.size(), prepared.to_stop.size()));
    if (!all) {
      return unexpected(DeployError{DeployExit::failed,
                                    {"deploy: could not stop every other server; memwarden deploy --restore starts "
                                     "the ones that were stopped"}});
    }
  }

  adapters::JournalRecord record;
  record.server = spec.name;
  record.kind = "deploy";
  record.reason = fmt::format("profile {}, limit {}", spec.profile.name, gib(spec.memory_limit));
  record.evidence_json = adapters::container_create_body(spec);
  auto j = open_journal(run.state_dir, record);
  const std::string restore_hint =
      report.stopped.empty() ? "" : "  the servers stopped for it stay stopped: memwarden deploy --restore starts them";
  if (!j.problem.empty()) {
    DeployError e{DeployExit::failed, {"deploy: not deploying: the journal could not record it: " + j.problem}};
    if (!restore_hint.empty()) {
      e.lines.push_back(restore_hint);
    }
    return unexpected(std::move(e));
  }
  report.journal_id = j.id;

  // A re-deploy: the old one steps aside under NAME-old until the new one answers.
  std::optional<std::string> old_id;
  bool old_was_running = false;
  if (prepared.existing) {
    old_id = prepared.existing->id;
    old_was_running = prepared.existing->state.running;
    auto ok = docker->stop(*old_id, run.stop_timeout);
    add(j, "stop", ok ? "the old " + spec.name : ok.error().line(), static_cast<bool>(ok));
    if (ok) {
      ok = docker->rename(*old_id, spec.name + "-old");
      add(j, "rename", ok ? spec.name + " -> " + spec.name + "-old" : ok.error().line(), static_cast<bool>(ok));
    }
    if (!ok) {
      if (old_was_running) {
        (void)docker->start(*old_id);
      }
      j.finish(ActionOutcome::failed, ok.error().line());
      DeployError e{DeployExit::failed, {"deploy: could not set the old container aside: " + ok.error().line()}};
      if (!restore_hint.empty()) {
        e.lines.push_back(restore_hint);
      }
      return unexpected(std::move(e));
    }
  }

  bool create_answer_lost = false;  // the create failed without an answer from the engine
  // Undoes what was made: the new container removed, the old one back under its name and running.
  auto roll_back = [&](const std::string& why) -> DeployError {
    DeployError e{DeployExit::failed, {"deploy: " + why}};
    if (report.container_id.empty() && create_answer_lost) {
      // The engine may have made the container before its answer was lost: one under the new name with this
      // deployment's labels, and not the old one, is ours.
      if (auto made = docker->inspect(spec.name); made && !(old_id && made->id == *old_id) &&
                                                  label_is(*made, k_label_deployed, "true") &&
                                                  label_is(*made, k_label_profile, spec.profile.name)) {
        report.container_id = made->id;
      }
    }
    if (!report.container_id.empty()) {
      auto ok = docker->remove(report.container_id);
      add(j, "rollback", ok ? "removed the new container" : "could not remove the new container: " + ok.error().line(),
          static_cast<bool>(ok));
      if (!ok) {
        e.lines.push_back(fmt::format("  the new container {} is left: docker rm -f {}",
                                      report.container_id.substr(0, 12), report.container_id.substr(0, 12)));
      }
    }
    if (old_id) {
      auto ok = docker->rename(*old_id, spec.name);
      if (ok && old_was_running) {
        ok = docker->start(*old_id);
      }
      add(j, "rollback", ok ? "the old container is back" : "could not bring the old one back: " + ok.error().line(),
          static_cast<bool>(ok));
      e.lines.push_back(
          ok ? fmt::format("  the old {} is back ({})", spec.name, old_was_running ? "running" : "stopped")
             : fmt::format("  the old container is {}-old ({}): {}", spec.name, old_id->substr(0, 12),
                           ok.error().line()));
    }
    if (!restore_hint.empty()) {
      e.lines.push_back(restore_hint);
    }
    j.finish(ActionOutcome::failed, why);
    return e;
  };

  auto id = docker->create_container(spec.name, adapters::container_create_body(spec));
  add(j, "create", id ? id->substr(0, 12) : id.error().line(), static_cast<bool>(id));
  if (!id) {
    // An HTTP error is the engine's answer (nothing made); anything else may have lost it.
    create_answer_lost =
        id.error().code != EEXIST && id.error().code != ENOENT && id.error().message.rfind("HTTP ", 0) != 0;
    return unexpected(roll_back("create failed: " + id.error().line()));
  }
  report.container_id = *id;
  if (auto ok = docker->start(*id); !ok) {
    add(j, "start", ok.error().line(), false);
    return unexpected(roll_back("start failed: " + ok.error().line()));
  }
  add(j, "start", "", true);
  if (auto ok = wait_for_api(*docker, *id, spec, run.api_wait); !ok) {
    add(j, "wait_api", ok.error().line(), false);
    return unexpected(roll_back("the new server did not come up: " + ok.error().line()));
  }
  add(j, "wait_api", report.api_url, true);
  if (old_id) {
    auto ok = docker->remove(*old_id);
    add(j, "remove_old", ok ? spec.name + "-old" : ok.error().line(), static_cast<bool>(ok));
  }
  j.finish(ActionOutcome::succeeded, fmt::format("{} runs with a limit of {}", spec.name, gib(spec.memory_limit)));
  return report;
}

std::vector<LoadComparison> load_and_compare(const PreparedDeployment& prepared, const DeployReport& report,
                                             const DeployOptions& options) {
  std::vector<LoadComparison> out;
  const auto& spec = prepared.spec;
  auto endpoint = adapters::parse_endpoint(report.api_url, "deploy");
  for (const auto& model : spec.profile.models) {
    LoadComparison c;
    c.model = model;
    c.limit = spec.memory_limit;
    if (prepared.plan) {
      c.planned_ram = prepared.plan->ram_needed;
      c.planned_vram = prepared.plan->placement.vram;
    }
    if (spec.profile.api != ServerApi::ollama) {
      c.error = "--load speaks Ollama's API only";
      out.push_back(std::move(c));
      continue;
    }
    if (!endpoint) {
      c.error = endpoint.error().line();
      out.push_back(std::move(c));
      continue;
    }
    adapters::OllamaClient ollama(*endpoint, std::chrono::minutes(10));
    const auto started = Clock::now();
    if (auto ok = ollama.load(model, spec.profile.keep_alive); !ok) {
      c.error = ok.error().line();
      out.push_back(std::move(c));
      continue;
    }
    c.load_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (auto ps = ollama.ps()) {
      for (const auto& m : *ps) {
        if (m.name == model || m.model == model) {
          c.size = m.size;
          c.size_vram = m.size_vram;
        }
      }
      if (!c.size) {
        c.error = "loaded, but /api/ps does not list it";
      }
    } else {
      c.error = ps.error().line();
    }
    InventoryOptions io;
    io.root = options.plan.root;
    io.docker_host = options.plan.docker_host;
    io.timeout = options.plan.docker_timeout;
    io.read_memory = true;
    const auto inventory = read_inventory(io);
    if (const auto it = inventory.memory.find(report.container_id); it != inventory.memory.end() && it->second.memory) {
      const auto& m = *it->second.memory;
      if (m.anon && m.file) {
        c.container_bytes = *m.anon + *m.file;
      } else {
        c.container_bytes = m.usage;
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

Expected<RestoreReport, DeployError> restore_stopped(const std::string& docker_host, const std::string& state_dir,
                                                     Confirm confirm) {
  auto journal = adapters::Journal::open(state_dir);
  if (!journal) {
    return unexpected(deploy_error(DeployExit::failed, "deploy --restore: " + journal.error().line()));
  }
  auto records = journal->list(k_max_restore_lookback);
  if (!records) {
    return unexpected(deploy_error(DeployExit::failed, "deploy --restore: " + records.error().line()));
  }
  // Every exclusive stop that no successful restore has undone yet, newest first. Chained exclusive
  // deployments (large-33b stopped ollama, then large-70b stopped large-33b) are undone together: the
  // exclusive servers stop, what they stopped that was not itself one of them starts.
  std::set<std::int64_t> done;
  for (const auto& r : *records) {
    if (r.kind != k_kind_restore || r.outcome != ActionOutcome::succeeded) {
      continue;
    }
    auto doc = nlohmann::json::parse(r.evidence_json, nullptr, false);
    if (doc.is_object() && doc.contains("restores") && doc["restores"].is_array()) {
      for (const auto& id : doc["restores"]) {
        if (id.is_number_integer()) {
          done.insert(id.get<std::int64_t>());
        }
      }
    }
  }
  std::vector<const adapters::JournalRecord*> pending;
  std::set<std::string> exclusive_servers;
  for (const auto& r : *records) {
    if (r.kind == k_kind_exclusive_stop && done.count(r.id) == 0) {
      pending.push_back(&r);
      exclusive_servers.insert(r.server);
    }
  }
  RestoreReport report;
  if (pending.empty()) {
    report.nothing = done.empty() ? "no exclusive deployment has stopped a server"
                                  : "the servers exclusive deployments stopped were restored already";
    return report;
  }
  std::vector<std::pair<std::string, std::string>> to_start;  // name, id as the record planned it
  for (const auto* r : pending) {
    std::map<std::string, std::string> ids;
    auto doc = nlohmann::json::parse(r->evidence_json, nullptr, false);
    if (doc.is_object() && doc.contains("to_stop") && doc["to_stop"].is_array()) {
      for (const auto& c : doc["to_stop"]) {
        if (c.is_object() && c.contains("id") && c["id"].is_string() && c.contains("name") && c["name"].is_string()) {
          ids[c["name"].get<std::string>()] = c["id"].get<std::string>();
        }
      }
    }
    for (const auto& step : r->steps) {
      const bool seen =
          std::any_of(to_start.begin(), to_start.end(), [&](const auto& p) { return p.first == step.detail; });
      if (step.name != "stop" || !step.ok || exclusive_servers.count(step.detail) != 0 || seen) {
        continue;
      }
      const auto it = ids.find(step.detail);
      to_start.emplace_back(step.detail, it != ids.end() ? it->second : step.detail);
    }
  }
  auto endpoint = adapters::parse_endpoint(docker_host, "--docker-host");
  if (!endpoint) {
    return unexpected(deploy_error(DeployExit::usage, endpoint.error().line()));
  }
  auto docker = adapters::DockerClient::connect(*endpoint, k_docker_timeout);
  if (!docker) {
    return unexpected(deploy_error(DeployExit::failed, "deploy --restore: " + docker.error().line()));
  }
  // The exclusive servers still running hold the port and the RAM the others need.
  std::vector<std::string> to_stop;
  for (const auto& name : exclusive_servers) {
    if (auto meta = docker->inspect(name); meta && meta->state.running) {
      to_stop.push_back(name);
    }
  }
  if (!to_stop.empty() && confirm != Confirm::yes) {
    std::string names;
    for (const auto& n : to_stop) {
      names += names.empty() ? n : ", " + n;
    }
    return unexpected(deploy_error(DeployExit::usage,
                                   fmt::format("deploy --restore: {} still runs and holds what the stopped servers "
                                               "need; pass --yes to stop it first",
                                               names)));
  }
  adapters::JournalRecord record;
  record.server = pending.front()->server;
  record.kind = std::string(k_kind_restore);
  record.reason = "restore what exclusive deployments stopped";
  auto restores = nlohmann::json::array();
  for (const auto* r : pending) {
    restores.push_back(r->id);
  }
  record.evidence_json = nlohmann::json{{"restores", restores}}.dump();
  record.started_at_ms = now_ms();
  auto id = journal->begin(record);
  if (!id) {
    return unexpected(deploy_error(DeployExit::failed,
                                   "deploy --restore: not changing anything: the journal could "
                                   "not record it: " +
                                       id.error().line()));
  }
  auto step = [&](const char* name, const std::string& detail, bool ok) {
    (void)journal->add_step(*id, adapters::JournalStep{name, detail, now_ms(), 0, ok});
  };
  for (const auto& name : to_stop) {
    auto ok = docker->stop(name, std::chrono::seconds(30));
    step("stop", ok ? name : name + ": " + ok.error().line(), static_cast<bool>(ok));
    if (ok) {
      report.stopped.push_back(name);
    } else {
      report.failed.push_back(name + ": could not stop it: " + ok.error().line());
    }
  }
  for (const auto& [name, ref] : to_start) {
    if (!report.failed.empty()) {
      break;  // an exclusive server still runs: starting the others beside it is what admission would refuse
    }
    auto ok = docker->start(ref);
    step("start", ok ? name : name + ": " + ok.error().line(), static_cast<bool>(ok));
    if (ok) {
      report.started.push_back(name);
    } else {
      report.failed.push_back(name + ": " + ok.error().line());
    }
  }
  (void)journal->finish(*id, report.failed.empty() ? ActionOutcome::succeeded : ActionOutcome::failed,
                        fmt::format("stopped {}, started {}, {} failed", report.stopped.size(), report.started.size(),
                                    report.failed.size()),
                        std::nullopt, now_ms());
  return report;
}

}  // namespace mw::engine
