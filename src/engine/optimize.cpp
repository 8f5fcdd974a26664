#include "engine/optimize.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include "adapters/docker.hpp"
#include "adapters/journal.hpp"
#include "adapters/sample_store.hpp"
#include "core/bytes.hpp"
#include "core/deploy.hpp"
#include "core/discovery.hpp"
#include "engine/inventory.hpp"
#include "engine/plan.hpp"
#include "engine/recreate.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_memory.hpp"

namespace mw::engine {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view k_kind_limit = "optimize_limit";
constexpr std::string_view k_kind_settings = "optimize_settings";
constexpr std::string_view k_kind_undo = "optimize_undo";
constexpr std::size_t k_max_undo_lookback = 1000;  // journal records read to find the changes to undo
constexpr std::int64_t k_history_lookback_ms = 30LL * 24 * 3600 * 1000;
// Raw samples of the last hour: the minutes serve has not rolled up yet. (A raw read takes every subject's
// samples of the window, so it stays short.)
constexpr std::int64_t k_raw_recent_ms = 3600LL * 1000;

// The wall clock, unix ms, for the journal.
std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A whole number as an OLLAMA_* variable holds it, or nullopt.
std::optional<std::uint64_t> parse_count(const std::string& text) {
  std::uint64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  return ec == std::errc() && p == end && !text.empty() ? std::optional<std::uint64_t>(v) : std::nullopt;
}

bool label_true(const ContainerMeta& c, std::string_view key) {
  const auto it = c.labels.find(std::string(key));
  return it != c.labels.end() && it->second == "true";
}

bool named(const OptimizeOptions& o, const ContainerMeta& c) {
  // The name, or the id (at least its first 12 characters, as docker ps shows it).
  return std::any_of(o.named.begin(), o.named.end(),
                     [&](const std::string& n) { return n == c.name || (n.size() >= 12 && c.id.rfind(n, 0) == 0); });
}

// Whether optimize may change the container, and why not.
std::string refusal(const OptimizeOptions& o, const ContainerMeta& c) {
  if (!o.own_container_id.empty() && c.id == o.own_container_id) {
    return "memwarden's own container";
  }
  if (label_true(c, k_label_protect)) {
    return "labelled memwarden.protect=true";
  }
  if (!o.named.empty()) {
    return named(o, c) ? std::string() : std::string("not named on the command line");
  }
  if (!label_true(c, k_label_enable)) {
    return "not opted in: label it memwarden.enable=true, or name it: memwarden optimize --yes " + c.name;
  }
  return {};
}

HostFigures read_host(const probes::HostRoot& root, std::vector<std::string>& problems) {
  HostFigures h;
  auto info = probes::read_meminfo(root);
  if (!info) {
    problems.push_back(info.error().line());
    return h;
  }
  h.mem_total = info->mem_total;
  h.mem_available = info->mem_available;
  if (info->swap_total && info->swap_free) {
    h.swap_used = *info->swap_total > *info->swap_free ? *info->swap_total - *info->swap_free : 0;
  }
  return h;
}

// The peak working set (else anon) of `subject` in the stored history, and the span it covers.
HistoryPeak stored_peak(adapters::SampleStore& store, const std::string& subject, std::int64_t now,
                        std::vector<std::string>& problems) {
  HistoryPeak p;
  std::optional<std::int64_t> oldest;
  std::optional<std::int64_t> newest;
  auto note = [&](std::int64_t at, std::optional<std::uint64_t> v) {
    if (!v) {
      return;
    }
    ++p.samples;
    p.peak = std::max(p.peak.value_or(0), *v);
    oldest = std::min(oldest.value_or(at), at);
    newest = std::max(newest.value_or(at), at);
  };
  const auto since = now - k_history_lookback_ms;
  if (auto aggs = store.aggregates(subject, since, now + 1)) {
    for (const auto& a : *aggs) {
      note(a.minute_ms, a.working_set_max ? a.working_set_max : a.anon_max);
    }
  } else {
    problems.push_back(aggs.error().line());
  }
  // The raw samples of the last hours are not rolled up yet.
  if (auto raw = store.raw(subject, now - k_raw_recent_ms, now + 1)) {
    for (const auto& r : *raw) {
      note(r.at_ms, r.working_set ? r.working_set : r.anon);
    }
  } else {
    problems.push_back(raw.error().line());
  }
  if (oldest && newest) {
    p.span_ms = *newest - *oldest;
  }
  return p;
}

std::optional<std::uint64_t> working_set_of(const Inventory& inv, const std::string& id) {
  const auto it = inv.memory.find(id);
  if (it == inv.memory.end() || !it->second.memory) {
    return std::nullopt;
  }
  return it->second.memory->working_set();
}

std::optional<std::uint64_t> floor_of(const Inventory& inv, const std::string& id) {
  const auto it = inv.memory.find(id);
  if (it == inv.memory.end() || !it->second.memory) {
    return std::nullopt;
  }
  return limit_floor(*it->second.memory);
}

bool changes_limit(const LimitDecision& d) {
  return d.target && (d.action == LimitAction::set || d.action == LimitAction::raise || d.action == LimitAction::lower);
}

// The limit a container will have after the plan (its target when it changes, else what it has).
std::optional<std::uint64_t> limit_after(const OptimizeItem& item) {
  if (item.allowed && changes_limit(item.decision)) {
    return item.decision.target;
  }
  return item.limit;
}

Inventory read_containers(const OptimizeOptions& o) {
  InventoryOptions io;
  io.root = o.root;
  io.docker_host = o.docker_host;
  io.timeout = o.docker_timeout;
  io.read_memory = true;
  return read_inventory(io);
}

// The --for models against the whole host: its RAM once the changes are made (what is free now is not the
// question), less the reserve.
std::vector<ForModel> plan_for_models(const OptimizeOptions& o, std::uint64_t total) {
  std::vector<ForModel> out;
  if (o.for_models.empty()) {
    return out;
  }
  PlanOptions p;
  p.root = o.root;
  p.models = o.for_models;
  p.reserve = o.reserve;
  p.vram = o.vram;
  p.nvml_library = o.nvml_library;
  p.docker_host = o.docker_host;
  p.docker_timeout = o.docker_timeout;
  p.api_timeout = o.api_timeout;
  p.ram = total;
  const auto result = collect_plan(p);
  for (const auto& name : o.for_models) {
    ForModel f;
    f.name = name;
    if (const auto* found = plan_named(result, name)) {
      f.plan = *found;
    } else {
      f.error = error_naming(result, name).value_or("could not be found or sized");
    }
    out.push_back(std::move(f));
  }
  return out;
}

bool any_no_fit(const std::vector<ForModel>& models) {
  return std::any_of(models.begin(), models.end(),
                     [](const ForModel& f) { return f.plan && f.plan->verdict == FitVerdict::no_fit; });
}

}  // namespace

