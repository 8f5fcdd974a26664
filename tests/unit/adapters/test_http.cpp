#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http.hpp"
#include "core/bytes.hpp"
#include "recording_server.hpp"
#include "scripted_server.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;
using mw::test::FakeHttpServer;
using mw::test::ScriptedServer;
using mw::test::TempDir;
using mw::test::unix_endpoint;

TEST(Endpoint, ParsesDockerHostForms) {
  const auto unix_ep = parse_endpoint("unix:///var/run/docker.sock", "DOCKER_HOST");
  ASSERT_TRUE(unix_ep);
  EXPECT_EQ(unix_ep->kind, Endpoint::Kind::unix_socket);
  EXPECT_EQ(unix_ep->socket_path, "/var/run/docker.sock");
  const auto tcp = parse_endpoint("tcp://127.0.0.1:2375", "DOCKER_HOST");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->kind, Endpoint::Kind::tcp);
  EXPECT_EQ(tcp->base_url, "http://127.0.0.1:2375");
  EXPECT_EQ(parse_endpoint("http://localhost:11434/", "x")->base_url, "http://localhost:11434");
  EXPECT_EQ(parse_endpoint("https://ntfy.example.org", "x")->base_url, "https://ntfy.example.org");
}

TEST(Endpoint, RejectsWhatItCannotUse) {
  for (const char* bad : {"", "/var/run/docker.sock", "unix://relative.sock", "ssh://host", "tcp://", "tcp://a b:1",
                          "tcp://host:1/path", "npipe:////./pipe/docker_engine"}) {
    const auto ep = parse_endpoint(bad, "DOCKER_HOST");
    ASSERT_FALSE(ep) << bad;
    EXPECT_EQ(ep.error().source, "DOCKER_HOST");
  }
}

TEST(Endpoint, PortsAreFromOneTo65535) {
  EXPECT_EQ(parse_endpoint("http://127.0.0.1:65535", "x")->base_url, "http://127.0.0.1:65535");
  EXPECT_EQ(parse_endpoint("tcp://docker:1", "x")->base_url, "http://docker:1");
  EXPECT_EQ(parse_endpoint("http://[::1]:11434", "x")->base_url, "http://[::1]:11434");
  EXPECT_EQ(parse_endpoint("http://[::1]", "x")->base_url, "http://[::1]");
  EXPECT_EQ(parse_endpoint("https://ntfy.example.org:8443/", "x")->base_url, "https://ntfy.example.org:8443");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"http://127.0.0.1:99999", "port 99999 is not from 1 to 65535"},
      {"tcp://127.0.0.1:99999", "port 99999 is not from 1 to 65535"},
      {"tcp://127.0.0.1:65536", "port 65536 is not from 1 to 65535"},
      {"http://127.0.0.1:0", "port 0 is not from 1 to 65535"},
      {"http://127.0.0.1:18446744073709551617", "port 18446744073709551617 is not from 1 to 65535"},
      {"http://[::1]:99999", "port 99999 is not from 1 to 65535"},
      {"https://ntfy.example.org:70000", "port 70000 is not from 1 to 65535"},
      {"http://127.0.0.1:", "no port after ':' (expected a number from 1 to 65535)"},
      {"http://[::1]:", "no port after ':' (expected a number from 1 to 65535)"},
      {"http://127.0.0.1:11434x", "port '11434x' is not a number from 1 to 65535"},
      {"tcp://127.0.0.1:-1", "port '-1' is not a number from 1 to 65535"},
      {"tcp://127.0.0.1:+80", "port '+80' is not a number from 1 to 65535"},
      {"http://[::1]x", "expected :port after ']', not 'x'"},
      {"http://[::1:11434", "missing ']' after the IPv6 address"},
      {"http://::1:11434", "put an IPv6 address in brackets, e.g. [::1]:11434"},
      {"http://:11434", "missing host before the port"},
      {"http://[]:11434", "missing host before the port"},
  };
  for (const auto& [text, why] : bad) {
    const auto ep = parse_endpoint(text, "DOCKER_HOST");
    ASSERT_FALSE(ep) << text << " -> " << ep->base_url;
    EXPECT_EQ(ep.error().line(), fmt::format("DOCKER_HOST: '{}': {}", text, why));
  }
}

