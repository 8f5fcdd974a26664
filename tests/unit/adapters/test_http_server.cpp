#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http.hpp"
#include "adapters/http_server.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;

namespace {

// A raw loopback client, so that tests can send exactly the bytes they mean (broken requests too). `from`
// picks its own address: 127.0.0.2, 127.0.0.3, ... are loopback addresses too on Linux, so one test can play
// several clients.
class Client {
 public:
  explicit Client(std::uint16_t port, const char* from = "127.0.0.1") {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (m_fd < 0 || ::inet_pton(AF_INET, from, &local.sin_addr) != 1 ||
        ::bind(m_fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      throw std::runtime_error(fmt::format("cannot bind a test client to {}", from));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot connect to the test server");
    }
  }
  ~Client() { ::close(m_fd); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(std::string_view data) const {
    while (!data.empty()) {
      const ssize_t n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return;  // the server may close early (413); what it answered is still readable
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Everything the server sends until it closes the connection (or the deadline passes).
  [[nodiscard]] std::string read_all(std::chrono::milliseconds limit = 5s) const {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        out += "<deadline>";
        return out;
      }
      pollfd pfd{m_fd, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
        continue;
      }
      char buf[4096];
      const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
      if (n <= 0) {
        return out;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

  // True when the server has closed the connection (recv returns 0 or an error) before the deadline.
  [[nodiscard]] bool closed_by_server(std::chrono::milliseconds limit = 5s) const {
    return read_all(limit).find("<deadline>") == std::string::npos;
  }

 private:
  int m_fd = -1;
};

int status_of(const std::string& response) {
  if (!response.starts_with("HTTP/1.1 ") || response.size() < 12) {
    return -1;
  }
  return std::stoi(response.substr(9, 3));
}

std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string{} : response.substr(end + 4);
}

std::string exchange(std::uint16_t port, std::string_view request, const char* from = "127.0.0.1") {
  Client client(port, from);
  client.send(request);
  return client.read_all();
}

struct Timed {
  std::string response;
  std::chrono::milliseconds took;
};

Timed timed_exchange(std::uint16_t port, std::string_view request, const char* from = "127.0.0.1") {
  const auto started = std::chrono::steady_clock::now();
  auto response = exchange(port, request, from);
  return {std::move(response),
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)};
}

// Connections that connect and then send nothing, or a part of a request, and hold on.
using Idle = std::vector<std::unique_ptr<Client>>;

void hold(Idle& idle, std::uint16_t port, int count, const char* from = "127.0.0.1", std::string_view part = {}) {
  for (int i = 0; i < count; ++i) {
    idle.push_back(std::make_unique<Client>(port, from));
    idle.back()->send(part);
  }
}

// The server's stats once `done` holds for them, or as they are after 5 s: the worker publishes them after
// each round, a moment after what a client sees (an accept, an answer, a close).
template <class Done>
HttpServerStats stats_when(const HttpServer& server, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  auto stats = server.stats();
  while (!done(stats) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
    stats = server.stats();
  }
  return stats;
}

// Waits until the server has taken in `count` connections (the test's clients are connected once connect()
// returns, but the server accepts them on its own thread).
void wait_accepted(const HttpServer& server, std::uint64_t count) {
  ASSERT_GE(stats_when(server, [&](const HttpServerStats& s) { return s.accepted >= count; }).accepted, count);
}

// A server whose idle connections would wait 30 s: what a test sees is the slots and the reserve at work.
HttpServerOptions patient() {
  HttpServerOptions options;
  options.io_timeout = 30s;
  options.evict_idle_after = 30s;
  return options;
}

struct Recorder {
  std::mutex mutex;
  std::vector<ServerRequest> requests;

  RequestHandler handler() {
    return [this](const ServerRequest& req) {
      std::lock_guard lock(mutex);
      requests.push_back(req);
      ServerResponse r;
      r.body = "hello " + req.path + "\n";
      r.headers.emplace_back("X-Served-By", "memwarden");
      r.headers.emplace_back("X-Bad", "a\r\nInjected: yes");
      return r;
    };
  }
  std::vector<ServerRequest> snapshot() {
    std::lock_guard lock(mutex);
    return requests;
  }
};

std::unique_ptr<HttpServer> start_server(RequestHandler handler, HttpServerOptions options = {}) {
  auto server = HttpServer::start(std::move(options), std::move(handler));
  if (!server) {
    throw std::runtime_error(server.error().line());
  }
  return std::move(server).value();
}

}  // namespace

TEST(HttpServer, GetReachesTheHandlerWithHeadersAndQuery) {
  Recorder rec;
  auto server = start_server(rec.handler());
  ASSERT_NE(server->port(), 0);
  const auto response = exchange(
      server->port(), "GET /metrics?name[]=a&x=1 HTTP/1.1\r\nHost: x\r\nX-Test:  Hello \r\nx-test: again\r\n\r\n");
  EXPECT_EQ(status_of(response), 200) << response;
  EXPECT_NE(response.find("\r\nContent-Length: 15\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("\r\nConnection: close\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("\r\nContent-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("\r\nX-Served-By: memwarden\r\n"), std::string::npos) << response;
  EXPECT_EQ(response.find("Injected"), std::string::npos) << response;
  EXPECT_EQ(body_of(response), "hello /metrics\n");
  const auto requests = rec.snapshot();
  ASSERT_EQ(requests.size(), 1U);
  const auto& req = requests[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/metrics?name[]=a&x=1");
  EXPECT_EQ(req.path, "/metrics");
  EXPECT_EQ(req.query, "name[]=a&x=1");
  EXPECT_EQ(req.headers.at("host"), "x");
  EXPECT_EQ(req.headers.at("x-test"), "Hello, again");
  EXPECT_TRUE(req.body.empty());
  EXPECT_TRUE(req.peer.starts_with("127.0.0.1:")) << req.peer;
}

TEST(HttpServer, PostBodyReachesTheHandlerEvenInPieces) {
  Recorder rec;
  auto server = start_server(rec.handler());
  Client client(server->port());
  client.send("POST /api/x HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"a\":");
  client.send("12345}");
  const auto response = client.read_all();
  EXPECT_EQ(status_of(response), 200) << response;
  const auto requests = rec.snapshot();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].body, "{\"a\":12345}");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
}

TEST(HttpServer, AcceptsBareLineFeeds) {
  Recorder rec;
  auto server = start_server(rec.handler());
  const auto response = exchange(server->port(), "GET /x HTTP/1.0\nHost: y\n\n");
  EXPECT_EQ(status_of(response), 200) << response;
  ASSERT_EQ(rec.snapshot().size(), 1U);
  EXPECT_EQ(rec.snapshot()[0].headers.at("host"), "y");
}

TEST(HttpServer, HeadGetsHeadersOnly) {
  Recorder rec;
  auto server = start_server(rec.handler());
  const auto response = exchange(server->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_of(response), 200) << response;
  EXPECT_NE(response.find("\r\nContent-Length: 15\r\n"), std::string::npos) << response;
  EXPECT_TRUE(response.ends_with("\r\n\r\n")) << response;
}

TEST(HttpServer, HandlerStatusAndContentType) {
  auto server = start_server([](const ServerRequest&) {
    return ServerResponse{404, "application/json", R"({"error":"not found"})", {}};
  });
  const auto response = exchange(server->port(), "GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 404 Not Found\r\n")) << response;
  EXPECT_NE(response.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << response;
  EXPECT_EQ(body_of(response), R"({"error":"not found"})");
}

TEST(HttpServer, MalformedRequestsGet400) {
  Recorder rec;
  auto server = start_server(rec.handler());
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/1.1 extra\r\n\r\n", "GET x HTTP/1.1\r\n\r\n",
                          "GET / HTTP/2.0\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
                          "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"}) {
    const auto response = exchange(server->port(), bad);
    EXPECT_EQ(status_of(response), 400) << bad << " -> " << response;
  }
  EXPECT_TRUE(rec.snapshot().empty());
}

TEST(HttpServer, OversizedHeaderSectionGets431) {
  Recorder rec;
  HttpServerOptions options;
  options.max_header_bytes = 1024;
  auto server = start_server(rec.handler(), options);
  // Complete but too large, and incomplete and already too large.
  const std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n";
  EXPECT_EQ(status_of(exchange(server->port(), big + "\r\n")), 431);
  EXPECT_EQ(status_of(exchange(server->port(), big)), 431);
  EXPECT_TRUE(rec.snapshot().empty());
}

TEST(HttpServer, HeadOfExactlyMaxHeaderBytesIsServedHoweverItArrives) {
  Recorder rec;
  HttpServerOptions options;
  options.max_header_bytes = 1024;
  auto server = start_server(rec.handler(), options);
  // The head without its blank line is 1024 bytes; one more is a 431.
  std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
  head += std::string(1024 - head.size() - 1, 'a') + "\r";
  ASSERT_EQ(head.size(), 1024U);
  EXPECT_EQ(status_of(exchange(server->port(), head + "\n\r\n")), 200);
  EXPECT_EQ(status_of(exchange(server->port(), "G" + head + "\n\r\n")), 431);
  // Cut after the blank line's first LF: 1025 bytes without the end of the head were a 431 (found by
  // tests/fuzz/fuzz_http_request.cpp).
  Client client(server->port());
  client.send(head + "\n");
  std::this_thread::sleep_for(50ms);  // so that the server reads the first piece on its own
  client.send("\r\n");
  EXPECT_EQ(status_of(client.read_all()), 200);
  EXPECT_EQ(rec.snapshot().size(), 2U);
}

TEST(HttpServer, OversizedBodyGets413WithoutReadingIt) {
  Recorder rec;
  HttpServerOptions options;
  options.max_body_bytes = 100;
  auto server = start_server(rec.handler(), options);
  Client client(server->port());
  client.send("POST /x HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");  // the body never comes
  const auto response = client.read_all();
  EXPECT_EQ(status_of(response), 413) << response;
  EXPECT_TRUE(rec.snapshot().empty());
}

TEST(HttpServer, ChunkedRequestGets411) {
  Recorder rec;
  auto server = start_server(rec.handler());
  const auto response =
      exchange(server->port(), "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(status_of(response), 411) << response;
  EXPECT_TRUE(rec.snapshot().empty());
}

TEST(HttpServer, UnfinishedRequestGets408) {
  Recorder rec;
  HttpServerOptions options;
  options.io_timeout = 200ms;
  auto server = start_server(rec.handler(), options);
  Client client(server->port());
  client.send("GET /slow HTTP/1.1\r\nHost: x\r\n");
  const auto response = client.read_all();
  EXPECT_EQ(status_of(response), 408) << response;
  EXPECT_TRUE(rec.snapshot().empty());
}

TEST(HttpServer, HandlerExceptionGets500) {
  auto server = start_server([](const ServerRequest&) -> ServerResponse { throw std::runtime_error("boom"); });
  const auto response = exchange(server->port(), "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_of(response), 500) << response;
  EXPECT_EQ(response.find("boom"), std::string::npos) << response;
}

TEST(HttpServer, TooManyConnectionsGet503) {
  Recorder rec;
  HttpServerOptions options;
  options.max_connections = 1;
  auto server = start_server(rec.handler(), options);
  Client stalled(server->port());
  stalled.send("GET /a");
  Client second(server->port());
  second.send("GET /b HTTP/1.1\r\n\r\n");
  const auto response = second.read_all();
  EXPECT_EQ(status_of(response), 503) << response;
  EXPECT_TRUE(rec.snapshot().empty());
}

// The flood of issue 11: sockets that connect, send nothing and are reopened used to take every slot, so that
// /metrics and /healthz answered 503 and a liveness probe would restart memwarden.
TEST(HttpServer, IdleConnectionsFromOneClientLeaveMetricsAndHealthzAnswering) {
  for (const int count : {64, 80}) {
    Recorder rec;
    auto server = start_server(rec.handler(), patient());
    const auto port = server->port();
    Idle idle;
    hold(idle, port, count);
    wait_accepted(*server, static_cast<std::uint64_t>(count));
    EXPECT_EQ(server->stats().connections, 8U) << "one client's share of the slots";
    for (const char* path : {"/metrics", "/healthz"}) {
      const auto got = timed_exchange(port, fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", path));
      EXPECT_EQ(status_of(got.response), 200) << count << " " << path << ": " << got.response;
      EXPECT_LT(got.took, 100ms) << count << " " << path;
    }
    // Other routes are not for a client that holds its share: 503, without the handler.
    EXPECT_EQ(status_of(exchange(port, "GET /api/v1/status HTTP/1.1\r\n\r\n")), 503);
    ASSERT_EQ(rec.snapshot().size(), 2U);
    EXPECT_EQ(rec.snapshot()[0].path, "/metrics");
    EXPECT_EQ(rec.snapshot()[1].path, "/healthz");
  }
}

TEST(HttpServer, IdleConnectionsFromManyAddressesLeaveMetricsAndHealthzAnswering) {
  Recorder rec;
  auto server = start_server(rec.handler(), patient());
  const auto port = server->port();
  // 80 connections from 10 addresses, 8 each (their share): half send nothing, half the start of a request.
  Idle idle;
  for (int a = 2; a < 12; ++a) {
    const std::string from = fmt::format("127.0.0.{}", a);
    hold(idle, port, 4, from.c_str());
    hold(idle, port, 4, from.c_str(), "GET /metrics HTTP/1.1\r\nHost:");
  }
  wait_accepted(*server, 80);
  const auto stats = server->stats();
  EXPECT_EQ(stats.connections, 64U);
  EXPECT_EQ(stats.reserved, 4U) << "the last 4 of the 16 that found no slot";
  EXPECT_EQ(stats.evicted, 12U) << "turned out of the reserve by newer ones";
  for (const char* from : {"127.0.0.1", "127.0.0.2", "127.0.0.12"}) {
    for (const char* path : {"/metrics", "/healthz"}) {
      const auto got = timed_exchange(port, fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", path), from);
      EXPECT_EQ(status_of(got.response), 200) << from << " " << path << ": " << got.response;
      EXPECT_LT(got.took, 100ms) << from << " " << path;
    }
  }
  EXPECT_EQ(status_of(exchange(port, "GET /api/v1/status HTTP/1.1\r\n\r\n", "127.0.0.12")), 503);
  EXPECT_EQ(rec.snapshot().size(), 6U);
}

TEST(HttpServer, OneClientGetsItsShareOfTheSlotsOnly) {
  Recorder rec;
  HttpServerOptions options = patient();
  options.max_connections_per_client = 2;
  auto server = start_server(rec.handler(), options);
  const auto port = server->port();
  Idle idle;
  hold(idle, port, 2, "127.0.0.2");
  wait_accepted(*server, 2);
  const auto over = exchange(port, "GET /api/v1/status HTTP/1.1\r\n\r\n", "127.0.0.2");
  EXPECT_EQ(status_of(over), 503) << over;
  EXPECT_EQ(body_of(over), "too many connections\n");
  EXPECT_EQ(status_of(exchange(port, "GET /api/v1/status HTTP/1.1\r\n\r\n", "127.0.0.3")), 200)
      << "another client keeps its share";
  EXPECT_EQ(status_of(exchange(port, "GET /metrics HTTP/1.1\r\n\r\n", "127.0.0.2")), 200) << "from the reserve";
  const auto requests = rec.snapshot();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_TRUE(requests[0].peer.starts_with("127.0.0.3:")) << requests[0].peer;
  EXPECT_EQ(requests[1].path, "/metrics");
  const auto stats = stats_when(*server, [](const HttpServerStats& s) { return s.refused >= 1; });
  EXPECT_EQ(stats.connections, 2U);
  EXPECT_EQ(stats.refused, 1U);
}

TEST(HttpServer, IdleConnectionsAreEvictedOldestFirstWhenTheSlotsRunLow) {
  Recorder rec;
  HttpServerOptions options;
  options.max_connections = 8;  // evictions above 6
  options.evict_idle_after = 100ms;
  options.io_timeout = 30s;
  auto server = start_server(rec.handler(), options);
  const auto port = server->port();
  Idle idle;
  hold(idle, port, 3, "127.0.0.2");
  hold(idle, port, 3, "127.0.0.3", "GET /slow HTTP/1.1\r\n");
  wait_accepted(*server, 6);
  // At 6 of 8 the server is not busy: idle connections keep io_timeout.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(server->stats().connections, 6U);
  EXPECT_EQ(server->stats().evicted, 0U);
  // Two more: above 6, the two oldest, idle for longer than 100 ms, make room.
  hold(idle, port, 2, "127.0.0.4");
  EXPECT_TRUE(idle[0]->closed_by_server(2s));
  EXPECT_TRUE(idle[1]->closed_by_server(2s));
  const auto stats = stats_when(*server, [](const HttpServerStats& s) { return s.accepted == 8 && s.evicted >= 2; });
  EXPECT_EQ(stats.evicted, 2U);
  EXPECT_EQ(stats.connections, 6U);
  const auto got = timed_exchange(port, "GET /x HTTP/1.1\r\n\r\n", "127.0.0.5");
  EXPECT_EQ(status_of(got.response), 200) << "a regular slot, not the reserve: " << got.response;
  ASSERT_EQ(rec.snapshot().size(), 1U);
  EXPECT_EQ(rec.snapshot()[0].path, "/x");
}

TEST(HttpServer, TheReserveServesMetricsAndHealthzOnly) {
  Recorder rec;
  HttpServerOptions options = patient();
  options.max_connections = 2;
  auto server = start_server(rec.handler(), options);
  const auto port = server->port();
  Idle idle;
  hold(idle, port, 1, "127.0.0.2");
  hold(idle, port, 1, "127.0.0.3");
  wait_accepted(*server, 2);
  for (const char* refused : {"GET /api/v1/status HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
                              "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "GET /metricsx HTTP/1.1\r\n\r\n",
                              "DELETE /healthz HTTP/1.1\r\n\r\n"}) {
    const auto response = exchange(port, refused);
    EXPECT_EQ(status_of(response), 503) << refused << " -> " << response;
  }
  EXPECT_EQ(status_of(exchange(port, "GET /metrics?name[]=x HTTP/1.1\r\n\r\n")), 200);
  EXPECT_EQ(status_of(exchange(port, "HEAD /healthz HTTP/1.0\r\n\r\n")), 200);
  EXPECT_EQ(status_of(exchange(port, "GET /healthz HTTP/1.1\r\n\r\n")), 200);
  const auto requests = rec.snapshot();
  ASSERT_EQ(requests.size(), 3U);
  EXPECT_EQ(requests[0].path, "/metrics");
  EXPECT_EQ(requests[1].method, "HEAD");
  EXPECT_EQ(stats_when(*server, [](const HttpServerStats& s) { return s.refused >= 5; }).refused, 5U);
}

TEST(HttpServer, TheReserveWaitsForNoOne) {
  // A connection in the reserve that sends nothing is closed after evict_idle_after, without an answer.
  Recorder rec;
  HttpServerOptions options;
  options.max_connections = 1;
  options.io_timeout = 30s;
  options.evict_idle_after = 100ms;
  auto server = start_server(rec.handler(), options);
  Idle idle;
  hold(idle, server->port(), 1, "127.0.0.2");
  wait_accepted(*server, 1);
  Client waiting(server->port(), "127.0.0.3");
  wait_accepted(*server, 2);
  EXPECT_EQ(server->stats().reserved, 1U);
  EXPECT_EQ(waiting.read_all(2s), "");
  EXPECT_EQ(stats_when(*server, [](const HttpServerStats& s) { return s.reserved == 0; }).reserved, 0U);
  EXPECT_TRUE(rec.snapshot().empty());
}

TEST(HttpServer, StalledClientDoesNotBlockAnother) {
  Recorder rec;
  HttpServerOptions options;
  options.io_timeout = 30s;
  auto server = start_server(rec.handler(), options);
  Client stalled(server->port());
  stalled.send("GET /stalled HTTP/1.1\r\nHo");
  const auto started = std::chrono::steady_clock::now();
  const auto response = exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_of(response), 200) << response;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  ASSERT_EQ(rec.snapshot().size(), 1U);
  EXPECT_EQ(rec.snapshot()[0].path, "/metrics");
}

TEST(HttpServer, StopWhileAClientIsConnected) {
  Recorder rec;
  HttpServerOptions options;
  options.io_timeout = 30s;
  auto server = start_server(rec.handler(), options);
  const auto port = server->port();
  Client client(port);
  client.send("GET /half");
  // Make sure the server has accepted it: a complete request from another client is answered after.
  EXPECT_EQ(status_of(exchange(port, "GET / HTTP/1.1\r\n\r\n")), 200);
  const auto started = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_TRUE(client.closed_by_server());
  server->stop();  // idempotent
  // Nothing listens on the port any more.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
}

TEST(HttpServer, StopFromTwoThreads) {
  Recorder rec;
  auto server = start_server(rec.handler());
  std::thread other([&] { server->stop(); });
  server->stop();
  other.join();
}

TEST(HttpServer, BindErrorNamesTheAddress) {
  Recorder rec;
  auto first = start_server(rec.handler());
  HttpServerOptions options;
  options.port = first->port();
  const auto second = HttpServer::start(options, rec.handler());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().line(), fmt::format("listen 127.0.0.1:{}: address already in use", first->port()));
  EXPECT_EQ(second.error().code, EADDRINUSE);
}

TEST(HttpServer, UnresolvableHostIsAnError) {
  HttpServerOptions options;
  options.host = "no-such-host.invalid";
  const auto server = HttpServer::start(options, [](const ServerRequest&) { return ServerResponse{}; });
  ASSERT_FALSE(server);
  EXPECT_TRUE(server.error().line().starts_with("listen no-such-host.invalid:0: cannot resolve"))
      << server.error().line();
}

TEST(HttpServer, ServesTheHttpClient) {
  Recorder rec;
  auto server = start_server(rec.handler());
  auto endpoint = parse_endpoint(fmt::format("http://127.0.0.1:{}", server->port()), "t");
  ASSERT_TRUE(endpoint);
  HttpClient client(*endpoint, 5s);
  const auto got = client.get("/metrics");
  ASSERT_TRUE(got) << got.error().line();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "hello /metrics\n");
  const std::string json = "{\"big\":\"" + std::string(4000, 'x') + "\"}";  // large enough for Expect: 100-continue
  const auto posted = client.post("/api/ack", json);
  ASSERT_TRUE(posted) << posted.error().line();
  EXPECT_EQ(posted->status, 200);
  const auto requests = rec.snapshot();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[1].body, json);
}

TEST(ListenAddress, ParsesTheUsualForms) {
  using Pair = std::pair<std::string, std::uint16_t>;
  EXPECT_EQ(*parse_listen_address("127.0.0.1:9490", "--listen"), Pair("127.0.0.1", 9490));
  EXPECT_EQ(*parse_listen_address("[::1]:9490", "--listen"), Pair("::1", 9490));
  EXPECT_EQ(*parse_listen_address("0.0.0.0:80", "--listen"), Pair("0.0.0.0", 80));
  EXPECT_EQ(*parse_listen_address("localhost:0", "--listen"), Pair("localhost", 0));
  EXPECT_EQ(*parse_listen_address("[::]:65535", "--listen"), Pair("::", 65535));
  EXPECT_EQ(*parse_listen_address("host-a.example:1", "--listen"), Pair("host-a.example", 1));
}

TEST(ListenAddress, RejectsWithTheSource) {
  for (const char* bad : {"", "9490", ":9490", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:94x0", "::1:9490", "[::1]9490", "[::1:9490", "[nothost]:1", "a b:1", "-x:1"}) {
    const auto parsed = parse_listen_address(bad, "serve.listen");
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().source, "serve.listen");
    EXPECT_NE(parsed.error().message.find(std::string("'") + bad + "'"), std::string::npos) << parsed.error().line();
  }
  EXPECT_EQ(parse_listen_address("::1:9490", "x").error().line(),
            "x: '::1:9490': put an IPv6 address in brackets (expected host:port, e.g. 127.0.0.1:9490 or [::1]:9490)");
}

TEST(ListenAddress, LoopbackHosts) {
  for (const char* yes : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_loopback_host(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "192.168.1.10", "example.org", "", "::2",
                         "localhost.example.org", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(is_loopback_host(no)) << no;
  }
}

TEST(HttpServer, AnswersThatNobodyReadsCannotPileUp) {
  // Answers larger than any kernel socket buffer (tcp_wmem's 4 MiB at most), so that an answer nobody reads
  // stays in the server; an answer counts until it is sent whole.
  HttpServerOptions options;
  options.max_unsent_bytes = 24U << 20;
  const std::string big(16U << 20, 'x');
  auto server = HttpServer::start(options, [&](const ServerRequest& r) {
    ServerResponse out;
    out.body = r.path == "/big" ? big : "small";
    return out;
  });
  ASSERT_TRUE(server) << server.error().line();
  const auto port = (*server)->port();
  std::vector<int> readers;
  for (int i = 0; i < 4; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    const std::string request = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    readers.push_back(fd);
    char head[16] = {};
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    ASSERT_GT(::recv(fd, head, sizeof head - 1, MSG_PEEK), 0);
    // The first answer waits for its reader; the next ones would pass 24 MiB: 503, small, at once.
    EXPECT_TRUE(std::string(head).starts_with(i == 0 ? "HTTP/1.1 200" : "HTTP/1.1 503")) << i << ": " << head;
  }
  // Small answers still go out.
  const auto small = exchange(port, "GET /small HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.2");
  EXPECT_TRUE(small.starts_with("HTTP/1.1 200")) << small;
  for (const int fd : readers) {
    ::close(fd);
  }
}

TEST(HttpServer, AnOffloadedSlowRouteDoesNotHoldUpTheOthers) {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  auto options = patient();
  options.offload_paths = {"/slow"};
  options.max_offloaded = 2;
  auto server = start_server(
      [&](const ServerRequest& req) {
        if (req.path == "/slow") {  // a database read that takes its time
          std::unique_lock lock(mutex);
          cv.wait_for(lock, 10s, [&] { return release; });
        }
        ServerResponse r;
        r.body = "hello " + req.path + "\n";
        return r;
      },
      options);
  Client slow(server->port());
  slow.send("GET /slow HTTP/1.1\r\n\r\n");
  Client slow_head(server->port());
  slow_head.send("HEAD /slow HTTP/1.1\r\n\r\n");
  wait_accepted(*server, 2);
  std::this_thread::sleep_for(50ms);  // both handed to the offload thread, the first one held there
  // A third is one too many for the offload thread: 503 at once.
  EXPECT_EQ(status_of(exchange(server->port(), "GET /slow HTTP/1.1\r\n\r\n")), 503);
  for (const char* path : {"/metrics", "/healthz"}) {
    const auto r = timed_exchange(server->port(), fmt::format("GET {} HTTP/1.1\r\n\r\n", path));
    EXPECT_EQ(status_of(r.response), 200) << path << ": " << r.response;
    EXPECT_LT(r.took, 500ms) << path << " waited behind /slow";
  }
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  const auto answer = slow.read_all();
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_EQ(body_of(answer), "hello /slow\n");
  const auto head = slow_head.read_all();
  EXPECT_EQ(status_of(head), 200) << head;
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
  server->stop();
}

TEST(HttpServer, AnOffloadedAnswerThatComesTooLateIs503) {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  auto options = patient();
  options.io_timeout = 300ms;
  options.offload_paths = {"/slow"};
  auto server = start_server(
      [&](const ServerRequest&) {
        std::unique_lock lock(mutex);
        cv.wait_for(lock, 10s, [&] { return release; });
        return ServerResponse{};
      },
      options);
  const auto late = timed_exchange(server->port(), "GET /slow HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_of(late.response), 503) << late.response;
  EXPECT_LT(late.took, 3s);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  // The late answer went nowhere; the offload thread is free again.
  EXPECT_EQ(status_of(exchange(server->port(), "GET /slow HTTP/1.1\r\n\r\n")), 200);
  server->stop();
}