const char* to_string(ChangeKind kind) {
  return kind == ChangeKind::limit ? "limit" : "settings";
}

const char* to_string(ChangeOutcome outcome) {
  switch (outcome) {
    case ChangeOutcome::applied:
      return "applied";
    case ChangeOutcome::failed:
      return "failed";
    case ChangeOutcome::skipped:
      return "skipped";
  }
  return "skipped";
}

Expected<OptimizePlan, Error> prepare_optimize(const OptimizeOptions& o) {
  OptimizePlan plan;
  plan.reserve = o.reserve;
  plan.host = read_host(o.root, plan.problems);
  if (!plan.host.mem_total) {
    return unexpected(Error{"optimize", "the host's MemTotal could not be read: nothing to plan against"});
  }
  const auto total = *plan.host.mem_total;
  const auto inv = read_containers(o);
  if (!inv.docker.reachable) {
    return unexpected(inv.docker.error ? *inv.docker.error : Error{o.docker_host, "Docker is not reachable"});
  }
  for (const auto& p : inv.problems) {
    plan.problems.push_back(p.line());
  }
  if (inv.layout) {
    plan.cgroup_version = inv.layout->mode == probes::CgroupMode::v1 ? CgroupVersion::v1 : CgroupVersion::v2;
  }

  // The stored history, when serve has kept one (never created here).
  std::optional<adapters::SampleStore> store;
  if (!o.state_dir.empty()) {
    std::error_code ec;
    if (fs::exists(fs::path(o.state_dir) / "samples.db", ec)) {
      if (auto opened = adapters::SampleStore::open(o.state_dir)) {
        store = std::move(*opened);
      } else {
        plan.problems.push_back(opened.error().line());
      }
    }
  }

  // The rest first: their limits decide what is left for the servers.
  std::vector<OptimizeItem> servers;
  std::vector<OptimizeItem> rest;
  for (const auto& c : inv.containers) {
    if (!c.state.running) {
      continue;
    }
    OptimizeItem item;
    item.id = c.id;
    item.name = c.name;
    item.server = is_inference_server(c);
    item.not_allowed = refusal(o, c);
    item.allowed = item.not_allowed.empty();
    item.limit = c.memory_limit;
    item.memory_swap = c.memory_swap;
    item.use = working_set_of(inv, c.id);
    item.floor = floor_of(inv, c.id);
    if (auto err = inv.cgroup_errors.find(c.id); err != inv.cgroup_errors.end()) {
      plan.problems.push_back(err->second.line());
    }
    (item.server ? servers : rest).push_back(std::move(item));
  }

  const auto everything = total > o.reserve ? total - o.reserve : 0;
  for (auto& item : rest) {
    LimitInput in;
    in.current = item.limit;
    in.floor = item.floor;
    in.cap = everything;
    if (item.limit) {
      item.basis = "has a limit";
      item.decision.action = LimitAction::keep;
      item.decision.target = item.limit;
      item.decision.why = "only containers without a limit are sized from their history";
      continue;
    }
    HistoryBasis basis;
    if (store) {
      basis = limit_from_history(stored_peak(*store, item.name, o.now_wall_ms, plan.problems));
    } else {
      basis.why = fmt::format("no stored history in {} (memwarden serve keeps it)",
                              o.state_dir.empty() ? std::string("the state directory") : o.state_dir);
    }
    in.wanted = basis.wanted;
    in.why_no_basis = basis.why;
    item.basis = basis.why;
    item.decision = decide_limit(in);
  }

  // What the host can give the servers: the same cap diagnose, status and serve advise with (core/drift.hpp
  // host_server_cap): the other containers by their limit now, or their use when they have none.
  std::vector<OtherContainer> others;
  for (const auto& item : rest) {
    others.push_back(OtherContainer{item.limit, item.use});
  }
  const auto cap = server_cap(total, o.reserve, others);

  // Each server's basis first: the plan of its models, at its settings.
  struct ServerWork {
    const ContainerMeta* meta = nullptr;
    ServerLimitPlan served;
    std::optional<std::uint64_t> wanted;
    std::optional<std::uint64_t> one_at_a_time;  // set when `wanted` holds several models until the settings change
    std::string basis;
  };
  std::vector<ServerWork> work;
  for (auto& item : servers) {
    ServerWork w;
    w.meta = &*std::find_if(inv.containers.begin(), inv.containers.end(),
                            [&](const ContainerMeta& c) { return c.id == item.id; });
    ServerLimitOptions so;
    so.root = o.root;
    so.cap = cap;
    so.reserve = o.reserve;
    so.for_models = o.for_models;
    so.profiles = o.profiles;
    so.api_timeout = o.api_timeout;
    so.nvml_library = o.nvml_library;
    so.vram = o.vram;
    w.served = plan_server_limit(*w.meta, so);
    for (const auto& p : w.served.problems) {
      plan.problems.push_back(fmt::format("{}: {}", item.name, p));
    }
    for (const auto& n : w.served.notes) {
      plan.notes.push_back(fmt::format("{}: {}", item.name, n));
    }
    w.wanted = w.served.limit.wanted;
    w.basis = w.served.limit.why;
    // One at a time holds only once OLLAMA_MAX_LOADED_MODELS=1 is set: while the settings are not applied, the
    // limit holds the models the server may load together.
    ServerEnv env;
    env.env = w.meta->server_env;
    const auto settings = recommend_settings(w.served.models, env, w.wanted.value_or(cap), w.served.headroom_percent);
    const bool one_at_a_time = std::any_of(settings.begin(), settings.end(),
                                           [](const SettingChange& c) { return c.key == "OLLAMA_MAX_LOADED_MODELS"; });
    const bool applied = o.settings == SettingsUse::recreate && item.allowed;
    if (w.wanted && one_at_a_time && !applied) {
      std::uint64_t loaded_together = 3;  // Ollama's default on one GPU or the CPU
      if (auto it = env.env.find("OLLAMA_MAX_LOADED_MODELS"); it != env.env.end()) {
        if (auto n = parse_count(it->second); n && *n > 0) {
          loaded_together = *n;
        }
      }
      std::vector<std::uint64_t> needs;
      for (const auto& m : w.served.models) {
        if (m.plan) {
          needs.push_back(m.plan->ram_needed);
        }
      }
      std::sort(needs.rbegin(), needs.rend());
      std::uint64_t together = 0;
      for (std::size_t i = 0; i < needs.size() && i < loaded_together; ++i) {
        together += needs[i];
      }
      const auto one = *w.wanted;
      w.one_at_a_time = one;
      w.wanted = std::max(one, container_limit_for(together, w.served.headroom_percent));
      w.basis = fmt::format(
          "{} models it may load together need {} (with OLLAMA_MAX_LOADED_MODELS=1, applied with "
          "--recreate, one at a time: {})",
          std::min<std::size_t>(needs.size(), loaded_together), format_bytes(*w.wanted), format_bytes(one));
    }
    work.push_back(std::move(w));
  }

  // Servers share the cap: when what they want together is more, each server that may change gets its share of
  // what the others that keep theirs leave (their limit, or their use), so that the reserve holds.
  std::uint64_t wanted_total = 0;
  std::uint64_t kept = 0;
  std::size_t sharing = 0;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (!servers[i].allowed) {
      kept += servers[i].limit.value_or(servers[i].use.value_or(0));
    } else if (work[i].wanted) {
      wanted_total += round_up_to_step(*work[i].wanted);
      ++sharing;
    }
  }
  const auto left = cap > kept ? cap - kept : 0;
  const bool shared = servers.size() > 1 && wanted_total > left;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    auto& item = servers[i];
    auto& w = work[i];
    LimitInput in;
    in.current = item.limit;
    in.floor = item.floor;
    const bool fixing = std::find(o.fixing.begin(), o.fixing.end(), item.name) != o.fixing.end();
    if (fixing && item.floor) {
      in.floor = round_up_to_step(k_limit_margin);
    }
    in.cap = cap;
    if (shared && w.wanted && item.allowed) {
      const auto share = static_cast<double>(round_up_to_step(*w.wanted)) / static_cast<double>(wanted_total);
      in.cap = static_cast<std::uint64_t>(static_cast<double>(left) * share);
    }
    in.wanted = w.wanted;
    in.why_no_basis = w.served.limit.why;
    in.only_raise = !w.served.limit.complete;
    in.incomplete = w.served.limit.why;
    item.basis = w.basis;
    if (shared && item.allowed) {
      item.basis += fmt::format(
          "; the {} servers that may change want {} together, more than the {} the host can give them: each gets "
          "its share",
          sharing, format_bytes(wanted_total), format_bytes(left));
    }
    if (fixing) {
      item.basis += "; the fix above comes first, so what it uses now is left out (it is read again then)";
    }
    item.decision = decide_limit(in);
    // The settings are those that make the one-at-a-time limit hold, whatever limit is set until they apply.
    auto limit = item.decision.target.value_or(item.limit.value_or(in.cap));
    if (w.one_at_a_time) {
      limit = std::min(round_up_to_step(*w.one_at_a_time), std::max(in.cap, k_limit_step));
    }
    ServerEnv env;
    env.env = w.meta->server_env;
    item.settings = recommend_settings(w.served.models, env, limit, w.served.headroom_percent);
    item.served = std::move(w.served);
  }

  // --for against the whole host.
  plan.for_models = plan_for_models(o, total);

  plan.items = std::move(servers);
  plan.items.insert(plan.items.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
  bool known = true;
  for (const auto& item : plan.items) {
    if (const auto limit = limit_after(item)) {
      plan.limits_total += *limit;
    } else if (item.use) {
      plan.limits_total += *item.use;
    } else {
      known = false;
      plan.problems.push_back(
          fmt::format("{}: no limit and its use could not be read: whether the reserve holds is "
                      "unknown",
                      item.name));
    }
  }
  if (known) {
    plan.reserve_holds = plan.limits_total <= everything;
  }
  return plan;
}

