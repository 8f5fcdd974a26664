#include "adapters/docker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "adapters/json_fields.hpp"
#include "core/bytes.hpp"

namespace mw::adapters {

using nlohmann::json;

std::string ApiVersion::text() const {
  return fmt::format("{}.{}", major, minor);
}

std::optional<ApiVersion> parse_api_version(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) {
    return std::nullopt;
  }
  const auto major = parse_u64(text.substr(0, dot));
  const auto minor = parse_u64(text.substr(dot + 1));
  if (!major || !minor || *major > 1000 || *minor > 1000) {
    return std::nullopt;
  }
  return ApiVersion{static_cast<int>(*major), static_cast<int>(*minor)};
}

Result<EngineVersion> parse_version_response(std::string_view text, std::string_view source) {
  auto doc = parse_json(text, source);
  if (!doc) {
    return unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return fail(std::string(source), "expected a JSON object from /version");
  }
  JsonFields f(*doc, std::string(source));
  const auto api_text = f.string("ApiVersion");
  EngineVersion out;
  out.engine_version = f.string("Version");
  if (f.error()) {
    return unexpected(*f.error());
  }
  const auto api = parse_api_version(api_text);
  if (!api) {
    return fail(std::string(source), fmt::format("ApiVersion '{}' is not a version like 1.41", api_text));
  }
  out.api = *api;
  return out;
}

std::string engine_version_from_server_header(std::string_view server) {
  constexpr std::string_view k_prefix = "Docker/";
  constexpr std::size_t k_max_version_bytes = 64;
  if (!server.starts_with(k_prefix)) {
    return {};
  }
  server.remove_prefix(k_prefix.size());
  const auto version = server.substr(0, server.find(' '));
  const bool plain = std::all_of(version.begin(), version.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '+' ||
           c == '-' || c == '~' || c == '_';
  });
  if (version.empty() || version.size() > k_max_version_bytes || !plain) {
    return {};
  }
  return std::string(version);
}

std::optional<EngineVersion> parse_ping_headers(long status, std::optional<std::string_view> api_version,
                                                std::optional<std::string_view> server) {
  if (status < 200 || status >= 300 || !api_version) {
    return std::nullopt;
  }
  const auto api = parse_api_version(*api_version);
  if (!api) {
    return std::nullopt;
  }
  return EngineVersion{*api, server ? engine_version_from_server_header(*server) : std::string()};
}

Result<ApiVersion> negotiate_api_version(const EngineVersion& server, std::string_view source) {
  if (server.api < k_client_min_api) {
    const auto engine =
        server.engine_version.empty() ? std::string() : fmt::format(" (engine {})", server.engine_version);
    return fail(std::string(source),
                fmt::format("Docker Engine API {}{} is too old: memwarden needs API {} or newer (Docker 19.03+)",
                            server.api.text(), engine, k_client_min_api.text()));
  }
  return std::min(server.api, k_client_max_api);
}

