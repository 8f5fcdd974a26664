#include "core/discovery.hpp"

#include <fmt/format.h>

#include "core/bytes.hpp"

namespace mw {

bool is_inference_server(const ContainerMeta& c) {
  if (const auto it = c.labels.find("memwarden.kind"); it != c.labels.end()) {
    return it->second == "ollama";
  }
  std::string image;
  for (char ch : c.image) {
    image += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
  }
  return image.find("ollama") != std::string::npos;
}

std::optional<HostPort> parse_ollama_host(std::string_view value) {
  if (value.starts_with("http://")) {
    value.remove_prefix(7);
  } else if (value.starts_with("https://")) {
    return std::nullopt;  // memwarden speaks plain HTTP to local servers
  }
  while (!value.empty() && value.back() == '/') {
    value.remove_suffix(1);
  }
  HostPort out;
  std::string_view host = value;
  std::string_view port;
  if (value.starts_with('[')) {  // [::1]:11434
    const auto close = value.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = value.substr(1, close - 1);
    const auto rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return std::nullopt;
      }
      port = rest.substr(1);
    }
  } else if (const auto colon = value.rfind(':'); colon != std::string_view::npos) {
    host = value.substr(0, colon);
    port = value.substr(colon + 1);
  }
  if (!port.empty()) {
    const auto p = parse_u64(port);
    if (!p || *p == 0 || *p > 65535) {
      return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(*p);
  }
  if (host.find_first_of("/ ?#@") != std::string_view::npos) {
    return std::nullopt;
  }
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    out.host = "127.0.0.1";
  } else if (host.find(':') != std::string_view::npos) {
    out.host = fmt::format("[{}]", host);
  } else {
    out.host = std::string(host);
  }
  return out;
}

namespace {

std::string connect_host(const std::string& host_ip) {
  if (host_ip.empty() || host_ip == "0.0.0.0" || host_ip == "::") {
    return "127.0.0.1";
  }
  if (host_ip.find(':') != std::string::npos) {
    return "[" + host_ip + "]";
  }
  return host_ip;
}

}  // namespace

std::optional<ApiAddress> ollama_api_address(const ContainerMeta& c) {
  if (const auto it = c.labels.find("memwarden.ollama.url"); it != c.labels.end()) {
    return ApiAddress{it->second, "label memwarden.ollama.url"};
  }
  std::uint16_t port = k_ollama_default_port;
  if (const auto it = c.server_env.find("OLLAMA_HOST"); it != c.server_env.end()) {
    if (const auto hp = parse_ollama_host(it->second)) {
      port = hp->port;
    }
  }
  if (c.network_mode == "host") {
    return ApiAddress{fmt::format("http://127.0.0.1:{}", port), "host network"};
  }
  const std::string wanted = fmt::format("{}/tcp", port);
  for (const auto& b : c.ports) {
    if (b.container_port == wanted && !b.host_port.empty()) {
      return ApiAddress{fmt::format("http://{}:{}", connect_host(b.host_ip), b.host_port),
                        fmt::format("published port {}", wanted)};
    }
  }
  if (!c.ip_addresses.empty()) {
    return ApiAddress{fmt::format("http://{}:{}", connect_host(c.ip_addresses.front()), port), "container address"};
  }
  return std::nullopt;
}

InferenceServer server_from_container(const ContainerMeta& c) {
  InferenceServer s;
  s.name = c.name;
  s.kind = ServerKind::container;
  s.container_id = c.id;
  s.pid = c.state.pid;
  s.labels = c.labels;
  if (const auto address = ollama_api_address(c)) {
    s.api_url = address->url;
    s.api_url_source = address->source;
  }
  s.has_memory_limit = c.memory_limit.has_value();
  s.memory_limit = c.memory_limit;
  return s;
}

}  // namespace mw
