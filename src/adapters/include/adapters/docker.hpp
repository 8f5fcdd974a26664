// Docker Engine API client: version negotiation, list, inspect.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http.hpp"
#include "core/container.hpp"
#include "core/deploy.hpp"
#include "core/error.hpp"

namespace mw::adapters {

struct ApiVersion {
  int major = 1;
  int minor = 0;
  auto operator<=>(const ApiVersion&) const = default;
  [[nodiscard]] std::string text() const;
};

[[nodiscard]] std::optional<ApiVersion> parse_api_version(std::string_view text);

// The newest API this client speaks, and the oldest it accepts (Docker 19.03).
inline constexpr ApiVersion k_client_max_api{1, 47};
inline constexpr ApiVersion k_client_min_api{1, 40};

struct EngineVersion {
  ApiVersion api;
  std::string engine_version;  // "20.10.24+dfsg1"; empty when the engine did not say
};

// Pure parsers of the engine's JSON; `source` names the request in errors.
[[nodiscard]] Result<EngineVersion> parse_version_response(std::string_view json, std::string_view source);

// What the headers of an answer to GET /_ping say: `Api-Version: 1.41` and `Server: Docker/20.10.24+dfsg1 (linux)`
// (the engine's version, empty when the header is missing or not like that). nullopt when the answer is not a
// 2xx or has no API version like 1.41 (an engine or proxy that does not say it there: ask GET /version).
[[nodiscard]] std::optional<EngineVersion> parse_ping_headers(long status, std::optional<std::string_view> api_version,
                                                              std::optional<std::string_view> server);
// "Docker/20.10.24+dfsg1 (linux)" -> "20.10.24+dfsg1"; empty for anything else (another server, a version over
// 64 bytes or with other than letters, digits and ".+-~_").
[[nodiscard]] std::string engine_version_from_server_header(std::string_view server);

// The version to use: the lower of the server's and the client's maximum; an error when the
// server is older than k_client_min_api.
[[nodiscard]] Result<ApiVersion> negotiate_api_version(const EngineVersion& server, std::string_view source);

struct ContainerSummary {
  std::string id;
  std::string name;  // without the leading '/'
  std::string image;
  std::string state;  // "running", "exited", ...
  std::map<std::string, std::string> labels;
};

[[nodiscard]] Result<std::vector<ContainerSummary>> parse_container_list(std::string_view json,
                                                                         std::string_view source);
[[nodiscard]] Result<ContainerMeta> parse_container_inspect(std::string_view json, std::string_view source);

enum class ListScope { running, all };

// The address to use: `flag` if set, else $DOCKER_HOST if set, else unix:///var/run/docker.sock.
[[nodiscard]] std::string docker_host_address(std::string_view flag, const char* env_docker_host);
inline constexpr std::string_view k_default_docker_host = "unix:///var/run/docker.sock";

// The most memwarden reads of each answer of the engine (docs/serve.md, "Limits").
inline constexpr std::size_t k_max_docker_ping_bytes = 64U << 10;  // "OK"; more from a proxy's error page
inline constexpr std::size_t k_max_docker_version_bytes = 64U << 10;
inline constexpr std::size_t k_max_container_list_bytes = 4U << 20;  // 1,500 to 6,000 containers
inline constexpr std::size_t k_max_inspect_bytes = 1U << 20;         // one container; a typical one is 10 KiB
inline constexpr std::size_t k_max_docker_action_bytes = 64U << 10;  // the answer to a restart

// The body of POST /containers/create for a deployment: Memory and MemorySwap equal (no swap), the GPUs as a
// device request (driver nvidia, capabilities gpu), the store as a named volume, the port published on the
// bind address (bridge) or the host's network, restart unless-stopped, the health check, env and labels.
[[nodiscard]] std::string container_create_body(const DeploySpec& spec);

// The frames of GET /containers/{id}/logs for a container without a TTY: each an 8-byte header (stream 1
// stdout or 2 stderr, three zero bytes, the length as a big-endian uint32) and its bytes. Returns stdout's
// bytes, at most `max_bytes` of them; an error for a truncated frame or an unknown stream.
[[nodiscard]] Result<std::string> stdout_of_log_frames(std::string_view frames, std::size_t max_bytes,
                                                       std::string_view source);

// A container name the engine accepts: [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 128 characters); an image
// reference of letters, digits and "/:._@-" (at most 255).
[[nodiscard]] bool valid_container_name(std::string_view name);
[[nodiscard]] bool valid_image_ref(std::string_view ref);

// The body of POST /containers/{id}/update that sets the memory limit: {"Memory":m,"MemorySwap":s}, both always
// (MemorySwap is memory + swap: equal to Memory for no swap, -1 for unlimited swap). On Docker 20.10 a 0 leaves
// that value as it was (a memory limit is lifted only by recreating the container), and a memory limit above the
// memory+swap limit the container keeps is refused (the swap rule).
[[nodiscard]] std::string memory_update_body(std::int64_t memory, std::int64_t memory_swap);

// Plain words for the engine's refusals of a memory update (verified on Docker 20.10): the swap rule (the new
// limit above the container's memory+swap limit), memory+swap below memory, the 6 MB minimum, a limit under
// what the container uses now (runc's "unable to set memory limit", the kernel's EBUSY on cgroup v1), a
// container that does not exist. Anything else: the engine's message as it is.
[[nodiscard]] std::string explain_update_refusal(std::string_view engine_message);

// What to change when a container is made again (memwarden's recreate).
struct RecreateChange {
  // KEY -> the new value, or nullopt to remove KEY. Keys are [A-Z0-9_]+.
  std::map<std::string, std::optional<std::string>> env;
  // HostConfig.Memory in bytes; 0 = no limit (then MemorySwap is 0 too, unless memory_swap says otherwise).
  std::optional<std::int64_t> memory;
  // HostConfig.MemorySwap (memory + swap; -1 unlimited swap; 0 = unset). Left out with `memory` set: equal to
  // the memory (no swap), or 0 when the memory is 0.
  std::optional<std::int64_t> memory_swap;
};

// The body of POST /containers/create that makes the container `inspect_json` (GET /containers/{id}/json)
// describes again, with `change` applied: Config (Image is Config.Image, the name it was created from: a tag
// that has moved since gives the newer image), HostConfig whole (Memory and MemorySwap replaced as `change`
// says), and NetworkingConfig for a user-defined network (its aliases without the old short id, its IPAM
// config). Hostname is left out when the engine made it (the first 12 characters of the id). Errors, naming
// `source`: JSON that is not an inspect answer, a key that is not [A-Z0-9_]+, a limit the engine would refuse
// (under 6 MB, under the memory reservation, memory+swap under memory), a container on more than one network.
// Anonymous volumes (an image's VOLUME, -v /path) are mounted again by name, so their data stays.
[[nodiscard]] Result<std::string> recreate_body(std::string_view inspect_json, const RecreateChange& change,
                                                std::string_view source);

inline constexpr std::size_t k_max_image_inspect_bytes = 1U << 20;
inline constexpr std::size_t k_max_import_answer_bytes = 1U << 20;  // progress lines of a docker import

class DockerClient {
 public:
  // Connects and negotiates the API version with GET /_ping (its Api-Version header; about 1 ms), or with
  // GET /version when the ping's answer does not say it (an old engine, a proxy). /version costs 20-30 ms on
  // dockerd 20.10, which runs `runc --version` for each.
  [[nodiscard]] static Result<DockerClient> connect(const Endpoint& endpoint, std::chrono::milliseconds timeout);

