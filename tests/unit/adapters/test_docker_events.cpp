#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/docker_events.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;
using mw::test::TempDir;

namespace {

constexpr auto k_wait = 10s;  // generous deadline for things that happen at once

std::string event_json(std::string_view action, std::string_view id, std::int64_t time_nano,
                       std::string_view name = "ollama") {
  return fmt::format(R"({{"status":"{0}","id":"{1}","from":"ollama/ollama","Type":"container","Action":"{0}",)"
                     R"("Actor":{{"ID":"{1}","Attributes":{{"image":"ollama/ollama","name":"{2}","exitCode":"137"}}}},)"
                     R"("scope":"local","time":{3},"timeNano":{4}}})",
                     action, id, name, time_nano / 1'000'000'000, time_nano);
}

// A Unix-socket HTTP server whose answers the test writes piece by piece: every request gets
// "200, Transfer-Encoding: chunked" headers (or a canned error), then whatever the test sends.
class StreamServer {
 public:
  explicit StreamServer(std::filesystem::path socket_path) : m_path(std::move(socket_path)) {
    m_listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, m_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_listen_fd, 8) != 0 ||
        ::pipe2(m_wake, O_CLOEXEC) != 0) {
      throw std::runtime_error("cannot listen on " + m_path.string());
    }
    m_thread = std::thread([this] { serve(); });
  }
  ~StreamServer() {
    (void)!::write(m_wake[1], "x", 1);
    m_thread.join();
    for (const int fd : m_fds) {
      ::close(fd);
    }
    ::close(m_listen_fd);
    ::close(m_wake[0]);
    ::close(m_wake[1]);
  }
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  [[nodiscard]] Endpoint endpoint() const { return *parse_endpoint("unix://" + m_path.string(), "test"); }

  // Answers later requests with this status and body instead of a stream.
  void fail_with(int status, std::string body) {
    std::lock_guard lock(m_mutex);
    m_fail_status = status;
    m_fail_body = std::move(body);
  }

  // The request target of the n-th request (1-based), once it has come.
  [[nodiscard]] std::string wait_request(std::size_t n) {
    std::unique_lock lock(m_mutex);
    if (!m_cv.wait_for(lock, k_wait, [&] { return m_targets.size() >= n; })) {
      return "<no request " + std::to_string(n) + ">";
    }
    return m_targets[n - 1];
  }
  [[nodiscard]] std::size_t requests() {
    std::lock_guard lock(m_mutex);
    return m_targets.size();
  }

  // Sends `data` as one HTTP chunk on the newest connection.
  void send_chunk(std::string_view data) { write_latest(fmt::format("{:x}\r\n{}\r\n", data.size(), data)); }
  // Ends the newest stream properly (last chunk), or breaks it off (close without one).
  void end_stream() {
    write_latest("0\r\n\r\n");
    drop();
  }
  void drop() {
    std::lock_guard lock(m_mutex);
    ::shutdown(m_fds.back(), SHUT_RDWR);
  }

