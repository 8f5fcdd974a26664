#include "adapters/docker_events.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <exception>

#include "adapters/json_fields.hpp"
#include "core/container.hpp"

namespace mw::adapters {

using nlohmann::json;

Result<DockerEvent> parse_docker_event(std::string_view text, std::string_view source) {
  const std::string src(source);
  auto doc = parse_json(text, source);
  if (!doc) {
    return unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return fail(src, "expected a JSON object (one event)");
  }
  JsonFields f(*doc, src);
  DockerEvent ev;
  ev.type = f.string("Type");
  ev.action = f.string("Action", f.string("status"));
  std::string legacy_id = f.string("id");
  if (const auto nano = f.integer("timeNano")) {
    ev.time_nano = *nano;
  } else if (const auto secs = f.integer("time")) {
    ev.time_nano = *secs * 1'000'000'000;
  }
  if (const auto* actor = f.object("Actor")) {
    JsonFields af(*actor, src, "Actor.");
    ev.id = af.string("ID");
    if (const auto* attrs = af.object("Attributes")) {
      for (const auto& [k, v] : attrs->items()) {
        if (v.is_string()) {
          ev.attributes.emplace(k, v.get<std::string>());
        } else if (!v.is_null()) {
          af.wrong_type("Attributes." + k, "a string");
        }
      }
      // Events wait in a queue while a round is busy: keep them small. The attributes hold every label of
      // the container; what memwarden reads is its name, image, exit code and signal, and its own labels.
      std::erase_if(ev.attributes, [](const auto& kv) {
        const auto& key = kv.first;
        return key != "name" && key != "image" && key != "exitCode" && key != "signal" &&
               !key.starts_with("memwarden.");
      });
      (void)bound_labels(ev.attributes);
    }
    if (af.error()) {
      return unexpected(*af.error());
    }
  }
  if (f.error()) {
    return unexpected(*f.error());
  }
  if (ev.id.empty()) {
    ev.id = std::move(legacy_id);
  }
  if (ev.type.empty() || ev.action.empty()) {
    return fail(src, "not a Docker event (no Type or Action)");
  }
  if (const auto it = ev.attributes.find("name"); it != ev.attributes.end()) {
    ev.name = it->second.substr(0, ContainerBounds::text_bytes);
  }
  if (ev.id.size() > 128) {
    return fail(src, "an overlong Actor.ID");
  }
  return ev;
}

std::string docker_since_text(std::int64_t time_nano) {
  const auto secs = time_nano / 1'000'000'000;
  const auto nanos = time_nano % 1'000'000'000;
  return fmt::format("{}.{:09}", secs, nanos < 0 ? 0 : nanos);
}

namespace {

std::string url_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

}  // namespace

std::string docker_events_path(std::string_view api_version, const std::vector<std::string>& actions,
                               std::optional<std::int64_t> since_nano) {
  json filters = {{"type", {"container"}}};
  if (!actions.empty()) {
    filters["event"] = actions;
  }
  // An empty version asks for the engine's own (an unversioned path), which every engine accepts.
  std::string path = api_version.empty()
                         ? fmt::format("/events?filters={}", url_encode(filters.dump()))
                         : fmt::format("/v{}/events?filters={}", api_version, url_encode(filters.dump()));
  if (since_nano) {
    path += "&since=" + docker_since_text(*since_nano);
  }
  return path;
}

void LineSplitter::feed(std::string_view data,
                        const std::function<void(std::optional<std::string_view> line)>& on_line) {
  while (!data.empty()) {
    const auto nl = data.find('\n');
    const auto piece = data.substr(0, nl);
    if (!m_discarding) {
      if (m_partial.size() + piece.size() > m_max_line_bytes) {
        m_discarding = true;  // report once, then skip up to the next newline
        m_partial.clear();
        on_line(std::nullopt);
      } else {
        m_partial.append(piece);
      }
    }
    if (nl == std::string_view::npos) {
      return;
    }
    data.remove_prefix(nl + 1);
    if (m_discarding) {
      m_discarding = false;
      continue;
    }
    std::string line = std::move(m_partial);
    m_partial.clear();
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    if (!line.empty()) {
      on_line(std::string_view(line));
    }
  }
}

DockerEventStream::DockerEventStream(DockerEventOptions options, std::function<void(const DockerEvent&)> on_event,
                                     std::function<void(bool connected, const std::optional<Error>& why)> on_state)
    : m_options(std::move(options)), m_on_event(std::move(on_event)), m_on_state(std::move(on_state)) {}

DockerEventStream::~DockerEventStream() {
  stop();
}

void DockerEventStream::start() {
  if (m_thread.joinable()) {
    return;
  }
  m_stop.store(false);
  m_thread = std::thread([this] { run(); });
}

void DockerEventStream::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stop.store(true);
  }
  m_wake.notify_all();
  if (m_thread.joinable() && m_thread.get_id() != std::this_thread::get_id()) {
    m_thread.join();
  }
}

