// `memwarden serve`: the always-on warden (engine/watch.hpp) served over HTTP: /metrics and a JSON API
// from the newest snapshot, and the process around it (signals, the event stream, reloads).
//
// Threads: the main loop owns the watch and does all sampling and policy, fixes run as jobs on threads of
// their own (engine/watch.hpp); the HTTP server's thread only reads snapshots (and queues fix requests),
// its worker thread answers the routes that read SQLite; the Docker event thread only queues events.
// docs/serve.md describes the behaviour.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "adapters/docker_events.hpp"
#include "adapters/http_server.hpp"
#include "adapters/journal.hpp"
#include "adapters/sample_store.hpp"
#include "cli/config.hpp"
#include "engine/watch.hpp"

namespace mw::cli {

// What the daemon needs from the world; tests inject fakes.
using ServeEnvironment = engine::WatchEnvironment;

// `memwarden serve`: the watch (engine/watch.hpp) and its HTTP routes.
class Daemon {
 public:
  Daemon(ServeConfig config, ServeEnvironment env);

  // Opens the watch's journal and sample store, and the HTTP thread's own handles on them (problems are
  // logged; the daemon runs without them).
  void open_storage();
  void refresh_containers() { m_watch.refresh_containers(); }
  void tick() { m_watch.tick(); }
  void on_docker_event(const adapters::DockerEvent& event) { m_watch.on_docker_event(event); }
  void on_docker_stream(bool connected, const std::optional<Error>& why) { m_watch.on_docker_stream(connected, why); }
  void request_stop() { m_watch.request_stop(); }
  // Main loop: waits for running fix jobs to end and takes in their reports (engine::Watch::finish_jobs).
  void finish_jobs() { m_watch.finish_jobs(); }
  // Thread-safe: fix jobs started and not yet taken in by a round.
  [[nodiscard]] std::size_t jobs_running() const { return m_watch.jobs_running(); }
  void wake() { m_watch.wake(); }
  bool wait_until(Timestamp deadline) { return m_watch.wait_until(deadline); }
  [[nodiscard]] std::shared_ptr<const engine::DaemonSnapshot> snapshot() const { return m_watch.snapshot(); }
  // Main thread: applies a new configuration (engine::Watch::reload) and reads its token file again.
  void reload(ServeConfig config);
  [[nodiscard]] const ServeConfig& config() const { return m_watch.config(); }
  [[nodiscard]] const engine::Sampler& sampler() const { return m_watch.sampler(); }

  // Thread-safe: the HTTP routes (docs/serve.md).
  [[nodiscard]] adapters::ServerResponse handle(const adapters::ServerRequest& request);

 private:
  [[nodiscard]] adapters::ServerResponse api_history(const adapters::ServerRequest& request);
  [[nodiscard]] adapters::ServerResponse api_samples(const adapters::ServerRequest& request);
  [[nodiscard]] adapters::ServerResponse api_fix(const adapters::ServerRequest& request);
  void read_token(const std::string& path, const char* off_text);

  engine::Watch m_watch;
  mutable std::mutex m_token_mutex;
  std::string m_token;        // bearer token for POST /api/v1/fix; "" = endpoint absent
  std::mutex m_reader_mutex;  // the HTTP thread's own database handles
  std::optional<adapters::Journal> m_reader_journal;
  std::optional<adapters::SampleStore> m_reader_store;
};

// Reads a bearer token file: a regular file of at most 4 KiB that other users cannot read, one line,
// surrounding whitespace ignored, not empty. check-config and serve use it alike.
inline constexpr std::size_t k_max_token_file_bytes = 4096;
[[nodiscard]] Result<std::string> read_token_file(const std::string& path);

// The process: signal handling (SIGHUP reloads `config_path`, SIGTERM/SIGINT stop cleanly),
// the HTTP server, the Docker event stream and the main loop. Returns the exit code.
// `apply_overrides` re-applies the command line's settings to a reloaded file.
[[nodiscard]] int run_serve(ServeConfig config, const std::string& config_path, ServeEnvironment env,
                            const std::function<void(ServeConfig&)>& apply_overrides = {});

}  // namespace mw::cli