std::vector<PlannedChange> planned_changes(const OptimizePlan& plan, SettingsUse settings) {
  (void)settings;
  std::vector<PlannedChange> out;
  for (const auto& item : plan.items) {
    if (changes_limit(item.decision)) {
      out.push_back({ChangeKind::limit, &item});
    }
  }
  for (const auto& item : plan.items) {
    if (!item.settings.empty()) {
      out.push_back({ChangeKind::settings, &item});
    }
  }
  return out;
}

namespace {

json optional_json(const std::optional<std::uint64_t>& v) {
  return v ? json(*v) : json(nullptr);
}

// The engine's connection, or why there is none.
Result<adapters::DockerClient> connect_docker(const OptimizeOptions& o) {
  auto endpoint = adapters::parse_endpoint(o.docker_host, "--docker-host");
  if (!endpoint) {
    return unexpected(endpoint.error());
  }
  return adapters::DockerClient::connect(*endpoint, o.docker_timeout);
}

// A container's memory now, read from its cgroup.
std::optional<CgroupMemory> memory_now(const probes::HostRoot& root, const std::optional<probes::CgroupLayout>& layout,
                                       const ContainerMeta& meta) {
  if (!layout || !meta.state.running) {
    return std::nullopt;
  }
  auto where = probes::locate_container_cgroup(root, *layout, meta.state.pid, meta.id);
  if (!where) {
    return std::nullopt;
  }
  std::vector<Error> problems;
  auto m = probes::read_cgroup_memory(*layout, *where, problems);
  return m ? std::optional<CgroupMemory>(std::move(*m)) : std::nullopt;
}

// What optimize needs open while it changes things.
struct Applier {
  const OptimizeOptions& o;
  adapters::Journal& journal;
  adapters::DockerClient& docker;
  std::optional<probes::CgroupLayout> layout;