 private:
  void write_latest(const std::string& data) {
    std::lock_guard lock(m_mutex);
    ASSERT_FALSE(m_fds.empty());
    ASSERT_EQ(::send(m_fds.back(), data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
  }

  void serve() {
    for (;;) {
      pollfd fds[2] = {{m_listen_fd, POLLIN, 0}, {m_wake[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 || (fds[1].revents & POLLIN) != 0) {
        return;
      }
      const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        continue;
      }
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        pollfd pf[2] = {{fd, POLLIN, 0}, {m_wake[0], POLLIN, 0}};
        if (::poll(pf, 2, -1) < 0 || (pf[1].revents & POLLIN) != 0) {
          ::close(fd);
          return;
        }
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
          break;
        }
        request.append(buf, static_cast<std::size_t>(n));
      }
      const auto sp1 = request.find(' ');
      const auto sp2 = request.find(' ', sp1 + 1);
      std::lock_guard lock(m_mutex);
      if (m_fail_status != 0) {
        const auto reply =
            fmt::format("HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                        m_fail_status, m_fail_body.size(), m_fail_body);
        (void)!::write(fd, reply.data(), reply.size());
      } else {
        static constexpr std::string_view k_head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        (void)!::write(fd, k_head.data(), k_head.size());
      }
      m_fds.push_back(fd);
      m_targets.push_back(sp2 == std::string::npos ? request : request.substr(sp1 + 1, sp2 - sp1 - 1));
      m_cv.notify_all();
    }
  }

  std::filesystem::path m_path;
  int m_listen_fd = -1;
  int m_wake[2] = {-1, -1};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<std::string> m_targets;
  std::vector<int> m_fds;
  int m_fail_status = 0;
  std::string m_fail_body;
  std::thread m_thread;
};

// What the stream reported, with waits that end as soon as the condition holds.
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<DockerEvent> events;
  std::vector<std::pair<bool, std::optional<Error>>> states;

  std::function<void(const DockerEvent&)> on_event() {
    return [this](const DockerEvent& e) {
      std::lock_guard lock(mutex);
      events.push_back(e);
      cv.notify_all();
    };
  }
  std::function<void(bool, const std::optional<Error>&)> on_state() {
    return [this](bool connected, const std::optional<Error>& why) {
      std::lock_guard lock(mutex);
      states.emplace_back(connected, why);
      cv.notify_all();
    };
  }
  bool wait_events(std::size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, k_wait, [&] { return events.size() >= n; });
  }
  bool wait_states(const std::function<bool(const std::vector<std::pair<bool, std::optional<Error>>>&)>& pred) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, k_wait, [&] { return pred(states); });
  }
  std::size_t count_states(bool connected, bool with_error) {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(std::count_if(states.begin(), states.end(), [&](const auto& s) {
      return s.first == connected && s.second.has_value() == with_error;
    }));
  }
  std::vector<DockerEvent> snapshot() {
    std::lock_guard lock(mutex);
    return events;
  }
};

DockerEventOptions options_for(const Endpoint& endpoint) {
  DockerEventOptions options;
  options.endpoint = endpoint;
  options.reconnect_min = 10ms;
  options.reconnect_max = 40ms;
  options.connect_timeout = 2000ms;
  return options;
}

}  // namespace

TEST(DockerEvent, ParsesAnEngineEvent) {
  const auto ev = parse_docker_event(event_json("oom", "abc123", 1'700'000'000'123'456'789), "events");
  ASSERT_TRUE(ev) << ev.error().line();
  EXPECT_EQ(ev->type, "container");
  EXPECT_EQ(ev->action, "oom");
  EXPECT_EQ(ev->id, "abc123");
  EXPECT_EQ(ev->name, "ollama");
  EXPECT_EQ(ev->time_nano, 1'700'000'000'123'456'789);
  EXPECT_EQ(ev->attributes.at("exitCode"), "137");
  EXPECT_EQ(ev->attributes.at("image"), "ollama/ollama");
}

TEST(DockerEvent, FallsBackToLegacyFieldsAndSeconds) {
  const auto ev = parse_docker_event(R"({"Type":"container","status":"die","id":"x1","time":1700000000})", "events");
  ASSERT_TRUE(ev) << ev.error().line();
  EXPECT_EQ(ev->action, "die");
  EXPECT_EQ(ev->id, "x1");
  EXPECT_EQ(ev->name, "");
  EXPECT_EQ(ev->time_nano, 1'700'000'000'000'000'000);
}

TEST(DockerEvent, RejectsWhatIsNotAnEvent) {
  for (const char* bad : {"", "not json", "[1,2]", "{}", R"({"Type":"container"})",
                          R"({"Type":"container","Action":"die","Actor":{"Attributes":{"name":5}}})",
                          R"({"Type":"container","Action":"die","timeNano":"soon"})",
                          R"({"Type":"container","Action":"die","Actor":"x"})"}) {
    const auto ev = parse_docker_event(bad, "docker events");
    ASSERT_FALSE(ev) << bad;
    EXPECT_EQ(ev.error().source, "docker events") << bad;
  }
}

