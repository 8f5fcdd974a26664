#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "adapters/notify.hpp"
#include "core/rate_limit.hpp"
#include "recording_server.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;
using mw::test::ClosedPort;
using mw::test::RecordingServer;
using nlohmann::json;

namespace {

Notification idle_bloat() {
  Notification n;
  n.event = "finding";
  n.severity = Severity::critical;
  n.subject = "ollama-gpu";
  n.what = "idle-bloat";
  n.title = "ollama-gpu: idle bloat (critical)";
  n.message = "ollama-gpu holds 14.2 GiB with no model loaded for 10 min; expected 0.5 GiB.";
  n.at_ms = 1'764'226'720'123;  // 2025-11-27T06:58:40.123Z
  n.host = "gpu-box";
  n.details = json{{"anon_bytes", 15'246'753'792LL}, {"models", json::array()}};
  return n;
}

json body_of(const WebhookRequest& req) {
  return json::parse(req.body);
}

std::size_t code_points(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U; }));
}

}  // namespace

// ---- kinds and URLs

TEST(Notify, ParsesAndNamesKinds) {
  for (const auto kind : {NotifyKind::generic, NotifyKind::ntfy, NotifyKind::discord, NotifyKind::slack}) {
    const auto parsed = parse_notify_kind(to_string(kind), "config");
    ASSERT_TRUE(parsed) << to_string(kind);
    EXPECT_EQ(*parsed, kind);
  }
  const auto bad = parse_notify_kind("teams", "memwarden.yaml: notify[0].kind");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().source, "memwarden.yaml: notify[0].kind");
  EXPECT_NE(bad.error().message.find("'teams'"), std::string::npos) << bad.error().message;
}

TEST(Notify, SplitsUrlIntoEndpointAndPathWithQuery) {
  const auto a = split_webhook_url("https://hooks.example.org:8443/services/T0/B0/xyz?a=1&b=2#frag", "t");
  ASSERT_TRUE(a) << a.error().line();
  EXPECT_EQ(a->endpoint, "https://hooks.example.org:8443");
  EXPECT_EQ(a->path, "/services/T0/B0/xyz?a=1&b=2");
  const auto b = split_webhook_url("http://127.0.0.1:9000", "t");
  ASSERT_TRUE(b) << b.error().line();
  EXPECT_EQ(b->endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(b->path, "/");
  const auto c = split_webhook_url("http://[::1]:9000?x=1", "t");
  ASSERT_TRUE(c) << c.error().line();
  EXPECT_EQ(c->endpoint, "http://[::1]:9000");
  EXPECT_EQ(c->path, "/?x=1");
}

TEST(Notify, RejectsUrlsItCannotUse) {
  for (const char* bad :
       {"", "hooks.slack.com/services/x", "ftp://host/x", "unix:///run/x.sock", "tcp://host:1", "https://",
        "https:///path", "https://:80/x", "https://host:/x", "https://host:0/x", "https://host:65536/x",
        "https://host:80a/x", "https://user:pw@host/x", "https://host/a b", "https://[::1/x", "https://host\n/x"}) {
    const auto r = split_webhook_url(bad, "notify 'ops' (generic)");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().source, "notify 'ops' (generic)") << bad;
    EXPECT_FALSE(r.error().message.empty());
  }
  // The error does not repeat the password or the path.
  const auto creds = split_webhook_url("https://user:secret@host/token123", "t");
  ASSERT_FALSE(creds);
  EXPECT_EQ(creds.error().message.find("secret"), std::string::npos) << creds.error().message;
  EXPECT_EQ(creds.error().message.find("token123"), std::string::npos) << creds.error().message;
}