  [[nodiscard]] const ApiVersion& api_version() const { return m_api; }
  // "20.10.24+dfsg1", from the Server header (or /version); empty when the engine did not say.
  [[nodiscard]] const std::string& engine_version() const { return m_engine_version; }
  [[nodiscard]] const Endpoint& endpoint() const { return m_http.endpoint(); }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return m_http.timeout(); }
  // Closes the kept-alive connection; the next request opens another.
  void close_connection() { m_http.close(); }
  // Another client for the same engine and API version on a connection of its own (opened on its first request),
  // for requests in parallel.
  [[nodiscard]] DockerClient another_connection() const {
    return DockerClient(HttpClient(m_http.endpoint(), m_http.timeout()), m_api, m_engine_version);
  }

  [[nodiscard]] Result<std::vector<ContainerSummary>> list_containers(ListScope scope);
  [[nodiscard]] Result<ContainerMeta> inspect(std::string_view id);
  // GET /containers/{id}/json as the engine sent it (at most k_max_inspect_bytes); 404: ENOENT.
  [[nodiscard]] Result<std::string> inspect_raw(std::string_view id);
  // POST /containers/{id}/update with memory_update_body. A 404 keeps the engine's message ("No such
  // container", ENOENT); any other refusal says explain_update_refusal's words, then the engine's message.
  [[nodiscard]] Expected<void, Error> update_memory(std::string_view id, std::int64_t memory, std::int64_t memory_swap);
  // POST /containers/{id}/restart?t=<stop timeout in s>; the engine answers once the container runs again.
  [[nodiscard]] Expected<void, Error> restart(std::string_view id, std::chrono::seconds stop_timeout);

