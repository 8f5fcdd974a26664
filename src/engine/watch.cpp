#include "engine/watch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <thread>

#include "core/bytes.hpp"
#include "core/deploy.hpp"
#include "core/discovery.hpp"
#include "core/drift.hpp"
#include "core/text.hpp"
#include "probes/host_memory.hpp"
#include "probes/ollama_store.hpp"

namespace mw::engine {

using nlohmann::json;

namespace {

std::string kind_text(const ServerFixReport& report) {
  return report.kind ? to_string(*report.kind) : "fix";
}

// The installed models the drift check plans per server, the largest on disk first: it runs within a round, and
// each is one /api/show (at most api_timeout), so a slow server holds a round for at most 1 + 4 of them.
constexpr std::size_t k_drift_models = 4;
constexpr Duration k_refresh_every{60'000};      // containers are listed again at least this often
constexpr Duration k_retry_docker_every{5'000};  // while the engine is unreachable
constexpr std::int64_t k_maintain_every_ms = 60'000;
// The most running containers a daemon watches (docs/serve.md, "Memory").
constexpr std::size_t k_max_containers = 500;

// What a server's newest sample said, for the policy.
ServerReading last_reading(const WatchedServer& w) {
  ServerReading out;
  if (!w.history.empty()) {
    if (w.history.back().memory) {
      out.anon = w.history.back().memory->anon;
    }
    out.models = w.history.back().models;
  }
  return out;
}

std::optional<Severity> worse(std::optional<Severity> a, Severity b) {
  if (!a || static_cast<int>(b) > static_cast<int>(*a)) {
    return b;
  }
  return a;
}

}  // namespace

// The real senders for what the environment leaves empty.
WatchEnvironment with_defaults(WatchEnvironment env) {
  if (!env.send) {
    env.send = [](const adapters::NotifyTarget& t, const adapters::Notification& n) {
      return adapters::send_notification(t, n, std::chrono::milliseconds(5000));
    };
  }
  if (!env.log) {
    env.log = [](const std::string& line) { fmt::print(stderr, "memwarden: {}\n", line); };
  }
  // Every line goes out as one line: names, labels and answers from outside cannot forge another.
  env.log = [inner = std::move(env.log)](const std::string& line) { inner(escape_control(line)); };
  return env;
}

// ---------------------------------------------------------------- job runners

ThreadJobRunner::~ThreadJobRunner() {
  wait_all();
}

void ThreadJobRunner::start(std::function<void()> job) {
  std::erase_if(m_running, [](Running& r) {
    if (!r.ended->load()) {
      return false;
    }
    r.thread.join();
    return true;
  });
  auto ended = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([job = std::move(job), ended] {
    job();
    ended->store(true);
  });
  m_running.push_back({std::move(thread), std::move(ended)});
}

void ThreadJobRunner::wait_all() {
  for (auto& r : m_running) {
    r.thread.join();
  }
  m_running.clear();
}

namespace {

// Everything a fix job needs, copied from the main loop when it starts: it shares nothing with the rounds.
struct JobSetup {
  FixOptions options;
  FixDecision decision;
  std::optional<probes::CgroupLayout> layout;
  std::optional<probes::CgroupLocation> cgroup;
  std::string state_dir;
  std::string docker_host;
  std::chrono::milliseconds docker_timeout{k_docker_timeout};
  std::string systemd_unit;
  actions::ServerActions* actions = nullptr;  // injected by tests; null: its own live or dry-run actions
};

// The ladder with the job's own journal connection, Docker client, Ollama client and gauge.
void run_job(JobSetup& job, Clock& clock, const std::function<std::int64_t()>& wall_ms, std::vector<Error>& problems) {
  auto& report = job.decision.report;
  const bool live = job.options.mode == RunMode::live;
  std::optional<adapters::Journal> journal;
  if (live) {
    auto opened = adapters::Journal::open(job.state_dir);
    if (!opened) {
      report.outcome = ActionOutcome::failed;
      report.message = "not acting: the journal could not be opened: " + opened.error().line();
      report.journal_unavailable = true;
      return;
    }
    journal = std::move(opened).value();
  }
  const auto api_timeout = job.options.diagnose.sampler.api_timeout;
  std::optional<FixTools> tools;
  if (job.actions == nullptr) {
    FixTools::Options o;
    o.mode = job.options.mode;
    o.docker = report.server.kind == ServerKind::container && job.decision.first ? DockerUse::connect : DockerUse::none;
    o.docker_host = job.docker_host;
    o.docker_timeout = job.docker_timeout;
    o.api_timeout = api_timeout;
    o.systemd_unit = job.systemd_unit;
    tools.emplace(o, &problems);
  }
  actions::ServerActions& chosen = job.actions != nullptr ? *job.actions : tools->actions();
  LiveGauge gauge(job.options.diagnose.sampler.root, job.layout, report.server, job.cgroup, api_timeout);
  FixEnvironment env{clock, wall_ms, chosen, journal ? &*journal : nullptr, {}};
  run_ladder(job.options, env, gauge, job.decision);
}

}  // namespace

// ---------------------------------------------------------------- the watch

Watch::Watch(ServeConfig config, WatchEnvironment env)
    : m_config(std::move(config)), m_env(with_defaults(std::move(env))) {
  if (m_env.jobs != nullptr) {
    m_runner = m_env.jobs;
  } else {
    m_own_runner = std::make_unique<ThreadJobRunner>();
    m_runner = m_own_runner.get();
  }
  m_limiter = std::make_unique<RateLimiter>(m_config.notify_min_interval.count(), 30);
  m_action_limiter = std::make_unique<RateLimiter>(0, 30);
  m_interval = m_config.interval;
  m_own_container_id = own_container_id(m_env.root);
  make_sampler();
  make_inventory();
  auto empty = std::make_shared<DaemonSnapshot>();
  empty->version = m_env.version;
  empty->reserve_bytes = m_config.thresholds.reserve;
  m_snapshot = std::move(empty);
}

Watch::~Watch() {
  m_runner->wait_all();  // jobs hand their reports to this object: it outlives them
}

void Watch::log(const std::string& line) const {
  m_env.log(line);
}

void Watch::make_sampler() {
  SamplerOptions o;
  o.root = m_env.root;
  o.docker_host = m_config.docker_host;
  o.docker_timeout = m_config.docker_timeout;
  o.api_timeout = m_config.api_timeout;
  o.targets = m_config.servers;
  // Enough samples for the slowest detector: the growth fit wants a span; keep ~10 minutes, at least 64.
  const auto per_interval = std::max<std::int64_t>(m_config.interval.count(), 1);
  o.capacity = static_cast<std::size_t>(std::clamp<std::int64_t>(600'000 / per_interval, 64, 3600));
  m_sampler = std::make_unique<Sampler>(std::move(o), m_env.clock);
}

void Watch::make_inventory() {
  InventoryOptions o;
  o.root = m_env.root;
  o.docker_host = m_config.docker_host;
  o.timeout = m_config.docker_timeout;
  o.max_containers = k_max_containers;
  m_inventory = std::make_unique<InventoryReader>(std::move(o));
}

void Watch::open_storage() {
  if (auto journal = adapters::Journal::open(m_config.state_dir)) {
    m_journal = std::move(journal).value();
    if (auto marked = m_journal->mark_interrupted_stale(); !marked) {
      log(marked.error().line());
    }
  } else {
    log(journal.error().line() + "; no action will be taken without a journal");
  }
  adapters::SampleStoreOptions so;
  so.raw_retention = m_config.raw_retention;
  so.aggregate_retention = m_config.aggregate_retention;
  so.max_bytes = m_config.history_max_bytes;
  if (auto store = adapters::SampleStore::open(m_config.state_dir, so)) {
    m_store = std::move(store).value();
  } else {
    m_history_error = store.error();
    log(store.error().line() + "; running without history");
  }
}

// ---------------------------------------------------------------- threads

void Watch::on_docker_event(const adapters::DockerEvent& event) {
  {
    std::lock_guard lock(m_mutex);
    if (m_pending.events.size() < 1000) {
      m_pending.events.push_back(event);
    }
    m_pending.woken = true;
  }
  m_cv.notify_all();
}

void Watch::on_docker_stream(bool connected, const std::optional<Error>& why) {
  // Only a change is news: an engine that stays away is retried quietly (with backoff).
  if (m_stream_connected.exchange(connected) == connected) {
    return;
  }
  {
    std::lock_guard lock(m_mutex);
    m_pending.refresh = true;
    m_pending.woken = true;
  }
  if (!connected && why) {
    log("docker events: " + why->line());
  }
  m_cv.notify_all();
}

void Watch::request_stop() {
  m_stopping = true;
  wake();
}

void Watch::wake() {
  {
    std::lock_guard lock(m_mutex);
    m_pending.woken = true;
  }
  m_cv.notify_all();
}

bool Watch::wait_until(Timestamp deadline) {
  std::unique_lock lock(m_mutex);
  const auto until = std::chrono::steady_clock::time_point(deadline.time_since_epoch());
  const bool woken = m_cv.wait_until(lock, until, [this] { return m_pending.woken; });
  m_pending.woken = false;
  return woken;
}

std::shared_ptr<const DaemonSnapshot> Watch::snapshot() const {
  std::lock_guard lock(m_mutex);
  return m_snapshot;
}

void Watch::request_bench_refresh() {
  m_bench_asked = true;
}

void Watch::refresh_bench() {
  if (!m_store) {
    return;
  }
  const auto now = m_env.wall_ms();
  const bool asked = m_bench_asked.exchange(false);
  // A wall clock set back counts as due.
  if (!asked && m_bench_read_ms && now >= *m_bench_read_ms && now - *m_bench_read_ms < k_bench_read_every_ms) {
    return;
  }
  m_bench_read_ms = now;
  auto read = read_bench_figures(*m_store, m_bench_newest_id);
  if (!read) {
    if (m_logged_problems.insert(read.error().line()).second) {
      log(read.error().line() + "; the benchmark figures in /metrics stay as they were");
    }
    return;
  }
  if (!read->has_value()) {
    return;  // no run stored since
  }
  for (const auto& p : (*read)->problems) {
    if (m_logged_problems.insert(p.line()).second) {
      log(p.line() + "; that benchmark run is left out of /metrics");
    }
  }
  m_bench_newest_id = (*read)->newest_id;
  m_bench = std::move((*read)->figures);
}

void Watch::publish(std::shared_ptr<DaemonSnapshot> snap) {
  std::lock_guard lock(m_mutex);
  m_snapshot = std::move(snap);
}

// ---------------------------------------------------------------- Docker

void Watch::refresh_containers() {
  m_last_refresh = m_env.clock.now();
  const bool first = !m_refreshed_once;
  m_refreshed_once = true;
  const bool was_reachable = m_docker_status.reachable;
  auto inv = m_inventory->read();
  m_docker_status = inv.docker;
  if (!inv.docker.reachable) {
    if ((was_reachable || first) && inv.docker.error) {
      log("docker: " + inv.docker.error->line());
    }
    // The container list is unknown now, but the servers' histories stay: a hiccup of the engine
    // must not make the detectors start over.
    m_containers.clear();
    m_locations.clear();
    return;
  }
  if (!was_reachable) {
    log(fmt::format("docker: connected to {} (API {})", m_config.docker_host, inv.docker.api_version));
  }
  if (inv.left_out > 0 && !m_said_too_many_containers) {
    log(fmt::format("docker: {} containers run; memwarden watches the first {} of them",
                    inv.containers.size() + inv.left_out, k_max_containers));
  }
  m_said_too_many_containers = inv.left_out > 0;
  m_inventory_problems = std::move(inv.problems);
  if (inv.layout) {
    m_layout = inv.layout;
  }
  m_sampler->rediscover(inv);
  m_locations = std::move(inv.cgroups);
  m_containers = std::move(inv.containers);
}

std::set<std::string> Watch::handle_pending() {
  Pending pending;
  {
    std::lock_guard lock(m_mutex);
    pending = std::move(m_pending);
    m_pending = Pending{};
  }
  bool refresh = pending.refresh;
  for (const auto& e : pending.events) {
    refresh = true;
    if (e.action == "oom") {
      const auto name = e.name.empty() ? e.id.substr(0, 12) : e.name;
      log(fmt::format("docker: {} ran out of memory (oom event)", name));
      adapters::Notification n;
      n.event = "oom";
      n.severity = Severity::critical;
      n.subject = name;
      n.what = "oom";
      n.title = fmt::format("{}: out of memory", name);
      n.message = fmt::format("The kernel's OOM killer killed a process in container {}.", name);
      n.details = json{{"container_id", e.id}};
      (void)notify(std::move(n), name + "|oom", *m_action_limiter);
    }
  }
  const auto now = m_env.clock.now();
  const auto since = now - m_last_refresh;
  if (refresh || !m_refreshed_once || since >= k_refresh_every ||
      (!m_docker_status.reachable && since >= k_retry_docker_every)) {
    refresh_containers();
  }
  std::set<std::string> requested;
  for (auto& name : pending.fix_requests) {
    m_announced.erase(name);  // an explicit request is always reported
    requested.insert(std::move(name));
  }
  return requested;
}

// ---------------------------------------------------------------- sampling

void Watch::sample_containers(DaemonSnapshot& snap) {
  // Server containers were just read by the sampler: use that sample instead of reading twice.
  std::map<std::string, const WatchedServer*> servers_by_id;
  for (const auto& w : m_sampler->servers()) {
    if (!w->server.container_id.empty()) {
      servers_by_id.emplace(w->server.container_id, w.get());
    }
  }
  for (const auto& meta : m_containers) {
    ContainerSnapshot c;
    c.meta = meta;
    if (const auto it = servers_by_id.find(meta.id); it != servers_by_id.end() && !it->second->history.empty()) {
      c.memory = it->second->history.back().memory;
      if (!c.memory) {
        c.memory_error = Error{meta.name, "cgroup unreadable this sample"};
      }
    } else if (const auto where = m_locations.find(meta.id); m_layout && where != m_locations.end()) {
      std::vector<Error> problems;
      auto memory = probes::read_cgroup_memory(*m_layout, where->second, problems);
      if (memory) {
        c.memory = std::move(memory).value();
      } else if (memory.error().code == ENOENT) {
        m_refresh_next = true;  // recreated or gone: list again next round
      } else {
        c.memory_error = memory.error();
      }
      for (auto& p : problems) {
        snap.status.problems.push_back(std::move(p));
      }
    }
    snap.status.containers.push_back(std::move(c));
  }
  sort_by_working_set(snap.status.containers);
}

void Watch::tick() {
  const auto requested = handle_pending();
  const auto started = m_env.clock.now();
  auto snap = std::make_shared<DaemonSnapshot>();
  snap->version = m_env.version;
  snap->reserve_bytes = m_config.thresholds.reserve;
  snap->taken_at_ms = m_env.wall_ms();

  collect_jobs();
  {
    std::set<std::string> fixing;
    for (const auto& [name, job] : m_jobs) {
      fixing.insert(name);
    }
    m_sampler->set_fixing(std::move(fixing));
  }
  m_sampler->sample();
  snap->status.host = m_sampler->last_host();  // its problems come with the sampler's, below
  snap->status.docker = m_docker_status;
  if (const auto mode = m_sampler->cgroup_mode()) {
    snap->cgroup_mode = *mode;
  }
  sample_containers(*snap);
  if (!m_gpu || (!m_gpu->available() && m_env.clock.now() >= m_gpu_retry)) {
    probes::NvmlOptions nvml;
    nvml.library = m_config.nvml_library;
    m_gpu = std::make_unique<probes::GpuReader>(nvml);
    m_gpu_retry = m_env.clock.now() + Duration(300'000);
  }
  snap->status.gpu = m_gpu->read(m_env.root);
  check_drift(*snap);  // before the detectors: the unlimited finding names the planned limit

  auto findings = run_detectors(m_sampler->states(), m_sampler->host(), m_config.thresholds);
  if (!m_drift.empty()) {
    findings.insert(findings.end(), m_drift.begin(), m_drift.end());
    std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
      return a.severity != b.severity ? a.severity > b.severity : a.subject < b.subject;
    });
  }
  hold_findings_of_jobs(findings);
  act(findings, requested);
  collect_jobs();  // jobs that ended at once (inline in tests; a dry run)
  if (m_refresh_next) {
    m_refresh_next = false;
    std::lock_guard lock(m_mutex);
    m_pending.refresh = true;
  }

  for (const auto& w : m_sampler->servers()) {
    snap->servers.push_back({w->server, w->api_version,
                             w->history.empty() ? std::nullopt : std::optional<ServerSample>(w->history.back()),
                             m_jobs.count(w->server.name) > 0});
    for (const auto detector : k_detectors) {
      if (detector != Detector::host_pressure) {
        snap->detectors.push_back({w->server.name, detector, std::nullopt});
      }
    }
  }
  snap->detectors.push_back({"host", Detector::host_pressure, std::nullopt});
  for (const auto& f : m_drift) {  // drift of containers that are not servers: a state while it lasts
    const bool known = std::any_of(snap->detectors.begin(), snap->detectors.end(), [&](const DetectorState& d) {
      return d.subject == f.subject && d.detector == Detector::drift;
    });
    if (!known) {
      snap->detectors.push_back({f.subject, Detector::drift, std::nullopt});
    }
  }
  for (const auto& f : findings) {
    for (auto& d : snap->detectors) {
      if (d.subject == f.subject && d.detector == f.detector) {
        d.severity = worse(d.severity, f.severity);
      }
    }
  }
  snap->findings = std::move(findings);
  snap->status.problems.insert(snap->status.problems.end(), m_inventory_problems.begin(), m_inventory_problems.end());
  for (const auto& p : m_sampler->problems()) {
    snap->status.problems.push_back(p);
  }
  m_sampler->clear_problems();
  for (const auto& p : snap->status.problems) {
    const auto line = p.line();
    if (m_logged_problems.insert(line).second) {
      log(line);
    }
  }
  if (m_logged_problems.size() > 1000) {
    m_logged_problems.clear();
  }

  record_history(*snap);
  notify_changes(*snap);
  ++m_samples_total;
  snap->samples_total = m_samples_total;
  snap->sample_seconds = static_cast<double>((m_env.clock.now() - started).count()) / 1000.0;
  snap->actions = m_actions;
  snap->notifications = m_notifications;
  snap->history_ok = !m_history_error.has_value();
  snap->history_error = m_history_error;
  refresh_bench();
  snap->bench = m_bench;
  publish(std::move(snap));
}

// ---------------------------------------------------------------- drift from the optimized state

void Watch::check_drift(DaemonSnapshot& snap) {
  if (m_config.optimize_auto == OptimizeAuto::off) {
    m_drift.clear();
    m_drift_at.reset();
  } else {
    const auto now = m_env.clock.now();
    const bool due = !m_drift_at || now < *m_drift_at || now - *m_drift_at >= m_config.optimize_interval;
    if (due && m_docker_status.reachable) {
      m_drift_at = now;
      m_drift = find_drift(snap, now);
    }
  }
  // Between checks: a container gone, or one that got a limit, is no longer drift.
  std::map<std::string, const ContainerSnapshot*> running;
  for (const auto& c : snap.status.containers) {
    running.emplace(c.meta.name, &c);
  }
  std::erase_if(m_drift, [&](const Finding& f) {
    const auto it = running.find(f.subject);
    const bool about_a_limit =
        std::any_of(f.evidence.begin(), f.evidence.end(), [](const Evidence& e) { return e.name == "limit_bytes"; });
    return it == running.end() || (!about_a_limit && it->second->meta.memory_limit.has_value());
  });
  // The advice status shows for the containers without a limit.
  std::map<std::string, const InferenceServer*> servers;
  for (const auto& w : m_sampler->servers()) {
    if (!w->server.container_id.empty()) {
      servers.emplace(w->server.container_id, &w->server);
    }
  }
  for (auto& c : snap.status.containers) {
    if (!c.meta.state.running || c.meta.memory_limit) {
      continue;
    }
    if (const auto it = servers.find(c.meta.id); it != servers.end()) {
      c.advised_limit = it->second->planned_limit;
      c.advised_basis = it->second->planned_basis;
    } else if (!is_inference_server(c.meta)) {
      c.advised_basis = peak_basis(c.meta.name);
    }
  }
}

std::vector<Finding> Watch::find_drift(const DaemonSnapshot& snap, Timestamp now) {
  const auto& mi = snap.status.host.meminfo;
  if (!mi || !mi->mem_total) {
    return {};  // the sampler reports /proc/meminfo; what the host can give is unknown until it is read
  }
  const auto reserve = m_config.thresholds.reserve;
  const auto cap = host_server_cap(*mi->mem_total, reserve, snap.status.containers);
  LimitAdviceOptions lo;
  lo.root = m_env.root;
  lo.reserve = reserve;
  lo.api_timeout = m_config.api_timeout;
  lo.profiles = configured_profiles(m_config);
  lo.nvml_library = m_config.nvml_library;
  lo.plan = m_env.plan_limit;
  lo.max_models = k_drift_models;
  std::map<std::string, const WatchedServer*> servers;
  for (const auto& w : m_sampler->servers()) {
    if (!w->server.container_id.empty()) {
      servers.emplace(w->server.container_id, w.get());
    }
  }
  std::vector<DriftSubject> subjects;
  for (const auto& c : snap.status.containers) {
    if (!c.meta.state.running) {
      continue;
    }
    DriftSubject s;
    s.name = c.meta.name;
    const auto protect = c.meta.labels.find(std::string(k_label_protect));
    s.excluded = (!m_own_container_id.empty() && c.meta.id == m_own_container_id) ||
                 (protect != c.meta.labels.end() && protect->second == "true");
    s.limit = c.meta.memory_limit;
    if (c.memory) {
      s.use = c.memory->working_set();
    }
    const auto watched = servers.find(c.meta.id);
    s.inference_server = watched != servers.end() || is_inference_server(c.meta);
    // A server a fix job works on is left alone: the job owns its API.
    if (watched != servers.end() && m_jobs.count(c.meta.name) == 0) {
      const auto plan = plan_container(c.meta, cap, lo);
      const auto floor = c.memory ? limit_floor(*c.memory) : std::nullopt;
      if (!s.limit) {
        auto advice = advise_server_limit(plan.limit, floor, cap);
        if (!advice.limit && !plan.problems.empty()) {
          advice.basis += "; " + plan.problems.front();
        }
        m_sampler->set_planned_limit(c.meta.name, advice.limit, std::move(advice.basis));
      } else {
        s.plan = plan.limit;
        s.floor = floor;
        s.cap = cap;
      }
    }
    subjects.push_back(std::move(s));
  }
  return detect_drift(subjects, now);
}

// ---------------------------------------------------------------- acting

FixOptions Watch::fix_options() const {
  FixOptions o;
  o.diagnose.sampler.root = m_env.root;
  o.diagnose.sampler.docker_host = m_config.docker_host;
  o.diagnose.sampler.docker_timeout = m_config.docker_timeout;
  o.diagnose.sampler.api_timeout = m_config.api_timeout;
  o.diagnose.thresholds = m_config.thresholds;
  o.diagnose.interval = m_config.interval;
  o.policy = m_config.policy;
  o.selection = Selection::automatic;  // the daemon only ever acts on servers that opted in
  o.mode = m_config.auto_fix == AutoFix::dry_run ? RunMode::dry_run : RunMode::live;
  o.own_container_id = m_own_container_id;
  return o;
}

void Watch::act(const std::vector<Finding>& findings, const std::set<std::string>& requested) {
  const auto options = fix_options();
  // Holds that ran out (also of servers that are gone): the map stays as small as the servers held now.
  std::erase_if(m_hold_until, [now = m_env.clock.now()](const auto& hold) { return now >= hold.second; });
  for (const auto& w : m_sampler->servers()) {
    const auto& name = w->server.name;
    const auto models =
        w->history.empty() || !w->history.back().models ? std::vector<OllamaModel>{} : *w->history.back().models;
    const bool fixable = std::any_of(findings.begin(), findings.end(), [&](const Finding& f) {
      return f.subject == name && first_step(f, models).has_value();
    });
    const bool was_requested = requested.count(name) > 0;
    if (m_jobs.count(name) > 0) {
      if (was_requested) {
        log(fmt::format("fix requested for {}: a fix of it is already running", name));
      }
      continue;  // one job per server: its findings start nothing more while it runs
    }
    if (!fixable) {
      m_announced.erase(name);  // the episode is over
      if (was_requested) {
        log(fmt::format("fix requested for {}: nothing to fix", name));
      }
      continue;
    }
    if (m_config.auto_fix == AutoFix::off && !was_requested) {
      continue;
    }
    if (m_stopping) {
      return;  // stopping: no new action
    }
    if (const auto hold = m_hold_until.find(name); hold != m_hold_until.end()) {
      if (m_env.clock.now() < hold->second && !was_requested) {
        continue;
      }
      m_hold_until.erase(hold);
    }
    if (m_jobs.size() >= k_max_fix_jobs) {
      continue;  // its turn comes when a job ends; the finding is still there then
    }
    // The policy only: decide_fix acts on nothing (the job brings its own actions).
    actions::DryRunActions unused(m_config.systemd_unit);
    FixEnvironment fenv{m_env.clock, m_env.wall_ms, unused, m_journal ? &*m_journal : nullptr, {}};
    std::vector<Error> problems;
    auto decision = decide_fix(options, fenv, w->server, last_reading(*w), findings, problems);
    for (const auto& p : problems) {
      log(p.line());
    }
    if (!decision) {
      continue;
    }
    if (!decision->first) {
      take_report(name, decision->report);  // left alone, or no journal
      continue;
    }
    start_job(*w, std::move(*decision), findings);
  }
}

void Watch::start_job(WatchedServer& w, FixDecision decision, const std::vector<Finding>& findings) {
  const auto name = w.server.name;
  Job job;
  std::copy_if(findings.begin(), findings.end(), std::back_inserter(job.findings),
               [&](const Finding& f) { return f.subject == name; });
  if (w.api) {
    w.api->close();  // the sampler's connection is memwarden's, not a client for the drain to wait for
  }
  auto setup = std::make_shared<JobSetup>();
  setup->options = fix_options();
  setup->decision = std::move(decision);
  setup->layout = m_sampler->layout();
  setup->cgroup = w.cgroup;
  setup->state_dir = m_config.state_dir;
  setup->docker_host = m_config.docker_host;
  setup->docker_timeout = m_config.docker_timeout;
  setup->systemd_unit = m_config.systemd_unit;
  setup->actions = m_env.actions;
  if (setup->options.mode == RunMode::live) {
    const auto& report = setup->decision.report;
    log(fmt::format("fix {}: {} starting ({})", name, kind_text(report),
                    report.findings.empty() ? "requested" : to_string(report.findings.front().detector)));
  }
  m_jobs.emplace(name, std::move(job));
  ++m_jobs_running;
  // The sampler leaves the server's API to the job from the next sample on (tick() tells it).
  auto body = [this, name, setup, loop = std::this_thread::get_id()] {
    std::vector<Error> problems;
    try {
      run_job(*setup, m_env.clock, m_env.wall_ms, problems);
    } catch (const std::exception& e) {
      setup->decision.report.outcome = ActionOutcome::failed;
      setup->decision.report.message = fmt::format("internal error in the fix: {}", e.what());
    }
    {
      std::lock_guard lock(m_mutex);
      m_job_results.push_back({name, std::move(setup->decision.report), std::move(problems)});
      // From another thread: the loop takes the report in at once. Within the round it is taken in anyway.
      m_pending.woken = m_pending.woken || std::this_thread::get_id() != loop;
    }
    m_cv.notify_all();
  };
  // A dry run changes nothing and waits for nothing: it runs within the round.
  JobRunner& runner = setup->options.mode == RunMode::dry_run ? static_cast<JobRunner&>(m_in_round) : *m_runner;
  try {
    runner.start(std::move(body));
  } catch (const std::exception& e) {  // no thread to be had: nothing ran
    m_jobs.erase(name);
    --m_jobs_running;
    ServerFixReport failed = std::move(setup->decision.report);
    failed.outcome = ActionOutcome::failed;
    failed.message = fmt::format("not acting: the fix could not be started: {}", e.what());
    m_hold_until[name] = m_env.clock.now() + m_config.policy.cooldown;
    take_report(name, failed);
  }
}

void Watch::collect_jobs() {
  std::deque<JobResult> ended;
  {
    std::lock_guard lock(m_mutex);
    ended.swap(m_job_results);
  }
  for (auto& r : ended) {
    m_jobs.erase(r.server);
    --m_jobs_running;
    for (const auto& p : r.problems) {
      log(p.line());
    }
    take_report(r.server, r.report);
  }
}

void Watch::finish_jobs() {
  if (!m_jobs.empty()) {
    log(fmt::format("waiting for {} fix{} to end", m_jobs.size(), m_jobs.size() == 1 ? "" : "es"));
  }
  m_runner->wait_all();
  collect_jobs();
}

void Watch::hold_findings_of_jobs(std::vector<Finding>& findings) const {
  if (m_jobs.empty()) {
    return;
  }
  std::erase_if(findings, [&](const Finding& f) { return m_jobs.count(f.subject) > 0; });
  for (const auto& [name, job] : m_jobs) {
    findings.insert(findings.end(), job.findings.begin(), job.findings.end());
  }
}

void Watch::take_report(const std::string& name, const ServerFixReport& report) {
  const bool ran = report.journal_id.has_value() || report.journal_unavailable;
  const bool succeeded = report.outcome == ActionOutcome::succeeded;
  if (ran && !succeeded) {
    m_hold_until[name] = m_env.clock.now() + m_config.policy.cooldown;
  }
  const bool restarted = report.kind == FixStep::restart &&
                         std::any_of(report.steps.begin(), report.steps.end(),
                                     [](const FixStepReport& st) { return st.step == LadderStep::restart && st.ok; });
  if (restarted) {
    m_sampler->forget_history(name);  // a new process: its predecessor's samples say nothing about it
    m_refresh_next = true;
  }
  const bool quiet_repeat = (report.outcome == ActionOutcome::refused && !ran) ||
                            report.outcome == ActionOutcome::dry_run || report.journal_unavailable;
  if (quiet_repeat && !m_announced.insert(name).second) {
    return;  // said once per episode: the finding is still there and so is the reason
  }
  if (report.kind) {  // a job's report always has one (decide_fix chose it)
    ++m_actions[{*report.kind, report.outcome}];
  }
  log(fmt::format("fix {}: {} {}: {}", name, kind_text(report), to_string(report.outcome), report.message));
  adapters::Notification n;
  n.event = "action";
  n.subject = name;
  n.what = kind_text(report);
  n.severity = report.outcome == ActionOutcome::failed    ? Severity::critical
               : report.outcome == ActionOutcome::refused ? Severity::warning
                                                          : Severity::info;
  n.title = fmt::format("{}: {} {}", name, kind_text(report), to_string(report.outcome));
  n.message = report.message;
  n.details = json{{"outcome", to_string(report.outcome)},
                   {"before_anon_bytes", report.before_anon ? json(*report.before_anon) : json(nullptr)},
                   {"after_anon_bytes", report.after_anon ? json(*report.after_anon) : json(nullptr)},
                   {"journal_id", report.journal_id ? json(*report.journal_id) : json(nullptr)}};
  (void)notify(std::move(n), name + "|action|" + kind_text(report) + "|" + to_string(report.outcome),
               *m_action_limiter);
}

// ---------------------------------------------------------------- history and notifications

bool Watch::history_has_room() {
  if (m_config.history_min_free == 0) {
    return true;
  }
  // The state directory is memwarden's own, not a path under the host root.
  auto space = probes::read_disk_space(probes::HostRoot("/"), m_config.state_dir);
  if (!space || space->available >= m_config.history_min_free) {
    return true;  // unknown: the write itself will tell
  }
  const Error paused{m_config.state_dir,
                     fmt::format("less than {} free on its file system (history.min_free): samples are not written, "
                                 "so that the journal of actions keeps its room",
                                 format_bytes(m_config.history_min_free))};
  if (!m_history_error || m_history_error->message != paused.message) {
    log("history: " + paused.line());
  }
  m_history_error = paused;
  return false;
}

void Watch::record_history(const DaemonSnapshot& snap) {
  if (!m_store || !history_has_room()) {
    return;
  }
  const auto at = snap.taken_at_ms;
  std::vector<adapters::StoredSample> batch;
  adapters::StoredSample host;
  host.at_ms = at;
  host.subject = "host";
  if (const auto& mi = snap.status.host.meminfo) {
    host.mem_available = mi->mem_available;
    host.usage = mi->used();
    host.swap = mi->swap_used();
    host.limit = mi->mem_total;
  }
  if (const auto& psi = snap.status.host.pressure) {
    if (psi->some) {
      host.psi_some_avg10 = psi->some->avg10;
    }
    if (psi->full) {
      host.psi_full_avg10 = psi->full->avg10;
    }
  }
  batch.push_back(std::move(host));
  std::map<std::string, const ServedServer*> servers;
  for (const auto& s : snap.servers) {
    servers.emplace(s.server.name, &s);
  }
  const auto fill_models = [](adapters::StoredSample& row, const ServedServer& s) {
    if (s.last && s.last->models) {
      std::uint64_t size = 0;
      std::uint64_t vram = 0;
      std::uint64_t count = 0;
      for (const auto& m : *s.last->models) {
        size += m.size;
        vram += m.size_vram;
        count += m.folded > 0 ? m.folded : 1;
      }
      row.models_bytes = size;
      row.models_vram_bytes = vram;
      row.models_loaded = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, UINT32_MAX));
    }
  };
  const auto fill_memory = [](adapters::StoredSample& row, const CgroupMemory& m) {
    row.usage = m.usage;
    row.working_set = m.working_set();
    row.anon = m.anon;
    row.file = m.file;
    row.swap = m.swap;
    if (m.limit && m.limit->bytes) {
      row.limit = m.limit->bytes;
    }
  };
  for (const auto& c : snap.status.containers) {
    if (!c.memory) {
      continue;
    }
    adapters::StoredSample row;
    row.at_ms = at;
    row.subject = c.meta.name;
    fill_memory(row, *c.memory);
    if (const auto it = servers.find(c.meta.name); it != servers.end()) {
      fill_models(row, *it->second);
      servers.erase(it);
    }
    batch.push_back(std::move(row));
  }
  for (const auto& [name, s] : servers) {  // host processes
    adapters::StoredSample row;
    row.at_ms = at;
    row.subject = name;
    if (s->last && s->last->memory) {
      fill_memory(row, *s->last->memory);
    }
    fill_models(row, *s);
    batch.push_back(std::move(row));
  }
  auto written = m_store->append(batch);
  if (written && at - m_last_maintain_ms >= k_maintain_every_ms) {
    m_last_maintain_ms = at;
    written = m_store->maintain(at);
  }
  if (!written) {
    if (!m_history_error || m_history_error->message != written.error().message) {
      log("history: " + written.error().line() + "; still sampling, serving and acting");
    }
    m_history_error = written.error();
  } else if (m_history_error) {
    log("history: writing again");
    m_history_error.reset();
  }
}

bool Watch::notify(adapters::Notification n, const std::string& key, RateLimiter& limiter) {
  if (m_config.notify_targets.empty()) {
    return true;
  }
  n.at_ms = m_env.wall_ms();
  n.host = m_env.hostname;
  n.subject = escape_control(n.subject);
  n.title = escape_control(n.title);
  n.message = escape_control(n.message);
  if (!limiter.allow(key, n.at_ms)) {
    for (const auto& t : m_config.notify_targets) {
      ++m_notifications[{t.name, "suppressed"}];
    }
    return false;
  }
  bool all = true;
  for (const auto& t : m_config.notify_targets) {
    auto kind = adapters::parse_notify_kind(t.kind, "notify target " + t.name);
    if (!kind) {
      log(kind.error().line());
      ++m_notifications[{t.name, "failed"}];
      all = false;
      continue;
    }
    const adapters::NotifyTarget target{t.name, *kind, t.url};
    if (auto sent = m_env.send(target, n); sent) {
      ++m_notifications[{t.name, "sent"}];
    } else {
      ++m_notifications[{t.name, "failed"}];
      log(sent.error().line());
      all = false;
    }
  }
  return all;
}

void Watch::notify_changes(const DaemonSnapshot& snap) {
  std::map<std::pair<std::string, Detector>, const Finding*> now;
  for (const auto& f : snap.findings) {
    const auto key = std::make_pair(f.subject, f.detector);
    if (const auto it = now.find(key); it == now.end() || f.severity > it->second->severity) {
      now[key] = &f;
    }
  }
  // The log says every change.
  for (const auto& [key, f] : now) {
    const auto old = m_active.find(key);
    if (old == m_active.end() || f->severity > old->second) {
      log(fmt::format("finding: {} {} ({}): {}", f->subject, to_string(f->detector), to_string(f->severity),
                      f->summary));
    }
  }
  for (const auto& [key, severity] : m_active) {
    if (now.count(key) == 0) {
      log(fmt::format("resolved: {} {}", key.first, to_string(key.second)));
    }
  }
  m_active.clear();
  for (const auto& [key, f] : now) {
    m_active[key] = f->severity;
  }
  // The receivers hear until what they were told matches what is true: a finding that appears or gets
  // worse, and one that went away. The limiter holds a flapping finding back; the next rounds catch up.
  const auto min = m_config.notify_min_severity;
  for (const auto& [key, f] : now) {
    if (f->severity < min) {
      continue;
    }
    const auto told = m_told.find(key);
    if (told != m_told.end() && f->severity <= told->second) {
      told->second = f->severity;  // became less severe but is still there: nothing to say
      continue;
    }
    adapters::Notification n;
    n.event = "finding";
    n.severity = f->severity;
    n.subject = f->subject;
    n.what = to_string(f->detector);
    n.title = fmt::format("{}: {} ({})", f->subject, n.what, to_string(f->severity));
    n.message = f->action.empty() ? f->summary : f->summary + " " + f->action;
    json evidence = json::object();
    for (const auto& e : f->evidence) {
      evidence[e.name] = {{"value", e.value}, {"text", e.text}};
    }
    n.details = json{{"evidence", evidence}, {"remedy", to_string(f->remedy)}};
    if (notify(std::move(n), key.first + "|" + to_string(key.second), *m_limiter)) {
      m_told[key] = f->severity;
    }
  }
  for (auto it = m_told.begin(); it != m_told.end();) {
    const auto& key = it->first;
    if (const auto f = now.find(key); f != now.end() && f->second->severity >= min) {
      ++it;
      continue;
    }
    adapters::Notification n;
    n.event = "resolved";
    n.severity = Severity::info;
    n.subject = key.first;
    n.what = to_string(key.second);
    n.title = fmt::format("{}: {} resolved", key.first, n.what);
    n.message = fmt::format("{} no longer reports {}.", key.first, n.what);
    const auto limiter_key = key.first + "|" + n.what;
    it = notify(std::move(n), limiter_key, *m_limiter) ? m_told.erase(it) : std::next(it);
  }
}

// ---------------------------------------------------------------- configuration

void Watch::reload(ServeConfig config) {
  request_bench_refresh();  // a reload (SIGHUP) also reads the stored benchmark runs again, at the next tick
  const auto keep = [&](auto& field, const auto& old, const char* key) {
    if (field != old) {
      log(fmt::format("reload: {} changes only with a restart of memwarden; keeping the running value", key));
      field = old;
    }
  };
  keep(config.listen, m_config.listen, "listen");
  keep(config.allow_remote, m_config.allow_remote, "allow_remote");
  keep(config.state_dir, m_config.state_dir, "state_dir");
  keep(config.docker_host, m_config.docker_host, "docker_host");
  const bool new_sampler = config.servers != m_config.servers || config.interval != m_config.interval ||
                           config.api_timeout != m_config.api_timeout ||
                           config.docker_timeout != m_config.docker_timeout;
  const bool new_limiter = config.notify_min_interval != m_config.notify_min_interval;
  if (config.optimize_auto != m_config.optimize_auto || config.optimize_interval != m_config.optimize_interval) {
    m_drift_at.reset();  // checked again at the next round
  }
  if (config.nvml_library != m_config.nvml_library) {
    m_gpu.reset();  // loaded again with the new library at the next round
  }
  m_config = std::move(config);
  if (new_sampler) {
    make_sampler();
    make_inventory();
    m_refresh_next = true;
  }
  if (new_limiter) {
    m_limiter = std::make_unique<RateLimiter>(m_config.notify_min_interval.count(), 30);
  }
  if (m_config.notify_targets.empty()) {
    m_told.clear();  // nobody to tell
  }
  std::lock_guard lock(m_mutex);
  m_interval = m_config.interval;
  m_pending.refresh = m_pending.refresh || m_refresh_next;
}

bool Watch::request_fix(const std::string& server) {
  {
    std::lock_guard lock(m_mutex);
    if (m_pending.fix_requests.size() >= 100) {
      return false;
    }
    m_pending.fix_requests.push_back(server);
    m_pending.woken = true;
  }
  m_cv.notify_all();
  return true;
}

Duration Watch::interval() const {
  std::lock_guard lock(m_mutex);
  return m_interval;
}

}  // namespace mw::engine