  struct Open {
    std::optional<std::int64_t> id;
    std::string problem;
  };

  Open begin(std::string_view kind, const std::string& name, const std::string& container_id, const std::string& reason,
             const json& evidence, std::optional<std::uint64_t> before) {
    adapters::JournalRecord r;
    r.started_at_ms = wall_now_ms();
    r.server = name;
    r.container_id = container_id;
    r.kind = std::string(kind);
    r.reason = reason;
    r.evidence_json = evidence.dump();
    r.before_bytes = before;
    auto id = journal.begin(r);
    if (!id) {
      return {std::nullopt, id.error().line()};
    }
    return {*id, {}};
  }
  void step(std::int64_t id, const std::string& name, const std::string& detail, bool ok) {
    (void)journal.add_step(id, adapters::JournalStep{name, detail, wall_now_ms(), 0, ok});
  }
  void finish(std::int64_t id, bool ok, const std::string& message, std::optional<std::uint64_t> after = {}) {
    (void)journal.finish(id, ok ? ActionOutcome::succeeded : ActionOutcome::failed, message, after, wall_now_ms());
  }

  // The container as it is now, or the change it cannot take.
  Expected<ContainerMeta, AppliedChange> current(AppliedChange change, const std::string& id_or_name) {
    auto meta = docker.inspect(id_or_name);
    if (!meta) {
      const bool gone =
          meta.error().code == ENOENT || meta.error().message.find("No such container") != std::string::npos;
      change.outcome = gone ? ChangeOutcome::skipped : ChangeOutcome::failed;
      change.detail = gone ? fmt::format("{} is gone (it went away after the plan); nothing was changed", change.name)
                           : fmt::format("{} could not be read: {}", change.name, meta.error().line());
      return unexpected(std::move(change));
    }
    return std::move(*meta);
  }

