#include "engine/fix.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "core/discovery.hpp"
#include "core/ollama.hpp"
#include "probes/cgroup.hpp"
#include "probes/connections.hpp"

namespace mw::engine {

FixTools::FixTools(const Options& options, std::vector<Error>* problems) {
  if (options.mode == RunMode::dry_run) {
    m_chosen = &m_dry.emplace(options.systemd_unit);
    return;
  }
  if (options.docker == DockerUse::connect) {
    if (auto endpoint = adapters::parse_endpoint(options.docker_host, "docker host")) {
      if (auto client = adapters::DockerClient::connect(*endpoint, options.docker_timeout)) {
        m_docker = std::move(client).value();
      } else if (problems != nullptr) {
        problems->push_back(client.error());
      }
    } else if (problems != nullptr) {
      problems->push_back(endpoint.error());
    }
  }
  m_chosen = &m_live.emplace(m_docker ? &*m_docker : nullptr, m_runner, options.systemd_unit, options.api_timeout);
}

using nlohmann::json;

std::string own_container_id(const probes::HostRoot& root) {
  const auto path = root.proc("self/cgroup");
  auto text = probes::read_file(path);
  if (!text) {
    return "";
  }
  auto entries = probes::parse_proc_cgroup(*text, path.string());
  if (!entries) {
    return "";
  }
  for (const auto& e : *entries) {
    if (auto id = probes::container_id_from_cgroup_path(e.path)) {
      return *id;
    }
  }
  return "";
}

namespace {

// The TCP port of an http:// API address; nullopt for unix:// or unparsable addresses.
std::optional<std::uint16_t> api_port(const std::string& url) {
  if (!url.starts_with("http://")) {
    return std::nullopt;
  }
  auto rest = std::string_view(url).substr(7);
  const auto slash = rest.find('/');
  rest = rest.substr(0, slash);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    return std::uint16_t{80};
  }
  const auto port = parse_u64(rest.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(*port);
}

std::string reduction_text(std::optional<std::uint64_t> before, std::optional<std::uint64_t> after) {
  if (!before || !after) {
    return "";
  }
  const double pct = *before == 0 ? 0.0
                                  : 100.0 * (static_cast<double>(*before) - static_cast<double>(*after)) /
                                        static_cast<double>(*before);
  return fmt::format("anon {} → {} ({:+.1f}%)", format_bytes(*before), format_bytes(*after), -pct);
}

json evidence_json(const std::vector<Finding>& findings) {
  json out = json::array();
  for (const auto& f : findings) {
    json ev = json::object();
    for (const auto& e : f.evidence) {
      ev[e.name] = e.value;
    }
    out.push_back({{"detector", to_string(f.detector)},
                   {"severity", to_string(f.severity)},
                   {"summary", f.summary},
                   {"evidence", ev}});
  }
  return out;
}

// Runs the ladder on one server; every step is journaled when `journal` is set.
class Ladder {
 public:
  Ladder(const FixOptions& options, FixEnvironment& env, ServerGauge& gauge, const std::vector<OllamaModel>& loaded,
         ServerFixReport& report)
      : m_options(options),
        m_env(env),
        m_gauge(gauge),
        m_server(report.server),
        m_loaded(loaded),
        m_report(report),
        m_seen_log(env.actions.log().size()) {}