TEST(HttpClient, GetAndPostOverUnixSocketWithKeepAlive) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "s.sock", [](const std::string& method, const std::string& path) {
    return FakeHttpServer::Reply{method == "POST" ? 201 : 200, "{\"path\":\"" + path + "\"}"};
  });
  HttpClient client(unix_endpoint(dir.path() / "s.sock"), 2s);
  const auto a = client.get("/version");
  ASSERT_TRUE(a) << a.error().line();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "{\"path\":\"/version\"}");
  const auto b = client.post("/api/generate", "{\"keep_alive\":0}");
  ASSERT_TRUE(b) << b.error().line();
  EXPECT_EQ(b->status, 201);
  EXPECT_EQ(server.requests(), 2);
}

TEST(HttpClient, NoSuchSocket) {
  TempDir dir;
  HttpClient client(unix_endpoint(dir.path() / "missing.sock"), 2s);
  const auto r = client.get("/version");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_EQ(r.error().line(), "unix://" + (dir.path() / "missing.sock").string() + " (GET /version): no such socket");
}

TEST(HttpClient, SocketWithNobodyListening) {
  TempDir dir;
  const auto path = dir.path() / "stale.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);  // bound, never listening
  HttpClient client(unix_endpoint(path), 2s);
  const auto r = client.get("/version");
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ECONNREFUSED);
  EXPECT_NE(r.error().message.find("connection refused"), std::string::npos) << r.error().line();
}

TEST(HttpClient, ServerThatNeverAnswersTimesOut) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "s.sock", [](const std::string&, const std::string&) {
    FakeHttpServer::Reply reply;
    reply.hang = true;
    return reply;
  });
  HttpClient client(unix_endpoint(dir.path() / "s.sock"), 300ms);
  const auto started = std::chrono::steady_clock::now();
  const auto r = client.get("/version");
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no answer within 0.3 s"), std::string::npos) << r.error().line();
  EXPECT_LT(took, 5s) << "the time-out must bound the wait";
}

TEST(HttpClient, GarbageInsteadOfHttp) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "s.sock", [](const std::string&, const std::string&) {
    FakeHttpServer::Reply reply;
    reply.raw = true;
    reply.body = std::string("\x00\x01\x02 this is not HTTP\r\n\r\n", 25);
    return reply;
  });
  HttpClient client(unix_endpoint(dir.path() / "s.sock"), 2s);
  const auto r = client.get("/version");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().source.find("(GET /version)"), std::string::npos);
  EXPECT_FALSE(r.error().message.empty());
}

TEST(HttpClient, OversizedBodyIsRefused) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "s.sock", [](const std::string&, const std::string&) {
    return FakeHttpServer::Reply{200, std::string(k_default_max_body_bytes + 1, 'x')};
  });
  HttpClient client(unix_endpoint(dir.path() / "s.sock"), 10s);
  const auto r = client.get("/containers/json");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("response larger than 64 MiB"), std::string::npos) << r.error().line();
}

TEST(HttpClient, ARequestsOwnCapHoldsToTheByte) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "s.sock", [](const std::string&, const std::string& path) {
    return FakeHttpServer::Reply{200, std::string(path == "/fits" ? 1024 : 1025, 'x')};
  });
  HttpClient client(unix_endpoint(dir.path() / "s.sock"), 10s);
  const auto fits = client.get("/fits", RequestOptions::capped(1024));
  ASSERT_TRUE(fits) << fits.error().line();
  EXPECT_EQ(fits->body.size(), 1024U);
  const auto over = client.get("/over", RequestOptions::capped(1024));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message, "response larger than 1 KiB");
  // The default still allows it.
  EXPECT_TRUE(client.get("/over"));
}

TEST(HttpClient, CapsAreSaidExactly) {
  EXPECT_EQ(format_cap(64U << 20), "64 MiB");
  EXPECT_EQ(format_cap(256U << 10), "256 KiB");
  EXPECT_EQ(format_cap(1000), "1000 bytes");
  EXPECT_EQ(format_cap((1U << 20) + 1024), "1025 KiB");
}