  // When no container is called `name` but one a record of it names by id is there under another name (set
  // aside by a re-create that was interrupted), renames it back and starts it. Says what it did, or "".
  std::string bring_back(const std::string& name, const std::vector<const adapters::JournalRecord*>& records) {
    if (auto there = docker.inspect(name)) {
      return {};
    } else if (there.error().code != ENOENT && there.error().message.find("No such container") == std::string::npos) {
      return {};
    }
    for (const auto* r : records) {
      if (r->server != name || r->container_id.empty()) {
        continue;
      }
      auto aside = docker.inspect(r->container_id);
      if (!aside || aside->name == name || aside->name.rfind(name + "-old-", 0) != 0) {
        continue;
      }
      auto ok = docker.rename(aside->id, name);
      if (ok && !aside->state.running) {
        ok = docker.start(aside->id);
      }
      return ok ? fmt::format("{}: the container an interrupted re-create set aside as {} is back under its name", name,
                              aside->name)
                : fmt::format("{}: could not bring back {}: {}", name, aside->name, ok.error().line());
    }
    return {};
  }

  // Sets Memory and MemorySwap together (no swap for the container), never below what it uses now plus the
  // margin; reads the limit back from the engine and the cgroup.
  // `planned`: the limit the plan saw (the change is skipped when it is no longer so); nullptr for an undo.
  AppliedChange set_limit(const std::string& id_or_name, const std::string& name, std::uint64_t memory,
                          std::int64_t memory_swap, std::string_view kind, const std::string& reason, json evidence,
                          const std::optional<std::uint64_t>* planned = nullptr) {
    AppliedChange change;
    change.kind = ChangeKind::limit;
    change.name = name;
    auto meta = current(change, id_or_name);
    if (!meta) {
      return std::move(meta.error());
    }
    if (planned != nullptr && meta->memory_limit != *planned) {
      change.detail = fmt::format(
          "{}: its limit changed since the plan read it ({} then, {} now); nothing was "
          "changed: run memwarden optimize again",
          name, planned->has_value() ? format_bytes(**planned) : "none",
          meta->memory_limit ? format_bytes(*meta->memory_limit) : "none");
      return change;
    }
    // optimize's own limits keep a margin above what the container uses; an undo puts back the user's value,
    // which only has to be above what it uses.
    const auto now = memory_now(o.root, layout, *meta);
    const auto floor = !now ? std::nullopt : planned != nullptr ? limit_floor(*now) : use_floor(*now);
    if (!floor) {
      change.detail = fmt::format("{}: its memory use could not be read now; a limit is never set blind", name);
      return change;
    }
    if (memory < *floor) {
      change.detail =
          fmt::format("{}: not set to {}: it uses {} now, and a limit is never set below what a container uses{} ({})",
                      name, format_bytes(memory), now->working_set() ? format_bytes(*now->working_set()) : "?",
                      planned != nullptr ? " plus a margin" : "", format_bytes(*floor));
      return change;
    }
    evidence["id"] = meta->id;
    if (evidence.contains("before")) {
      // What the engine says now, not what the plan read: the value --undo puts back.
      evidence["before"] = json{{"memory", optional_json(meta->memory_limit)},
                                {"memory_swap", meta->memory_swap ? json(*meta->memory_swap) : json(nullptr)}};
    }
    auto rec = begin(kind, name, meta->id, reason, evidence, meta->memory_limit);
    if (!rec.id) {
      change.outcome = ChangeOutcome::failed;
      change.detail = fmt::format("{}: not changed: the journal could not record it: {}", name, rec.problem);
      return change;
    }
    change.journal_id = rec.id;
    auto ok = docker.update_memory(meta->id, static_cast<std::int64_t>(memory), memory_swap);
    step(*rec.id, "update", ok ? fmt::format("Memory {} MemorySwap {}", memory, memory_swap) : ok.error().line(),
         static_cast<bool>(ok));
    if (!ok) {
      change.outcome = ChangeOutcome::failed;
      change.detail = fmt::format("{}: the engine refused the limit: {}", name, ok.error().message);
      finish(*rec.id, false, change.detail);
      return change;
    }
    if (auto back = docker.inspect(meta->id)) {
      change.memory_after = back->memory_limit;
    }
    if (auto m = memory_now(o.root, layout, *meta); m && m->limit) {
      change.cgroup_after = m->limit->bytes;
    }
    const bool verified = change.memory_after == memory;
    change.outcome = verified ? ChangeOutcome::applied : ChangeOutcome::failed;
    change.detail = verified ? fmt::format("{}: limit {} (read back: engine {}, cgroup {})", name, format_bytes(memory),
                                           format_bytes(*change.memory_after),
                                           change.cgroup_after ? format_bytes(*change.cgroup_after) : "unread")
                             : fmt::format("{}: the engine accepted {} but reports {}", name, format_bytes(memory),
                                           change.memory_after ? format_bytes(*change.memory_after) : "no limit");
    step(*rec.id, "read_back", change.detail, verified);
    finish(*rec.id, verified, change.detail, change.memory_after);
    return change;
  }