  void run(FixStep first) {
    const bool live = m_options.mode == RunMode::live;
    m_report.kind = first;
    const auto started = m_env.clock.now();
    if (live) {
      adapters::JournalRecord record;
      record.started_at_ms = m_env.wall_ms();
      record.server = m_server.name;
      record.container_id = m_server.container_id;
      record.kind = to_string(first);
      record.reason = m_report.findings.empty() ? std::string("requested")
                                                : std::string(to_string(m_report.findings.front().detector)) + ": " +
                                                      m_report.findings.front().summary;
      record.evidence_json = evidence_json(m_report.findings).dump();
      record.before_bytes = m_report.before_anon;
      auto id = m_env.journal->begin(record);
      if (!id) {
        finish(ActionOutcome::failed, "not acting: the journal could not record the action: " + id.error().line());
        m_report.journal_unavailable = true;
        return;
      }
      m_report.journal_id = *id;
    }
    bool restart_needed = first == FixStep::restart;
    if (first == FixStep::unload) {
      restart_needed = !unload_and_measure();
      if (m_done) {
        return finalize(started);
      }
    }
    if (restart_needed) {
      m_report.kind = FixStep::restart;
      if (drain() && restart() && wait_for_health()) {
        verify();
      }
    }
    finalize(started);
  }

 private:
  // In a dry run the plan says what would happen; steps are only what did happen.
  void note_plan() {
    const auto& log = m_env.actions.log();
    while (m_seen_log < log.size()) {
      if (m_options.mode == RunMode::dry_run) {
        m_report.plan.push_back(log[m_seen_log]);
      }
      ++m_seen_log;
    }
  }

  void step(LadderStep name, std::string detail, Timestamp began, bool ok) {
    note_plan();
    if (m_options.mode == RunMode::dry_run) {
      return;
    }
    FixStepReport s{name, std::move(detail), m_env.clock.now() - began, ok};
    if (m_report.journal_id && m_env.journal != nullptr) {
      adapters::JournalStep js{to_string(s.step), s.detail, m_env.wall_ms() - s.took.count(), s.took.count(), s.ok};
      if (auto ok_write = m_env.journal->add_step(*m_report.journal_id, js); !ok_write) {
        m_journal_problem = ok_write.error();
      }
    }
    m_report.steps.push_back(std::move(s));
  }

  void finish(ActionOutcome outcome, std::string message) {
    m_report.outcome = outcome;
    m_report.message = std::move(message);
    m_done = true;
  }

  void finalize(Timestamp started) {
    m_report.total = m_env.clock.now() - started;
    if (!m_done) {
      finish(m_options.mode == RunMode::dry_run ? ActionOutcome::dry_run : ActionOutcome::succeeded,
             m_options.mode == RunMode::dry_run ? "dry run: nothing was changed" : "fixed");
    }
    note_plan();
    if (m_report.journal_id && m_env.journal != nullptr) {
      auto ok = m_env.journal->finish(*m_report.journal_id, m_report.outcome, m_report.message, m_report.after_anon,
                                      m_env.wall_ms());
      if (!ok) {
        m_journal_problem = ok.error();
      }
    }
    if (m_journal_problem) {
      m_report.message += "; journal: " + m_journal_problem->line();
    }
  }

  // Unloads every loaded model, waits for the memory to settle and measures again.
  // True when that cured the bloat (no restart needed).
  bool unload_and_measure() {
    for (const auto& model : m_loaded) {
      if (model.folded > 0) {
        // Not a model the server knows by that name: the ones beyond what a sample keeps one by one.
        step(LadderStep::unload,
             fmt::format("{} more models were listed than a sample keeps; not unloaded one by one", model.folded),
             m_env.clock.now(), false);
        continue;
      }
      const auto began = m_env.clock.now();
      auto ok = m_env.actions.unload_model(m_server, model.name);
      step(LadderStep::unload, ok ? fmt::format("unloaded {}", model.name) : ok.error().line(), began, ok.has_value());
    }
    if (m_options.mode == RunMode::dry_run) {
      note_plan();
      m_report.plan.push_back("would measure again and restart if anon memory stays high");
      return false;
    }
    const auto began = m_env.clock.now();
    m_env.clock.sleep_until(began + m_options.policy.settle);
    const auto now = m_gauge.measure();
    const auto threshold =
        bloat_threshold(now.models.value_or(std::vector<OllamaModel>{}), m_options.diagnose.thresholds);
    const bool cured = now.anon && *now.anon <= threshold;
    step(LadderStep::settle,
         fmt::format("anon {} after unloading (threshold {})", now.anon ? format_bytes(*now.anon) : "-",
                     format_bytes(threshold)),
         began, cured);
    if (cured) {
      m_report.after_anon = now.anon;
      finish(ActionOutcome::succeeded,
             fmt::format("unloading cured it, no restart: {}", reduction_text(m_report.before_anon, now.anon)));
    }
    return cured;
  }