TEST(Notify, RedactsThePathOfUrls) {
  EXPECT_EQ(redacted_url("https://discord.com/api/webhooks/1/secret"), "https://discord.com/\u2026");
  EXPECT_EQ(redacted_url("https://u:p@ntfy.example.org:8080/topic"), "https://ntfy.example.org:8080/\u2026");
  EXPECT_EQ(redacted_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
  EXPECT_EQ(redacted_url("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
  EXPECT_EQ(redacted_url("hooks.slack.com/services/secret"), "hooks.slack.com/\u2026");
}

TEST(Notify, FormatsRfc3339Utc) {
  EXPECT_EQ(format_rfc3339_utc(1'764'226'720'123), "2025-11-27T06:58:40.123Z");
  EXPECT_EQ(format_rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
}

// ---- payloads

TEST(Notify, GenericPayloadIsMemwardensOwnJson) {
  const NotifyTarget target{"ops", NotifyKind::generic, "https://hooks.example.org/in/memwarden?token=abc"};
  const auto req = build_webhook(target, idle_bloat());
  ASSERT_TRUE(req) << req.error().line();
  EXPECT_EQ(req->endpoint, "https://hooks.example.org");
  EXPECT_EQ(req->path, "/in/memwarden?token=abc");
  const json expected = {{"source", "memwarden"},
                         {"schema", 1},
                         {"event", "finding"},
                         {"severity", "critical"},
                         {"subject", "ollama-gpu"},
                         {"what", "idle-bloat"},
                         {"title", "ollama-gpu: idle bloat (critical)"},
                         {"message", idle_bloat().message},
                         {"at", "2025-11-27T06:58:40.123Z"},
                         {"host", "gpu-box"},
                         {"details", {{"anon_bytes", 15'246'753'792LL}, {"models", json::array()}}}};
  EXPECT_EQ(body_of(*req), expected) << req->body;
}

TEST(Notify, GenericPayloadSaysAnUnknownTimeAsNull) {
  auto n = idle_bloat();
  n.at_ms = 0;
  n.details = nullptr;
  const auto req = build_webhook({"ops", NotifyKind::generic, "http://127.0.0.1:9/"}, n);
  ASSERT_TRUE(req) << req.error().line();
  const auto body = body_of(*req);
  EXPECT_TRUE(body.at("at").is_null());
  EXPECT_EQ(body.at("details"), json::object());
}

TEST(Notify, NtfyPublishesJsonToTheServerRootWithTheTopicFromTheUrl) {
  const auto req = build_webhook({"phone", NotifyKind::ntfy, "https://ntfy.sh/mw-alerts_42"}, idle_bloat());
  ASSERT_TRUE(req) << req.error().line();
  EXPECT_EQ(req->endpoint, "https://ntfy.sh");
  EXPECT_EQ(req->path, "/");
  const json expected = {{"topic", "mw-alerts_42"},
                         {"title", "ollama-gpu: idle bloat (critical)"},
                         {"message", idle_bloat().message},
                         {"priority", 5},
                         {"tags", {"critical"}}};
  EXPECT_EQ(body_of(*req), expected) << req->body;
}

TEST(Notify, NtfyPriorityFollowsSeverityAndServerPrefixAndQueryAreKept) {
  auto n = idle_bloat();
  n.severity = Severity::warning;
  const auto warn = build_webhook({"p", NotifyKind::ntfy, "http://10.0.0.5:8080/ntfy/alerts/?auth=QmFzaWM"}, n);
  ASSERT_TRUE(warn) << warn.error().line();
  EXPECT_EQ(warn->endpoint, "http://10.0.0.5:8080");
  EXPECT_EQ(warn->path, "/ntfy/?auth=QmFzaWM");
  EXPECT_EQ(body_of(*warn).at("topic"), "alerts");
  EXPECT_EQ(body_of(*warn).at("priority"), 4);
  EXPECT_EQ(body_of(*warn).at("tags"), json::array({"warning"}));
  n.severity = Severity::info;
  const auto info = build_webhook({"p", NotifyKind::ntfy, "https://ntfy.sh/alerts"}, n);
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(body_of(*info).at("priority"), 3);
  EXPECT_EQ(body_of(*info).at("tags"), json::array({"info"}));
}

TEST(Notify, NtfyNeedsAUsableTopic) {
  for (const char* bad : {"https://ntfy.sh", "https://ntfy.sh/", "https://ntfy.sh/?auth=x", "https://ntfy.sh/a.b",
                          "https://ntfy.sh/%20x"}) {
    const auto req = build_webhook({"phone", NotifyKind::ntfy, bad}, idle_bloat());
    ASSERT_FALSE(req) << bad;
    EXPECT_EQ(req.error().source, "notify 'phone' (ntfy)") << bad;
    EXPECT_NE(req.error().message.find("topic"), std::string::npos) << req.error().message;
  }
}

TEST(Notify, DiscordPayload) {
  const auto req =
      build_webhook({"chat", NotifyKind::discord, "https://discord.com/api/webhooks/123/tok"}, idle_bloat());
  ASSERT_TRUE(req) << req.error().line();
  EXPECT_EQ(req->endpoint, "https://discord.com");
  EXPECT_EQ(req->path, "/api/webhooks/123/tok");
  const json expected = {{"username", "memwarden"},
                         {"content", "**ollama-gpu: idle bloat (critical)**\n" + idle_bloat().message},
                         {"allowed_mentions", {{"parse", json::array()}}}};
  EXPECT_EQ(body_of(*req), expected) << req->body;
}

TEST(Notify, DiscordContentIsCutTo2000CharactersOnACodePointBoundary) {
  auto n = idle_bloat();
  n.title = "t";
  std::string message;
  for (int i = 0; i < 1500; ++i) {
    message += "\u00e9\u20ac";  // 2- and 3-byte code points
  }
  n.message = message;
  const auto req = build_webhook({"chat", NotifyKind::discord, "https://discord.com/api/webhooks/1/x"}, n);
  ASSERT_TRUE(req) << req.error().line();
  const std::string content = body_of(*req).at("content");
  EXPECT_EQ(code_points(content), k_discord_content_limit);
  EXPECT_TRUE(content.starts_with("**t**\n\u00e9\u20ac"));
  EXPECT_TRUE(content.ends_with("\u2026"));

  // Exactly at the limit: nothing is cut.
  n.message = std::string(k_discord_content_limit - 6, 'x');  // "**t**\n" is 6
  const auto exact = build_webhook({"chat", NotifyKind::discord, "https://discord.com/api/webhooks/1/x"}, n);
  ASSERT_TRUE(exact);
  const std::string whole = body_of(*exact).at("content");
  EXPECT_EQ(whole.size(), k_discord_content_limit);
  EXPECT_TRUE(whole.ends_with("x"));
}

TEST(Notify, SlackPayloadEscapesControlCharacters) {
  auto n = idle_bloat();
  n.title = "a & b";
  n.message = "usage <limit> reached";
  const auto req = build_webhook({"team", NotifyKind::slack, "https://hooks.slack.com/services/T/B/X"}, n);
  ASSERT_TRUE(req) << req.error().line();
  EXPECT_EQ(req->path, "/services/T/B/X");
  const json expected = {{"text", "*a &amp; b*\nusage &lt;limit&gt; reached"}};
  EXPECT_EQ(body_of(*req), expected) << req->body;
}

TEST(Notify, InvalidUtf8DoesNotBreakThePayload) {
  auto n = idle_bloat();
  n.subject = std::string("bad\xff\xfename");
  n.message = std::string("cut \xe2\x82");
  for (const auto kind : {NotifyKind::generic, NotifyKind::ntfy, NotifyKind::discord, NotifyKind::slack}) {
    const auto req = build_webhook({"x", kind, "https://example.org/topic"}, n);
    ASSERT_TRUE(req) << to_string(kind);
    EXPECT_TRUE(json::accept(req->body)) << to_string(kind);
  }
}

TEST(Notify, BuildErrorsNameTheTarget) {
  const auto req = build_webhook({"ops", NotifyKind::slack, "ftp://example.org/x"}, idle_bloat());
  ASSERT_FALSE(req);
  EXPECT_EQ(req.error().source, "notify 'ops' (slack)");
}

// ---- sending

TEST(Notify, SendsToTheServerAndAcceptsAny2xx) {
  RecordingServer server({204, ""});
  const NotifyTarget target{"ops", NotifyKind::generic, server.url() + "/hook/abc?k=v"};
  const auto sent = send_notification(target, idle_bloat(), 2s);
  ASSERT_TRUE(sent) << sent.error().line();
  server.set_reply({202, R"({"ok":true})"});
  const auto again = send_notification(target, idle_bloat(), 2s);
  ASSERT_TRUE(again) << again.error().line();

  ASSERT_TRUE(server.wait_for(2, 2s));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2U);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/hook/abc?k=v");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.header("user-agent"), "memwarden");
  const auto body = json::parse(r.body);
  EXPECT_EQ(body.at("source"), "memwarden");
  EXPECT_EQ(body.at("subject"), "ollama-gpu");
}

TEST(Notify, NtfyIsPostedToTheRoot) {
  RecordingServer server;
  const auto sent = send_notification({"phone", NotifyKind::ntfy, server.url() + "/alerts"}, idle_bloat(), 2s);
  ASSERT_TRUE(sent) << sent.error().line();
  ASSERT_TRUE(server.wait_for(1, 2s));
  const auto r = server.requests().at(0);
  EXPECT_EQ(r.path, "/");
  EXPECT_EQ(json::parse(r.body).at("topic"), "alerts");
}

TEST(Notify, ANon2xxAnswerIsAnErrorNamingTargetAndStatus) {
  RecordingServer server({500, "{\"error\":\"boom\",\n \"code\": 1}"});
  const auto sent = send_notification({"ops", NotifyKind::ntfy, server.url() + "/alerts"}, idle_bloat(), 2s);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().source, "notify 'ops' (ntfy)");
  EXPECT_TRUE(sent.error().message.starts_with("HTTP 500")) << sent.error().line();
  EXPECT_NE(sent.error().message.find("boom"), std::string::npos) << sent.error().line();
  EXPECT_EQ(sent.error().message.find('\n'), std::string::npos) << sent.error().line();

  server.set_reply({403, ""});
  const auto denied = send_notification({"ops", NotifyKind::ntfy, server.url() + "/alerts"}, idle_bloat(), 2s);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().line(), "notify 'ops' (ntfy): HTTP 403");
}

TEST(Notify, NothingListeningIsAClearErrorWithoutThePath) {
  const ClosedPort port;
  const auto sent =
      send_notification({"chat", NotifyKind::discord, port.url() + "/api/webhooks/1/secret-token"}, idle_bloat(), 2s);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().source, "notify 'chat' (discord)");
  EXPECT_NE(sent.error().message.find("connection refused"), std::string::npos) << sent.error().line();
  EXPECT_NE(sent.error().message.find(port.url()), std::string::npos) << sent.error().line();
  EXPECT_EQ(sent.error().line().find("secret-token"), std::string::npos) << sent.error().line();
}

TEST(Notify, ABadUrlFailsBeforeSending) {
  const auto sent = send_notification({"ops", NotifyKind::generic, "http://host:99999/x"}, idle_bloat(), 2s);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().source, "notify 'ops' (generic)");
  EXPECT_NE(sent.error().message.find("99999"), std::string::npos) << sent.error().line();
}

// ---- the recording server itself

TEST(RecordingServer, AnswersFromTheHandlerAndRecordsLowerCasedHeaders) {
  RecordingServer server;
  server.set_handler([](const mw::test::RecordedRequest& r) {
    return RecordingServer::Reply{r.path == "/missing" ? 404 : 200, "{}"};
  });
  const auto sent = send_notification({"ops", NotifyKind::generic, server.url() + "/missing"}, idle_bloat(), 2s);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().line(), "notify 'ops' (generic): HTTP 404: {}");
  ASSERT_TRUE(server.wait_for(1, 2s));
  EXPECT_FALSE(server.wait_for(2, 10ms));
  const auto r = server.requests().at(0);
  ASSERT_TRUE(r.header("CONTENT-LENGTH"));
  EXPECT_EQ(*r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_FALSE(r.header("x-not-there"));
  for (const auto& [name, value] : r.headers) {
    for (const char c : name) {
      EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
    }
  }
}

TEST(RecordingServer, DecodesChunkedBodiesAndKeepsTheConnectionAlive) {
  RecordingServer server({201, "made"});
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  const timeval deadline{5, 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof deadline), 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(server.port());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string out =
      "POST /a?x=1 HTTP/1.1\r\nHost: t\r\nX-Mixed-Case:  v1 \r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
      "PUT /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz";
  ASSERT_EQ(::send(fd, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
  std::string in;
  char buf[4096];
  for (ssize_t n = 0; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  // Two answers, then the server closed the connection as asked.
  EXPECT_TRUE(in.starts_with("HTTP/1.1 201 ")) << in;
  EXPECT_NE(in.find("HTTP/1.1 201 ", 5), std::string::npos) << in;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/a?x=1");
  EXPECT_EQ(requests[0].body, "hello world");
  EXPECT_EQ(requests[0].header("x-mixed-case"), "v1");
  EXPECT_EQ(requests[1].method, "PUT");
  EXPECT_EQ(requests[1].path, "/b");
  EXPECT_EQ(requests[1].body, "xyz");
}

// ---- the rate limiter (core)

TEST(RateLimiter, OnePerKeyPerInterval) {
  RateLimiter limiter(60'000, 100);
  EXPECT_TRUE(limiter.allow("ollama-gpu/idle-bloat", 1'000'000));
  EXPECT_FALSE(limiter.allow("ollama-gpu/idle-bloat", 1'000'001));
  EXPECT_FALSE(limiter.allow("ollama-gpu/idle-bloat", 1'059'999));
  // A suppressed attempt does not restart the interval.
  EXPECT_TRUE(limiter.allow("ollama-gpu/idle-bloat", 1'060'000));
  EXPECT_FALSE(limiter.allow("ollama-gpu/idle-bloat", 1'119'999));
  EXPECT_EQ(limiter.suppressed(), 3U);
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter limiter(60'000, 100);
  EXPECT_TRUE(limiter.allow("a/growth", 0));
  EXPECT_TRUE(limiter.allow("b/growth", 1));
  EXPECT_TRUE(limiter.allow("a/idle-bloat", 2));
  EXPECT_FALSE(limiter.allow("a/growth", 3));
  EXPECT_FALSE(limiter.allow("b/growth", 4));
  EXPECT_EQ(limiter.suppressed(), 2U);
  EXPECT_EQ(limiter.sent_last_hour(), 3U);
}

TEST(RateLimiter, HourlyCapOverAllKeysInARollingHour) {
  RateLimiter limiter(0, 3);
  EXPECT_TRUE(limiter.allow("k1", 0));
  EXPECT_TRUE(limiter.allow("k2", 10'000));
  EXPECT_TRUE(limiter.allow("k3", 20'000));
  EXPECT_FALSE(limiter.allow("k4", 30'000));
  EXPECT_FALSE(limiter.allow("k1", 3'599'999));  // the first is still inside the hour
  EXPECT_TRUE(limiter.allow("k5", 3'600'000));   // ... and now it is not
  EXPECT_FALSE(limiter.allow("k6", 3'600'001));
  EXPECT_TRUE(limiter.allow("k6", 3'610'000));
  EXPECT_EQ(limiter.suppressed(), 3U);
}

TEST(RateLimiter, SuppressedByTheCapDoesNotUseTheKeysInterval) {
  RateLimiter limiter(60'000, 1);
  EXPECT_TRUE(limiter.allow("a", 0));
  EXPECT_FALSE(limiter.allow("b", 1'000));  // the cap
  EXPECT_TRUE(limiter.allow("b", RateLimiter::k_hour_ms));
  EXPECT_EQ(limiter.suppressed(), 1U);
}

TEST(RateLimiter, ZeroMeansNoLimit) {
  RateLimiter limiter(0, 0);
  for (std::int64_t t = 0; t < 500; ++t) {
    EXPECT_TRUE(limiter.allow("same", t));
  }
  EXPECT_EQ(limiter.suppressed(), 0U);
}

TEST(RateLimiter, AClockThatGoesBackDoesNotSilenceNotifications) {
  RateLimiter limiter(60'000, 2);
  EXPECT_TRUE(limiter.allow("a", 10'000'000));
  EXPECT_TRUE(limiter.allow("b", 10'000'001));
  // The clock jumps back an hour: what was stamped after "now" no longer limits.
  EXPECT_TRUE(limiter.allow("a", 6'400'000));
  EXPECT_FALSE(limiter.allow("a", 6'400'001));
  EXPECT_EQ(limiter.suppressed(), 1U);
}