  // Re-creates the container with `change` (environment, or no limit), rollback-safe, journaled as `kind`.
  AppliedChange recreate(const std::string& id_or_name, const std::string& name, const adapters::RecreateChange& rc,
                         ChangeKind what, std::string_view kind, const std::string& reason, json evidence) {
    AppliedChange change;
    change.kind = what;
    change.name = name;
    auto meta = current(change, id_or_name);
    if (!meta) {
      return std::move(meta.error());
    }
    evidence["id"] = meta->id;
    if (evidence.contains("before")) {
      evidence["before"] = json{{"memory", optional_json(meta->memory_limit)},
                                {"memory_swap", meta->memory_swap ? json(*meta->memory_swap) : json(nullptr)}};
    }
    auto rec = begin(kind, name, meta->id, reason, evidence, meta->memory_limit);
    if (!rec.id) {
      change.outcome = ChangeOutcome::failed;
      change.detail = fmt::format("{}: not changed: the journal could not record it: {}", name, rec.problem);
      return change;
    }
    change.journal_id = rec.id;
    RecreateOptions ro;
    ro.ready_wait = o.ready_wait;
    if (is_inference_server(*meta)) {
      if (auto api = ollama_api_address(*meta)) {
        ro.api_url = api->url;
      }
    }
    ro.on_step = [&](const RecreateStep& s) { step(*rec.id, s.name, s.detail, s.ok); };
    auto done = recreate_container(docker, meta->id, rc, ro);
    if (!done) {
      change.outcome = ChangeOutcome::failed;
      change.detail = fmt::format("{}: re-creating it failed: {}", name, done.error().message);
      for (const auto& l : done.error().lines) {
        change.detail += "; " + l;
      }
      finish(*rec.id, false, change.detail);
      return change;
    }
    if (auto back = docker.inspect(done->new_id)) {
      change.memory_after = back->memory_limit;
    }
    change.outcome = ChangeOutcome::applied;
    change.detail = fmt::format("{}: re-created as {} and answering", name, done->new_id.substr(0, 12));
    finish(*rec.id, true, change.detail);
    return change;
  }
};

json env_json(const std::vector<SettingChange>& settings, bool before) {
  json out = json::object();
  for (const auto& s : settings) {
    if (before) {
      out[s.key] = s.before ? json(*s.before) : json(nullptr);
    } else {
      out[s.key] = s.after;
    }
  }
  return out;
}

}  // namespace

OptimizeApply apply_optimize(const OptimizePlan& plan, const OptimizeOptions& o, const std::atomic<bool>* stop) {
  OptimizeApply out;
  std::vector<PlannedChange> todo;
  for (const auto& c : planned_changes(plan, o.settings)) {
    if (c.item->allowed && (c.kind == ChangeKind::limit || o.settings == SettingsUse::recreate)) {
      todo.push_back(c);
    }
  }
  if (todo.empty()) {
    return out;
  }
  auto journal = adapters::Journal::open(o.state_dir);
  if (!journal) {
    out.journal_problem = journal.error().line();
    return out;
  }
  (void)journal->mark_interrupted_stale();
  auto docker = connect_docker(o);
  if (!docker) {
    for (const auto& c : todo) {
      out.changes.push_back(AppliedChange{c.kind,
                                          c.item->name,
                                          ChangeOutcome::failed,
                                          "Docker could not be reached: " + docker.error().line(),
                                          {},
                                          {},
                                          {}});
    }
    return out;
  }
  Applier a{o, *journal, *docker, {}};
  if (auto layout = probes::detect_cgroup_layout(o.root)) {
    a.layout = *layout;
  }
  for (const auto& c : todo) {
    if (stop != nullptr && stop->load()) {
      out.interrupted = true;
      break;
    }
    const auto& item = *c.item;
    // A server whose settings are re-created gets its new limit in the same re-create: a limit for one model at a
    // time must not hold before OLLAMA_MAX_LOADED_MODELS=1 does (and stays as it was if the re-create fails).
    const bool in_recreate = o.settings == SettingsUse::recreate && !item.settings.empty();
    if (c.kind == ChangeKind::limit && in_recreate) {
      continue;
    }
    if (c.kind == ChangeKind::limit) {
      const auto target = *item.decision.target;
      json evidence{{"name", item.name},
                    {"before",
                     {{"memory", optional_json(item.limit)},
                      {"memory_swap", item.memory_swap ? json(*item.memory_swap) : json(nullptr)}}},
                    {"after", {{"memory", target}, {"memory_swap", target}}}};
      out.changes.push_back(a.set_limit(item.id, item.name, target, static_cast<std::int64_t>(target), k_kind_limit,
                                        item.basis, std::move(evidence), &item.limit));
    } else {
      adapters::RecreateChange rc;
      for (const auto& s : item.settings) {
        rc.env[s.key] = s.after;
      }
      json evidence{{"name", item.name},
                    {"before_env", env_json(item.settings, true)},
                    {"after_env", env_json(item.settings, false)}};
      if (changes_limit(item.decision)) {
        const auto target = static_cast<std::int64_t>(*item.decision.target);
        rc.memory = target;
        rc.memory_swap = target;
        evidence["before"] = json::object();  // filled in from the engine just before
        evidence["after"] = json{{"memory", target}, {"memory_swap", target}};
      }
      std::string reason;
      for (const auto& s : item.settings) {
        reason += (reason.empty() ? "" : "; ") + fmt::format("{}={}: {}", s.key, s.after, s.why);
      }
      out.changes.push_back(
          a.recreate(item.id, item.name, rc, ChangeKind::settings, k_kind_settings, reason, std::move(evidence)));
    }
  }
  return out;
}