bool DockerEventStream::wait_for(std::chrono::milliseconds delay) {
  std::unique_lock lock(m_mutex);
  return !m_wake.wait_for(lock, delay, [this] { return m_stop.load(); });
}

void DockerEventStream::handle_line(std::string_view line, const std::string& source) {
  auto event = parse_docker_event(line, source);
  if (!event) {
    ++m_malformed;
    Error why = event.error();
    why.message = "skipped a line that is not an event: " + why.message;
    m_on_state(true, why);
    return;
  }
  const std::string key = event->id + '\n' + event->action;
  if (m_last_time_nano && event->time_nano == *m_last_time_nano) {
    if (std::find(m_keys_at_last_time.begin(), m_keys_at_last_time.end(), key) != m_keys_at_last_time.end()) {
      return;  // replayed after a reconnect (since= is inclusive)
    }
  } else if (!m_last_time_nano || event->time_nano > *m_last_time_nano) {
    m_last_time_nano = event->time_nano;
    m_keys_at_last_time.clear();
  }
  if (event->time_nano == *m_last_time_nano) {
    m_keys_at_last_time.push_back(key);
  }
  m_on_event(*event);
}

void DockerEventStream::run() {
  HttpClient http(m_options.endpoint, m_options.connect_timeout);
  const std::string source = m_options.api_version.empty()
                                 ? fmt::format("{} (GET /events)", m_options.endpoint.text)
                                 : fmt::format("{} (GET /v{}/events)", m_options.endpoint.text, m_options.api_version);
  auto delay = m_options.reconnect_min;
  LineSplitter lines;
  while (!m_stop.load()) {
    lines.clear();
    bool opened = false;
    const auto path = docker_events_path(m_options.api_version, m_options.actions, m_last_time_nano);
    auto result = http.stream(
        path,
        [&](std::string_view chunk) {
          lines.feed(chunk, [&](std::optional<std::string_view> line) {
            if (!line) {
              ++m_malformed;
              m_on_state(true, Error{source, "skipped a line longer than 1 MiB", 0});
              return;
            }
            try {
              handle_line(*line, source);
            } catch (const std::exception& e) {
              m_on_state(true, Error{source, fmt::format("the event handler failed: {}", e.what()), 0});
            }
          });
          return !m_stop.load();
        },
        m_stop,
        [&](long /*status*/) {
          opened = true;
          ++m_connections;
          delay = m_options.reconnect_min;
          m_on_state(true, std::nullopt);
        });
    if (m_stop.load()) {
      break;
    }
    Error why;
    if (result) {
      why = Error{source, "the engine ended the event stream", 0};
    } else {
      why = std::move(result).error();
      why.source = source;  // the path with its url-encoded filter is long and says little
    }
    m_on_state(false, why);
    if (!wait_for(delay)) {
      break;
    }
    if (!opened) {
      delay = std::min(delay * 2, m_options.reconnect_max);
    }
  }
}

}  // namespace mw::adapters