TEST(HttpClient, SpeaksTlsToAnHttpsEndpoint) {
  // A plain-HTTP server behind an https:// address: the client must try TLS (and fail the handshake),
  // not refuse the scheme.
  mw::test::RecordingServer server;
  HttpClient client(*parse_endpoint("https://127.0.0.1:" + std::to_string(server.port()), "t"), 500ms);
  const auto r = client.post("/hook", "{}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("nsupported protocol"), std::string::npos) << r.error().line();
  EXPECT_EQ(server.request_count(), 0U);  // no clear-text request was sent
}

namespace {

std::string ok_with_length(std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

}  // namespace

TEST(HttpClient, KeepsOneConnectionForManyRequests) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string& request) {
    return ScriptedServer::Answer{{ok_with_length(request.substr(0, request.find(' ')))}};
  });
  HttpClient client(server.endpoint(), 2s);
  const auto a = client.get("/a");
  ASSERT_TRUE(a) << a.error().line();
  EXPECT_EQ(a->body, "GET");
  const auto b = client.post("/b", R"({"x":1})");
  ASSERT_TRUE(b) << b.error().line();
  EXPECT_EQ(b->status, 200);
  EXPECT_EQ(b->body, "POST");
  EXPECT_EQ(server.accepts(), 1);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_TRUE(requests[0].starts_with("GET /a HTTP/1.1\r\n")) << requests[0];
  EXPECT_NE(requests[0].find("\r\nHost: localhost\r\n"), std::string::npos) << requests[0];
  EXPECT_NE(requests[0].find("\r\nConnection: keep-alive\r\n"), std::string::npos) << requests[0];
  EXPECT_EQ(requests[0].find("Content-Length"), std::string::npos) << requests[0];
  EXPECT_TRUE(requests[1].starts_with("POST /b HTTP/1.1\r\n")) << requests[1];
  EXPECT_NE(requests[1].find("\r\nContent-Type: application/json\r\n"), std::string::npos) << requests[1];
  EXPECT_NE(requests[1].find("\r\nContent-Length: 7\r\n"), std::string::npos) << requests[1];
  EXPECT_TRUE(requests[1].ends_with("\r\n\r\n{\"x\":1}")) << requests[1];

  client.close();  // the next request opens a new connection
  ASSERT_TRUE(client.get("/c"));
  EXPECT_EQ(server.accepts(), 2);
}

TEST(HttpClient, ReadsAChunkedBodySplitAcrossWrites) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "lo\r\n6;ext=1\r",
                                   "\n world\r\n0\r\n", "X-Trailer: 1\r\n\r\n"}};
  });
  HttpClient client(server.endpoint(), 5s);
  for (int i = 0; i < 2; ++i) {  // the last chunk ends the answer: the connection serves the next one
    const auto r = client.get("/chunked");
    ASSERT_TRUE(r) << r.error().line();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello world");
  }
  EXPECT_EQ(server.accepts(), 1);
}

TEST(HttpClient, ReadsAContentLengthBodySplitAcrossWrites) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 201 Created\r\nContent-Le", "ngth: 11\r\n\r\nhello", " world"}};
  });
  HttpClient client(server.endpoint(), 5s);
  for (int i = 0; i < 2; ++i) {
    const auto r = client.get("/split");
    ASSERT_TRUE(r) << r.error().line();
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->body, "hello world");
  }
  EXPECT_EQ(server.accepts(), 1);
}

TEST(HttpClient, BodyWithoutLengthEndsWhenTheServerCloses) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello", " world"}, true};
  });
  HttpClient client(server.endpoint(), 5s);
  for (int i = 0; i < 2; ++i) {
    const auto r = client.get("/until-close");
    ASSERT_TRUE(r) << r.error().line();
    EXPECT_EQ(r->body, "hello world");
  }
  EXPECT_EQ(server.accepts(), 2) << "such a connection cannot be reused";
}

TEST(HttpClient, NoContentAnswerHasNoBody) {
  // 204 carries no body and no length; the server keeps the connection: waiting for more would time out.
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 204 No Content\r\n\r\n"}};
  });
  HttpClient client(server.endpoint(), 10s);
  const auto started = std::chrono::steady_clock::now();
  const auto r = client.post("/containers/x/restart", "");
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->body, "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ASSERT_TRUE(client.get("/again"));
  EXPECT_EQ(server.accepts(), 1);
}

TEST(HttpClient, ReconnectsWhenTheServerClosedAnIdleConnection) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int connection, const std::string&) {
    // Each connection answers once, as if it would keep the connection, then closes it.
    return ScriptedServer::Answer{{ok_with_length("answer on connection " + std::to_string(connection))}, true};
  });
  HttpClient client(server.endpoint(), 2s);
  const auto a = client.get("/a");
  ASSERT_TRUE(a) << a.error().line();
  EXPECT_EQ(a->body, "answer on connection 1");
  const auto b = client.get("/b");
  ASSERT_TRUE(b) << b.error().line();
  EXPECT_EQ(b->body, "answer on connection 2");
  EXPECT_EQ(server.accepts(), 2);
}