  // POST /containers/create?name=NAME; the new container's id. Errors carry EEXIST when the name is taken
  // (409) and ENOENT when the image is not present (404).
  [[nodiscard]] Result<std::string> create_container(std::string_view name, std::string_view body);
  // POST /containers/{id}/start (304, already running, is success).
  [[nodiscard]] Expected<void, Error> start(std::string_view id);
  // POST /containers/{id}/stop?t= (304, already stopped, is success).
  [[nodiscard]] Expected<void, Error> stop(std::string_view id, std::chrono::seconds stop_timeout);
  // POST /containers/{id}/rename?name= (409: EEXIST).
  [[nodiscard]] Expected<void, Error> rename(std::string_view id, std::string_view new_name);
  // DELETE /containers/{id}?force=1 (the container's anonymous volumes stay; named volumes always do).
  [[nodiscard]] Expected<void, Error> remove(std::string_view id);
  // `docker import`: POST /images/create?fromSrc=-&repo=REPO&tag=TAG with the tarball as the body. The engine
  // answers 200 and then progress lines; a line with "error" is a failure (its message).
  [[nodiscard]] Expected<void, Error> import_image(std::string_view tarball, std::string_view repo,
                                                   std::string_view tag);
  // POST /containers/{id}/wait: blocks until the container exits (at most `limit`), then its exit code.
  [[nodiscard]] Result<std::int64_t> wait(std::string_view id, std::chrono::milliseconds limit);
  // The container's standard output, at most max_bytes (GET /containers/{id}/logs?stdout=1; no TTY).
  [[nodiscard]] Result<std::string> stdout_log(std::string_view id, std::size_t max_bytes);
  // Whether the image is present (GET /images/{ref}/json: 200 yes, 404 no).
  [[nodiscard]] Result<bool> image_present(std::string_view ref);

 private:
  DockerClient(HttpClient http, ApiVersion api, std::string engine_version)
      : m_http(std::move(http)), m_api(api), m_engine_version(std::move(engine_version)) {}
  [[nodiscard]] Result<std::string> get_json(const std::string& path, std::size_t max_body);
  // A POST with no answer to read but its status: 204 (and `also_ok`) succeed.
  [[nodiscard]] Expected<void, Error> post_action(const std::string& path, std::chrono::milliseconds timeout,
                                                  long also_ok = 204);

  HttpClient m_http;
  ApiVersion m_api;
  std::string m_engine_version;
};

// What a user should do about a connection error, in one line (socket path, permission, ...).
[[nodiscard]] std::string docker_error_hint(const Error& error, const Endpoint& endpoint);

}  // namespace mw::adapters
