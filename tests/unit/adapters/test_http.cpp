#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "adapters/http.hpp"
#include "recording_server.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;
using mw::test::FakeHttpServer;
using mw::test::TempDir;

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

namespace {

Endpoint unix_endpoint(const std::filesystem::path& socket) {
  return *parse_endpoint("unix://" + socket.string(), "t");
}

}  // namespace

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
    return FakeHttpServer::Reply{200, std::string(HttpClient::k_max_body_bytes + 1, 'x')};
  });
  HttpClient client(unix_endpoint(dir.path() / "s.sock"), 10s);
  const auto r = client.get("/containers/json");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("response larger than 64 MiB"), std::string::npos) << r.error().line();
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