TEST(HttpClient, ResendsOnceWhenAKeptConnectionClosesWithoutAnswering) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int connection, const std::string& request) {
    if (connection == 1 && request.starts_with("POST /second")) {
      return ScriptedServer::Answer{};  // read the request, close without a byte of answer
    }
    return ScriptedServer::Answer{{ok_with_length("connection " + std::to_string(connection))}};
  });
  HttpClient client(server.endpoint(), 2s);
  ASSERT_TRUE(client.get("/first"));
  const auto r = client.post("/second", "{}");
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->body, "connection 2");
  EXPECT_EQ(server.accepts(), 2);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3U);
  EXPECT_TRUE(requests[2].starts_with("POST /second ")) << requests[2];
}

TEST(HttpClient, DoesNotResendMoreThanOnce) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string& request) {
    if (request.starts_with("GET /first ")) {
      return ScriptedServer::Answer{{ok_with_length("ok")}};
    }
    return ScriptedServer::Answer{};  // every later request: the connection closes without an answer
  });
  HttpClient client(server.endpoint(), 2s);
  ASSERT_TRUE(client.get("/first"));
  const auto r = client.get("/second");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().source, server.endpoint().text + " (GET /second)");
  EXPECT_NE(r.error().message.find("empty reply"), std::string::npos) << r.error().line();
  const auto again = client.get("/third");  // a fresh connection that closes: not resent
  ASSERT_FALSE(again);
  EXPECT_EQ(server.requests().size(), 4U);  // /first, /second twice, /third once
  EXPECT_EQ(server.accepts(), 3);
}

TEST(HttpClient, BrokenAnswersAreErrors) {
  for (const std::vector<std::string>& pieces : std::vector<std::vector<std::string>>{
           {"SSH-2.0-OpenSSH_9.2\r\n"},
           {"HTTP/1.1 abc OK\r\n\r\n"},
           {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"},
           {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
       }) {
    TempDir dir;
    ScriptedServer server(dir.path() / "s.sock", [&](int, const std::string&) {
      return ScriptedServer::Answer{pieces, true};
    });
    HttpClient client(server.endpoint(), 2s);
    const auto r = client.get("/x");
    ASSERT_FALSE(r) << pieces.front();
    EXPECT_TRUE(r.error().message.starts_with("not an HTTP answer (")) << r.error().line();
  }
}

TEST(HttpClient, KeepsTheHeadersARequestAsksFor) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    // An interim answer's headers are not the answer's; names come in any case, values with spaces around.
    return ScriptedServer::Answer{
        {"HTTP/1.1 100 Continue\r\nApi-Version: 0.1\r\n\r\n",
         "HTTP/1.1 200 OK\r\nAPI-VERSION:   1.41 \t\r\nContent-Length: 2\r\n"
         "Server: Docker/20.10.24+dfsg1 (linux)\r\napi-version: 1.42\r\nX-Other: o\r\n\r\nOK"}};
  });
  HttpClient client(server.endpoint(), 2s);
  const auto none = client.get("/_ping");
  ASSERT_TRUE(none) << none.error().line();
  EXPECT_TRUE(none->headers.empty()) << "no header is kept unless asked for";
  EXPECT_EQ(none->header("Api-Version"), std::nullopt);

  const auto r = client.get("/_ping", RequestOptions{}.keeping({"Api-Version", "server", "Missing"}));
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->body, "OK");
  ASSERT_EQ(r->headers.size(), 3U);
  EXPECT_EQ(r->headers[0].name, "Api-Version") << "named as the request named it";
  EXPECT_EQ(r->headers[0].value, "1.41");
  EXPECT_EQ(r->headers[1].name, "server");
  EXPECT_EQ(r->headers[1].value, "Docker/20.10.24+dfsg1 (linux)");
  EXPECT_EQ(r->headers[2].value, "1.42") << "a repeated header is kept once per line";
  EXPECT_EQ(r->header("api-version"), "1.41") << "the first of them";
  EXPECT_EQ(r->header("SERVER"), "Docker/20.10.24+dfsg1 (linux)");
  EXPECT_EQ(r->header("Missing"), std::nullopt);
  EXPECT_EQ(r->header("X-Other"), std::nullopt) << "not asked for";
  EXPECT_EQ(server.accepts(), 1) << "the connection is kept as before";
}