namespace {

std::map<std::string, std::string> read_labels(JsonFields& f, std::string_view key) {
  std::map<std::string, std::string> labels;
  if (const auto* obj = f.object(key)) {
    for (const auto& [k, v] : obj->items()) {
      if (v.is_string()) {
        labels.emplace(k, v.get<std::string>());
      } else if (!v.is_null()) {
        f.wrong_type(std::string(key) + "." + k, "a string");
      }
    }
  }
  return labels;
}

std::vector<std::string> read_strings(const json& array, JsonFields& f, std::string_view key) {
  std::vector<std::string> out;
  for (const auto& v : array) {
    if (!v.is_string()) {
      f.wrong_type(key, "an array of strings");
      return out;
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

// A container id is 64 hex characters.
constexpr std::size_t k_max_id_bytes = 128;

bool is_server_env(std::string_view key) {
  return key.starts_with("OLLAMA_") || key.starts_with("LLAMA_ARG_") || key == "CUDA_VISIBLE_DEVICES" ||
         key == "NVIDIA_VISIBLE_DEVICES";
}

std::string strip_name(std::string name) {
  if (!name.empty() && name.front() == '/') {
    name.erase(0, 1);
  }
  return name;
}

}  // namespace

Result<std::vector<ContainerSummary>> parse_container_list(std::string_view text, std::string_view source) {
  // Only the fields read below are built: a list of thousands of containers takes about 2.5 times its
  // size while it is parsed, instead of 6.5 times.
  const json::parser_callback_t wanted = [](int depth, json::parse_event_t event, json& parsed) {
    if (depth != 2 || event != json::parse_event_t::key) {
      return true;
    }
    const auto& key = parsed.get_ref<const std::string&>();
    return key == "Id" || key == "Names" || key == "Image" || key == "State" || key == "Labels";
  };
  auto parsed = json::parse(text, wanted, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    auto again = parse_json(text, source);  // for the same message as every other answer
    return unexpected(again ? Error{std::string(source), "invalid JSON in the response"} : again.error());
  }
  const auto* doc = &parsed;
  if (!doc->is_array()) {
    return fail(std::string(source), "expected a JSON array of containers");
  }
  std::vector<ContainerSummary> out;
  std::size_t index = 0;
  for (const auto& item : *doc) {
    JsonFields f(item, std::string(source), fmt::format("[{}].", index++));
    if (!item.is_object()) {
      return fail(std::string(source), fmt::format("element {} is not an object", index - 1));
    }
    ContainerSummary c;
    c.id = f.string("Id");
    if (const auto* names = f.array("Names"); names && !names->empty()) {
      const auto list = read_strings(*names, f, "Names");
      if (!list.empty()) {
        c.name = strip_name(list.front());
      }
    }
    c.image = f.string("Image");
    c.state = f.string("State");
    c.labels = read_labels(f, "Labels");
    c.name.resize(std::min(c.name.size(), ContainerBounds::text_bytes));
    c.image.resize(std::min(c.image.size(), ContainerBounds::text_bytes));
    (void)bound_labels(c.labels);
    if (f.error()) {
      return unexpected(*f.error());
    }
    if (c.id.empty() || c.id.size() > k_max_id_bytes) {
      return fail(std::string(source),
                  fmt::format("element {} has {} Id", index - 1, c.id.empty() ? "no" : "an overlong"));
    }
    out.push_back(std::move(c));
  }
  return out;
}

Result<ContainerMeta> parse_container_inspect(std::string_view text, std::string_view source) {
  auto doc = parse_json(text, source);
  if (!doc) {
    return unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return fail(std::string(source), "expected a JSON object");
  }
  JsonFields f(*doc, std::string(source));
  ContainerMeta m;
  m.id = f.string("Id");
  m.name = strip_name(f.string("Name"));
  m.restart_count = f.integer("RestartCount").value_or(0);
  if (const auto* config = f.object("Config")) {
    JsonFields cf(*config, std::string(source), "Config.");
    m.image = cf.string("Image");
    m.labels = read_labels(cf, "Labels");
    if (const auto* env = cf.array("Env")) {
      for (const auto& entry : read_strings(*env, cf, "Env")) {
        const auto eq = entry.find('=');
        const auto key = entry.substr(0, eq);
        if (eq != std::string::npos && is_server_env(key)) {
          m.server_env.emplace(key, entry.substr(eq + 1));
        }
      }
    }
    if (cf.error()) {
      return unexpected(*cf.error());
    }
  }
  if (const auto* host = f.object("HostConfig")) {
    JsonFields hf(*host, std::string(source), "HostConfig.");
    if (const auto memory = hf.integer("Memory"); memory && *memory > 0) {
      m.memory_limit = static_cast<std::uint64_t>(*memory);
    }
    m.memory_swap = hf.integer("MemorySwap");
    m.network_mode = hf.string("NetworkMode");
    if (const auto* policy = hf.object("RestartPolicy")) {
      JsonFields pf(*policy, std::string(source), "HostConfig.RestartPolicy.");
      m.restart_policy.name = pf.string("Name");
      m.restart_policy.maximum_retry_count = pf.integer("MaximumRetryCount").value_or(0);
      if (pf.error()) {
        return unexpected(*pf.error());
      }
    }
    if (const auto* requests = hf.array("DeviceRequests")) {
      for (const auto& r : *requests) {
        JsonFields rf(r, std::string(source), "HostConfig.DeviceRequests[].");
        DeviceRequest dr;
        dr.driver = rf.string("Driver");
        dr.count = rf.integer("Count").value_or(0);
        if (const auto* ids = rf.array("DeviceIDs")) {
          dr.device_ids = read_strings(*ids, rf, "DeviceIDs");
        }
        if (const auto* caps = rf.array("Capabilities")) {
          for (const auto& set : *caps) {
            if (!set.is_array()) {
              rf.wrong_type("Capabilities", "an array of arrays of strings");
              break;
            }
            dr.capabilities.push_back(read_strings(set, rf, "Capabilities"));
          }
        }
        if (rf.error()) {
          return unexpected(*rf.error());
        }
        m.device_requests.push_back(std::move(dr));
      }
    }
    if (hf.error()) {
      return unexpected(*hf.error());
    }
  }
  if (const auto* mounts = f.array("Mounts")) {
    for (const auto& entry : *mounts) {
      JsonFields mf(entry, std::string(source), "Mounts[].");
      m.mounts.push_back({mf.string("Type"), mf.string("Name"), mf.string("Source"), mf.string("Destination")});
      if (mf.error()) {
        return unexpected(*mf.error());
      }
    }
  }
  if (const auto* state = f.object("State")) {
    JsonFields sf(*state, std::string(source), "State.");
    m.state.status = sf.string("Status");
    m.state.running = sf.boolean("Running");
    m.state.oom_killed = sf.boolean("OOMKilled");
    m.state.pid = sf.integer("Pid").value_or(0);
    m.state.exit_code = sf.integer("ExitCode");
    m.state.started_at = sf.string("StartedAt");
    if (sf.error()) {
      return unexpected(*sf.error());
    }
  }
  if (const auto* net = f.object("NetworkSettings")) {
    JsonFields nf(*net, std::string(source), "NetworkSettings.");
    if (const auto* ports = nf.object("Ports")) {
      for (const auto& [port, bindings] : ports->items()) {
        if (!bindings.is_array()) {
          continue;  // null: exposed but not published
        }
        for (const auto& b : bindings) {
          JsonFields bf(b, std::string(source), "NetworkSettings.Ports." + port + "[].");
          m.ports.push_back({port, bf.string("HostIp"), bf.string("HostPort")});
          if (bf.error()) {
            return unexpected(*bf.error());
          }
        }
      }
    }
    if (const auto* networks = nf.object("Networks")) {
      for (const auto& [name, network] : networks->items()) {
        JsonFields wf(network, std::string(source), "NetworkSettings.Networks." + name + ".");
        if (auto ip = wf.string("IPAddress"); !ip.empty()) {
          m.ip_addresses.push_back(std::move(ip));
        }
        if (wf.error()) {
          return unexpected(*wf.error());
        }
      }
    }
    if (nf.error()) {
      return unexpected(*nf.error());
    }
  }
  if (f.error()) {
    return unexpected(*f.error());
  }
  if (m.id.empty() || m.id.size() > k_max_id_bytes) {
    return fail(std::string(source),
                m.id.empty() ? "no Id in the container's JSON" : "an overlong Id in the container's JSON");
  }
  (void)bound_container(m);
  return m;
}

std::string docker_host_address(std::string_view flag, const char* env_docker_host) {
  if (!flag.empty()) {
    return std::string(flag);
  }
  if (env_docker_host != nullptr && *env_docker_host != '\0') {
    return env_docker_host;
  }
  return std::string(k_default_docker_host);
}

namespace {

// A body from an HTTP error: Docker sends {"message": "..."}.
std::string error_message(const HttpResponse& response) {
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
    return fmt::format("HTTP {}: {}", response.status, doc["message"].get<std::string>());
  }
  return fmt::format("HTTP {}", response.status);
}

}  // namespace

Result<DockerClient> DockerClient::connect(const Endpoint& endpoint, std::chrono::milliseconds timeout) {
  HttpClient http(endpoint, timeout);
  auto ping = http.get("/_ping", RequestOptions::capped(k_max_docker_ping_bytes).keeping({"Api-Version", "Server"}));
  if (!ping) {
    return unexpected(ping.error());
  }
  if (const auto version = parse_ping_headers(ping->status, ping->header("Api-Version"), ping->header("Server"))) {
    auto api = negotiate_api_version(*version, fmt::format("{} (GET /_ping)", endpoint.text));
    if (!api) {
      return unexpected(api.error());
    }
    return DockerClient(std::move(http), *api, version->engine_version);
  }
  // No API version in the ping's answer: an engine older than the header, or a proxy that drops it.
  auto response = http.get("/version", RequestOptions::capped(k_max_docker_version_bytes));
  if (!response) {
    return unexpected(response.error());
  }
  const std::string source = fmt::format("{} (GET /version)", endpoint.text);
  if (response->status != 200) {
    return fail(source, error_message(*response));
  }
  auto version = parse_version_response(response->body, source);
  if (!version) {
    return unexpected(version.error());
  }
  auto api = negotiate_api_version(*version, source);
  if (!api) {
    return unexpected(api.error());
  }
  return DockerClient(std::move(http), *api, version->engine_version);
}

Result<std::string> DockerClient::get_json(const std::string& path, std::size_t max_body) {
  const std::string full = "/v" + m_api.text() + path;
  auto response = m_http.get(full, RequestOptions::capped(max_body));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 200) {
    return fail(fmt::format("{} (GET {})", m_http.endpoint().text, full), error_message(*response),
                response->status == 404 ? ENOENT : 0);
  }
  return std::move(response->body);
}

Result<std::vector<ContainerSummary>> DockerClient::list_containers(ListScope scope) {
  const std::string path = scope == ListScope::all ? "/containers/json?all=1" : "/containers/json";
  auto body = get_json(path, k_max_container_list_bytes);
  if (!body) {
    return unexpected(body.error());
  }
  return parse_container_list(*body, fmt::format("{} (GET {})", m_http.endpoint().text, path));
}

namespace {

// Ids are hex and names are [a-zA-Z0-9_.-]; anything else would change the request's path.
Expected<void, Error> check_container_ref(std::string_view id) {
  if (id.empty()) {
    return fail("docker", "empty container id or name");
  }
  for (char c : id) {
    const bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
    if (!ok) {
      return fail("docker", fmt::format("'{}' is not a container id or name", id));
    }
  }
  return {};
}

}  // namespace

Expected<void, Error> DockerClient::restart(std::string_view id, std::chrono::seconds stop_timeout) {
  if (auto ok = check_container_ref(id); !ok) {
    return ok;
  }
  const std::string path = fmt::format("/v{}/containers/{}/restart?t={}", m_api.text(), id, stop_timeout.count());
  // The engine answers when the container runs again: allow the stop time-out and then some.
  auto response = m_http.post(path, "",
                              RequestOptions::capped(k_max_docker_action_bytes)
                                  .with_timeout(std::chrono::milliseconds(stop_timeout) + std::chrono::seconds(60)));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 204 && response->status != 200) {
    return fail(fmt::format("{} (POST {})", m_http.endpoint().text, path), error_message(*response),
                response->status == 404 ? ENOENT : 0);
  }
  return {};
}