  bool drain() {
    const auto began = m_env.clock.now();
    m_gauge.disconnect();  // memwarden's own connection is not a client to wait for
    const auto port = api_port(m_server.api_url);
    if (!port || m_server.pid <= 0) {
      step(LadderStep::drain, "no TCP API port or pid known: not waiting for clients", began, true);
      return true;
    }
    if (m_options.mode == RunMode::dry_run) {
      note_plan();
      m_report.plan.push_back(fmt::format("would wait up to {} s until no client is connected to port {}",
                                          m_options.policy.drain_timeout.count() / 1000, *port));
      return true;
    }
    const auto deadline = began + m_options.policy.drain_timeout;
    std::size_t clients = 0;
    for (;;) {
      auto connections = probes::read_connections(m_options.diagnose.sampler.root, m_server.pid);
      if (!connections) {
        step(LadderStep::drain, "connections unreadable, not waiting: " + connections.error().line(), began, true);
        return true;
      }
      clients = probes::count_established_clients(*connections, *port);
      if (clients == 0) {
        step(LadderStep::drain, fmt::format("no client connected to port {}", *port), began, true);
        return true;
      }
      const auto now = m_env.clock.now();
      if (now >= deadline) {
        break;
      }
      m_env.clock.sleep_until(std::min(deadline, now + Duration(250)));
    }
    const auto text = fmt::format("{} client{} still connected to port {} after {} s", clients, clients == 1 ? "" : "s",
                                  *port, m_options.policy.drain_timeout.count() / 1000);
    step(LadderStep::drain, text, began, false);
    finish(ActionOutcome::refused, "not restarting: " + text);
    return false;
  }

  bool restart() {
    const auto began = m_env.clock.now();
    auto ok = m_env.actions.restart(m_server, m_options.policy.stop_timeout);
    step(LadderStep::restart, ok ? "restarted" : ok.error().line(), began, ok.has_value());
    if (!ok) {
      finish(ActionOutcome::failed, "restart failed: " + ok.error().line());
    }
    return ok.has_value();
  }

  bool wait_for_health() {
    if (m_options.mode == RunMode::dry_run) {
      note_plan();
      m_report.plan.push_back(fmt::format("would wait up to {} s for {}/api/version to answer",
                                          m_options.policy.health_timeout.count() / 1000, m_server.api_url));
      return false;
    }
    const auto began = m_env.clock.now();
    if (m_server.api_url.empty() || !m_server.api_url_problem.empty()) {
      step(LadderStep::health_wait, "no usable API address known: not waiting", began, true);
      return true;
    }
    auto endpoint = adapters::parse_endpoint(m_server.api_url, "api");
    if (!endpoint) {
      step(LadderStep::health_wait, endpoint.error().line(), began, false);
      finish(ActionOutcome::failed, "restarted, but the API address is unusable");
      return false;
    }
    const auto deadline = began + m_options.policy.health_timeout;
    std::string last_error;
    for (;;) {
      adapters::OllamaClient client(*endpoint, std::chrono::milliseconds(1000));
      auto version = client.version();
      if (version) {
        step(LadderStep::health_wait, fmt::format("{}/api/version answered {}", m_server.api_url, *version), began,
             true);
        return true;
      }
      last_error = version.error().line();
      const auto now = m_env.clock.now();
      if (now >= deadline) {
        break;
      }
      m_env.clock.sleep_until(std::min(deadline, now + Duration(200)));
    }
    step(LadderStep::health_wait, "no answer: " + last_error, began, false);
    finish(ActionOutcome::failed, fmt::format("restarted, but the API did not answer within {} s: {}",
                                              m_options.policy.health_timeout.count() / 1000, last_error));
    return false;
  }

