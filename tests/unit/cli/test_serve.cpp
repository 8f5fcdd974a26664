// The daemon's rounds on the incident fixture: a fake engine and Ollama, a real
// journal and sample store in a temp dir, scripted actions, a fake clock, and
// notifications captured instead of sent. HTTP routes are called directly.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>

#include "adapters/sample_store.hpp"
#include "cli/serve.hpp"
#include "fix_scene.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using namespace std::chrono_literals;
using adapters::ServerRequest;
using nlohmann::json;
using test::k_wall;
using test::Scene;

namespace {

// Fix jobs held until the test runs them: a fix stays "in progress" for as many rounds as the test likes,
// and runs on the test's thread (the fake clock is never used by two threads).
class HeldJobs final : public JobRunner {
 public:
  void start(std::function<void()> job) override { m_held.push_back(std::move(job)); }
  void wait_all() override { run_all(); }
  void run_all() {
    while (!m_held.empty()) {
      auto job = std::move(m_held.front());
      m_held.erase(m_held.begin());
      job();
    }
  }
  [[nodiscard]] std::size_t held() const { return m_held.size(); }

 private:
  std::vector<std::function<void()>> m_held;
};

// How the Warden's fix jobs run: at once, inside the round that starts them, or held (HeldJobs).
enum class Jobs { at_once, held };

// A daemon over a Scene, with its log and notifications captured.
struct Warden {
  Scene scene;
  std::vector<std::string> lines;
  std::vector<adapters::Notification> sent;
  InlineJobRunner at_once;
  HeldJobs held;
  std::unique_ptr<Daemon> daemon;

  explicit Warden(json labels = {{"memwarden.enable", "true"}}, std::function<void(ServeConfig&)> tune = {},
                  Jobs jobs = Jobs::at_once, test::Servers servers = test::Servers::one, PlanServerLimit plan = {})
      : scene(std::move(labels), servers) {
    scene.journal.reset();  // the daemon opens its own
    ServeConfig c;
    c.docker_host = scene.engine->address();
    c.state_dir = (scene.state.path() / "state").string();
    c.nvml_library = (scene.root.path() / "no-nvml.so").string();
    c.thresholds.reserve = 0;
    c.policy.settle = 0s;
    c.notify_targets.push_back({"ops", "generic", "http://127.0.0.1:9/hook"});
    if (tune) {
      tune(c);
    }
    if (!plan) {  // the drift check's plan is scripted: the fake Ollama answers one connection at a time
      plan = [](const ContainerMeta&, const ServerLimitOptions&) {
        ServerLimitPlan p;
        p.limit.why = "no models (scripted)";
        return p;
      };
    }
    ServeEnvironment env{probes::HostRoot(scene.root.path()),
                         scene.clock,
                         [this] { return k_wall + to_ms(scene.clock.now()); },
                         [this](const std::string& line) { lines.push_back(line); },
                         [this](const adapters::NotifyTarget&, const adapters::Notification& n) {
                           sent.push_back(n);
                           return Expected<void, Error>{};
                         },
                         &scene.actions,
                         "testhost",
                         "9.9.9",
                         jobs == Jobs::held ? static_cast<JobRunner*>(&held) : &at_once,
                         std::move(plan)};
    daemon = std::make_unique<Daemon>(std::move(c), std::move(env));
    daemon->open_storage();
  }

  // `n` rounds, one second apart.
  void ticks(int n) {
    for (int i = 0; i < n; ++i) {
      daemon->tick();
      scene.clock.advance(1s);
    }
  }

  adapters::ServerResponse get(const std::string& target, std::string method = "GET") {
    ServerRequest r;
    r.method = std::move(method);
    r.target = target;
    const auto q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == std::string::npos ? "" : target.substr(q + 1);
    return daemon->handle(r);
  }