Result<ContainerMeta> DockerClient::inspect(std::string_view id) {
  if (auto ok = check_container_ref(id); !ok) {
    return unexpected(ok.error());
  }
  const std::string path = "/containers/" + std::string(id) + "/json";
  auto body = get_json(path, k_max_inspect_bytes);
  if (!body) {
    return unexpected(body.error());
  }
  return parse_container_inspect(*body, fmt::format("{} (GET {})", m_http.endpoint().text, path));
}

std::string docker_error_hint(const Error& error, const Endpoint& endpoint) {
  if (endpoint.kind == Endpoint::Kind::unix_socket) {
    if (error.code == ENOENT) {
      return fmt::format(
          "is the Docker engine running? No socket at {}; set DOCKER_HOST or --docker-host if it "
          "lives elsewhere",
          endpoint.socket_path);
    }
    if (error.code == EACCES || error.code == EPERM) {
      return fmt::format("run as root or as a member of the docker group to read {}", endpoint.socket_path);
    }
    if (error.code == ECONNREFUSED) {
      return fmt::format("the socket {} exists but no engine answers on it; start the Docker engine",
                         endpoint.socket_path);
    }
  }
  if (error.message.find("too old") != std::string::npos) {
    return "upgrade the Docker engine";
  }
  return fmt::format("check that the Docker engine at {} is healthy (docker version)", endpoint.text);
}

}  // namespace mw::adapters

