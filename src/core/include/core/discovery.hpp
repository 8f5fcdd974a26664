// Which containers are inference servers, and how to reach their API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/container.hpp"
#include "core/diagnosis.hpp"

namespace mw {

inline constexpr std::uint16_t k_ollama_default_port = 11434;

// An image whose name contains "ollama", or the label memwarden.kind=ollama.
[[nodiscard]] bool is_inference_server(const ContainerMeta& container);

// OLLAMA_HOST as Ollama reads it: "0.0.0.0", ":11434", "127.0.0.1:8080", "http://host:port",
// "[::1]:11434". A wildcard address becomes 127.0.0.1, the address to connect to.
struct HostPort {
  std::string host;
  std::uint16_t port = k_ollama_default_port;
};
[[nodiscard]] std::optional<HostPort> parse_ollama_host(std::string_view value);

struct ApiAddress {
  std::string url;     // "http://127.0.0.1:11434"
  std::string source;  // how it was found, for people
};

// In order: label memwarden.ollama.url; host networking (port from OLLAMA_HOST); the published
// port of 11434/tcp (or OLLAMA_HOST's port); the container's own address. nullopt when none works.
[[nodiscard]] std::optional<ApiAddress> ollama_api_address(const ContainerMeta& container);

// The server memwarden watches for a container.
[[nodiscard]] InferenceServer server_from_container(const ContainerMeta& container);

}  // namespace mw
