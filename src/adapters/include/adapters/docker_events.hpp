// The Docker Engine's event stream (GET /events), so that the daemon reacts at once when a
// container is OOM-killed, dies, starts or is removed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "adapters/http.hpp"
#include "core/error.hpp"

namespace mw::adapters {

struct DockerEvent {
  std::string type;    // "container"
  std::string action;  // "oom", "die", "start", "destroy", "health_status: healthy", ...
  std::string id;      // Actor.ID
  std::string name;    // Actor.Attributes.name (empty when absent)
  std::int64_t time_nano = 0;
  std::map<std::string, std::string> attributes;  // Actor.Attributes ("exitCode", "image", labels, ...)
};

// One event (one line of the stream). Type and Action are required; the pre-1.22 fields
// (status, id) stand in when Action and Actor.ID are absent; timeNano falls back to time.
[[nodiscard]] Result<DockerEvent> parse_docker_event(std::string_view json, std::string_view source);

// The `since` value for a reconnect: "<seconds>.<nanoseconds, 9 digits>".
[[nodiscard]] std::string docker_since_text(std::int64_t time_nano);

// The request path: /v<ver>/events?filters=<{"type":["container"],"event":[actions]}, url-encoded>
// [&since=<docker_since_text>].
[[nodiscard]] std::string docker_events_path(std::string_view api_version, const std::vector<std::string>& actions,
                                             std::optional<std::int64_t> since_nano);

// Splits a byte stream into lines (newline-delimited JSON arrives in arbitrary pieces).
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes = 1U << 20) : m_max_line_bytes(max_line_bytes) {}
  // Calls on_line for every complete line in the data so far (without "\n" or "\r\n"; empty lines
  // are skipped). A line longer than max_line_bytes is dropped and reported once as an empty
  // optional.
  void feed(std::string_view data, const std::function<void(std::optional<std::string_view> line)>& on_line);
  void clear() {
    m_partial.clear();
    m_discarding = false;
  }

 private:
  std::size_t m_max_line_bytes;
  std::string m_partial;
  bool m_discarding = false;
};

struct DockerEventOptions {
  Endpoint endpoint;
  std::string api_version = "1.41";  // DockerClient::api_version().text()
  std::vector<std::string> actions{"oom", "die", "start", "destroy"};
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  std::chrono::milliseconds connect_timeout{2000};
};

// A background thread that follows GET /v<ver>/events (container events of the chosen actions).
// When the stream fails or ends, it reports on_state(false, why) and reconnects after a back-off
// (reconnect_min, doubling up to reconnect_max; back to reconnect_min once connected) with
// since=<time of the last event>, and drops the replayed copy of the events it has already
// delivered (same time, id and action). Every failed attempt is reported.
//
// Callbacks run on the stream's thread:
//   on_event(event)            one event, in the engine's order;
//   on_state(true, nullopt)    connected (the engine answered 200);
//   on_state(true, error)      connected, but a line was not an event: it was skipped and counted;
//   on_state(false, error)     not connected: the stream failed, ended, or cannot be opened.
class DockerEventStream {
 public:
  DockerEventStream(DockerEventOptions options, std::function<void(const DockerEvent&)> on_event,
                    std::function<void(bool connected, const std::optional<Error>& why)> on_state);
  ~DockerEventStream();  // stops
  DockerEventStream(const DockerEventStream&) = delete;
  DockerEventStream& operator=(const DockerEventStream&) = delete;
  DockerEventStream(DockerEventStream&&) = delete;
  DockerEventStream& operator=(DockerEventStream&&) = delete;

  void start();  // starts the thread (no-op when running)
  void stop();   // prompt (~100 ms) even while the engine sends nothing; joins; idempotent

  [[nodiscard]] std::uint64_t malformed_lines() const { return m_malformed.load(); }
  [[nodiscard]] std::uint64_t connections() const { return m_connections.load(); }  // successful opens

 private:
  void run();
  void handle_line(std::string_view line, const std::string& source);
  [[nodiscard]] bool wait_for(std::chrono::milliseconds delay);  // false when stopped

  DockerEventOptions m_options;
  std::function<void(const DockerEvent&)> m_on_event;
  std::function<void(bool, const std::optional<Error>&)> m_on_state;
  std::atomic<bool> m_stop{false};
  std::atomic<std::uint64_t> m_malformed{0};
  std::atomic<std::uint64_t> m_connections{0};
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::thread m_thread;
  // Only the stream thread touches these.
  std::optional<std::int64_t> m_last_time_nano;
  std::vector<std::string> m_keys_at_last_time;  // id + '\n' + action of the events at m_last_time_nano
};

}  // namespace mw::adapters
