#include "cli/serve.hpp"

#include <fmt/format.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
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
using engine::DiagnoseResult;
using engine::ServedServer;
using engine::StatusResult;
using nlohmann::json;

namespace {

// What one JSON answer may hold (docs/serve.md, "HTTP endpoint"): it is built whole in memory.
constexpr std::size_t k_max_api_records = 1000;
constexpr Duration k_max_api_window{86'400'000};
constexpr std::size_t k_max_api_raw_rows = 900;

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

// ---------------------------------------------------------------- HTTP

Daemon::Daemon(ServeConfig config, ServeEnvironment env) : m_watch(std::move(config), std::move(env)) {
  read_token(m_watch.config().token_file, "stays off");
}

void Daemon::read_token(const std::string& path, const char* off_text) {
  std::string token;
  if (!path.empty()) {
    if (auto t = read_token_file(path)) {
      token = *t;
    } else {
      m_watch.log(fmt::format("token file: {}; POST /api/v1/fix {}", t.error().line(), off_text));
    }
  }
  std::lock_guard lock(m_token_mutex);
  m_token = std::move(token);
}

void Daemon::open_storage() {
  m_watch.open_storage();
  const auto& c = m_watch.config();
  adapters::SampleStoreOptions so;
  so.raw_retention = c.raw_retention;
  so.aggregate_retention = c.aggregate_retention;
  so.max_bytes = c.history_max_bytes;
  std::lock_guard lock(m_reader_mutex);
  if (auto reader = adapters::Journal::open(c.state_dir)) {
    m_reader_journal = std::move(reader).value();
  }
  if (auto reader = adapters::SampleStore::open(c.state_dir, so)) {
    m_reader_store = std::move(reader).value();
  }
}

void Daemon::reload(ServeConfig config) {
  const auto token_file = config.token_file;
  m_watch.reload(std::move(config));
  read_token(token_file, "is off");
}

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
  const Duration interval = m_watch.interval();
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
    // Fixes run beside the rounds, so samples stay fresh while one drains or waits: fresh samples are health.
    const auto age_ms = m_watch.wall_ms() - snap->taken_at_ms;
    const auto stale_after = std::max<std::int64_t>(3 * interval.count(), 5'000);
    const auto jobs = m_watch.jobs_running();
    if (age_ms > stale_after) {
      return json_response(503, json{{"status", "stale"}, {"last_sample_age_ms", age_ms}, {"jobs", jobs}});
    }
    return json_response(200, json{{"status", "ok"},
                                   {"last_sample_age_ms", age_ms},
                                   {"acting", jobs > 0},
                                   {"jobs", jobs},
                                   {"docker", snap->status.docker.reachable},
                                   {"history", snap->history_ok}});
  }
  if (path == "/api/v1/status") {
    StatusResult result;
    result.report = snap->status;
    result.cgroup_mode = snap->cgroup_mode;
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
  const auto now = m_watch.wall_ms();
  std::lock_guard lock(m_reader_mutex);
  if (!m_reader_store) {
    return error_response(503, "no history (see the daemon's log)");
  }
  // An answer is built whole in memory: a window of at most a day of minutes and the newest raw rows.
  const auto asked = since;
  since = std::min(since, k_max_api_window);
  auto window = engine::read_samples(*m_reader_store, subject, now - since.count(), now);
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
    std::lock_guard lock(m_token_mutex);
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
  if (!m_watch.request_fix(server)) {
    return error_response(429, "too many fix requests waiting");
  }
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
  // The routes that read SQLite are answered on the server's offload thread: /metrics and /healthz never
  // wait behind a database read.
  http.offload_paths = {"/api/v1/history", "/api/v1/samples"};
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
  // The first SIGTERM or SIGINT stops gently (below); a second one, while fixes are still running, leaves at
  // once: the journal keeps their records incomplete and the next start marks them interrupted, as after a
  // kill. The loop wakes this thread with SIGTERM when it is done (`leaving`).
  std::atomic<bool> leaving = false;
  std::thread waiter([&] {
    bool asked = false;
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) {
        continue;
      }
      if (leaving) {
        return;
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
      if (!asked) {
        asked = true;
        stop_all();
        continue;
      }
      const auto jobs = daemon.jobs_running();
      env.log(
          fmt::format("{} again: leaving now, without waiting for {} running fix{} (the next start marks {} "
                      "interrupted in the journal)",
                      sig == SIGINT ? "SIGINT" : "SIGTERM", jobs, jobs == 1 ? "" : "es", jobs == 1 ? "it" : "them"));
      std::_Exit(128 + sig);
    }
  });

  // After SIGTERM no new fix starts; the rounds go on until the running fixes have ended (each bounded by
  // its own time-outs), so that they are journaled, reported and notified, and /metrics stays fresh.
  const auto running = [&] { return !stop || daemon.jobs_running() > 0; };
  auto next = env.clock.now();
  bool woken = false;
  bool said_waiting = false;
  while (running()) {
    if (stop && !said_waiting) {
      said_waiting = true;
      env.log(fmt::format("stopping: waiting for {} running fix{} to end", daemon.jobs_running(),
                          daemon.jobs_running() == 1 ? "" : "es"));
    }
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
    while (running() && !reload->ready && env.clock.now() < next) {
      if (daemon.wait_until(next)) {
        woken = true;  // an event or a request: sample now, then a whole interval from then
        break;
      }
    }
  }
  env.log("stopping");
  daemon.finish_jobs();  // none by now; kept so that no job can outlive the loop
  leaving = true;
  pthread_kill(waiter.native_handle(), SIGTERM);  // blocked here: sigwait in the waiter takes it
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