UndoReport undo_optimize(const OptimizeOptions& o, const std::atomic<bool>* stop) {
  UndoReport out;
  auto journal = adapters::Journal::open(o.state_dir);
  if (!journal) {
    out.journal_problem = journal.error().line();
    return out;
  }
  (void)journal->mark_interrupted_stale();
  auto records = journal->list(k_max_undo_lookback);
  if (!records) {
    out.journal_problem = records.error().line();
    return out;
  }
  std::set<std::int64_t> undone;
  for (const auto& r : *records) {
    if (r.kind != k_kind_undo || r.outcome != ActionOutcome::succeeded) {
      continue;
    }
    auto doc = json::parse(r.evidence_json, nullptr, false);
    if (!doc.is_object() || !doc.contains("undoes")) {
      continue;
    }
    const auto ids = doc["undoes"].is_array() ? doc["undoes"] : json::array({doc["undoes"]});
    for (const auto& id : ids) {
      if (id.is_number_integer()) {
        undone.insert(id.get<std::int64_t>());
      }
    }
  }
  // Newest first: applied, or begun by a writer that is gone (interrupted: it may have been applied). A record
  // still in progress belongs to an optimize that runs now, and is left to it.
  std::vector<const adapters::JournalRecord*> todo;
  bool running = false;
  for (const auto& r : *records) {
    if ((r.kind == k_kind_limit || r.kind == k_kind_settings) && !undone.count(r.id)) {
      if (r.outcome == ActionOutcome::succeeded || r.outcome == ActionOutcome::interrupted) {
        todo.push_back(&r);
      } else if (r.outcome == ActionOutcome::in_progress) {
        running = true;
      }
    }
  }
  if (running) {
    out.busy =
        "an optimize is making a change right now (its journal record is in progress): run --undo once it "
        "has ended";
    return out;
  }
  if (todo.empty()) {
    out.nothing = "nothing to undo: the journal holds no optimize change that is not undone already";
    return out;
  }
  auto docker = connect_docker(o);
  if (!docker) {
    out.journal_problem = "Docker could not be reached: " + docker.error().line();
    return out;
  }
  Applier a{o, *journal, *docker, {}};
  if (auto layout = probes::detect_cgroup_layout(o.root)) {
    a.layout = *layout;
  }
  // One container at a time, all its records at once: the value before the oldest change is the one to put
  // back, and a container that needs re-creating (a limit taken away, settings) is re-created once.
  std::vector<std::string> names;
  for (const auto* r : todo) {
    if (std::find(names.begin(), names.end(), r->server) == names.end()) {
      names.push_back(r->server);
    }
  }
  for (const auto& name : names) {
    if (stop != nullptr && stop->load()) {
      out.interrupted = true;
      break;
    }
    // A re-create interrupted between setting the old container aside and making the new one leaves it under
    // NAME-old-<id>: it is brought back under its name first.
    if (auto why = a.bring_back(name, todo); !why.empty()) {
      out.notes.push_back(why);
    }
    std::optional<json> limit_before;  // the oldest limit record's "before"
    std::map<std::string, std::optional<std::string>> env_before;
    json ids = json::array();
    std::string unreadable;
    for (const auto* r : todo) {  // newest first: older records overwrite
      if (r->server != name) {
        continue;
      }
      auto doc = json::parse(r->evidence_json, nullptr, false);
      if (!doc.is_object()) {
        unreadable = fmt::format("journal record {}: its evidence is unreadable", r->id);
        continue;
      }
      ids.push_back(r->id);
      if (r->kind == k_kind_limit) {
        limit_before = doc.value("before", json::object());
      } else {
        if (doc.contains("before")) {  // a re-create that also set the limit
          limit_before = doc.value("before", json::object());
        }
        const auto before_env = doc.value("before_env", json::object());
        for (const auto& [key, value] : before_env.items()) {
          env_before[key] = value.is_string() ? std::optional<std::string>(value.get<std::string>()) : std::nullopt;
        }
      }
    }
    if (!unreadable.empty()) {
      out.changes.push_back(AppliedChange{ChangeKind::limit, name, ChangeOutcome::failed, unreadable, {}, {}, {}});
      continue;
    }
    const json evidence{{"undoes", ids}, {"name", name}};
    const auto reason = fmt::format("undo of journal record{} {}", ids.size() == 1 ? "" : "s", ids.dump());
    std::optional<std::uint64_t> memory;  // nullopt: no limit before
    std::int64_t swap = 0;
    if (limit_before) {
      const auto m = limit_before->value("memory", json(nullptr));
      if (m.is_number_unsigned() && m.get<std::uint64_t>() > 0) {
        memory = m.get<std::uint64_t>();
        swap = static_cast<std::int64_t>(*memory);
        const auto sw = limit_before->value("memory_swap", json(nullptr));
        if (sw.is_number_integer() && (sw.get<std::int64_t>() == -1 || sw.get<std::int64_t>() > 0)) {
          swap = sw.get<std::int64_t>();
        }
      }
    }
    if (env_before.empty() && limit_before && memory) {
      out.changes.push_back(a.set_limit(name, name, *memory, swap, k_kind_undo, reason, evidence));
      continue;
    }
    // Settings, or a limit to take away, which the engine cannot do in place (moby#22516): the container is made
    // again with the environment and the limit it had.
    adapters::RecreateChange rc;
    rc.env = env_before;
    if (limit_before) {
      rc.memory = memory ? static_cast<std::int64_t>(*memory) : 0;
      rc.memory_swap = memory ? swap : 0;
    }
    out.changes.push_back(a.recreate(name, name, rc, env_before.empty() ? ChangeKind::limit : ChangeKind::settings,
                                     k_kind_undo, reason, evidence));
  }
  if (stop != nullptr && stop->load()) {
    out.interrupted = true;  // Ctrl-C while the last one was put back
  }
  return out;
}

