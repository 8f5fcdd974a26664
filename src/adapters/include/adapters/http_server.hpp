// A small embedded HTTP/1.1 server for memwarden serve (/metrics and the JSON API):
// POSIX sockets and poll() on one worker thread (and a second one for slow routes), many connections at once, one
// request per connection (every response carries Content-Length and Connection: close),
// limits per client and a reserve that keep /metrics and /healthz answerable under a flood.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace mw::adapters {

struct ServerRequest {
  std::string method;                          // "GET", "POST", "HEAD", ... as sent
  std::string target;                          // "/metrics?x=1", as sent
  std::string path;                            // "/metrics" (not percent-decoded)
  std::string query;                           // "x=1" (without the '?')
  std::map<std::string, std::string> headers;  // names lower-cased; repeated headers joined with ", "
  std::string body;
  std::string peer;  // "127.0.0.1:54321", "[::1]:54321"
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra headers; a name or value holding CR or LF is dropped. Content-Length and
  // Connection are the server's.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Runs on the server's thread; an exception becomes a 500.
using RequestHandler = std::function<ServerResponse(const ServerRequest&)>;

// Limits that keep the server answerable when clients hold connections open without finishing their
// requests (docs/serve.md, "HTTP endpoint"). A connection is in one of three places:
//   - a regular slot: max_connections of them, max_connections_per_client of those per client address
//     (an IPv6 address by its /64). Once more than 3/4 of the slots are taken (48 of 64), a connection that
//     has not sent its whole request within evict_idle_after of being accepted is closed, oldest first,
//     until only 3/4 are; on a quieter server it has io_timeout (408).
//   - the reserve, for connections that find no regular slot (all taken, or their client's share): they are
//     answered only for GET or HEAD of reserve_paths (/metrics, /healthz), anything else gets 503, and a
//     request must arrive within min(io_timeout, evict_idle_after). When the reserve is full, a new
//     connection turns out the oldest one still waiting for its request (its own address's first).
//   - closing: answered, until the client closes (up to 2 s); at most max_connections of them.
// With reserved_connections = 0, a connection that finds no regular slot gets 503 at once.
struct HttpServerOptions {
  std::string host = "127.0.0.1";                    // an address or a host name ("localhost" binds 127.0.0.1)
  std::uint16_t port = 0;                            // 0: any free port (see HttpServer::port())
  std::size_t max_header_bytes = 16U << 10;          // request line + headers; more: 431
  std::size_t max_body_bytes = 64U << 10;            // Content-Length above it: 413 (the body is not read)
  std::chrono::milliseconds io_timeout{5000};        // to send the whole request (else 408) and to read the answer
  std::size_t max_connections = 64;                  // regular slots: requests being read or answered at once
  std::size_t max_connections_per_client = 8;        // regular slots one client address may take
  std::chrono::milliseconds evict_idle_after{1000};  // past 3/4 of the slots: an unfinished request's time
  std::size_t reserved_connections = 4;              // for reserve_paths when the slots are taken
  std::vector<std::string> reserve_paths = {"/metrics", "/healthz"};
  std::size_t max_unsent_bytes = 8U << 20;  // answers built and not yet read by their clients; past it: 503
  // Requests for these paths are answered by the handler on a second thread of the server's, one after
  // another, so that a slow answer (a database read) never holds up the others: the handler must be safe
  // to call from both threads. At most max_offloaded of them are waiting or being answered there; more get
  // 503 at once, and one not answered within io_timeout gets 503 (its late answer is dropped).
  std::vector<std::string> offload_paths;
  std::size_t max_offloaded = 8;
};

// What the server holds now, and has done since it started (HttpServer::stats()).
struct HttpServerStats {
  std::size_t connections = 0;  // regular slots taken
  std::size_t reserved = 0;     // reserve slots taken
  std::size_t closing = 0;      // answered, waiting for their clients to close
  std::uint64_t accepted = 0;   // connections accepted
  std::uint64_t evicted = 0;    // closed before their request was complete, to make room (idle, reserve)
  std::uint64_t refused = 0;    // answered 503 (too many connections) or closed at once for the limits
};

// Statuses answered by the server itself: 400 malformed request, 408 request not sent within
// io_timeout, 411 Transfer-Encoding on a request (send Content-Length), 413, 431, 500 handler
// threw, 503 too many connections (a request other than reserve_paths when no regular slot was free).
class HttpServer {
 public:
  // Binds and listens (SO_REUSEADDR, CLOEXEC), then starts the worker thread. Errors name the
  // address: "listen 127.0.0.1:9490: address already in use".
  [[nodiscard]] static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, RequestHandler handler);

  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  HttpServer(HttpServer&&) = delete;
  HttpServer& operator=(HttpServer&&) = delete;

  // Idempotent and thread-safe: wakes the worker, which closes every connection and the
  // listening socket, and joins it. Called from the handler, it only asks the worker to stop.
  void stop();

  // The bound port (the one the kernel chose when options.port was 0).
  [[nodiscard]] std::uint16_t port() const;

  // Thread-safe; the worker updates it each time before it waits, so a moment after what a client sees.
  [[nodiscard]] HttpServerStats stats() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// "127.0.0.1:9490", "[::1]:9490", "0.0.0.0:9490", "localhost:9490" -> {host, port}; the host of an
// IPv6 address comes back without brackets. Errors name `source` (e.g. "--listen").
[[nodiscard]] Result<std::pair<std::string, std::uint16_t>> parse_listen_address(std::string_view text,
                                                                                 std::string_view source);

// 127.0.0.0/8, ::1 (also "[::1]" and ::ffff:127.x.x.x) and "localhost".
[[nodiscard]] bool is_loopback_host(std::string_view host);

// The reason phrase of a status ("Not Found"); "Unknown" for one it does not know.
[[nodiscard]] std::string_view http_reason_phrase(int status);

}  // namespace mw::adapters