namespace mw::adapters {

namespace {

bool name_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

std::int64_t seconds_ns(std::uint32_t s) {
  return static_cast<std::int64_t>(s) * 1'000'000'000;
}

}  // namespace

bool valid_container_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || !(std::isalnum(static_cast<unsigned char>(name[0])) != 0)) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), name_char);
}

bool valid_image_ref(std::string_view ref) {
  if (ref.empty() || ref.size() > 255 || ref.front() == '-' || ref.front() == '/') {
    return false;
  }
  if (ref.find("//") != std::string_view::npos || ref.find("/./") != std::string_view::npos ||
      ref.find("..") != std::string_view::npos || ref.back() == '/' || ref.front() == '.') {
    return false;  // no empty, "." or ".." path segment reaches the request path
  }
  return std::all_of(ref.begin(), ref.end(), [](char c) { return name_char(c) || c == '/' || c == ':' || c == '@'; });
}

std::string container_create_body(const DeploySpec& spec) {
  using nlohmann::json;
  json env = json::array();
  for (const auto& [k, v] : spec.env) {
    env.push_back(k + "=" + v);
  }
  const std::string port_key = fmt::format("{}/tcp", spec.profile.container_port);
  json host{
      {"Memory", static_cast<std::int64_t>(spec.memory_limit)},
      {"MemorySwap", static_cast<std::int64_t>(spec.memory_limit)},
      {"RestartPolicy", {{"Name", "unless-stopped"}, {"MaximumRetryCount", 0}}},
      {"Mounts",
       json::array({{{"Type", "volume"}, {"Source", spec.store_volume}, {"Target", spec.profile.store_path}}})},
  };
  if (spec.network == NetworkKind::host) {
    host["NetworkMode"] = "host";
  } else {
    host["PortBindings"] = {
        {port_key, json::array({{{"HostIp", spec.bind_address}, {"HostPort", std::to_string(spec.profile.port)}}})}};
  }
  if (spec.gpu.kind != GpuRequest::Kind::none) {
    json request{{"Driver", "nvidia"}, {"Capabilities", json::array({json::array({"gpu"})})}};
    if (spec.gpu.kind == GpuRequest::Kind::all) {
      request["Count"] = -1;
    } else {
      request["DeviceIDs"] = spec.gpu.device_ids;
    }
    host["DeviceRequests"] = json::array({request});
  }
  json body{
      {"Image", spec.image},
      {"Env", env},
      {"Labels", spec.labels},
      {"HostConfig", host},
      {"Healthcheck",
       {{"Test", spec.health.test},
        {"Interval", seconds_ns(spec.health.interval_s)},
        {"Timeout", seconds_ns(spec.health.timeout_s)},
        {"Retries", spec.health.retries},
        {"StartPeriod", seconds_ns(spec.health.start_period_s)}}},
  };
  if (spec.network == NetworkKind::bridge) {
    body["ExposedPorts"] = {{port_key, json::object()}};
  }
  return body.dump();
}

Expected<void, Error> DockerClient::post_action(const std::string& path, std::chrono::milliseconds timeout,
                                                long also_ok) {
  auto response = m_http.post(path, "", RequestOptions::capped(k_max_docker_action_bytes).with_timeout(timeout));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 204 && response->status != 200 && response->status != also_ok) {
    const int code = response->status == 404 ? ENOENT : response->status == 409 ? EEXIST : 0;
    return fail(fmt::format("{} (POST {})", m_http.endpoint().text, path), error_message(*response), code);
  }
  return {};
}

Result<std::string> DockerClient::create_container(std::string_view name, std::string_view body) {
  if (!valid_container_name(name)) {
    return fail("docker", fmt::format("'{}' is not a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", name));
  }
  const std::string path = fmt::format("/v{}/containers/create?name={}", m_api.text(), name);
  auto response = m_http.post(path, body, RequestOptions::capped(k_max_docker_action_bytes));
  if (!response) {
    return unexpected(response.error());
  }
  const std::string source = fmt::format("{} (POST {})", m_http.endpoint().text, path);
  if (response->status != 201) {
    const int code = response->status == 404 ? ENOENT : response->status == 409 ? EEXIST : 0;
    return fail(source, error_message(*response), code);
  }
  auto doc = nlohmann::json::parse(response->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("Id") || !doc["Id"].is_string()) {
    return fail(source, "the answer has no Id");
  }
  return doc["Id"].get<std::string>();
}