  [[nodiscard]] std::size_t count_sent(const std::string& event) const {
    return static_cast<std::size_t>(
        std::count_if(sent.begin(), sent.end(), [&](const adapters::Notification& n) { return n.event == event; }));
  }
  [[nodiscard]] bool logged(const std::string& part) const {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
};

ServerRequest post(const std::string& path, std::string body, std::string authorization = "") {
  ServerRequest r;
  r.method = "POST";
  r.target = path;
  r.path = path;
  r.body = std::move(body);
  if (!authorization.empty()) {
    r.headers["authorization"] = std::move(authorization);
  }
  return r;
}

}  // namespace

TEST(Serve, ARoundPublishesHostContainersAndServers) {
  Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  EXPECT_EQ(w.get("/healthz").status, 503);  // nothing sampled yet
  w.ticks(1);
  const auto snap = w.daemon->snapshot();
  EXPECT_EQ(snap->samples_total, 1U);
  EXPECT_EQ(snap->version, "9.9.9");
  EXPECT_TRUE(snap->status.docker.reachable);
  ASSERT_TRUE(snap->status.host.meminfo.has_value());
  ASSERT_EQ(snap->status.containers.size(), 1U);
  ASSERT_TRUE(snap->status.containers[0].memory.has_value());
  EXPECT_EQ(snap->status.containers[0].memory->anon, 26843545600U);
  ASSERT_EQ(snap->servers.size(), 1U);
  EXPECT_EQ(snap->servers[0].server.name, "ollama-gpu");
  // every detector for the server, and host-pressure for the host
  EXPECT_EQ(snap->detectors.size(), k_detectors.size());

  const auto metrics = w.get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.content_type.find("version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.body.find("memwarden_container_anon_bytes{name=\"ollama-gpu\"} 26843545600"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("memwarden_docker_up 1"), std::string::npos);
  EXPECT_EQ(w.get("/healthz").status, 200);
}

// The drift check (optimize.auto): a scripted plan instead of the fake Ollama's /api/tags.
const Finding* finding_of(const DaemonSnapshot& snap, Detector detector) {
  const auto it = std::find_if(snap.findings.begin(), snap.findings.end(),
                               [&](const Finding& f) { return f.detector == detector; });
  return it == snap.findings.end() ? nullptr : &*it;
}

TEST(Serve, TheDriftCheckPlansEveryOptimizeIntervalAndTheUnlimitedFindingNamesThePlan) {
  int plans = 0;
  const auto plan = [&plans](const ContainerMeta& meta, const ServerLimitOptions& o) {
    ++plans;
    EXPECT_EQ(meta.name, "ollama-gpu");
    EXPECT_GT(o.cap, 0U);
    ServerLimitPlan p;
    p.basis = "installed models";
    p.limit.wanted = 9ULL << 30;
    p.limit.largest = "qwen2.5:14b";
    p.limit.why = "qwen2.5:14b needs 9.00 GiB (installed models: 1 model)";
    return p;
  };
  Warden w(
      json::object(),
      [](ServeConfig& c) {
        c.auto_fix = AutoFix::off;
        c.optimize_interval = 60s;
      },
      Jobs::at_once, test::Servers::one, plan);
  w.ticks(3);
  EXPECT_EQ(plans, 1) << "not every round";
  auto snap = w.daemon->snapshot();
  const auto* unlimited = finding_of(*snap, Detector::unlimited);
  ASSERT_NE(unlimited, nullptr);
  ASSERT_EQ(snap->status.containers.size(), 1U);
  const auto& advised = snap->status.containers[0].advised_limit;
  ASSERT_TRUE(advised.has_value());
  EXPECT_GE(*advised, 9ULL << 30) << "its plan, or what it uses now with a margin when that is more";
  const auto rec = std::find_if(unlimited->evidence.begin(), unlimited->evidence.end(),
                                [](const Evidence& e) { return e.name == "recommended_limit_bytes"; });
  ASSERT_NE(rec, unlimited->evidence.end());
  EXPECT_EQ(rec->value, static_cast<double>(*advised)) << "diagnose's and status's advice agree";
  EXPECT_EQ(unlimited->action.rfind("memwarden optimize --yes ollama-gpu sets a limit of", 0), 0U) << unlimited->action;
  EXPECT_EQ(finding_of(*snap, Detector::drift), nullptr) << "an unlimited server is the unlimited detector's";
  const auto metrics = w.get("/metrics").body;
  EXPECT_NE(metrics.find("memwarden_detector_state{subject=\"ollama-gpu\",detector=\"optimize-drift\"} 0"),
            std::string::npos)
      << metrics;

  w.scene.clock.advance(60s);
  w.ticks(1);
  EXPECT_EQ(plans, 2) << "once optimize.interval has passed";
}

TEST(Serve, NoDriftCheckWithOptimizeAutoOff) {
  int plans = 0;
  Warden w(
      json::object(),
      [](ServeConfig& c) {
        c.auto_fix = AutoFix::off;
        c.optimize_auto = OptimizeAuto::off;
      },
      Jobs::at_once, test::Servers::one,
      [&plans](const ContainerMeta&, const ServerLimitOptions&) {
        ++plans;
        return ServerLimitPlan{};
      });
  w.ticks(2);
  EXPECT_EQ(plans, 0);
  const auto snap = w.daemon->snapshot();
  const auto* unlimited = finding_of(*snap, Detector::unlimited);
  ASSERT_NE(unlimited, nullptr);
  EXPECT_TRUE(std::none_of(unlimited->evidence.begin(), unlimited->evidence.end(), [](const Evidence& e) {
    return e.name == "recommended_limit_bytes";
  })) << "no number invented";
  EXPECT_FALSE(snap->status.containers.at(0).advised_limit.has_value());
}

TEST(Serve, IdleBloatOfAnOptedInServerIsFixedWithNoManualStep) {
  Warden w({{"memwarden.enable", "true"}}, [](ServeConfig& c) { c.notify_min_interval = 1s; });
  w.scene.actions.on_restart = [&] {
    w.scene.set_anon(26ULL << 20);
    return Expected<void, Error>{};
  };
  w.ticks(15);  // past the 10 s hold
  EXPECT_EQ(w.scene.actions.restarts, 1);
  const auto snap = w.daemon->snapshot();
  const auto it = snap->actions.find({FixStep::restart, ActionOutcome::succeeded});
  ASSERT_NE(it, snap->actions.end());
  EXPECT_EQ(it->second, 1U);
  for (const auto& f : snap->findings) {  // the restart cured the bloat; host pressure and no limit remain
    EXPECT_NE(f.detector, Detector::idle_bloat) << f.summary;
  }
  EXPECT_GE(w.count_sent("finding"), 1U);
  EXPECT_EQ(w.count_sent("action"), 1U);
  EXPECT_GE(w.count_sent("resolved"), 1U);
  const auto history = json::parse(w.get("/api/v1/history").body);
  ASSERT_EQ(history["records"].size(), 1U) << history.dump();
  EXPECT_EQ(history["records"][0]["outcome"], "succeeded");
  w.ticks(10);  // cured, and within the cooldown: nothing more
  EXPECT_EQ(w.scene.actions.restarts, 1);
}

TEST(Serve, ABloatedServerThatDidNotOptInIsReportedOnceAndLeftAlone) {
  Warden w(json::object());
  w.ticks(30);
  EXPECT_EQ(w.scene.actions.restarts, 0);
  const auto snap = w.daemon->snapshot();
  const auto it = snap->actions.find({FixStep::restart, ActionOutcome::refused});
  ASSERT_NE(it, snap->actions.end());
  EXPECT_EQ(it->second, 1U);  // once per episode, not once per round
  EXPECT_EQ(w.count_sent("action"), 1U);
  ASSERT_FALSE(snap->findings.empty());
  EXPECT_EQ(snap->findings.front().detector, Detector::idle_bloat);
  EXPECT_NE(w.get("/metrics").body.find("memwarden_detector_state{subject=\"ollama-gpu\",detector=\"idle-bloat\"} 3"),
            std::string::npos);
}

TEST(Serve, AutoFixOffOnlyReports) {
  Warden w({{"memwarden.enable", "true"}}, [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  w.ticks(20);
  EXPECT_EQ(w.scene.actions.restarts, 0);
  EXPECT_TRUE(w.daemon->snapshot()->actions.empty());
  EXPECT_GE(w.count_sent("finding"), 1U);
}

TEST(Serve, TheFixEndpointExistsOnlyWithATokenAndRequiresIt) {
  {
    Warden w;
    w.ticks(1);
    EXPECT_EQ(w.daemon->handle(post("/api/v1/fix", R"({"server":"ollama-gpu"})")).status, 404);
  }
  test::TempDir secrets;
  secrets.write("token", "s3cret-token\n");
  const auto token_file = (secrets.path() / "token").string();
  std::filesystem::permissions(token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Warden w({{"memwarden.enable", "true"}}, [&](ServeConfig& c) {
    c.auto_fix = AutoFix::off;
    c.token_file = token_file;
  });
  w.scene.actions.on_restart = [&] {
    w.scene.set_anon(26ULL << 20);
    return Expected<void, Error>{};
  };
  w.ticks(12);
  const auto body = R"({"server":"ollama-gpu"})";
  const auto none = w.daemon->handle(post("/api/v1/fix", body));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(w.daemon->handle(post("/api/v1/fix", body, "Bearer wrong-token!")).status, 401);
  EXPECT_EQ(w.daemon->handle(post("/api/v1/fix", body, "Basic czNjcmV0LXRva2Vu")).status, 401);
  w.ticks(2);
  EXPECT_EQ(w.scene.actions.restarts, 0);  // refused requests did nothing
  EXPECT_EQ(w.daemon->handle(post("/api/v1/fix", "{not json", "Bearer s3cret-token")).status, 400);
  EXPECT_EQ(w.daemon->handle(post("/api/v1/fix", R"({"server":"nope"})", "Bearer s3cret-token")).status, 404);
  EXPECT_EQ(w.daemon->handle(post("/api/v1/fix", body, "Bearer s3cret-token")).status, 202);
  w.ticks(1);
  EXPECT_EQ(w.scene.actions.restarts, 1);
}

TEST(Serve, RoutesAnswerWithTheRightStatus) {
  Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  w.ticks(2);
  EXPECT_EQ(w.get("/nope").status, 404);
  EXPECT_EQ(w.daemon->handle(post("/metrics", "")).status, 405);
  EXPECT_EQ(w.get("/api/v1/fix").status, 405);
  EXPECT_EQ(w.get("/metrics", "HEAD").status, 200);
  const auto status = json::parse(w.get("/api/v1/status").body);
  EXPECT_EQ(status["daemon"]["samples_total"], 2);
  EXPECT_EQ(status["containers"].size(), 1U);
  const auto findings = json::parse(w.get("/api/v1/findings").body);
  EXPECT_EQ(findings["schema"], "memwarden.findings/1");
  EXPECT_EQ(findings["servers"].size(), 1U);
  EXPECT_EQ(w.get("/api/v1/history?limit=0").status, 400);
  EXPECT_EQ(w.get("/api/v1/samples?since=soon").status, 400);
  const auto samples = json::parse(w.get("/api/v1/samples?subject=ollama%2Dgpu&since=1h").body);  // decoded
  ASSERT_EQ(samples["raw"].size(), 2U) << samples.dump();
  EXPECT_EQ(samples["raw"][0]["anon_bytes"], 26843545600U);
  EXPECT_EQ(samples["raw"][1]["at_ms"].get<std::int64_t>() - samples["raw"][0]["at_ms"].get<std::int64_t>(), 1000);
}

TEST(Serve, WithoutDockerItKeepsServingTheHost) {
  Warden w(json::object(), [](ServeConfig& c) { c.docker_host = "unix:///nonexistent/docker.sock"; });
  w.ticks(3);
  const auto snap = w.daemon->snapshot();
  EXPECT_FALSE(snap->status.docker.reachable);
  ASSERT_TRUE(snap->status.docker.error.has_value());
  EXPECT_TRUE(snap->status.host.meminfo.has_value());
  const auto metrics = w.get("/metrics").body;
  EXPECT_NE(metrics.find("memwarden_docker_up 0"), std::string::npos);
  EXPECT_NE(metrics.find("memwarden_host_memory_total_bytes "), std::string::npos);
  EXPECT_EQ(w.get("/healthz").status, 200);
}

TEST(Serve, WithoutStorageItObservesButDoesNotAct) {
  Warden w({{"memwarden.enable", "true"}}, [](ServeConfig& c) { c.state_dir = "/dev/null/state"; });
  w.ticks(15);
  EXPECT_EQ(w.scene.actions.restarts, 0);
  const auto snap = w.daemon->snapshot();
  EXPECT_FALSE(snap->history_ok);
  EXPECT_FALSE(snap->findings.empty());
  EXPECT_TRUE(w.logged("no action will be taken without a journal"));
  // Said and counted once, then left alone for the cooldown: not a failure every round.
  ASSERT_EQ(snap->actions.count({FixStep::restart, ActionOutcome::failed}), 1U);
  EXPECT_EQ(snap->actions.at({FixStep::restart, ActionOutcome::failed}), 1U);
  EXPECT_EQ(w.get("/api/v1/history").status, 503);
}

TEST(Serve, AnOomEventIsNotifiedAtOnce) {
  Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  w.ticks(1);
  adapters::DockerEvent e;
  e.type = "container";
  e.action = "oom";
  e.id = test::k_id;
  e.name = "ollama-gpu";
  w.daemon->on_docker_event(e);
  EXPECT_TRUE(w.daemon->wait_until(w.scene.clock.now()));  // woken, not timed out
  w.ticks(1);
  ASSERT_EQ(w.count_sent("oom"), 1U);
  EXPECT_TRUE(w.logged("ollama-gpu ran out of memory"));
}

TEST(Serve, ReloadAppliesPolicyButKeepsTheListenAddress) {
  Warden w({{"memwarden.enable", "true"}}, [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  w.ticks(12);
  EXPECT_EQ(w.scene.actions.restarts, 0);
  auto next = w.daemon->config();
  next.auto_fix = AutoFix::on;
  next.listen = "127.0.0.1:1";
  w.scene.actions.on_restart = [&] {
    w.scene.set_anon(26ULL << 20);
    return Expected<void, Error>{};
  };
  w.daemon->reload(next);
  EXPECT_EQ(w.daemon->config().listen, "127.0.0.1:9490");
  EXPECT_TRUE(w.logged("listen changes only with a restart"));
  w.ticks(1);
  EXPECT_EQ(w.scene.actions.restarts, 1);
}

TEST(Serve, HistoryOutlivesTheDaemon) {
  std::filesystem::path state;
  {
    Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
    state = w.daemon->config().state_dir;
    w.ticks(3);
    auto store = adapters::SampleStore::open(state, {});
    ASSERT_TRUE(store) << store.error().line();
    const auto until = k_wall + to_ms(w.scene.clock.now());
    const auto rows = store->raw("ollama-gpu", 0, until);
    ASSERT_TRUE(rows);
    EXPECT_EQ(rows->size(), 3U);
    const auto host = store->raw("host", 0, until);
    ASSERT_TRUE(host && host->size() == 3U);
    EXPECT_TRUE(host->front().mem_available.has_value());
  }
}

TEST(Serve, TokenFilesAreOnePrivateLine) {
  test::TempDir d;
  d.write("empty", "  \n");
  d.write("two", "a b\n");
  d.write("ok", "\n abc \n");
  d.write("big", std::string(k_max_token_file_bytes + 1, 'a'));
  for (const char* name : {"empty", "two", "ok", "big"}) {
    std::filesystem::permissions(d.path() / name, std::filesystem::perms::owner_read);
  }
  d.write("public", "abc\n");
  std::filesystem::permissions(d.path() / "public",
                               std::filesystem::perms::owner_read | std::filesystem::perms::others_read);
  ASSERT_EQ(::mkfifo((d.path() / "fifo").c_str(), 0600), 0);
  const auto error_of = [&](const char* name) {
    const auto r = read_token_file((d.path() / name).string());
    return r ? std::string("accepted") : r.error().message;
  };
  EXPECT_EQ(error_of("empty"), "the token file is empty");
  EXPECT_EQ(error_of("two"), "the token must be one line without spaces");
  EXPECT_EQ(error_of("missing"), "No such file or directory");
  EXPECT_EQ(error_of("big"), "larger than 4 KiB, the most memwarden reads of it");
  EXPECT_EQ(error_of("public"), "the token file can be read by every user; make it private (chmod 600)");
  EXPECT_EQ(error_of("fifo"), "is a FIFO, not a regular file");  // at once, not waiting for a writer
  EXPECT_EQ(read_token_file((d.path() / "ok").string()).value(), "abc");
}

TEST(Serve, AServerListingThousandsOfModelsIsKeptToABoundedSample) {
  Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  // About 1,800 entries (under the 256 KiB cap), with names repeated: each sample keeps 8 entries.
  std::string body = R"({"models":[)";
  for (int i = 0; i < 1800; ++i) {
    body +=
        fmt::format(R"({}{{"name":"flood-{}:latest","size":{},"size_vram":0}})", i == 0 ? "" : ",", i % 100, 1000 + i);
  }
  body += "]}";
  ASSERT_LT(body.size(), adapters::k_max_ps_bytes);
  w.scene.ollama->set_ps(body);
  w.ticks(3);
  const auto snap = w.daemon->snapshot();
  ASSERT_EQ(snap->servers.size(), 1U);
  ASSERT_TRUE(snap->servers[0].last && snap->servers[0].last->models);
  const auto& models = *snap->servers[0].last->models;
  ASSERT_EQ(models.size(), k_max_models_kept);
  EXPECT_EQ(models.back().folded, 1800U - (k_max_models_kept - 1));
  std::uint64_t total = 0;
  for (const auto& m : models) {
    total += m.size;
  }
  EXPECT_EQ(total, 1800ULL * 1000 + 1800ULL * 1799 / 2);  // nothing the server said is lost from the sums
  EXPECT_EQ(std::count_if(w.lines.begin(), w.lines.end(),
                          [](const std::string& l) { return l.find("lists more than 8 models") != std::string::npos; }),
            1);  // said once, not every round
  // /metrics has one series per distinct model name: the repeated names are not repeated series.
  const auto metrics = w.get("/metrics").body;
  std::set<std::string> series;
  std::size_t lines = 0;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("memwarden_model_size_bytes{")) {
      ++lines;
      series.insert(line.substr(0, line.rfind(' ')));
    }
  }
  EXPECT_EQ(lines, series.size());
  EXPECT_LE(lines, k_max_models_kept);
}

TEST(Serve, AMalformedUrlLabelIsSaidAsSuchAndCannotForgeLogLines) {
  Warden w({{"memwarden.ollama.url", "http://127.0.0.1:11434\nmemwarden: forged line"}},
           [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  w.ticks(2);
  for (const auto& line : w.lines) {
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  }
  EXPECT_TRUE(w.logged("11434\\nmemwarden: forged line"));
  const auto snap = w.daemon->snapshot();
  const auto it = std::find_if(snap->findings.begin(), snap->findings.end(),
                               [](const Finding& f) { return f.detector == Detector::api_unreachable; });
  ASSERT_NE(it, snap->findings.end());
  EXPECT_NE(it->summary.find("its API address from the label memwarden.ollama.url cannot be used"), std::string::npos)
      << it->summary;
  EXPECT_EQ(it->summary.find('\n'), std::string::npos);
  // What goes to the webhooks is one line too.
  for (const auto& n : w.sent) {
    EXPECT_EQ(n.message.find('\n'), std::string::npos) << n.message;
    EXPECT_EQ(n.title.find('\n'), std::string::npos) << n.title;
  }
}

TEST(Serve, SamplesStopBeforeTheJournalsRoomIsGoneAndFixesStillJournal) {
  // More free space asked for than any disk has: the history pauses from the first round.
  Warden w({{"memwarden.enable", "true"}}, [](ServeConfig& c) { c.history_min_free = 1ULL << 60; });
  w.scene.actions.on_restart = [&] {
    w.scene.set_anon(26ULL << 20);
    return Expected<void, Error>{};
  };
  w.ticks(15);
  const auto snap = w.daemon->snapshot();
  EXPECT_FALSE(snap->history_ok);
  ASSERT_TRUE(snap->history_error.has_value());
  EXPECT_NE(snap->history_error->message.find("history.min_free"), std::string::npos);
  EXPECT_EQ(std::count_if(w.lines.begin(), w.lines.end(),
                          [](const std::string& l) { return l.find("history.min_free") != std::string::npos; }),
            1);
  const auto state = w.daemon->config().state_dir;
  {
    auto store = adapters::SampleStore::open(state, {});
    ASSERT_TRUE(store);
    const auto rows = store->raw("host", 0, k_wall + to_ms(w.scene.clock.now()));
    ASSERT_TRUE(rows);
    EXPECT_TRUE(rows->empty());
  }
  // The fix ran and is in the journal.
  EXPECT_EQ(w.scene.actions.restarts, 1);
  const auto history = json::parse(w.get("/api/v1/history").body);
  ASSERT_EQ(history["records"].size(), 1U) << history.dump();
  // Room again: samples are written again, and it is said.
  auto next = w.daemon->config();
  next.history_min_free = 0;
  w.daemon->reload(next);
  w.ticks(2);
  EXPECT_TRUE(w.daemon->snapshot()->history_ok);
  EXPECT_TRUE(w.logged("history: writing again"));
  auto store = adapters::SampleStore::open(state, {});
  const auto rows = store->raw("host", 0, k_wall + to_ms(w.scene.clock.now()));
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 2U);
}

TEST(Serve, JsonAnswersAreBoundedAndSaySo) {
  Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  w.ticks(3);
  EXPECT_EQ(w.get("/api/v1/history?limit=5000").status, 400);
  EXPECT_EQ(w.get("/api/v1/history?limit=1000").status, 200);
  const auto day = json::parse(w.get("/api/v1/samples?subject=host&since=1d").body);
  EXPECT_FALSE(day.contains("truncated")) << day.dump();
  const auto month = json::parse(w.get("/api/v1/samples?subject=host&since=30d").body);
  ASSERT_TRUE(month.contains("truncated")) << month.dump();
  EXPECT_EQ(month["truncated"]["window_ms"], 86'400'000);
  EXPECT_EQ(month["raw"].size(), 3U);
}

// ---- fixes run beside the watch (issue 12): a fix is a job; the rounds go on while it drains or waits

namespace {

std::size_t count_of(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<std::size_t>(std::count(lines.begin(), lines.end(), line));
}

bool has_finding(const DaemonSnapshot& snap, const std::string& subject, Detector detector) {
  return std::any_of(snap.findings.begin(), snap.findings.end(),
                     [&](const Finding& f) { return f.subject == subject && f.detector == detector; });
}

// A restart cures the server it restarts: 25 GiB -> 26 MiB.
void restarts_cure(Warden& w) {
  w.scene.actions.on_restart = [&w] {
    w.scene.set_anon(26ULL << 20, w.scene.actions.restarted.back() == "ollama-cpu" ? test::k_id2 : test::k_id);
    return Expected<void, Error>{};
  };
}

}  // namespace

TEST(Serve, AFixInProgressDoesNotStopTheRounds) {
  Warden w({{"memwarden.enable", "true"}}, {}, Jobs::held);
  restarts_cure(w);
  w.ticks(15);  // past the 10 s hold: the fix starts, and stays in progress until the test runs it
  ASSERT_EQ(w.held.held(), 1U);
  EXPECT_EQ(w.scene.actions.restarts, 0);
  EXPECT_TRUE(w.logged("fix ollama-gpu: restart starting"));
  const auto samples = w.daemon->snapshot()->samples_total;
  const auto asked = count_of(w.scene.ollama->requests(), "GET /api/ps");

  w.scene.set_anon(30ULL << 30);  // the server's memory changes while its fix is in progress
  w.ticks(5);
  const auto snap = w.daemon->snapshot();
  EXPECT_EQ(snap->samples_total, samples + 5) << "a round every interval";
  EXPECT_NE(w.get("/metrics").body.find("memwarden_container_anon_bytes{name=\"ollama-gpu\"} 32212254720"),
            std::string::npos)
      << "/metrics follows the server being fixed";
  const auto fixing_metrics = w.get("/metrics").body;
  EXPECT_NE(fixing_metrics.find("memwarden_server_fix_in_progress{server=\"ollama-gpu\"} 1"), std::string::npos);
  EXPECT_EQ(fixing_metrics.find("memwarden_server_up{server=\"ollama-gpu\"}"), std::string::npos)
      << "not asked: neither up nor down";
  const auto health = w.get("/healthz");
  EXPECT_EQ(health.status, 200);
  const auto body = json::parse(health.body);
  EXPECT_EQ(body["acting"], true);
  EXPECT_EQ(body["jobs"], 1);
  EXPECT_EQ(count_of(w.scene.ollama->requests(), "GET /api/ps"), asked) << "its API is the fix's while it runs";
  EXPECT_TRUE(has_finding(*snap, "ollama-gpu", Detector::idle_bloat)) << "the finding the fix started from stays";
  EXPECT_EQ(w.count_sent("resolved"), 0U);
  EXPECT_EQ(w.held.held(), 1U) << "no second fix of the same server";
  EXPECT_EQ(w.daemon->jobs_running(), 1U);

  w.held.run_all();  // the fix ends (the drain, restart and health wait are over)
  EXPECT_EQ(w.scene.actions.restarts, 1);
  w.ticks(1);  // the next round takes in its report
  const auto after = w.daemon->snapshot();
  EXPECT_EQ(w.daemon->jobs_running(), 0U);
  ASSERT_EQ(after->actions.count({FixStep::restart, ActionOutcome::succeeded}), 1U);
  EXPECT_EQ(after->actions.at({FixStep::restart, ActionOutcome::succeeded}), 1U);
  EXPECT_EQ(w.count_sent("action"), 1U);
  EXPECT_EQ(json::parse(w.get("/healthz").body)["acting"], false);
  EXPECT_NE(w.get("/metrics").body.find("memwarden_server_fix_in_progress{server=\"ollama-gpu\"} 0"),
            std::string::npos);
  const auto history = json::parse(w.get("/api/v1/history").body);
  ASSERT_EQ(history["records"].size(), 1U) << history.dump();
  EXPECT_EQ(history["records"][0]["outcome"], "succeeded");
  EXPECT_GT(count_of(w.scene.ollama->requests(), "GET /api/ps"), asked) << "asked again after the fix";
  w.ticks(3);
  EXPECT_FALSE(has_finding(*w.daemon->snapshot(), "ollama-gpu", Detector::idle_bloat));
  EXPECT_EQ(w.scene.actions.restarts, 1);
}

TEST(Serve, TwoServersAreFixedAtOnce) {
  Warden w({{"memwarden.enable", "true"}}, {}, Jobs::held, test::Servers::two);
  restarts_cure(w);
  w.ticks(15);
  ASSERT_EQ(w.daemon->snapshot()->servers.size(), 2U);
  ASSERT_EQ(w.held.held(), 2U) << "both fixes in progress at the same time";
  EXPECT_EQ(json::parse(w.get("/healthz").body)["jobs"], 2);
  w.held.run_all();
  w.ticks(1);
  EXPECT_EQ(w.scene.actions.restarted.size(), 2U);
  for (const char* server : {"ollama-gpu", "ollama-cpu"}) {
    const auto history = json::parse(w.get(fmt::format("/api/v1/history?server={}", server)).body);
    ASSERT_EQ(history["records"].size(), 1U) << server << history.dump();
    EXPECT_EQ(history["records"][0]["outcome"], "succeeded") << server;
  }
  EXPECT_EQ(w.daemon->snapshot()->actions.at({FixStep::restart, ActionOutcome::succeeded}), 2U);
  EXPECT_EQ(w.daemon->jobs_running(), 0U);
}

TEST(Serve, StopWaitsForTheRunningFixAndJournalsItButStartsNoOther) {
  Warden w({{"memwarden.enable", "true"}}, {}, Jobs::held, test::Servers::two);
  restarts_cure(w);
  w.scene.set_anon(26ULL << 20, test::k_id2);  // the second server is fine for now
  w.ticks(15);
  ASSERT_EQ(w.held.held(), 1U);
  w.daemon->request_stop();                       // SIGTERM
  w.scene.set_anon(26843545600ULL, test::k_id2);  // ... and now the second one bloats too
  w.ticks(15);                                    // rounds go on while the fix runs
  EXPECT_TRUE(has_finding(*w.daemon->snapshot(), "ollama-cpu", Detector::idle_bloat));
  EXPECT_EQ(w.held.held(), 1U) << "no new fix after SIGTERM";
  EXPECT_EQ(w.daemon->jobs_running(), 1U);
  w.daemon->finish_jobs();  // waits for the running fix and takes in its report
  EXPECT_EQ(w.daemon->jobs_running(), 0U);
  EXPECT_EQ(w.scene.actions.restarted, std::vector<std::string>{"ollama-gpu"});
  EXPECT_TRUE(w.logged("fix ollama-gpu: restart succeeded"));
  const auto fixed = json::parse(w.get("/api/v1/history?server=ollama-gpu").body);
  ASSERT_EQ(fixed["records"].size(), 1U) << fixed.dump();
  EXPECT_EQ(fixed["records"][0]["outcome"], "succeeded");
  EXPECT_EQ(fixed["records"][0]["steps"].size(), 4U);
  EXPECT_TRUE(json::parse(w.get("/api/v1/history?server=ollama-cpu").body)["records"].empty());
}

TEST(Serve, ThreadedFixJobsRunAtTheSameTime) {
  ThreadJobRunner runner;
  std::mutex mutex;
  std::condition_variable cv;
  int started = 0;
  int saw_both = 0;
  for (int i = 0; i < 2; ++i) {
    runner.start([&] {
      std::unique_lock lock(mutex);
      ++started;
      cv.notify_all();
      if (cv.wait_for(lock, 5s, [&] { return started == 2; })) {
        ++saw_both;  // the other job started while this one was still running
      }
    });
  }
  runner.wait_all();
  EXPECT_EQ(started, 2);
  EXPECT_EQ(saw_both, 2);
}

TEST(Sampler, ServersThatNeverAnswerCostOneWaitASampleAtMost) {
  test::TempDir root;
  test::copy_fixture("hosts/v2-systemd-incident", root);
  test::TempDir sockets;
  std::vector<std::unique_ptr<test::FakeHttpServer>> silent;
  std::vector<json> containers;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(std::make_unique<test::FakeHttpServer>(sockets.path() / fmt::format("silent{}.sock", i),
                                                            [](const std::string&, const std::string&) {
                                                              return test::FakeHttpServer::Reply{200, "", true};
                                                            }));
    containers.push_back(
        test::inspect_like(fmt::format("{:064x}", i + 1), fmt::format("silent-{}", i), 0, 0, silent.back()->address()));
  }
  test::FakeEngine engine(sockets.path() / "docker.sock", containers);
  test::FakeClock clock;
  SamplerOptions o;
  o.root = probes::HostRoot(root.path());
  o.docker_host = engine.address();
  o.api_timeout = 100ms;
  Sampler sampler(o, clock);
  sampler.discover();
  ASSERT_EQ(sampler.servers().size(), 3U);
  std::set<std::string> asked;
  for (int round = 0; round < 12; ++round) {
    const auto started = std::chrono::steady_clock::now();
    sampler.sample();
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_LT(took, 250ms) << "round " << round << ": at most one wait of 100 ms";
    for (const auto& w : sampler.servers()) {
      const auto& e = w->history.back().api_error;
      ASSERT_TRUE(e.has_value());
      EXPECT_EQ(e->code, ETIMEDOUT);
      if (e->message.find("not asked") == std::string::npos) {
        asked.insert(w->server.name);
      }
    }
    clock.advance(1s);
  }
  EXPECT_EQ(asked.size(), 3U) << "every server gets its turn";
  // By now each has failed a few times and is asked less and less often: most samples wait for nobody.
  int waited = 0;
  for (int round = 0; round < 28; ++round) {
    const auto started = std::chrono::steady_clock::now();
    sampler.sample();
    waited += std::chrono::steady_clock::now() - started >= 90ms ? 1 : 0;
    clock.advance(1s);
  }
  EXPECT_LE(waited, 9) << "of 28 samples";
}

// Issue 12's symptoms: serve's status said "cgroup_mode": null where `status --json` named the mode, and
// one unreadable PSI read made it say the kernel has no PSI.
TEST(Serve, StatusNamesTheCgroupModeAsStatusDoes) {
  Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  w.ticks(1);
  const auto layout = probes::detect_cgroup_layout(probes::HostRoot(w.scene.root.path()));
  ASSERT_TRUE(layout.has_value());
  const auto doc = json::parse(w.get("/api/v1/status").body);
  ASSERT_TRUE(doc["cgroup_mode"].is_string()) << doc["cgroup_mode"];
  EXPECT_EQ(doc["cgroup_mode"], probes::to_string(layout->mode));
}

TEST(Serve, AnUnreadablePressureFileIsNotAKernelWithoutPsi) {
  Warden w(json::object(), [](ServeConfig& c) { c.auto_fix = AutoFix::off; });
  const auto psi_supported = [&] { return json::parse(w.get("/api/v1/status").body)["host"]["psi_supported"]; };
  w.ticks(1);
  EXPECT_EQ(psi_supported(), true);
  w.scene.root.write("proc/pressure/memory", "not a pressure file\n");  // there, but unreadable this time
  w.ticks(1);
  EXPECT_EQ(psi_supported(), true) << "one bad read is not a kernel without PSI";
  std::filesystem::remove(w.scene.root.path() / "proc/pressure/memory");  // a kernel without PSI
  w.ticks(1);
  EXPECT_EQ(psi_supported(), false);
}