TEST(HttpClient, KeptHeadersAreBounded) {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
  for (int i = 0; i < 1000; ++i) {
    head += "Api-Version: 1." + std::to_string(i) + "\r\n";
  }
  head += "\r\n";
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [&](int, const std::string&) { return ScriptedServer::Answer{{head}}; });
  HttpClient client(server.endpoint(), 2s);
  const auto r = client.get("/_ping", RequestOptions{}.keeping({"api-version"}));
  ASSERT_TRUE(r) << r.error().line();
  ASSERT_EQ(r->headers.size(), k_max_kept_headers);
  EXPECT_EQ(r->headers.back().value, "1.15");
}

TEST(HttpClient, LineAndHeadLimitsHoldHoweverTheAnswerArrives) {
  // A trailer over 4 KiB and a head over 64 KiB passed when one read brought them whole, and failed when they
  // came in smaller reads (found with tests/fuzz/fuzz_http_response.cpp, which checks that splits never matter).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Trailer: " + std::string(5000, 'a') +
           "\r\n\r\n",
       "not an HTTP answer (a chunk line longer than 4 KiB)"},
      {"HTTP/1.1 200 OK\r\nX-Big: " + std::string(66000, 'a') + "\r\nContent-Length: 1\r\n\r\nx",
       "not an HTTP answer (headers longer than 64 KiB)"},
  };
  for (const auto& [answer, message] : cases) {
    TempDir dir;
    ScriptedServer server(dir.path() / "s.sock", [&](int, const std::string&) {
      return ScriptedServer::Answer{{answer}, true};
    });
    HttpClient client(server.endpoint(), 5s);
    const auto r = client.get("/x");
    ASSERT_FALSE(r) << message;
    EXPECT_EQ(r.error().message, message);
  }
}

TEST(HttpClient, AnswerCutShortIsAnError) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part"}, true};
  });
  HttpClient client(server.endpoint(), 2s);
  const auto r = client.get("/x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "the server closed the connection in the middle of the answer");
}

TEST(HttpClient, OversizedChunkedBodyIsRefused) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    const std::string piece(1U << 20, 'x');
    std::string chunk = fmt::format("{:x}\r\n{}\r\n", piece.size(), piece);
    std::string all = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t i = 0; i <= k_default_max_body_bytes >> 20; ++i) {
      all += chunk;
    }
    return ScriptedServer::Answer{{all + "0\r\n\r\n"}, true};
  });
  HttpClient client(server.endpoint(), 10s);
  const auto r = client.get("/big");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "response larger than 64 MiB");
}

TEST(HttpClient, DeclaredOversizedBodyIsNotRead) {
  TempDir dir;
  // Declares 10 GiB and sends a little: the client must refuse on the header, not wait for the rest.
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\nxxxx"}, false};
  });
  HttpClient client(server.endpoint(), 10s);
  const auto started = std::chrono::steady_clock::now();
  const auto r = client.get("/big", RequestOptions::capped(4096));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "response larger than 4 KiB");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(HttpClient, StreamDeliversDechunkedPiecesAsTheyArrive) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhel", "lo\r\n",
                                   "6\r\n world\r\n", "0\r\n\r\n"}};
  });
  HttpClient client(server.endpoint(), 2s);
  std::atomic<bool> stop{false};
  long opened = 0;
  std::vector<std::string> pieces;
  const auto status = client.stream(
      "/events",
      [&](std::string_view piece) {
        pieces.emplace_back(piece);
        return true;
      },
      stop, [&](long s) { opened = s; });
  ASSERT_TRUE(status) << status.error().line();
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(opened, 200);
  EXPECT_EQ(pieces, (std::vector<std::string>{"hel", "lo", " world"}));
}

TEST(HttpClient, StreamStopsPromptlyWhileTheServerIsSilent) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"}};
  });
  HttpClient client(server.endpoint(), 2s);
  std::atomic<bool> stop{false};
  std::chrono::steady_clock::time_point stopped_at;
  const auto status = client.stream(
      "/events", [](std::string_view) { return true; }, stop,
      [&](long) {
        stopped_at = std::chrono::steady_clock::now();
        stop = true;
      });
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ECANCELED);
  EXPECT_EQ(status.error().message, "stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 2s);
}