Expected<void, Error> DockerClient::start(std::string_view id) {
  if (auto ok = check_container_ref(id); !ok) {
    return ok;
  }
  return post_action(fmt::format("/v{}/containers/{}/start", m_api.text(), id), m_http.timeout(), 304);
}

Expected<void, Error> DockerClient::stop(std::string_view id, std::chrono::seconds stop_timeout) {
  if (auto ok = check_container_ref(id); !ok) {
    return ok;
  }
  return post_action(fmt::format("/v{}/containers/{}/stop?t={}", m_api.text(), id, stop_timeout.count()),
                     std::chrono::milliseconds(stop_timeout) + std::chrono::seconds(60), 304);
}

Expected<void, Error> DockerClient::rename(std::string_view id, std::string_view new_name) {
  if (auto ok = check_container_ref(id); !ok) {
    return ok;
  }
  if (!valid_container_name(new_name)) {
    return fail("docker", fmt::format("'{}' is not a container name", new_name));
  }
  return post_action(fmt::format("/v{}/containers/{}/rename?name={}", m_api.text(), id, new_name), m_http.timeout());
}

Expected<void, Error> DockerClient::remove(std::string_view id) {
  if (auto ok = check_container_ref(id); !ok) {
    return ok;
  }
  const std::string path = fmt::format("/v{}/containers/{}?force=1", m_api.text(), id);
  auto response = m_http.del(
      path,
      RequestOptions::capped(k_max_docker_action_bytes).with_timeout(m_http.timeout() + std::chrono::seconds(30)));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 204 && response->status != 200) {
    return fail(fmt::format("{} (DELETE {})", m_http.endpoint().text, path), error_message(*response),
                response->status == 404 ? ENOENT : 0);
  }
  return {};
}

Result<bool> DockerClient::image_present(std::string_view ref) {
  if (!valid_image_ref(ref)) {
    return fail("docker", fmt::format("'{}' is not an image reference", ref));
  }
  const std::string path = fmt::format("/v{}/images/{}/json", m_api.text(), ref);
  auto response = m_http.get(path, RequestOptions::capped(k_max_image_inspect_bytes));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status == 404) {
    return false;
  }
  if (response->status != 200) {
    return fail(fmt::format("{} (GET {})", m_http.endpoint().text, path), error_message(*response));
  }
  return true;
}

Expected<void, Error> DockerClient::import_image(std::string_view tarball, std::string_view repo,
                                                 std::string_view tag) {
  if (!valid_image_ref(fmt::format("{}:{}", repo, tag)) || tag.find_first_of("/:@") != std::string_view::npos) {
    return fail("docker", fmt::format("'{}:{}' is not an image name and tag", repo, tag));
  }
  const std::string path = fmt::format("/v{}/images/create?fromSrc=-&repo={}&tag={}", m_api.text(), repo, tag);
  const std::string source = fmt::format("{} (POST {})", m_http.endpoint().text, path);
  auto response = m_http.post(
      path, tarball,
      RequestOptions::capped(k_max_import_answer_bytes).with_timeout(m_http.timeout() + std::chrono::seconds(60)));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 200) {
    return fail(source, error_message(*response));
  }
  // Progress lines, one JSON object each; the engine reports a failure after the 200 as {"error": ...}.
  std::size_t start = 0;
  const std::string& body = response->body;
  while (start < body.size()) {
    const auto end = std::min(body.find('\n', start), body.size());
    auto line = nlohmann::json::parse(body.substr(start, end - start), nullptr, false);
    if (line.is_object() && line.contains("error")) {
      return fail(source, line["error"].is_string() ? line["error"].get<std::string>() : std::string("error"));
    }
    start = end + 1;
  }
  return {};
}

Result<std::string> stdout_of_log_frames(std::string_view frames, std::size_t max_bytes, std::string_view source) {
  std::string out;
  while (!frames.empty()) {
    if (frames.size() < 8) {
      return fail(std::string(source), "a log frame's header is cut short");
    }
    const auto stream = static_cast<unsigned char>(frames[0]);
    if (stream > 2) {
      return fail(std::string(source), fmt::format("log frame of unknown stream {}", stream));
    }
    std::uint32_t length = 0;
    for (std::size_t i = 4; i < 8; ++i) {
      length = (length << 8U) | static_cast<unsigned char>(frames[i]);
    }
    frames.remove_prefix(8);
    if (frames.size() < length) {
      return fail(std::string(source), "a log frame is cut short");
    }
    if (stream == 1 && out.size() < max_bytes) {
      out.append(frames.substr(0, std::min<std::size_t>(length, max_bytes - out.size())));
    }
    frames.remove_prefix(length);
  }
  return out;
}

Result<std::int64_t> DockerClient::wait(std::string_view id, std::chrono::milliseconds limit) {
  if (auto ok = check_container_ref(id); !ok) {
    return unexpected(ok.error());
  }
  const std::string path = fmt::format("/v{}/containers/{}/wait", m_api.text(), id);
  const std::string source = fmt::format("{} (POST {})", m_http.endpoint().text, path);
  auto response = m_http.post(path, "", RequestOptions::capped(k_max_docker_action_bytes).with_timeout(limit));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 200) {
    return fail(source, error_message(*response), response->status == 404 ? ENOENT : 0);
  }
  auto doc = nlohmann::json::parse(response->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("StatusCode") || !doc["StatusCode"].is_number_integer()) {
    return fail(source, "the answer has no StatusCode");
  }
  return doc["StatusCode"].get<std::int64_t>();
}