OptimizeExit undo_exit(const UndoReport& report) {
  if (report.journal_problem) {
    return OptimizeExit::journal;
  }
  if (report.busy) {
    return OptimizeExit::failed;
  }
  if (report.interrupted) {
    return OptimizeExit::interrupted;
  }
  if (report.nothing) {
    return OptimizeExit::partial;
  }
  for (const auto& c : report.changes) {
    if (c.outcome != ChangeOutcome::applied) {
      return OptimizeExit::failed;
    }
  }
  return OptimizeExit::ok;
}

Figures read_figures(const OptimizeOptions& o) {
  Figures f;
  std::vector<std::string> problems;
  f.host = read_host(o.root, problems);
  const auto inv = read_containers(o);
  for (const auto& c : inv.containers) {
    if (c.state.running) {
      f.rows.push_back(FiguresRow{c.name, c.memory_limit, working_set_of(inv, c.id)});
    }
  }
  return f;
}

OptimizeRun run_optimize(const OptimizeOptions& o, OptimizeMode mode, const std::function<FixResult()>& fix,
                         const std::atomic<bool>* stop) {
  OptimizeRun run;
  run.mode = mode;
  run.before = read_figures(o);
  // A host too small for a --for model changes nothing, the fix step included.
  if (!o.for_models.empty() && run.before.host.mem_total) {
    auto for_models = plan_for_models(o, *run.before.host.mem_total);
    if (any_no_fit(for_models)) {
      OptimizePlan early;
      early.host = run.before.host;
      early.reserve = o.reserve;
      early.for_models = std::move(for_models);
      run.plan = std::move(early);
      return run;
    }
  }
  if (fix) {
    run.fix = fix();  // audit, diagnose and the fix ladder (a dry run without --yes)
  }
  if (stop != nullptr && stop->load()) {
    run.applied.interrupted = true;
    return run;
  }
  auto prepare_options = o;
  if (run.fix && mode == OptimizeMode::show) {
    for (const auto& s : run.fix->servers) {
      if (s.outcome == ActionOutcome::dry_run) {
        prepare_options.fixing.push_back(s.server.name);
      }
    }
  }
  auto plan = prepare_optimize(prepare_options);
  if (!plan) {
    run.plan_error = plan.error();
    return run;
  }
  run.plan = std::move(*plan);
  if (mode == OptimizeMode::show || any_no_fit(run.plan->for_models)) {
    return run;  // a host too small for --for changes nothing
  }
  run.applied = apply_optimize(*run.plan, o, stop);
  run.after = read_figures(o);
  if (!o.for_models.empty() && !run.applied.interrupted) {
    ModelTestOptions t;
    t.plan.root = o.root;
    t.plan.models = o.for_models;
    t.plan.reserve = o.reserve;
    t.plan.docker_host = o.docker_host;
    t.plan.docker_timeout = o.docker_timeout;
    t.plan.api_timeout = o.api_timeout;
    t.plan.vram = o.vram;
    t.plan.nvml_library = o.nvml_library;
    for (const auto& item : run.plan->items) {
      if (item.server && item.allowed) {
        t.server = item.name;
        break;
      }
    }
    auto result = run_model_test(t);
    if (result) {
      run.readiness = std::move(*result);
    } else {
      run.readiness_error = result.error();
    }
  }
  return run;
}

OptimizeExit optimize_exit(const OptimizeRun& run) {
  if (run.applied.interrupted) {
    return OptimizeExit::interrupted;
  }
  if (run.applied.journal_problem) {
    return OptimizeExit::journal;
  }
  if (run.plan_error) {
    return OptimizeExit::partial;
  }
  if (run.plan) {
    for (const auto& f : run.plan->for_models) {
      if (f.plan && f.plan->verdict == FitVerdict::no_fit) {
        return OptimizeExit::no_fit;
      }
    }
  }
  for (const auto& c : run.applied.changes) {
    if (c.outcome == ChangeOutcome::failed) {
      return OptimizeExit::failed;
    }
  }
  if (run.fix && fix_exit_code(*run.fix) == FixExit::failed) {
    return OptimizeExit::failed;
  }
  if (run.plan) {
    for (const auto& f : run.plan->for_models) {
      if (!f.plan) {
        return OptimizeExit::partial;
      }
    }
    if (!run.plan->problems.empty()) {
      return OptimizeExit::partial;  // what could not be read is in problems; the rest went on
    }
  }
  if (run.readiness_error) {
    return OptimizeExit::partial;
  }
  return OptimizeExit::ok;
}

}  // namespace mw::engine