TEST(HttpClient, StreamPostSendsItsBodyAndTheCallerMayStopIt) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\none\r\n",
                                   "3\r\ntwo\r\n", "5\r\nthree\r\n0\r\n\r\n"}};
  });
  HttpClient client(server.endpoint(), 2s);
  std::atomic<bool> stop{false};
  std::vector<std::string> pieces;
  StreamOptions options;
  options.first_byte_timeout = 2s;
  options.idle_timeout = 2s;
  const auto status = client.stream_post(
      "/api/generate", R"({"model":"m"})",
      [&](std::string_view piece) {
        pieces.emplace_back(piece);
        return pieces.size() < 2;
      },
      stop, options);
  ASSERT_TRUE(status) << status.error().line();
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(pieces, (std::vector<std::string>{"one", "two"}));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_TRUE(requests[0].starts_with("POST /api/generate HTTP/1.1\r\n")) << requests[0];
  EXPECT_NE(requests[0].find("\r\nContent-Type: application/json\r\n"), std::string::npos) << requests[0];
  EXPECT_EQ(requests[0].find("keep-alive"), std::string::npos) << requests[0];
  EXPECT_TRUE(requests[0].ends_with("\r\n\r\n{\"model\":\"m\"}")) << requests[0];
}

TEST(HttpClient, StreamPostPassesErrorAnswersWhenAsked) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\n\r\n{\"error\":\"gone\"}\n"}};
  });
  HttpClient client(server.endpoint(), 2s);
  std::atomic<bool> stop{false};
  std::string body;
  long opened = 0;
  const auto collect = [&](std::string_view piece) {
    body += piece;
    return true;
  };
  StreamOptions options;
  const auto refused = client.stream_post("/x", "{}", collect, stop, options);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, R"(HTTP 404: {"error":"gone"})");
  EXPECT_EQ(body, "");
  options.pass_error_answers = true;
  const auto passed = client.stream_post("/x", "{}", collect, stop, options, [&](long s) { opened = s; });
  ASSERT_TRUE(passed) << passed.error().line();
  EXPECT_EQ(*passed, 404);
  EXPECT_EQ(opened, 404);
  EXPECT_EQ(body, "{\"error\":\"gone\"}\n");
}

TEST(HttpClient, StreamPostHoldsItsCapAndItsTimeOuts) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string& request) {
    if (request.starts_with("POST /silent ")) {
      return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\none\r\n"}};
    }
    return ScriptedServer::Answer{
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\none\r\n", "3\r\ntwo\r\n0\r\n\r\n"}};
  });
  HttpClient client(server.endpoint(), 2s);
  std::atomic<bool> stop{false};
  std::string body;
  const auto collect = [&](std::string_view piece) {
    body += piece;
    return true;
  };
  StreamOptions options;
  options.max_body_bytes = 6;
  ASSERT_TRUE(client.stream_post("/fits", "{}", collect, stop, options));
  EXPECT_EQ(body, "onetwo");
  body.clear();
  options.max_body_bytes = 5;
  const auto over = client.stream_post("/over", "{}", collect, stop, options);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().line(), server.endpoint().text + " (POST /over): response larger than 5 bytes");
  EXPECT_EQ(body, "one");

  options = StreamOptions{};
  options.idle_timeout = 200ms;
  const auto started = std::chrono::steady_clock::now();
  const auto silent = client.stream_post("/silent", "{}", collect, stop, options);
  ASSERT_FALSE(silent);
  EXPECT_EQ(silent.error().code, ETIMEDOUT);
  EXPECT_EQ(silent.error().message, "nothing received for 0.2 s");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(HttpClient, StreamPostTimesOutBeforeTheFirstByte) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "s.sock", [](const std::string&, const std::string&) {
    FakeHttpServer::Reply reply;
    reply.hang = true;
    return reply;
  });
  HttpClient client(unix_endpoint(dir.path() / "s.sock"), 10s);
  std::atomic<bool> stop{false};
  StreamOptions options;
  options.first_byte_timeout = 200ms;
  const auto started = std::chrono::steady_clock::now();
  const auto r = client.stream_post(
      "/api/generate", "{}", [](std::string_view) { return true; }, stop, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_EQ(r.error().message, "no answer within 0.2 s");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}
