#include "cli/serve.hpp"

#include <fmt/format.h>
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/diagnose.hpp"
#include "cli/history.hpp"
#include "cli/metrics.hpp"
#include "cli/status.hpp"
#include "core/bytes.hpp"
#include "core/discovery.hpp"
#include "core/duration.hpp"
#include "core/text.hpp"
#include "probes/gpu.hpp"
#include "probes/host_memory.hpp"
#include "probes/ollama_store.hpp"

namespace mw::cli {

using adapters::ServerRequest;
using adapters::ServerResponse;
using nlohmann::json;

namespace {

constexpr Duration k_refresh_every{60'000};      // containers are listed again at least this often
constexpr Duration k_retry_docker_every{5'000};  // while the engine is unreachable
constexpr std::int64_t k_maintain_every_ms = 60'000;
// What one JSON answer may hold (docs/serve.md, "HTTP endpoint"): it is built whole in memory.
constexpr std::size_t k_max_api_records = 1000;
constexpr Duration k_max_api_window{86'400'000};
constexpr std::size_t k_max_api_raw_rows = 900;
// The most running containers a daemon watches (docs/serve.md, "Memory").
constexpr std::size_t k_max_containers = 500;

ServerResponse json_response(int status, const json& body) {
  ServerResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump(2, ' ', false, json::error_handler_t::replace) + "\n";  // argv may hold invalid UTF-8
  return r;
}

ServerResponse error_response(int status, const std::string& message) {
  return json_response(status, json{{"error", message}});
}

// "%20" and "+" as a space, "%xx" as that byte; a malformed escape stays as it is.
std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Query parameter `name` of "a=1&b=2", percent-decoded; nullopt when absent.
std::optional<std::string> query_param(const std::string& query, std::string_view name) {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto part = rest.substr(0, amp);
    const auto eq = part.find('=');
    if (part.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// Equal length and contents, in time independent of where they differ.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
  }
  return diff == 0;
}

std::optional<Severity> worse(std::optional<Severity> a, Severity b) {
  if (!a || static_cast<int>(b) > static_cast<int>(*a)) {
    return b;
  }
  return a;
}

// Memory a burst took (a large answer parsed, a big scrape rendered) goes back to the system once the
// allocator holds more than this unused.
constexpr std::size_t k_trim_above_bytes = 2U << 20;

// After a trim the free chunks stay counted (their pages are given back, not the chunks), so what matters
// is how much more lies free than after the last trim.
void give_back_memory() {
  static std::size_t free_after_last_trim = 0;
  const auto free_now = ::mallinfo2().fordblks;
  if (free_now > free_after_last_trim + k_trim_above_bytes) {
    ::malloc_trim(0);
    free_after_last_trim = ::mallinfo2().fordblks;
  } else if (free_now < free_after_last_trim) {
    free_after_last_trim = free_now;  // the free memory was used again
  }
}

}  // namespace

Result<std::string> read_token_file(const std::string& path) {
  auto text = probes::read_regular_file(path, k_max_token_file_bytes);
  if (!text) {
    return unexpected(text.error());
  }
  std::error_code ec;
  const auto perms = std::filesystem::status(path, ec).permissions();
  if (!ec && (perms & std::filesystem::perms::others_read) != std::filesystem::perms::none) {
    return fail(path, "the token file can be read by every user; make it private (chmod 600)");
  }
  const auto first = text->find_first_not_of(" \t\r\n");
  const auto last = text->find_last_not_of(" \t\r\n");
  const auto token = first == std::string::npos ? std::string() : text->substr(first, last - first + 1);
  if (token.empty()) {
    return fail(path, "the token file is empty");
  }
  if (token.find_first_of(" \t\r\n") != std::string::npos) {
    return fail(path, "the token must be one line without spaces");
  }
  return token;
}

namespace {

// The real senders for what the environment leaves empty.
ServeEnvironment with_defaults(ServeEnvironment env) {
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

}  // namespace

Daemon::Daemon(ServeConfig config, ServeEnvironment env)
    : m_config(std::move(config)), m_env(with_defaults(std::move(env))) {
  m_limiter = std::make_unique<RateLimiter>(m_config.notify_min_interval.count(), 30);
  m_action_limiter = std::make_unique<RateLimiter>(0, 30);
  m_interval = m_config.interval;
  m_own_container_id = own_container_id(m_env.root);
  make_sampler();
  auto empty = std::make_shared<DaemonSnapshot>();
  empty->version = m_env.version;
  empty->reserve_bytes = m_config.thresholds.reserve;
  m_snapshot = std::move(empty);
  if (!m_config.token_file.empty()) {
    if (auto token = read_token_file(m_config.token_file)) {
      m_token = *token;
    } else {
      log("token file: " + token.error().line() + "; POST /api/v1/fix stays off");
    }
  }
}

Daemon::~Daemon() = default;

void Daemon::log(const std::string& line) const {
  m_env.log(line);
}

void Daemon::make_sampler() {
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

void Daemon::open_storage() {
  if (auto journal = adapters::Journal::open(m_config.state_dir)) {
    m_journal = std::move(journal).value();
    if (auto marked = m_journal->mark_interrupted_stale(); !marked) {
      log(marked.error().line());
    }
    if (auto reader = adapters::Journal::open(m_config.state_dir)) {
      std::lock_guard lock(m_reader_mutex);
      m_reader_journal = std::move(reader).value();
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
    if (auto reader = adapters::SampleStore::open(m_config.state_dir, so)) {
      std::lock_guard lock(m_reader_mutex);
      m_reader_store = std::move(reader).value();
    }
  } else {
    m_history_error = store.error();
    log(store.error().line() + "; running without history");
  }
}

// ---------------------------------------------------------------- threads

void Daemon::on_docker_event(const adapters::DockerEvent& event) {
  {
    std::lock_guard lock(m_mutex);
    if (m_pending.events.size() < 1000) {
      m_pending.events.push_back(event);
    }
    m_pending.woken = true;
  }
  m_cv.notify_all();
}

void Daemon::on_docker_stream(bool connected, const std::optional<Error>& why) {
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

void Daemon::request_stop() {
  m_stopping = true;
  wake();
}

void Daemon::wake() {
  {
    std::lock_guard lock(m_mutex);
    m_pending.woken = true;
  }
  m_cv.notify_all();
}

bool Daemon::wait_until(Timestamp deadline) {
  std::unique_lock lock(m_mutex);
  const auto until = std::chrono::steady_clock::time_point(deadline);
  const bool woken = m_cv.wait_until(lock, until, [this] { return m_pending.woken; });
  m_pending.woken = false;
  return woken;
}

std::shared_ptr<const DaemonSnapshot> Daemon::snapshot() const {
  std::lock_guard lock(m_mutex);
  return m_snapshot;
}

void Daemon::publish(std::shared_ptr<DaemonSnapshot> snap) {
  std::lock_guard lock(m_mutex);
  m_snapshot = std::move(snap);
}

// ---------------------------------------------------------------- Docker

void Daemon::refresh_containers() {
  m_last_refresh = m_env.clock.now();
  const bool first = !m_refreshed_once;
  m_refreshed_once = true;
  auto& st = m_docker_status;
  st.endpoint = m_config.docker_host;
  st.error.reset();
  st.hint.clear();
  auto endpoint = adapters::parse_endpoint(m_config.docker_host, "docker host");
  if (!endpoint) {
    st.reachable = false;
    st.error = endpoint.error();
    st.hint = "use unix:///path/to/docker.sock or tcp://host:port";
    return;
  }
  std::vector<ContainerMeta> running;
  Result<std::vector<adapters::ContainerSummary>> list = fail("docker", "not connected");
  if (m_docker) {
    list = m_docker->list_containers(adapters::ListScope::running);
  }
  if (!list) {  // not connected yet, or the engine went away: connect (again)
    m_docker.reset();
    auto client = adapters::DockerClient::connect(*endpoint, m_config.docker_timeout);
    if (client) {
      m_docker = std::move(client).value();
      list = m_docker->list_containers(adapters::ListScope::running);
    } else {
      list = unexpected(client.error());
    }
  }
  if (!list) {
    if (st.reachable || first) {
      log("docker: " + list.error().line());
    }
    st.reachable = false;
    st.error = list.error();
    st.hint = adapters::docker_error_hint(list.error(), *endpoint);
    m_docker.reset();
    // The container list is unknown now, but the servers' histories stay: a hiccup of the engine
    // must not make the detectors start over.
    m_containers.clear();
    m_locations.clear();
    return;
  }
  if (!st.reachable) {
    log(fmt::format("docker: connected to {} (API {})", endpoint->text, m_docker->api_version().text()));
  }
  st.reachable = true;
  st.api_version = m_docker->api_version().text();
  if (list->size() > k_max_containers && !m_said_too_many_containers) {
    log(fmt::format("docker: {} containers run; memwarden watches the first {} of them", list->size(),
                    k_max_containers));
  }
  m_said_too_many_containers = list->size() > k_max_containers;
  if (list->size() > k_max_containers) {
    // Inference servers (by image or label, as the list shows them) are watched first.
    const auto server_like = [](const adapters::ContainerSummary& c) {
      ContainerMeta meta;
      meta.image = c.image;
      meta.labels = c.labels;
      return is_inference_server(meta);
    };
    std::stable_partition(list->begin(), list->end(), server_like);
  }
  for (const auto& summary : *list) {
    if (running.size() >= k_max_containers) {
      break;
    }
    auto meta = m_docker->inspect(summary.id);
    if (meta) {
      running.push_back(std::move(meta).value());
    }
  }
  if (auto layout = probes::detect_cgroup_layout(m_env.root)) {
    m_layout = *layout;
  }
  std::map<std::string, probes::CgroupLocation> locations;
  for (const auto& c : running) {
    if (!m_layout || !c.state.running) {
      continue;
    }
    if (auto where = probes::locate_container_cgroup(m_env.root, *m_layout, c.state.pid, c.id)) {
      locations.emplace(c.id, *where);
    }
  }
  m_locations = std::move(locations);
  m_containers = std::move(running);
  m_sampler->rediscover(m_containers);
}

std::set<std::string> Daemon::handle_pending() {
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

void Daemon::sample_containers(DaemonSnapshot& snap) {
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

void Daemon::tick() {
  const auto requested = handle_pending();
  const auto started = m_env.clock.now();
  auto snap = std::make_shared<DaemonSnapshot>();
  snap->version = m_env.version;
  snap->reserve_bytes = m_config.thresholds.reserve;
  snap->taken_at_ms = m_env.wall_ms();

  m_sampler->sample();
  auto& host = snap->status.host;
  if (!m_sampler->host().empty()) {
    const auto& h = m_sampler->host().back();
    host.meminfo = h.meminfo;
    host.pressure = h.pressure;
    host.pressure_supported = h.pressure.has_value();
  }
  if (auto vmstat = probes::read_vmstat(m_env.root)) {
    host.vmstat = *vmstat;
  } else {
    snap->status.problems.push_back(vmstat.error());
  }
  snap->status.docker = m_docker_status;
  sample_containers(*snap);
  if (!m_gpu || (!m_gpu->available() && m_env.clock.now() >= m_gpu_retry)) {
    probes::NvmlOptions nvml;
    nvml.library = m_config.nvml_library;
    m_gpu = std::make_unique<probes::GpuReader>(nvml);
    m_gpu_retry = m_env.clock.now() + Duration(300'000);
  }
  snap->status.gpu = m_gpu->read(m_env.root);

  auto findings = run_detectors(m_sampler->states(), m_sampler->host(), m_config.thresholds);
  act(findings, requested);
  if (m_refresh_next) {
    m_refresh_next = false;
    std::lock_guard lock(m_mutex);
    m_pending.refresh = true;
  }

  for (const auto& w : m_sampler->servers()) {
    snap->servers.push_back({w->server, w->api_version,
                             w->history.empty() ? std::nullopt : std::optional<ServerSample>(w->history.back())});
    for (const auto& detector : detector_names()) {
      if (detector != "host-pressure") {
        snap->detectors.push_back({w->server.name, detector, std::nullopt});
      }
    }
  }
  snap->detectors.push_back({"host", "host-pressure", std::nullopt});
  for (const auto& f : findings) {
    for (auto& d : snap->detectors) {
      if (d.subject == f.subject && d.detector == f.detector) {
        d.severity = worse(d.severity, f.severity);
      }
    }
  }
  snap->findings = std::move(findings);
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
  publish(std::move(snap));
}

// ---------------------------------------------------------------- acting

FixOptions Daemon::fix_options() const {
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

void Daemon::act(const std::vector<Finding>& findings, const std::set<std::string>& requested) {
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
    actions::ProcessRunner runner;
    actions::LiveActions live(m_docker ? &*m_docker : nullptr, runner, m_config.systemd_unit, m_config.api_timeout);
    actions::DryRunActions dry(m_config.systemd_unit);
    actions::ServerActions* chosen = m_env.actions;
    if (chosen == nullptr) {
      chosen = options.mode == RunMode::dry_run ? static_cast<actions::ServerActions*>(&dry) : &live;
    }
    FixEnvironment fenv{m_env.clock, m_env.wall_ms, *chosen, m_journal ? &*m_journal : nullptr, {}};
    std::vector<Error> problems;
    m_acting = true;
    auto report = fix_server(options, fenv, *m_sampler, *w, findings, problems);
    m_acting = false;
    for (const auto& p : problems) {
      log(p.line());
    }
    if (!report) {
      continue;
    }
    const bool ran = report->journal_id.has_value() || report->journal_unavailable;
    const bool succeeded = report->outcome == adapters::ActionOutcome::succeeded;
    if (ran && !succeeded) {
      m_hold_until[name] = m_env.clock.now() + m_config.policy.cooldown;
    }
    const bool quiet_repeat = (report->outcome == adapters::ActionOutcome::refused && !ran) ||
                              report->outcome == adapters::ActionOutcome::dry_run || report->journal_unavailable;
    if (quiet_repeat && !m_announced.insert(name).second) {
      continue;  // said once per episode: the finding is still there and so is the reason
    }
    ++m_actions[{report->kind, adapters::to_string(report->outcome)}];
    log(fmt::format("fix {}: {} {}: {}", name, report->kind, adapters::to_string(report->outcome), report->message));
    adapters::Notification n;
    n.event = "action";
    n.subject = name;
    n.what = report->kind;
    n.severity = report->outcome == adapters::ActionOutcome::failed    ? Severity::critical
                 : report->outcome == adapters::ActionOutcome::refused ? Severity::warning
                                                                       : Severity::info;
    n.title = fmt::format("{}: {} {}", name, report->kind, adapters::to_string(report->outcome));
    n.message = report->message;
    n.details = json{{"outcome", adapters::to_string(report->outcome)},
                     {"before_anon_bytes", report->before_anon ? json(*report->before_anon) : json(nullptr)},
                     {"after_anon_bytes", report->after_anon ? json(*report->after_anon) : json(nullptr)},
                     {"journal_id", report->journal_id ? json(*report->journal_id) : json(nullptr)}};
    (void)notify(std::move(n), name + "|action|" + report->kind + "|" + adapters::to_string(report->outcome),
                 *m_action_limiter);
    const bool restarted = report->kind == "restart" && !report->steps.empty() &&
                           std::any_of(report->steps.begin(), report->steps.end(),
                                       [](const FixStepReport& st) { return st.name == "restart" && st.ok; });
    if (restarted) {
      m_sampler->forget_history(name);  // a new process: its predecessor's samples say nothing about it
      m_refresh_next = true;
    }
  }
}

// ---------------------------------------------------------------- history and notifications

bool Daemon::history_has_room() {
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

void Daemon::record_history(const DaemonSnapshot& snap) {
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

bool Daemon::notify(adapters::Notification n, const std::string& key, RateLimiter& limiter) {
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

void Daemon::notify_changes(const DaemonSnapshot& snap) {
  std::map<std::pair<std::string, std::string>, const Finding*> now;
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
      log(fmt::format("finding: {} {} ({}): {}", f->subject, f->detector, to_string(f->severity), f->summary));
    }
  }
  for (const auto& [key, severity] : m_active) {
    if (now.count(key) == 0) {
      log(fmt::format("resolved: {} {}", key.first, key.second));
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
    n.what = f->detector;
    n.title = fmt::format("{}: {} ({})", f->subject, f->detector, to_string(f->severity));
    n.message = f->action.empty() ? f->summary : f->summary + " " + f->action;
    json evidence = json::object();
    for (const auto& e : f->evidence) {
      evidence[e.name] = {{"value", e.value}, {"text", e.text}};
    }
    n.details = json{{"evidence", evidence}, {"remedy", to_string(f->remedy)}};
    if (notify(std::move(n), key.first + "|" + key.second, *m_limiter)) {
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
    n.what = key.second;
    n.title = fmt::format("{}: {} resolved", key.first, key.second);
    n.message = fmt::format("{} no longer reports {}.", key.first, key.second);
    it = notify(std::move(n), key.first + "|" + key.second, *m_limiter) ? m_told.erase(it) : std::next(it);
  }
}

// ---------------------------------------------------------------- configuration

void Daemon::reload(ServeConfig config) {
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
  std::string token;
  if (!config.token_file.empty()) {
    if (auto t = read_token_file(config.token_file)) {
      token = *t;
    } else {
      log("token file: " + t.error().line() + "; POST /api/v1/fix is off");
    }
  }
  if (config.nvml_library != m_config.nvml_library) {
    m_gpu.reset();  // loaded again with the new library at the next round
  }
  m_config = std::move(config);
  if (new_sampler) {
    make_sampler();
    m_refresh_next = true;
  }
  if (new_limiter) {
    m_limiter = std::make_unique<RateLimiter>(m_config.notify_min_interval.count(), 30);
  }
  if (m_config.notify_targets.empty()) {
    m_told.clear();  // nobody to tell
  }
  std::lock_guard lock(m_mutex);
  m_token = std::move(token);
  m_interval = m_config.interval;
  m_pending.refresh = m_pending.refresh || m_refresh_next;
}

// ---------------------------------------------------------------- HTTP

ServerResponse Daemon::handle(const ServerRequest& request) {
  const auto& path = request.path;
  const bool read = request.method == "GET" || request.method == "HEAD";
  const auto method_not_allowed = [](const char* allow) {
    auto r = error_response(405, "method not allowed");
    r.headers.emplace_back("Allow", allow);
    return r;
  };
  if (path == "/api/v1/fix") {
    return request.method == "POST" ? api_fix(request) : method_not_allowed("POST");
  }
  const bool known = path == "/metrics" || path == "/healthz" || path == "/" || path == "/api/v1/status" ||
                     path == "/api/v1/findings" || path == "/api/v1/history" || path == "/api/v1/samples";
  if (!known) {
    return error_response(404, "no such endpoint; see /");
  }
  if (!read) {
    return method_not_allowed("GET, HEAD");
  }
  const auto snap = snapshot();
  Duration interval{1000};
  {
    std::lock_guard lock(m_mutex);
    interval = m_interval;
  }
  if (path == "/") {
    ServerResponse r;
    r.body = fmt::format(
        "memwarden {}\n/metrics\n/healthz\n/api/v1/status\n/api/v1/findings\n/api/v1/history?limit=N&server=NAME\n"
        "/api/v1/samples?subject=NAME&since=1h\nPOST /api/v1/fix (with a token file)\n",
        snap->version);
    return r;
  }
  if (path == "/metrics") {
    ServerResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = render_metrics(*snap);
    return r;
  }
  if (path == "/healthz") {
    if (snap->samples_total == 0) {
      return json_response(503, json{{"status", "starting"}});
    }
    const auto age_ms = m_env.wall_ms() - snap->taken_at_ms;
    const auto stale_after = std::max<std::int64_t>(3 * interval.count(), 5'000);
    if (age_ms > stale_after && !m_acting) {
      return json_response(503, json{{"status", "stale"}, {"last_sample_age_ms", age_ms}});
    }
    return json_response(200, json{{"status", "ok"},
                                   {"last_sample_age_ms", age_ms},
                                   {"acting", m_acting.load()},
                                   {"docker", snap->status.docker.reachable},
                                   {"history", snap->history_ok}});
  }
  if (path == "/api/v1/status") {
    StatusResult result;
    result.report = snap->status;
    StatusThresholds thresholds;
    thresholds.reserve_bytes = snap->reserve_bytes;
    result.warnings = evaluate_status(result.report, thresholds);
    auto body = status_to_json(result);
    body["daemon"] = {{"version", snap->version},
                      {"taken_at_ms", snap->taken_at_ms},
                      {"samples_total", snap->samples_total},
                      {"sample_seconds", snap->sample_seconds},
                      {"history_ok", snap->history_ok},
                      {"history_error", snap->history_error ? json(snap->history_error->line()) : json(nullptr)}};
    return json_response(200, body);
  }
  if (path == "/api/v1/findings") {
    DiagnoseResult r;
    for (const auto& s : snap->servers) {
      r.servers.push_back({s.server, s.api_version, s.last});
    }
    r.findings = snap->findings;
    r.problems = snap->status.problems;
    r.samples = snap->samples_total;
    r.interval = interval;
    auto body = diagnosis_to_json(r);
    body["schema"] = "memwarden.findings/1";
    body.erase("exit_code");
    body.erase("started_ms");
    body.erase("ended_ms");
    body["taken_at_ms"] = snap->taken_at_ms;
    return json_response(200, body);
  }
  if (path == "/api/v1/history") {
    return api_history(request);
  }
  return api_samples(request);
}

ServerResponse Daemon::api_history(const ServerRequest& request) {
  std::size_t limit = 50;
  if (auto text = query_param(request.query, "limit")) {
    const auto n = parse_u64(*text);
    if (!n || *n == 0 || *n > k_max_api_records) {
      return error_response(400, fmt::format("limit: expected a number from 1 to {}", k_max_api_records));
    }
    limit = static_cast<std::size_t>(*n);
  }
  const auto server = query_param(request.query, "server");
  std::lock_guard lock(m_reader_mutex);
  if (!m_reader_journal) {
    return error_response(503, "no journal (see the daemon's log)");
  }
  auto records = m_reader_journal->list(limit, server);
  if (!records) {
    return error_response(503, records.error().line());
  }
  return json_response(200, history_to_json(*records));
}

ServerResponse Daemon::api_samples(const ServerRequest& request) {
  const auto subject = query_param(request.query, "subject").value_or("host");
  Duration since{3'600'000};
  if (auto text = query_param(request.query, "since")) {
    auto d = parse_duration(*text, "since");
    if (!d || d->count() <= 0) {
      return error_response(400, "since: expected a duration such as 30m, 2h or 1d");
    }
    since = *d;
  }
  const auto now = m_env.wall_ms();
  std::lock_guard lock(m_reader_mutex);
  if (!m_reader_store) {
    return error_response(503, "no history (see the daemon's log)");
  }
  // An answer is built whole in memory: a window of at most a day of minutes and the newest raw rows.
  const auto asked = since;
  since = std::min(since, k_max_api_window);
  auto window = read_samples(*m_reader_store, subject, now - since.count(), now);
  if (!window) {
    return error_response(503, window.error().line());
  }
  std::size_t raw_dropped = 0;
  if (window->raw.size() > k_max_api_raw_rows) {
    raw_dropped = window->raw.size() - k_max_api_raw_rows;
    window->raw.erase(window->raw.begin(), window->raw.begin() + static_cast<std::ptrdiff_t>(raw_dropped));
  }
  auto body = samples_to_json(*window);
  if (asked > since || raw_dropped > 0) {
    body["truncated"] = {{"window_ms", since.count()},
                         {"raw_rows_left_out", raw_dropped},
                         {"note",
                          "the API answers at most a day of 1-minute aggregates and the newest raw rows; "
                          "memwarden history --samples reads all of it"}};
  }
  return json_response(200, body);
}

ServerResponse Daemon::api_fix(const ServerRequest& request) {
  std::string token;
  {
    std::lock_guard lock(m_mutex);
    token = m_token;
  }
  if (token.empty()) {
    return error_response(404, "POST /api/v1/fix is off: no token_file is configured");
  }
  const auto it = request.headers.find("authorization");
  const std::string_view given = it == request.headers.end() ? std::string_view() : std::string_view(it->second);
  if (!given.starts_with("Bearer ") || !same_secret(given.substr(7), token)) {
    auto r = error_response(401, "a valid bearer token is required");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"memwarden\"");
    return r;
  }
  const auto body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("server") || !body["server"].is_string()) {
    return error_response(400, R"(expected a JSON body {"server": "NAME"})");
  }
  const auto server = body["server"].get<std::string>();
  const auto snap = snapshot();
  const bool known = std::any_of(snap->servers.begin(), snap->servers.end(),
                                 [&](const ServedServer& s) { return s.server.name == server; });
  if (!known) {
    return error_response(404, fmt::format("no inference server named '{}'", server));
  }
  {
    std::lock_guard lock(m_mutex);
    if (m_pending.fix_requests.size() >= 100) {
      return error_response(429, "too many fix requests waiting");
    }
    m_pending.fix_requests.push_back(server);
    m_pending.woken = true;
  }
  m_cv.notify_all();
  return json_response(202, json{{"queued", server},
                                 {"note",
                                  "acted on at the next sample if the server opted in and needs a fix; "
                                  "the outcome appears in /api/v1/history"}});
}

// ---------------------------------------------------------------- the process

int run_serve(ServeConfig config, const std::string& config_path, ServeEnvironment given,
              const std::function<void(ServeConfig&)>& apply_overrides) {
  ServeEnvironment env = with_defaults(std::move(given));
  auto listen = adapters::parse_listen_address(config.listen, "listen");
  if (!listen) {
    fmt::print(stderr, "memwarden: {}\n", listen.error().line());
    return 2;
  }
  if (!adapters::is_loopback_host(listen->first) && !config.allow_remote) {
    fmt::print(stderr, "memwarden: listen: {} is not a loopback address; set allow_remote: true to allow it\n",
               config.listen);
    return 2;
  }
  // Signals go to one thread that waits for them; every other thread has them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGXFSZ, SIG_IGN);  // past a file size limit, writes fail (EFBIG) and history says so; no death

  // Two malloc arenas instead of one per thread and core: the HTTP and event threads allocate little,
  // and every arena keeps its own free memory.
  ::mallopt(M_ARENA_MAX, 2);
  Daemon daemon(config, env);
  daemon.open_storage();
  adapters::HttpServerOptions http;
  http.host = listen->first;
  http.port = listen->second;
  http.max_body_bytes = 8U << 10;  // the only body is POST /api/v1/fix's {"server": "NAME"}
  auto server = adapters::HttpServer::start(http, [&daemon](const ServerRequest& r) { return daemon.handle(r); });
  if (!server) {
    fmt::print(stderr, "memwarden: {}\n", server.error().line());
    return 1;
  }
  env.log(fmt::format("memwarden {} serving http://{}:{}/metrics (interval {} ms, auto fix {})", env.version,
                      listen->first, (*server)->port(), config.interval.count(),
                      config.auto_fix == AutoFix::on        ? "on"
                      : config.auto_fix == AutoFix::dry_run ? "dry-run"
                                                            : "off"));

  std::unique_ptr<adapters::DockerEventStream> events;
  if (auto endpoint = adapters::parse_endpoint(config.docker_host, "docker host")) {
    adapters::DockerEventOptions eo;
    eo.endpoint = *endpoint;
    eo.api_version = "";  // unversioned: the engine's own version, whatever it is
    events = std::make_unique<adapters::DockerEventStream>(
        eo, [&daemon](const adapters::DockerEvent& e) { daemon.on_docker_event(e); },
        [&daemon](bool connected, const std::optional<Error>& why) { daemon.on_docker_stream(connected, why); });
    events->start();
  }

  // SIGHUP: the file is read and parsed on a thread of its own, so that a slow or odd file never holds
  // up sampling, and the signal thread always hears SIGTERM. The main loop applies what it produced. The
  // thread's state is shared, so that a read stuck on a hung file system does not hold up the exit either:
  // at SIGTERM a busy reload thread is left behind, and what it reads later is dropped.
  struct ReloadState {
    std::mutex mutex;
    std::condition_variable cv;
    bool wanted = false;
    bool stop = false;
    bool busy = false;
    std::optional<ConfigResult> result;  // read, waiting to be applied
    std::atomic<bool> ready{false};      // result holds something
    std::function<void()> wake;          // cleared at the exit
  };
  auto reload = std::make_shared<ReloadState>();
  reload->wake = [&daemon] { daemon.wake(); };
  std::atomic<bool> stop{false};
  std::thread reloader([reload, path = config_path, overrides = apply_overrides] {
    for (;;) {
      {
        std::unique_lock lock(reload->mutex);
        reload->cv.wait(lock, [&] { return reload->wanted || reload->stop; });
        if (reload->stop) {
          return;
        }
        reload->wanted = false;
        reload->busy = true;
      }
      auto loaded = load_config(path);
      if (loaded && overrides) {
        overrides(*loaded);  // the command line still wins over the file
      }
      std::lock_guard lock(reload->mutex);
      reload->busy = false;
      if (reload->stop) {
        return;  // the process is leaving: nobody is there to apply it
      }
      reload->result = std::move(loaded);
      reload->ready = true;
      reload->wake();
    }
  });
  const auto stop_all = [&] {
    {
      std::lock_guard lock(reload->mutex);
      stop = true;
    }
    daemon.request_stop();
  };
  std::thread waiter([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) {
        continue;
      }
      if (sig == SIGHUP) {
        if (config_path.empty()) {
          env.log("reload: no configuration file was given; nothing to reload");
          continue;
        }
        {
          std::lock_guard lock(reload->mutex);
          reload->wanted = true;
        }
        reload->cv.notify_all();
        continue;
      }
      stop_all();
      return;
    }
  });

  auto next = env.clock.now();
  bool woken = false;
  while (!stop) {
    if (reload->ready.exchange(false)) {
      std::optional<ConfigResult> loaded;
      {
        std::lock_guard lock(reload->mutex);
        loaded.swap(reload->result);
      }
      if (loaded && *loaded) {
        daemon.reload(std::move(*loaded).value());
        env.log("reload: configuration " + config_path + " applied");
      } else if (loaded) {
        for (const auto& e : loaded->error()) {
          env.log(e.text());
        }
        env.log("reload: keeping the previous configuration");
      }
    }
    try {
      daemon.tick();
    } catch (const std::exception& e) {
      env.log(fmt::format("internal error in a round, going on: {}", e.what()));
    }
    give_back_memory();
    const auto now = env.clock.now();
    next = woken ? now + daemon.config().interval : next + daemon.config().interval;
    if (next <= now) {
      next = now + daemon.config().interval;  // a slow round (an action) does not cause a burst of samples
    }
    woken = false;
    while (!stop && !reload->ready && env.clock.now() < next) {
      if (daemon.wait_until(next)) {
        woken = true;  // an event or a request: sample now, then a whole interval from then
        break;
      }
    }
  }
  env.log("stopping");
  waiter.join();
  bool reload_busy = false;
  {
    std::lock_guard lock(reload->mutex);
    reload->stop = true;
    reload->wake = nullptr;
    reload_busy = reload->busy;
  }
  reload->cv.notify_all();
  if (reload_busy) {
    env.log("stopping without waiting for the configuration being read");
    reloader.detach();
  } else {
    reloader.join();
  }
  if (events) {
    events->stop();
  }
  (*server)->stop();
  env.log("stopped");
  return 0;
}

}  // namespace mw::cli