  void verify() {
    const auto began = m_env.clock.now();
    const auto after = m_gauge.measure().anon;
    m_report.after_anon = after;
    const bool ok = after.has_value();
    step(LadderStep::verify, ok ? reduction_text(m_report.before_anon, after) : "memory after the restart unreadable",
         began, ok);
    if (!ok) {
      finish(ActionOutcome::failed, "restarted, but its memory could not be read afterwards");
      return;
    }
    finish(ActionOutcome::succeeded, "restarted: " + reduction_text(m_report.before_anon, after));
  }

  const FixOptions& m_options;
  FixEnvironment& m_env;
  ServerGauge& m_gauge;
  const InferenceServer& m_server;
  const std::vector<OllamaModel>& m_loaded;
  ServerFixReport& m_report;
  std::size_t m_seen_log;
  bool m_done = false;
  std::optional<Error> m_journal_problem;
};

}  // namespace

LiveGauge::LiveGauge(probes::HostRoot root, std::optional<probes::CgroupLayout> layout, InferenceServer server,
                     std::optional<probes::CgroupLocation> cgroup, std::chrono::milliseconds api_timeout)
    : m_root(std::move(root)), m_layout(std::move(layout)), m_server(std::move(server)), m_cgroup(std::move(cgroup)) {
  if (!m_layout) {
    if (auto detected = probes::detect_cgroup_layout(m_root)) {
      m_layout = *detected;
    }
  }
  if (!m_server.api_url.empty() && m_server.api_url_problem.empty()) {
    if (auto endpoint = adapters::parse_endpoint(m_server.api_url, m_server.name + " API address")) {
      m_api = std::make_unique<adapters::OllamaClient>(*endpoint, api_timeout);
    }
  }
}

ServerReading LiveGauge::measure() {
  ServerReading out;
  if (m_layout && m_cgroup) {
    std::vector<Error> problems;  // optional files missing: what a reading needs is anon
    auto memory = probes::read_cgroup_memory(*m_layout, *m_cgroup, problems);
    if (!memory && memory.error().code == ENOENT && m_server.kind == ServerKind::container) {
      // Restarted or recreated: find the cgroup again.
      if (auto again = probes::locate_container_cgroup(m_root, *m_layout, 0, m_server.container_id)) {
        m_cgroup = *again;
        memory = probes::read_cgroup_memory(*m_layout, *m_cgroup, problems);
      }
    }
    if (memory) {
      out.anon = memory->anon;
    }
  }
  if (m_api) {
    if (auto models = m_api->ps()) {
      out.models = std::move(models).value();
      (void)fold_models(*out.models);
    }
  }
  return out;
}

void LiveGauge::disconnect() {
  if (m_api) {
    m_api->close();
  }
}

std::optional<FixDecision> decide_fix(const FixOptions& options, FixEnvironment& env, const InferenceServer& server,
                                      const ServerReading& last, const std::vector<Finding>& findings,
                                      std::vector<Error>& problems) {
  FixDecision decision;
  auto& report = decision.report;
  report.server = server;
  decision.loaded = last.models.value_or(std::vector<OllamaModel>{});
  std::optional<FixStep> first;
  for (const auto& f : findings) {
    if (f.subject != server.name) {
      continue;
    }
    if (const auto step = first_step(f, decision.loaded)) {
      report.findings.push_back(f);
      first = first ? std::max(*first, *step) : *step;  // restart wins over unload
    }
  }
  if (!first) {
    return std::nullopt;
  }
  report.kind = *first;
  const ServerIdentity identity{server.name, server.container_id, server.labels};
  std::vector<PastAction> past;
  if (env.journal != nullptr) {
    auto since = env.journal->actions_since(server.name, env.wall_ms() - options.policy.budget_window.count());
    if (since) {
      for (const auto& r : *since) {
        const bool counted = r.outcome != ActionOutcome::dry_run && r.outcome != ActionOutcome::refused;
        past.push_back({r.started_at_ms, parse_fix_step(r.kind), counted});
      }
    } else {
      problems.push_back(since.error());
    }
  }
  report.verdict =
      check_eligibility(identity, options.selection, past, env.wall_ms(), options.policy, options.own_container_id);
  if (report.verdict.eligibility == Eligibility::needs_confirmation) {
    const auto question = fmt::format("{} has not opted in (label memwarden.enable=true). {} it now? [y/N] ",
                                      server.name, *first == FixStep::unload ? "Unload its models and fix" : "Restart");
    if (env.confirm && env.confirm(question)) {
      report.verdict.eligibility = Eligibility::allowed;
      report.verdict.reason = "confirmed by the operator";
    } else {
      report.verdict.reason += "; not confirmed (use --yes)";
    }
  }
  if (report.verdict.eligibility != Eligibility::allowed) {
    report.outcome = ActionOutcome::refused;
    report.message = "left alone: " + report.verdict.reason;
    return decision;
  }
  if (options.mode == RunMode::live && env.journal == nullptr) {
    report.outcome = ActionOutcome::failed;
    report.message = "not acting: no journal";
    report.journal_unavailable = true;
    return decision;
  }
  decision.first = first;
  report.before_anon = last.anon;
  return decision;
}

void run_ladder(const FixOptions& options, FixEnvironment& env, ServerGauge& gauge, FixDecision& decision) {
  if (!decision.first) {
    return;
  }
  Ladder ladder(options, env, gauge, decision.loaded, decision.report);
  ladder.run(*decision.first);
}

std::optional<ServerFixReport> fix_server(const FixOptions& options, FixEnvironment& env, Sampler& sampler,
                                          WatchedServer& w, const std::vector<Finding>& findings,
                                          std::vector<Error>& problems) {
  ServerReading last;
  if (!w.history.empty()) {
    if (w.history.back().memory) {
      last.anon = w.history.back().memory->anon;
    }
    last.models = w.history.back().models;
  }
  auto decision = decide_fix(options, env, w.server, last, findings, problems);
  if (!decision) {
    return std::nullopt;
  }
  if (decision->first) {
    if (w.api) {
      w.api->close();  // the sampler's kept-alive connection is memwarden's, not a client to wait for
    }
    LiveGauge gauge(options.diagnose.sampler.root, sampler.layout(), w.server, w.cgroup,
                    options.diagnose.sampler.api_timeout);
    run_ladder(options, env, gauge, *decision);
  }
  return std::move(decision->report);
}

FixResult run_fix(const FixOptions& options, FixEnvironment& env) {
  FixResult result;
  // The same window as `memwarden diagnose`, --lookback included; its problems are the diagnosis's.
  auto sampler = diagnose_window(options.diagnose, env.clock, result.diagnosis, 4);
  for (const auto& w : sampler->servers()) {
    if (auto report = fix_server(options, env, *sampler, *w, result.diagnosis.findings, result.problems)) {
      result.servers.push_back(std::move(*report));
    }
  }
  return result;
}

FixExit fix_exit_code(const FixResult& result) {
  FixExit worst = FixExit::ok;
  const auto raise = [&](FixExit e) { worst = static_cast<int>(e) > static_cast<int>(worst) ? e : worst; };
  for (const auto& s : result.servers) {
    if (s.journal_unavailable) {
      raise(FixExit::journal);
    } else if (s.outcome == ActionOutcome::failed) {
      raise(FixExit::failed);
    } else if (s.outcome == ActionOutcome::refused) {
      raise(FixExit::left_alone);
    }
  }
  if (worst == FixExit::ok && result.servers.empty() &&
      (!result.problems.empty() || !result.diagnosis.problems.empty())) {
    return FixExit::partial;
  }
  return worst;
}

}  // namespace mw::engine