TEST(DockerEvent, SinceAndPath) {
  EXPECT_EQ(docker_since_text(1'700'000'000'000'000'042), "1700000000.000000042");
  EXPECT_EQ(docker_since_text(5), "0.000000005");
  EXPECT_EQ(
      docker_events_path("1.41", {"oom", "die"}, std::nullopt),
      "/v1.41/events?filters=%7B%22event%22%3A%5B%22oom%22%2C%22die%22%5D%2C%22type%22%3A%5B%22container%22%5D%7D");
  EXPECT_TRUE(
      docker_events_path("1.44", {"start"}, 1'700'000'000'500'000'000).ends_with("%7D&since=1700000000.500000000"));
}

TEST(LineSplitter, JoinsPiecesAndSkipsBlankLines) {
  LineSplitter splitter(64);
  std::vector<std::string> lines;
  int too_long = 0;
  const auto collect = [&](std::optional<std::string_view> line) {
    if (line) {
      lines.emplace_back(*line);
    } else {
      ++too_long;
    }
  };
  splitter.feed("{\"a\":", collect);
  EXPECT_TRUE(lines.empty());
  splitter.feed("1}\r\n\n{\"b\"", collect);
  splitter.feed(":2}\n{\"c\":3}\n", collect);
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"}));
  splitter.feed(std::string(50, 'x'), collect);
  splitter.feed(std::string(50, 'x'), collect);  // over 64 without a newline: reported once, skipped
  splitter.feed(std::string(50, 'x') + "\nok\n", collect);
  EXPECT_EQ(too_long, 1);
  EXPECT_EQ(lines.back(), "ok");
  EXPECT_EQ(lines.size(), 4U);
}

TEST(DockerEventStream, DeliversEventsIncludingSplitOnes) {
  TempDir dir;
  StreamServer server(dir.path() / "docker.sock");
  Collector got;
  DockerEventStream stream(options_for(server.endpoint()), got.on_event(), got.on_state());
  stream.start();
  const auto target = server.wait_request(1);
  EXPECT_TRUE(target.starts_with("/v1.41/events?filters=")) << target;
  EXPECT_EQ(target.find("since="), std::string::npos) << target;
  ASSERT_TRUE(got.wait_states([](const auto& s) { return !s.empty(); }));
  EXPECT_EQ(got.count_states(true, false), 1U);

  const auto a = event_json("start", "c1", 1'700'000'000'000'000'001);
  const auto b = event_json("oom", "c1", 1'700'000'000'000'000'002);
  const auto c = event_json("die", "c1", 1'700'000'000'000'000'003);
  server.send_chunk(a + "\n" + b.substr(0, 20));  // one event and a half
  server.send_chunk(b.substr(20, 30));
  server.send_chunk(b.substr(50) + "\n" + c + "\n");
  ASSERT_TRUE(got.wait_events(3));
  const auto events = got.snapshot();
  EXPECT_EQ(events[0].action, "start");
  EXPECT_EQ(events[1].action, "oom");
  EXPECT_EQ(events[1].time_nano, 1'700'000'000'000'000'002);
  EXPECT_EQ(events[2].action, "die");
  EXPECT_EQ(events[2].name, "ollama");
  stream.stop();
  EXPECT_EQ(got.snapshot().size(), 3U);
  EXPECT_EQ(stream.malformed_lines(), 0U);
}

TEST(DockerEventStream, ReconnectsWithSinceAndDropsTheReplay) {
  TempDir dir;
  StreamServer server(dir.path() / "docker.sock");
  Collector got;
  DockerEventStream stream(options_for(server.endpoint()), got.on_event(), got.on_state());
  stream.start();
  (void)server.wait_request(1);
  const auto first = event_json("die", "c1", 1'700'000'000'250'000'000);
  server.send_chunk(first + "\n");
  ASSERT_TRUE(got.wait_events(1));
  server.drop();  // broken off (no last chunk)

  const auto target = server.wait_request(2);
  EXPECT_NE(target.find("&since=1700000000.250000000"), std::string::npos) << target;
  EXPECT_GE(got.count_states(false, true), 1U);
  // The engine replays what happened at `since`, then the new event.
  server.send_chunk(first + "\n" + event_json("start", "c1", 1'700'000'000'900'000'000) + "\n");
  ASSERT_TRUE(got.wait_events(2));
  server.end_stream();  // a proper end: reconnects too

  const auto third = server.wait_request(3);
  EXPECT_NE(third.find("&since=1700000000.900000000"), std::string::npos) << third;
  ASSERT_TRUE(got.wait_states([](const auto& s) {
    return std::count_if(s.begin(), s.end(), [](const auto& x) { return x.first && !x.second; }) >= 3;
  }));
  stream.stop();
  const auto events = got.snapshot();
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0].action, "die");
  EXPECT_EQ(events[1].action, "start");
  EXPECT_EQ(stream.connections(), 3U);
}

