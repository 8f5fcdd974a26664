// The one HTTP layer: HTTP/1.1 over a Unix socket or TCP, with a time-out, keep-alive and a
// bounded response size. The Docker and Ollama clients sit on top of it. Plain http:// and
// unix:// are spoken over POSIX sockets; https:// (webhooks) goes through libcurl, which is
// loaded at run time (dlopen "libcurl.so.4") on the first https request only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace mw::adapters {

struct Endpoint {
  enum class Kind { unix_socket, tcp };
  Kind kind = Kind::unix_socket;
  std::string socket_path;  // for unix_socket
  std::string base_url;     // "http://host:port" for tcp; "http://localhost" for unix_socket
  std::string text;         // as given, for messages: "unix:///var/run/docker.sock"
};

// "unix:///path", "tcp://host:port", "http://host:port", "https://host"; an IPv6 host in brackets
// ("http://[::1]:11434"). A port, when given, is a number from 1 to 65535. `source` names where the
// text came from in errors (e.g. "DOCKER_HOST: 'tcp://127.0.0.1:99999': port 99999 is not from 1 to 65535").
[[nodiscard]] Result<Endpoint> parse_endpoint(std::string_view text, std::string_view source);

// A response header a request asked to keep (RequestOptions::keep_headers).
struct HttpHeader {
  std::string name;   // as the request named it
  std::string value;  // as sent, without the spaces and tabs around it
};

// The most response headers one answer keeps, whatever the request asked for and however often the server
// repeats them; each lies within the answer's head (64 KiB at most).
inline constexpr std::size_t k_max_kept_headers = 16;

struct HttpResponse {
  long status = 0;
  std::string body;
  std::vector<HttpHeader> headers;  // the ones the request asked for, in the order they came, once per line

  // The first kept header of that name (ASCII letters compared without case); nullopt when the answer did not
  // carry it or the request did not ask for it.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

// The most a response body may hold unless a request says otherwise. Each API names its own, smaller cap
// (adapters/docker.hpp, adapters/ollama.hpp): nothing that comes from outside is read without a bound.
inline constexpr std::size_t k_default_max_body_bytes = 64U << 20;

struct RequestOptions {
  std::optional<std::chrono::milliseconds> timeout;       // the whole exchange; the client's time-out when empty
  std::size_t max_body_bytes = k_default_max_body_bytes;  // a longer body is an error ("response larger than ...")
  // The response headers to keep in HttpResponse::headers, by name (without case); none by default.
  std::vector<std::string> keep_headers;

  [[nodiscard]] static RequestOptions capped(std::size_t max_body) {
    RequestOptions o;
    o.max_body_bytes = max_body;
    return o;
  }
  [[nodiscard]] RequestOptions with_timeout(std::chrono::milliseconds t) const {
    RequestOptions o = *this;
    o.timeout = t;
    return o;
  }
  [[nodiscard]] RequestOptions keeping(std::vector<std::string> names) const {
    RequestOptions o = *this;
    o.keep_headers = std::move(names);
    return o;
  }
};

// How a streamed request waits and how much it takes (HttpClient::stream_post).
struct StreamOptions {
  // Connecting, sending the request and receiving the answer's head (status and headers) together: a server
  // that has not begun to answer by then is an error ("no answer within 300.0 s", code ETIMEDOUT). When empty,
  // the client's time-out bounds the connect only and the head is waited for as long as it takes.
  std::optional<std::chrono::milliseconds> first_byte_timeout;
  // Once the head is in, the longest silence between two pieces of the body ("nothing received for 60.0 s",
  // code ETIMEDOUT); none when empty. The whole body may take as long as it keeps coming.
  std::optional<std::chrono::milliseconds> idle_timeout;
  // The most body bytes handed to on_chunk; a piece that would pass it is not handed over but ends the
  // stream with an error ("response larger than 16 MiB"). None when empty (an event stream that runs for days).
  std::optional<std::size_t> max_body_bytes;
  // A status other than 2xx is returned rather than an error, and its body is handed to on_chunk (and
  // on_open called) as for a 2xx one, so that the caller can read the server's own error object.
  bool pass_error_answers = false;
};

class HttpClient {
 public:
  HttpClient(Endpoint endpoint, std::chrono::milliseconds timeout);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Errors name the endpoint and say what happened in plain words (a time-out carries code ETIMEDOUT; no such socket,
  // permission denied, refused, no answer within the time-out, ...).
  [[nodiscard]] Result<HttpResponse> get(std::string_view path, const RequestOptions& options = {});
  [[nodiscard]] Result<HttpResponse> post(std::string_view path, std::string_view json_body,
                                          const RequestOptions& options = {});
  // DELETE (plain http:// and unix:// only; an https:// endpoint is an error).
  [[nodiscard]] Result<HttpResponse> del(std::string_view path, const RequestOptions& options = {});
  // A GET whose body arrives over time (the Docker event stream), on its own connection: no overall
  // time-out (the client's time-out bounds the connect only), TCP keep-alive on. `on_open` (may be
  // empty) gets the status once the response headers are in; `on_chunk` gets each piece of a 2xx body
  // as it arrives and returns false to end the stream. Returns the status when the server ends the
  // stream or on_chunk returns false. Errors: the connection failed or broke, a status other than 2xx
  // ("HTTP 400: <start of the body>"), `stop` became true (checked every 100 ms; code ECANCELED), or an
  // https:// endpoint (not supported).
  [[nodiscard]] Result<long> stream(std::string_view path, const std::function<bool(std::string_view chunk)>& on_chunk,
                                    const std::atomic<bool>& stop,
                                    const std::function<void(long status)>& on_open = {});
  // A POST of a JSON body whose answer arrives over time (a streamed LLM generation), on its own connection
  // as stream() (which it is in every other respect: on_open, on_chunk returning false, stop, the errors),
  // waiting and capped as `options` says.
  [[nodiscard]] Result<long> stream_post(std::string_view path, std::string_view json_body,
                                         const std::function<bool(std::string_view chunk)>& on_chunk,
                                         const std::atomic<bool>& stop, const StreamOptions& options,
                                         const std::function<void(long status)>& on_open = {});
  // Closes the kept-alive connection (so it does not count as a client of the server).
  void close();

  [[nodiscard]] const Endpoint& endpoint() const { return m_endpoint; }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return m_timeout; }

 private:
  [[nodiscard]] Result<HttpResponse> perform(std::string_view method, std::string_view path, std::string_view body,
                                             const RequestOptions& options);
  [[nodiscard]] Result<HttpResponse> perform_tls(std::string_view method, std::string_view path, std::string_view body,
                                                 std::chrono::milliseconds timeout, const RequestOptions& options);
  [[nodiscard]] Result<long> stream_request(std::string_view method, std::string_view path, std::string_view body,
                                            const std::function<bool(std::string_view chunk)>& on_chunk,
                                            const std::atomic<bool>& stop, const StreamOptions& options,
                                            const std::function<void(long status)>& on_open);

  Endpoint m_endpoint;
  std::chrono::milliseconds m_timeout;
  struct Handle;
  std::unique_ptr<Handle> m_handle;  // the kept-alive connection (or curl handle for https)
};

}  // namespace mw::adapters