Result<std::string> DockerClient::stdout_log(std::string_view id, std::size_t max_bytes) {
  if (auto ok = check_container_ref(id); !ok) {
    return unexpected(ok.error());
  }
  const std::string path = fmt::format("/v{}/containers/{}/logs?stdout=1&stderr=0", m_api.text(), id);
  const std::string source = fmt::format("{} (GET {})", m_http.endpoint().text, path);
  // Frames add 8 bytes each; the engine cuts lines at 16 KiB, so twice the text is room enough.
  auto response = m_http.get(path, RequestOptions::capped(2 * max_bytes + 4096));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status != 200) {
    return fail(source, error_message(*response), response->status == 404 ? ENOENT : 0);
  }
  return stdout_of_log_frames(response->body, max_bytes, source);
}

}  // namespace mw::adapters

namespace mw::adapters {

namespace {

// The engine's own words in an error answer ({"message": "..."}), or "".
std::string engine_message(const HttpResponse& response) {
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
    return doc["message"].get<std::string>();
  }
  return {};
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The smallest limit the engine takes (linuxMinMemory in dockerd: 6 MiB).
constexpr std::int64_t k_min_memory_limit = 6LL << 20;

bool env_key_ok(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Config members copied as they are when present and not null (Hostname, Env and Image have rules of their own).
constexpr std::string_view k_config_keys[] = {"Domainname",   "User",         "AttachStdin", "AttachStdout",
                                              "AttachStderr", "ExposedPorts", "Tty",         "OpenStdin",
                                              "StdinOnce",    "Cmd",          "Healthcheck", "ArgsEscaped",
                                              "Volumes",      "WorkingDir",   "Entrypoint",  "NetworkDisabled",
                                              "MacAddress",   "Labels",       "StopSignal",  "StopTimeout",
                                              "Shell"};

// obj[key], or null when obj is not an object or has no such member (const operator[] must not be asked that).
const json& member_or_null(const json& obj, std::string_view key) {
  static const json k_null;
  if (!obj.is_object()) {
    return k_null;
  }
  const auto it = obj.find(key);
  return it == obj.end() ? k_null : *it;
}

bool default_network_mode(std::string_view mode) {
  return mode.empty() || mode == "default" || mode == "bridge" || mode == "host" || mode == "none" ||
         mode.starts_with("container:");
}

// A legacy link as inspect shows it ("/db:/web/db") as create takes it ("db:db").
std::string create_link(std::string_view link) {
  const auto colon = link.find(':');
  std::string_view name = link.substr(0, colon);
  std::string_view alias = colon == std::string_view::npos ? name : link.substr(colon + 1);
  if (name.starts_with('/')) {
    name.remove_prefix(1);
  }
  if (const auto slash = alias.rfind('/'); slash != std::string_view::npos) {
    alias.remove_prefix(slash + 1);
  }
  return fmt::format("{}:{}", name, alias);
}

Expected<void, Error> apply_env(json& config, const RecreateChange& change, const std::string& source) {
  for (const auto& [key, value] : change.env) {
    if (!env_key_ok(key)) {
      return fail(source, fmt::format("'{}' is not an environment variable name memwarden sets ([A-Z0-9_]+)", key));
    }
  }
  json env = json::array();
  std::map<std::string, bool> seen;
  if (config.contains("Env") && !config["Env"].is_null()) {
    if (!config["Env"].is_array()) {
      return fail(source, "Config.Env is not an array of strings");
    }
    for (const auto& entry : config["Env"]) {
      if (!entry.is_string()) {
        return fail(source, "Config.Env is not an array of strings");
      }
      const auto& text = entry.get_ref<const std::string&>();
      const std::string key = text.substr(0, text.find('='));
      const auto it = change.env.find(key);
      if (it == change.env.end()) {
        env.push_back(text);
      } else if (it->second) {
        env.push_back(key + "=" + *it->second);
        seen[key] = true;
      }
    }
  }
  for (const auto& [key, value] : change.env) {
    if (value && seen.count(key) == 0) {
      env.push_back(key + "=" + *value);
    }
  }
  config["Env"] = std::move(env);
  return {};
}

Expected<void, Error> apply_memory(json& host, const RecreateChange& change, const std::string& source) {
  if (!change.memory && !change.memory_swap) {
    return {};
  }
  auto swap = change.memory_swap;
  if (change.memory) {
    const auto memory = *change.memory;
    if (memory < 0 || (memory > 0 && memory < k_min_memory_limit)) {
      return fail(source,
                  fmt::format("a memory limit of {} bytes: the engine takes 0 (no limit) or at least 6 MiB", memory));
    }
    host["Memory"] = memory;
    if (!swap) {
      swap = memory;
    }
  }
  if (swap) {
    if (*swap < -1) {
      return fail(source, fmt::format("a memory+swap limit of {} bytes: -1 (unlimited swap), 0 or a size", *swap));
    }
    host["MemorySwap"] = *swap;
  }
  const auto number = [&](const char* key) {
    return host.contains(key) && host[key].is_number_integer() ? host[key].get<std::int64_t>() : 0;
  };
  const auto memory = number("Memory");
  const auto memory_swap = number("MemorySwap");
  const auto reservation = number("MemoryReservation");
  if (memory == 0 && memory_swap > 0) {
    return fail(source, "a memory+swap limit without a memory limit: the engine refuses it");
  }
  if (memory > 0 && memory_swap > 0 && memory_swap < memory) {
    return fail(source, fmt::format("a memory+swap limit of {} bytes under the memory limit of {} bytes: memory+swap "
                                    "must be at least the memory (equal for no swap, -1 for unlimited swap)",
                                    memory_swap, memory));
  }
  if (memory > 0 && reservation > memory) {
    return fail(source, fmt::format("a memory limit of {} bytes under the container's memory reservation of {} bytes",
                                    memory, reservation));
  }
  return {};
}

// Volumes the engine made for the container itself (anonymous: an image's VOLUME, or `-v /path`) are in Mounts
// only. A new container would get fresh, empty ones, and the old ones outlive the old container (it is removed
// without its volumes): they are mounted again by name, so that the data (an Ollama model store) stays.
void carry_anonymous_volumes(const json& doc, json& host) {
  const auto& mounts = member_or_null(doc, "Mounts");
  if (!mounts.is_array()) {
    return;
  }
  std::vector<std::string> targets;  // what Binds and HostConfig.Mounts already mount
  if (const auto& binds = member_or_null(host, "Binds"); binds.is_array()) {
    for (const auto& b : binds) {
      if (b.is_string()) {
        const auto& text = b.get_ref<const std::string&>();
        const auto first = text.find(':');
        if (first != std::string::npos) {
          const auto second = text.find(':', first + 1);
          targets.push_back(
              text.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1));
        }
      }
    }
  }
  // The engine's name of the volume it made at `target`, or "".
  const auto volume_at = [&](const std::string& target) {
    for (const auto& m : mounts) {
      const auto& type = member_or_null(m, "Type");
      const auto& name = member_or_null(m, "Name");
      const auto& dest = member_or_null(m, "Destination");
      if (type.is_string() && type.get_ref<const std::string&>() == "volume" && name.is_string() && dest.is_string() &&
          dest.get_ref<const std::string&>() == target) {
        return name.get<std::string>();
      }
    }
    return std::string();
  };
  if (host.contains("Mounts") && host["Mounts"].is_array()) {
    for (auto& m : host["Mounts"]) {
      const auto& t = member_or_null(m, "Target");
      if (!t.is_string()) {
        continue;
      }
      const auto target = t.get<std::string>();
      targets.push_back(target);
      // `--mount type=volume,target=/x` without a source: the engine made the volume; name it, or the new
      // container would get an empty one.
      const auto& type = member_or_null(m, "Type");
      const auto& source = member_or_null(m, "Source");
      if (type.is_string() && type.get_ref<const std::string&>() == "volume" &&
          (!source.is_string() || source.get_ref<const std::string&>().empty())) {
        if (auto name = volume_at(target); !name.empty()) {
          m["Source"] = name;
        }
      }
    }
  }
  json binds = member_or_null(host, "Binds").is_array() ? host["Binds"] : json::array();
  for (const auto& m : mounts) {
    const auto& type = member_or_null(m, "Type");
    const auto& name = member_or_null(m, "Name");
    const auto& dest = member_or_null(m, "Destination");
    if (!type.is_string() || type.get_ref<const std::string&>() != "volume" || !name.is_string() || !dest.is_string() ||
        name.get_ref<const std::string&>().empty()) {
      continue;
    }
    const auto& target = dest.get_ref<const std::string&>();
    if (std::find(targets.begin(), targets.end(), target) != targets.end()) {
      continue;
    }
    const auto& rw = member_or_null(m, "RW");
    binds.push_back(name.get<std::string>() + ":" + target + (rw.is_boolean() && !rw.get<bool>() ? ":ro" : ""));
    targets.push_back(target);
  }
  if (!binds.empty()) {
    host["Binds"] = std::move(binds);
  }
}

}  // namespace

std::string memory_update_body(std::int64_t memory, std::int64_t memory_swap) {
  return nlohmann::json{{"Memory", memory}, {"MemorySwap", memory_swap}}.dump();
}

std::string explain_update_refusal(std::string_view message) {
  if (contains(message, "Memory limit should be smaller than already set memoryswap limit")) {
    return "the engine keeps memory+swap at least as large as memory, and the new limit is above the container's "
           "memory+swap limit: set the memory+swap limit in the same update (equal to the memory for no swap)";
  }
  if (contains(message, "Minimum memoryswap limit should be larger than memory limit")) {
    return "the memory+swap limit is below the memory limit: memory+swap must be at least the memory (equal for no "
           "swap, -1 for unlimited swap)";
  }
  if (contains(message, "Minimum memory limit allowed is")) {
    return "the new limit is under the smallest the engine allows (6 MB)";
  }
  if (contains(message, "Minimum memory limit can not be less than memory reservation limit")) {
    return "the new limit is under the container's memory reservation (its soft limit)";
  }
  if (contains(message, "device or resource busy") || contains(message, "unable to set memory limit")) {
    return "the container uses more memory than the new limit and the kernel could not reclaim enough of it: free "
           "memory in the container first (unload a model) or choose a higher limit";
  }
  if (contains(message, "No such container")) {
    return "the container does not exist (it was removed, or the name is wrong)";
  }
  return std::string(message);
}

Result<std::string> recreate_body(std::string_view inspect_json, const RecreateChange& change,
                                  std::string_view source) {
  auto parsed = parse_json(inspect_json, source);
  if (!parsed) {
    return unexpected(parsed.error());
  }
  const json& doc = *parsed;
  const std::string src(source);
  const auto& config = member_or_null(doc, "Config");
  const auto& host_config = member_or_null(doc, "HostConfig");
  const auto& id_field = member_or_null(doc, "Id");
  if (!config.is_object() || !host_config.is_object() || !id_field.is_string()) {
    return fail(src, "not a container's inspect answer: expected an object with Id, Config and HostConfig");
  }
  const auto short_id = id_field.get<std::string>().substr(0, 12);
  const auto& image = member_or_null(config, "Image");
  if (!image.is_string() || image.get_ref<const std::string&>().empty()) {
    return fail(src, "Config.Image is missing: the image the container was made from is unknown");
  }

  json body = json::object();
  for (const auto key : k_config_keys) {
    if (const auto& value = member_or_null(config, key); !value.is_null()) {
      body[std::string(key)] = value;
    }
  }
  body["Image"] = image;
  if (const auto& hostname = member_or_null(config, "Hostname"); hostname.is_string()) {
    const auto& text = hostname.get_ref<const std::string&>();
    if (!text.empty() && text != short_id) {
      body["Hostname"] = text;  // set by the user; the engine's own (the short id) would be the old one's
    }
  }
  if (const auto& env = member_or_null(config, "Env"); !env.is_null()) {
    body["Env"] = env;
  }
  if (auto ok = apply_env(body, change, src); !ok) {
    return unexpected(ok.error());
  }

  json host = host_config;
  if (auto ok = apply_memory(host, change, src); !ok) {
    return unexpected(ok.error());
  }
  if (const auto& links = member_or_null(host, "Links"); links.is_array()) {
    json out = json::array();
    for (const auto& link : links) {
      if (link.is_string()) {
        out.push_back(create_link(link.get_ref<const std::string&>()));
      }
    }
    host["Links"] = std::move(out);
  }
  if (const auto& from = member_or_null(host, "VolumesFrom"); from.is_array() && !from.empty()) {
    // Its Mounts then hold the other container's volumes too, which cannot be told from its own.
    return fail(src,
                "the container mounts another container's volumes (--volumes-from): memwarden does not "
                "re-create it");
  }
  carry_anonymous_volumes(doc, host);
  const auto& mode_field = member_or_null(host, "NetworkMode");
  const std::string mode = mode_field.is_string() ? mode_field.get<std::string>() : std::string();
  body["HostConfig"] = std::move(host);

  const auto& networks = member_or_null(member_or_null(doc, "NetworkSettings"), "Networks");
  if (networks.is_object() && networks.size() > 1) {
    std::string names;
    for (const auto& [name, endpoint] : networks.items()) {
      names += names.empty() ? name : ", " + name;
    }
    return fail(src, fmt::format("the container is on {} networks ({}): memwarden recreates a container on one "
                                 "network only",
                                 networks.size(), names));
  }
  if (!default_network_mode(mode) && networks.is_object() && networks.size() == 1) {
    const auto first = networks.begin();
    const auto& endpoint = first.value();
    json out = json::object();
    if (const auto& aliases = member_or_null(endpoint, "Aliases"); aliases.is_array()) {
      json kept = json::array();
      for (const auto& alias : aliases) {
        if (alias.is_string() && alias.get_ref<const std::string&>() != short_id) {
          kept.push_back(alias);
        }
      }
      out["Aliases"] = std::move(kept);
    }
    for (const char* key : {"IPAMConfig", "Links"}) {
      if (const auto& value = member_or_null(endpoint, key); !value.is_null()) {
        out[key] = value;
      }
    }
    body["NetworkingConfig"] = {{"EndpointsConfig", {{first.key(), std::move(out)}}}};
  }
  return body.dump();
}

Result<std::string> DockerClient::inspect_raw(std::string_view id) {
  if (auto ok = check_container_ref(id); !ok) {
    return unexpected(ok.error());
  }
  return get_json("/containers/" + std::string(id) + "/json", k_max_inspect_bytes);
}

Expected<void, Error> DockerClient::update_memory(std::string_view id, std::int64_t memory, std::int64_t memory_swap) {
  if (auto ok = check_container_ref(id); !ok) {
    return ok;
  }
  const std::string path = fmt::format("/v{}/containers/{}/update", m_api.text(), id);
  const std::string source = fmt::format("{} (POST {})", m_http.endpoint().text, path);
  // Lowering a limit makes the kernel reclaim down to it first: allow it more than a plain request.
  auto response = m_http.post(
      path, memory_update_body(memory, memory_swap),
      RequestOptions::capped(k_max_docker_action_bytes).with_timeout(m_http.timeout() + std::chrono::seconds(30)));
  if (!response) {
    return unexpected(response.error());
  }
  if (response->status == 200 || response->status == 204) {
    return {};
  }
  if (response->status == 404) {
    return fail(source, error_message(*response), ENOENT);
  }
  const auto said = engine_message(*response);
  const auto words = explain_update_refusal(said);
  if (said.empty() || words == said) {
    return fail(source, error_message(*response));
  }
  return fail(source, fmt::format("{} (the engine: {})", words, error_message(*response)));
}

}  // namespace mw::adapters