TEST(DockerEventStream, StopWhileIdleIsPrompt) {
  TempDir dir;
  StreamServer server(dir.path() / "docker.sock");
  Collector got;
  DockerEventStream stream(options_for(server.endpoint()), got.on_event(), got.on_state());
  stream.start();
  (void)server.wait_request(1);
  ASSERT_TRUE(got.wait_states([](const auto& s) { return !s.empty(); }));
  const auto started = std::chrono::steady_clock::now();
  stream.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  stream.stop();  // idempotent
  EXPECT_EQ(server.requests(), 1U);
}

TEST(DockerEventStream, SkipsAndCountsGarbageLines) {
  TempDir dir;
  StreamServer server(dir.path() / "docker.sock");
  Collector got;
  DockerEventStream stream(options_for(server.endpoint()), got.on_event(), got.on_state());
  stream.start();
  (void)server.wait_request(1);
  server.send_chunk("this is not json\n{\"Type\":\"container\"}\n" + event_json("oom", "c2", 7) + "\n");
  ASSERT_TRUE(got.wait_events(1));
  EXPECT_EQ(got.snapshot()[0].id, "c2");
  EXPECT_EQ(stream.malformed_lines(), 2U);
  EXPECT_EQ(got.count_states(true, true), 2U);
  {
    std::lock_guard lock(got.mutex);
    const auto& why = got.states[1].second;
    ASSERT_TRUE(why);
    EXPECT_TRUE(why->message.starts_with("skipped a line that is not an event")) << why->line();
  }
  EXPECT_EQ(server.requests(), 1U);  // the stream stays up
}

TEST(DockerEventStream, EngineAbsentIsReportedAndRetried) {
  TempDir dir;
  const auto socket = dir.path() / "docker.sock";
  Collector got;
  DockerEventStream stream(options_for(*parse_endpoint("unix://" + socket.string(), "test")), got.on_event(),
                           got.on_state());
  stream.start();
  ASSERT_TRUE(got.wait_states([](const auto& s) { return s.size() >= 3; }));
  {
    std::lock_guard lock(got.mutex);
    for (const auto& [connected, why] : got.states) {
      EXPECT_FALSE(connected);
      ASSERT_TRUE(why);
      EXPECT_EQ(why->line(), "unix://" + socket.string() + " (GET /v1.41/events): no such socket");
      EXPECT_EQ(why->code, ENOENT);
    }
  }
  // Once the engine is there, the stream connects.
  StreamServer server(socket);
  (void)server.wait_request(1);
  ASSERT_TRUE(got.wait_states([](const auto& s) { return s.back().first; }));
  stream.stop();
}

TEST(DockerEventStream, EngineErrorStatusIsReported) {
  TempDir dir;
  StreamServer server(dir.path() / "docker.sock");
  server.fail_with(400, R"({"message":"invalid filter 'event=bogus'"})");
  Collector got;
  DockerEventStream stream(options_for(server.endpoint()), got.on_event(), got.on_state());
  stream.start();
  ASSERT_TRUE(got.wait_states([](const auto& s) { return !s.empty(); }));
  stream.stop();
  std::lock_guard lock(got.mutex);
  EXPECT_FALSE(got.states[0].first);
  ASSERT_TRUE(got.states[0].second);
  EXPECT_EQ(got.states[0].second->message, R"(HTTP 400: {"message":"invalid filter 'event=bogus'"})");
}
