// `memwarden serve` (the real binary) on the private engine with the Ollama
// simulator: a real Prometheus scrapes it and fires the exported leak alert;
// the engine is stopped and started under it; it fixes an opted-in bloated
// server with no manual step and leaves one that did not opt in alone, telling
// a webhook receiver; while one fix waits in its drain, the rounds go on and a
// second server is fixed beside it; it reloads on SIGHUP, stops on SIGTERM, rejects
// bad HTTP requests, and keeps serving when its history cannot be written.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine_support.hpp"
#include "recording_server.hpp"

using namespace mw::it;
using mw::test::BackgroundProcess;
using mw::test::run_process;
using mw::test::TempDir;
using nlohmann::json;

namespace {

// curl: the body, then the status code on the last line.
struct HttpResult {
  int status = 0;
  std::string body;
};

HttpResult http(const std::vector<std::string>& extra, const std::string& url) {
  std::vector<std::string> args{"curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  const auto r = run_process(args);
  HttpResult out;
  const auto nl = r.out.rfind('\n');
  if (nl == std::string::npos) {
    return out;
  }
  out.body = r.out.substr(0, nl);
  out.status = std::atoi(r.out.c_str() + nl + 1);
  return out;
}

HttpResult http_get(const std::string& url) {
  return http({}, url);
}

// Polls `ready` every 250 ms until it holds or `limit` passes.
bool eventually(const std::function<bool()>& ready, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) {
      return true;
    }
    std::this_thread::sleep_for(250ms);
  }
  return ready();
}

// A value of one series in a /metrics text, or nullopt.
std::optional<double> metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) {
    return std::nullopt;
  }
  return std::stod(text.substr(at + series.size() + 2));
}

// memwarden serve with a configuration written from `yaml` (listen and state_dir added).
class Warden {
 public:
  Warden(int port, const std::string& yaml, std::vector<std::string> prefix = {})
      : m_base("http://127.0.0.1:" + std::to_string(port)) {
    m_config = (m_dir.path() / "memwarden.yaml").string();
    write_config(yaml, port);
    std::vector<std::string> argv = std::move(prefix);
    argv.insert(argv.end(), {MEMWARDEN_BIN, "serve", "--config", m_config, "--docker-host", docker_host()});
    m_process = std::make_unique<BackgroundProcess>(argv);
  }

  void write_config(const std::string& yaml, int port) const {
    std::ofstream out(m_config);
    out << "listen: 127.0.0.1:" << port << "\n";
    if (yaml.find("state_dir:") == std::string::npos) {
      out << "state_dir: " << (m_dir.path() / "state").string() << "\n";
    }
    out << yaml;
  }

  [[nodiscard]] bool healthy(std::chrono::seconds limit = 30s) const {
    return eventually([&] { return http_get(m_base + "/healthz").status == 200; }, limit);
  }
  [[nodiscard]] std::string metrics() const { return http_get(m_base + "/metrics").body; }
  [[nodiscard]] json api(const std::string& path) const {
    return json::parse(http_get(m_base + path).body, nullptr, false);
  }
  [[nodiscard]] const std::string& base() const { return m_base; }
  [[nodiscard]] std::string state_dir() const { return (m_dir.path() / "state").string(); }
  [[nodiscard]] BackgroundProcess& process() { return *m_process; }
  [[nodiscard]] std::string log() const { return m_process->output(); }
  [[nodiscard]] std::filesystem::path config_path() const { return m_config; }

 private:
  TempDir m_dir;
  std::string m_base;
  std::string m_config;
  std::unique_ptr<BackgroundProcess> m_process;
};

const std::string k_detect = R"(interval: 1s
detect:
  reserve: 0
  base_allowance: 64M
  bloat_margin: 128M
  bloat_hold: 2s
)";

}  // namespace

TEST(ServeEngine, PrometheusScrapesItAndTheExportedLeakAlertFires) {
  Container sim("mwit-serve-leak", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18701", "-m", "2g"},
                {"/bin/ollama-sim", "--model", "small:1=200", "--leak-per-second-mib", "10"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening"));
  // The leak runs while a model is loaded.
  const auto load =
      http_post("http://127.0.0.1:18701/api/generate", R"({"model":"small:1","prompt":"","stream":false})");
  ASSERT_NE(load.out.find("\"done\":true"), std::string::npos) << load.out << load.err;
  Warden warden(18711, k_detect + "fix:\n  auto: off\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();

  TempDir prom;
  const auto rules = run_process({MEMWARDEN_BIN, "export", "prometheus-rules", "--pending", "0s"});
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  prom.write("rules.yml", rules.out);
  const auto check = run_process({"promtool", "check", "rules", (prom.path() / "rules.yml").string()});
  ASSERT_EQ(check.exit_code, 0) << check.out << check.err;
  prom.write("prometheus.yml", R"(global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: memwarden
    static_configs:
      - targets: ["127.0.0.1:18711"]
)");
  BackgroundProcess prometheus({"prometheus", "--config.file=" + (prom.path() / "prometheus.yml").string(),
                                "--storage.tsdb.path=" + (prom.path() / "data").string(),
                                "--web.listen-address=127.0.0.1:18712"});
  const std::string api = "http://127.0.0.1:18712/api/v1/";
  ASSERT_TRUE(eventually(
      [&] {
        const auto q = json::parse(
            http_get(api + "query?query=memwarden_container_anon_bytes%7Bname%3D%22mwit-serve-leak%22%7D").body,
            nullptr, false);
        return !q.is_discarded() && q["status"] == "success" && !q["data"]["result"].empty();
      },
      60s))
      << prometheus.output();
  const auto firing = [&] {
    const auto alerts = json::parse(http_get(api + "alerts").body, nullptr, false);
    if (alerts.is_discarded()) {
      return false;
    }
    for (const auto& a : alerts["data"]["alerts"]) {
      if (a["labels"]["alertname"] == "MemwardenLeak" && a["labels"]["subject"] == "mwit-serve-leak" &&
          a["state"] == "firing") {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(eventually(firing, 90s)) << http_get(api + "alerts").body << "\n" << warden.log();
}

TEST(ServeEngine, TheEngineStopsAndStartsUnderIt) {
  Warden warden(18713, k_detect + "fix:\n  auto: off\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  ASSERT_TRUE(eventually([&] { return metric(warden.metrics(), "memwarden_docker_up") == 1.0; }, 10s));
  const std::string engine = MEMWARDEN_ENGINE_DIR;
  const auto stop = run_process({std::string(MEMWARDEN_SCRIPTS_DIR) + "/test-engine.sh", "stop", engine});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_TRUE(eventually([&] { return metric(warden.metrics(), "memwarden_docker_up") == 0.0; }, 30s)) << warden.log();
  const auto text = warden.metrics();
  EXPECT_TRUE(metric(text, "memwarden_host_memory_total_bytes").has_value()) << text;
  EXPECT_EQ(http_get(warden.base() + "/healthz").status, 200);
  const auto status = warden.api("/api/v1/status");
  EXPECT_EQ(status["docker"]["reachable"], false) << status.dump();

  const auto start = run_process({std::string(MEMWARDEN_SCRIPTS_DIR) + "/test-engine.sh", "start", engine});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_TRUE(eventually([&] { return metric(warden.metrics(), "memwarden_docker_up") == 1.0; }, 60s)) << warden.log();
  EXPECT_NE(warden.log().find("docker: connected"), std::string::npos) << warden.log();
}

TEST(ServeEngine, FixesAnOptedInBloatedServerAndLeavesTheOtherAlone) {
  mw::test::RecordingServer receiver;
  BloatedServer in("mwit-serve-in", 18721, {"memwarden.enable=true"});
  BloatedServer out("mwit-serve-out", 18722, {});
  ASSERT_TRUE(in.bloat());
  ASSERT_TRUE(out.bloat());
  const auto out_started = out.started_at();
  Warden warden(18714, k_detect +
                           "fix:\n  auto: on\n  settle: 1s\nnotify:\n  targets:\n    - name: hook\n"
                           "      kind: generic\n      url: " +
                           receiver.url() + "/hook\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  const auto fixed = [&] {
    const auto h = warden.api("/api/v1/history?server=mwit-serve-in");
    return !h.is_discarded() && !h["records"].empty() && h["records"][0]["outcome"] == "succeeded";
  };
  ASSERT_TRUE(eventually(fixed, 120s)) << warden.log();
  EXPECT_TRUE(in.api_healthy());
  const auto record = warden.api("/api/v1/history?server=mwit-serve-in")["records"][0];
  EXPECT_EQ(record["kind"], "restart");
  ASSERT_TRUE(record["after_bytes"].is_number() && record["before_bytes"].is_number()) << record.dump();
  EXPECT_LT(record["after_bytes"].get<double>(), 0.5 * record["before_bytes"].get<double>()) << record.dump();

  // The other one is reported, never touched.
  EXPECT_TRUE(warden.api("/api/v1/history?server=mwit-serve-out")["records"].empty());
  EXPECT_EQ(out.started_at(), out_started);
  const auto findings = warden.api("/api/v1/findings");
  bool out_reported = false;
  for (const auto& f : findings["findings"]) {
    out_reported = out_reported || (f["subject"] == "mwit-serve-out" && f["detector"] == "idle-bloat");
  }
  EXPECT_TRUE(out_reported) << findings.dump(2);
  EXPECT_EQ(metric(warden.metrics(), "memwarden_actions_total{kind=\"restart\",outcome=\"succeeded\"}"), 1.0);

  // The receiver heard about the finding, the fix and the refusal, in memwarden's generic payload.
  ASSERT_TRUE(receiver.wait_for(3, 10s));
  bool finding = false;
  bool action = false;
  bool refused = false;
  for (const auto& r : receiver.requests()) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/hook");
    const auto p = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(p.is_discarded()) << r.body;
    EXPECT_EQ(p["source"], "memwarden");
    finding = finding || (p["event"] == "finding" && p["what"] == "idle-bloat");
    action =
        action || (p["event"] == "action" && p["subject"] == "mwit-serve-in" && p["details"]["outcome"] == "succeeded");
    refused =
        refused || (p["event"] == "action" && p["subject"] == "mwit-serve-out" && p["details"]["outcome"] == "refused");
  }
  EXPECT_TRUE(finding && action && refused) << warden.log();
}

TEST(ServeEngine, ReloadsOnSighupStopsOnSigtermAndRejectsBadRequests) {
  Warden warden(18715, k_detect + "fix:\n  auto: off\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();

  // Bad HTTP: too large, malformed, and the mutating endpoint without a token file.
  const std::string big_header = "X-Big: " + std::string(20000, 'a');
  EXPECT_EQ(http({"-H", big_header}, warden.base() + "/metrics").status, 431);
  EXPECT_EQ(http({"-X", "POST", "--data-binary", std::string(100000, 'x')}, warden.base() + "/api/v1/fix").status, 413);
  EXPECT_EQ(http({"-X", "POST", "--data", R"({"server":"x"})"}, warden.base() + "/api/v1/fix").status, 404);
  EXPECT_EQ(http_get(warden.base() + "/nope").status, 404);

  warden.write_config(k_detect + "intervall: 2s\n", 18715);
  warden.process().signal(SIGHUP);
  EXPECT_TRUE(
      eventually([&] { return warden.log().find("keeping the previous configuration") != std::string::npos; }, 10s))
      << warden.log();
  EXPECT_NE(warden.log().find("memwarden.yaml:9:1: unknown key 'intervall'"), std::string::npos) << warden.log();
  EXPECT_EQ(http_get(warden.base() + "/healthz").status, 200);

  warden.write_config(k_detect + "fix:\n  auto: dry-run\n", 18715);
  warden.process().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return warden.log().find("applied") != std::string::npos; }, 10s)) << warden.log();

  warden.process().signal(SIGTERM);
  EXPECT_EQ(warden.process().wait(), 0) << warden.log();
  EXPECT_NE(warden.log().find("stopped"), std::string::npos);
}

TEST(ServeEngine, KeepsServingWhenItsHistoryCannotBeWritten) {
  // Files may grow to 96 KiB: the journal fits, the sample store's write-ahead log soon does not.
  Warden warden(18716, k_detect + "fix:\n  auto: off\n", {"prlimit", "--fsize=98304", "--"});
  ASSERT_TRUE(warden.healthy()) << warden.log();
  EXPECT_TRUE(eventually([&] { return metric(warden.metrics(), "memwarden_history_ok") == 0.0; }, 60s)) << warden.log();
  EXPECT_EQ(http_get(warden.base() + "/healthz").status, 200);
  EXPECT_NE(warden.log().find("history:"), std::string::npos) << warden.log();
  const auto samples_before = metric(warden.metrics(), "memwarden_samples_total");
  ASSERT_TRUE(samples_before.has_value());
  EXPECT_TRUE(eventually([&] { return metric(warden.metrics(), "memwarden_samples_total") > samples_before; }, 10s));
}

TEST(ServeEngine, CheckConfigAndNotifyTestFromTheCommandLine) {
  TempDir dir;
  mw::test::RecordingServer receiver;
  dir.write("good.yaml", "notify:\n  targets:\n    - name: hook\n      kind: generic\n      url: " + receiver.url() +
                             "/t\n    - name: gone\n      kind: slack\n      url: http://127.0.0.1:9/x\n");
  dir.write("bad.yaml", "interval: 0s\nfix:\n  auto: sometimes\n");
  const auto good = (dir.path() / "good.yaml").string();
  const auto bad = (dir.path() / "bad.yaml").string();

  const auto ok = run_process({MEMWARDEN_BIN, "check-config", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const auto rejected = run_process({MEMWARDEN_BIN, "check-config", bad});
  EXPECT_EQ(rejected.exit_code, 2);
  EXPECT_NE(rejected.err.find(bad + ":1:"), std::string::npos) << rejected.err;
  EXPECT_NE(rejected.err.find(bad + ":3:"), std::string::npos) << rejected.err;
  const auto serve_bad = run_process({MEMWARDEN_BIN, "serve", "--config", bad});
  EXPECT_EQ(serve_bad.exit_code, 2) << "a bad configuration must not start the daemon";

  // One target answers, one is not there: both are reported, the exit code says one failed.
  const auto sent = run_process({MEMWARDEN_BIN, "notify", "--test", "--config", good});
  EXPECT_EQ(sent.exit_code, 3) << sent.out << sent.err;
  EXPECT_NE(sent.out.find("hook (generic): sent"), std::string::npos) << sent.out;
  EXPECT_NE(sent.out.find("gone (slack): failed"), std::string::npos) << sent.out;
  ASSERT_TRUE(receiver.wait_for(1, 5s));
  const auto payload = json::parse(receiver.requests().front().body, nullptr, false);
  EXPECT_EQ(payload["event"], "test");
  EXPECT_EQ(payload["source"], "memwarden");
}

TEST(ServeEngine, SigtermDuringAFixFinishesTheActionFirst) {
  BloatedServer server("mwit-serve-term", 18723, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  // A client that stays connected: the drain step waits for it (up to drain_timeout).
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(18723);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  const auto started = server.started_at();
  Warden warden(18717, k_detect + "fix:\n  auto: on\n  drain_timeout: 6s\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  ASSERT_TRUE(eventually([&] { return warden.api("/healthz").value("acting", false); }, 30s)) << warden.log();
  const auto signalled = std::chrono::steady_clock::now();
  warden.process().signal(SIGTERM);
  EXPECT_EQ(warden.process().wait(), 0) << warden.log();
  const auto took = std::chrono::steady_clock::now() - signalled;
  ::close(client);
  EXPECT_LT(took, 20s);
  const auto log = warden.log();
  EXPECT_NE(log.find("fix mwit-serve-term: restart refused"), std::string::npos) << log;
  EXPECT_LT(log.find("fix mwit-serve-term"), log.find("stopped")) << log;
  EXPECT_EQ(server.started_at(), started);  // the drain refused the restart: nothing was restarted
  const auto history = run_process(
      {MEMWARDEN_BIN, "history", "--json", "--state-dir", warden.state_dir(), "--server", "mwit-serve-term"});
  const auto doc = json::parse(history.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << history.out << history.err;
  ASSERT_EQ(doc["records"].size(), 1U) << doc.dump(2);
  EXPECT_EQ(doc["records"][0]["outcome"], "refused") << doc.dump(2);  // finished, not left in progress
}

// ---- fixes run beside the watch (issue 12)

namespace {

// A client connection to 127.0.0.1:`port`, closed when it goes: what a drain waits for.
class HeldClient {
 public:
  explicit HeldClient(int port) : m_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m_connected = m_fd >= 0 && ::connect(m_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~HeldClient() { close(); }
  HeldClient(const HeldClient&) = delete;
  HeldClient& operator=(const HeldClient&) = delete;
  [[nodiscard]] bool connected() const { return m_connected; }
  void close() {
    if (m_fd >= 0) {
      ::close(m_fd);
      m_fd = -1;
    }
  }

 private:
  int m_fd;
  bool m_connected = false;
};

std::string newest_outcome(const Warden& warden, const std::string& server) {
  const auto h = warden.api("/api/v1/history?server=" + server);
  if (h.is_discarded() || !h.contains("records") || h["records"].empty()) {
    return "";
  }
  return h["records"][0].value("outcome", "");
}

}  // namespace

TEST(ServeEngine, ASecondSigtermDuringAFixLeavesAtOnce) {
  BloatedServer server("mwit-serve-term2", 18725, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  HeldClient client(18725);  // holds the drain (60 s)
  ASSERT_TRUE(client.connected());
  Warden warden(18718, k_detect + "fix:\n  auto: on\n  drain_timeout: 60s\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  ASSERT_TRUE(eventually([&] { return warden.api("/healthz").value("acting", false); }, 30s)) << warden.log();
  warden.process().signal(SIGTERM);
  ASSERT_TRUE(
      eventually([&] { return warden.log().find("stopping: waiting for 1 running fix") != std::string::npos; }, 10s))
      << warden.log();
  const auto signalled = std::chrono::steady_clock::now();
  warden.process().signal(SIGTERM);
  EXPECT_EQ(warden.process().wait(), 128 + SIGTERM) << warden.log();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 5s) << "not the 60 s drain";
  client.close();
  EXPECT_NE(warden.log().find("SIGTERM again: leaving now, without waiting for 1 running fix"), std::string::npos)
      << warden.log();
  // The record stays, incomplete, as after a kill: the next start marks it interrupted.
  const auto history = run_process(
      {MEMWARDEN_BIN, "history", "--json", "--state-dir", warden.state_dir(), "--server", "mwit-serve-term2"});
  const auto doc = json::parse(history.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << history.out << history.err;
  ASSERT_EQ(doc["records"].size(), 1U) << doc.dump(2);
  EXPECT_EQ(doc["records"][0]["incomplete"], true) << doc.dump(2);
}

TEST(ServeEngine, FixesRunBesideTheWatch) {
  // `held`'s fix waits in its drain for a client that stays connected; meanwhile the rounds go on: a
  // container's memory changes and /metrics follows within 2 intervals, /healthz answers 200, and a second
  // server that bloats meanwhile is fixed beside it.
  BloatedServer held("mwit-jobs-held", 18741, {"memwarden.enable=true"});
  BloatedServer beside("mwit-jobs-beside", 18742, {"memwarden.enable=true"});
  Container hog("mwit-jobs-hog", {"-m", "512m"}, {"/bin/memhog", "--mib", "16"});
  ASSERT_TRUE(hog.wait_for_log("memhog: ready anon_mib=16"));
  ASSERT_TRUE(held.bloat());
  HeldClient client(18741);
  ASSERT_TRUE(client.connected());
  Warden warden(18743, k_detect + "fix:\n  auto: on\n  settle: 1s\n  drain_timeout: 90s\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  // The fix of `held` has started and waits in its drain.
  ASSERT_TRUE(eventually([&] { return warden.api("/healthz").value("acting", false); }, 30s)) << warden.log();
  const auto drain_began = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return newest_outcome(warden, "mwit-jobs-held") == "in_progress"; }, 5s))
      << warden.log();
  const auto started = held.started_at();

  bool always_healthy = true;
  const auto check_health = [&] {
    const auto r = http_get(warden.base() + "/healthz");
    if (r.status != 200) {
      always_healthy = false;
      ADD_FAILURE() << "/healthz answered " << r.status << " during the drain: " << r.body;
    }
  };

  // A container's memory changes: /metrics shows it within 2 intervals (1 s each) of its being resident.
  const std::string series = "memwarden_container_anon_bytes{name=\"mwit-jobs-hog\"}";
  BackgroundProcess more({"docker", "-H", docker_host(), "exec", "mwit-jobs-hog", "/bin/memhog", "--mib", "200"});
  std::optional<std::chrono::steady_clock::time_point> resident;
  std::optional<std::chrono::steady_clock::time_point> shown;
  const auto change_deadline = std::chrono::steady_clock::now() + 20s;
  while (!shown && std::chrono::steady_clock::now() < change_deadline) {
    if (!resident && more.output().find("memhog: ready anon_mib=200") != std::string::npos) {
      resident = std::chrono::steady_clock::now();
    }
    const auto anon = metric(warden.metrics(), series);
    if (resident && anon && *anon >= 200.0 * k_mib) {
      shown = std::chrono::steady_clock::now();
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(resident.has_value()) << more.output();
  ASSERT_TRUE(shown.has_value()) << warden.metrics();
  const auto lag = std::chrono::duration_cast<std::chrono::milliseconds>(*shown - *resident);
  RecordProperty("metrics_lag_ms", static_cast<int>(lag.count()));
  EXPECT_LE(lag, 2s) << "/metrics followed the change " << lag.count() << " ms later, with a fix in progress";
  check_health();

  // A second server bloats now, and is fixed while the first fix still drains.
  ASSERT_TRUE(beside.bloat());
  EXPECT_TRUE(eventually(
      [&] {
        check_health();
        return newest_outcome(warden, "mwit-jobs-beside") == "succeeded";
      },
      60s))
      << warden.log();
  EXPECT_EQ(newest_outcome(warden, "mwit-jobs-held"), "in_progress") << "the first fix is still draining";
  EXPECT_TRUE(warden.api("/healthz").value("acting", false));

  // The drain holds for 30 s; the rounds go on all along.
  while (std::chrono::steady_clock::now() - drain_began < 30s) {
    check_health();
    std::this_thread::sleep_for(1s);
  }
  EXPECT_TRUE(always_healthy);
  EXPECT_EQ(held.started_at(), started) << "not restarted while a client is connected";
  EXPECT_EQ(newest_outcome(warden, "mwit-jobs-held"), "in_progress");

  // The client goes: the first fix completes.
  client.close();
  EXPECT_TRUE(eventually([&] { return newest_outcome(warden, "mwit-jobs-held") == "succeeded"; }, 60s)) << warden.log();
  EXPECT_TRUE(held.api_healthy());
  EXPECT_EQ(metric(warden.metrics(), "memwarden_actions_total{kind=\"restart\",outcome=\"succeeded\"}"), 2.0);
  EXPECT_TRUE(eventually([&] { return !warden.api("/healthz").value("acting", true); }, 10s)) << warden.log();
}

// ---- never the leak, never stopped (issue 11)

namespace {

// VmRSS of a process, in bytes.
std::optional<std::uint64_t> resident_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) {
      return std::stoull(line.substr(6)) * 1024;
    }
  }
  return std::nullopt;
}

// docs/serve.md, "Memory": the bound on serve's resident memory for `containers` watched containers,
// `servers` inference servers and a window of `window` samples per server.
std::uint64_t documented_bound(std::uint64_t containers, std::uint64_t servers, std::uint64_t window) {
  constexpr std::uint64_t k_base = 24ULL << 20;
  constexpr std::uint64_t k_per_container = 4 * (96ULL << 10);
  constexpr std::uint64_t k_per_sample = 32ULL << 10;
  constexpr std::uint64_t k_transient = 40ULL << 20;
  return k_base + containers * k_per_container + servers * window * k_per_sample + k_transient;
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

TEST(ServeEngine, AServerListingThousandsOfModelsCannotGrowIt) {
  // One server lists 1,800 models (under the 256 KiB cap for /api/ps), the other 8,000 (over it); names
  // repeat every 100 and the sizes change every second.
  Container under("mwit-flood-under", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18731", "-m", "256m"},
                  {"/bin/ollama-sim", "--model", "small:1=10", "--ps-flood", "1800", "--no-request-log"}, k_sim_image);
  Container over("mwit-flood-over", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18732", "-m", "256m"},
                 {"/bin/ollama-sim", "--model", "small:1=10", "--ps-flood", "8000", "--no-request-log"}, k_sim_image);
  ASSERT_TRUE(under.wait_for_log("ollama-sim: listening"));
  ASSERT_TRUE(over.wait_for_log("ollama-sim: listening"));
  Warden warden(18733, k_detect + "fix:\n  auto: off\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  ASSERT_TRUE(eventually(
      [&] {
        const auto text = warden.metrics();
        return metric(text, "memwarden_server_up{server=\"mwit-flood-under\"}") == 1.0 &&
               metric(text, "memwarden_server_up{server=\"mwit-flood-over\"}") == 0.0;
      },
      30s))
      << warden.metrics() << warden.log();
  std::this_thread::sleep_for(5s);  // past start-up
  const auto first = resident_bytes(warden.process().pid());
  ASSERT_TRUE(first.has_value());
  std::uint64_t peak = *first;
  std::uint64_t last = *first;
  for (int i = 0; i < 55; ++i) {
    std::this_thread::sleep_for(1s);
    last = resident_bytes(warden.process().pid()).value_or(last);
    peak = std::max(peak, last);
  }
  const auto text = warden.metrics();
  const auto containers = count_of(text, "memwarden_container_anon_bytes{");
  const auto bound = documented_bound(containers, 2, 600);
  RecordProperty("rss_first_kib", static_cast<int>(*first >> 10));
  RecordProperty("rss_peak_kib", static_cast<int>(peak >> 10));
  RecordProperty("rss_last_kib", static_cast<int>(last >> 10));
  EXPECT_LE(peak, bound) << "peak " << (peak >> 10) << " KiB, bound " << (bound >> 10) << " KiB";
  // Before the caps it grew by about 0.5 MiB a second here; now the window is full of bounded samples.
  EXPECT_LT(last, *first + (4ULL << 20)) << "from " << (*first >> 10) << " KiB to " << (last >> 10) << " KiB";

  // Each sample keeps 8 entries; the scrape has one series per name and Prometheus accepts it.
  EXPECT_LE(count_of(text, "memwarden_model_size_bytes{server=\"mwit-flood-under\""), 8U);
  TempDir dir;
  dir.write("metrics.txt", text);
  const auto check =
      run_process({"sh", "-c", "exec promtool check metrics < \"$1\"", "sh", (dir.path() / "metrics.txt").string()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  const auto log = warden.log();
  EXPECT_EQ(count_of(log, "lists more than 8 models"), 1U) << log;
  EXPECT_NE(log.find("(GET /api/ps): response larger than 256 KiB"), std::string::npos) << log;
}

TEST(ServeEngine, ABadReloadOrAConnectionFloodNeverStopsTheWatch) {
  Warden warden(18734, k_detect + "fix:\n  auto: off\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  const auto samples = [&] { return metric(warden.metrics(), "memwarden_samples_total").value_or(0); };

  // 80 connections that send nothing: /metrics and /healthz still answer, and quickly.
  std::vector<int> idle;
  for (int i = 0; i < 80; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(18734);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(200ms);
  for (const char* path : {"/metrics", "/healthz"}) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = http_get(warden.base() + path);
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_LT(took, 100ms + 50ms) << path << " (curl's own start-up included)";
  }
  for (const int fd : idle) {
    ::close(fd);
  }

  // The configuration file becomes a FIFO, then a 50 MB file: each reload is refused at once, and sampling
  // never stops.
  const auto config = warden.config_path();
  std::filesystem::remove(config);
  ASSERT_EQ(::mkfifo(config.c_str(), 0600), 0);
  const auto before_fifo = samples();
  warden.process().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return warden.log().find("is a FIFO, not a regular file") != std::string::npos; }, 5s))
      << warden.log();
  EXPECT_TRUE(eventually([&] { return samples() >= before_fifo + 3; }, 10s)) << warden.log();
  std::filesystem::remove(config);
  {
    std::ofstream out(config);
    out << "# " << std::string(50U << 20, 'x') << "\n";
  }
  const auto before_big = samples();
  warden.process().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return warden.log().find("larger than 1 MiB") != std::string::npos; }, 5s))
      << warden.log();
  EXPECT_TRUE(eventually([&] { return samples() >= before_big + 3; }, 10s)) << warden.log();
  EXPECT_EQ(http_get(warden.base() + "/healthz").status, 200);

  // SIGTERM is honoured within an interval or so.
  const auto signalled = std::chrono::steady_clock::now();
  warden.process().signal(SIGTERM);
  EXPECT_EQ(warden.process().wait(), 0) << warden.log();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 3s);
}

TEST(ServeEngine, OnAFullFileSystemSamplesStopFirstAndAFixStillJournals) {
  // A tmpfs of 384 KiB holds the state directory; samples stop while less than 256 KiB is free.
  TempDir mount_point;
  const auto mounted = run_process({"mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", mount_point.path().string()});
  if (mounted.exit_code != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << mounted.err;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { (void)run_process({"umount", "-l", path}); }
  } unmount{mount_point.path().string()};
  BloatedServer server("mwit-full-fs", 18735, {"memwarden.enable=true"});
  Warden warden(18736, k_detect + "state_dir: " + (mount_point.path() / "state").string() +
                           "\nhistory:\n  min_free: 256k\nfix:\n  auto: on\n  settle: 1s\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  // The samples fill the file system until the history stops...
  EXPECT_TRUE(eventually([&] { return metric(warden.metrics(), "memwarden_history_ok") == 0.0; }, 120s))
      << warden.log();
  EXPECT_NE(warden.log().find("history.min_free"), std::string::npos) << warden.log();
  // ... and only then does the server bloat: its fix must still find room in the journal.
  ASSERT_TRUE(server.bloat());
  const auto fixed = [&] {
    const auto h = warden.api("/api/v1/history?server=mwit-full-fs");
    return !h.is_discarded() && !h["records"].empty() && h["records"][0]["outcome"] == "succeeded";
  };
  ASSERT_TRUE(eventually(fixed, 120s)) << warden.log();
  EXPECT_EQ(warden.log().find("disk is full"), std::string::npos) << "neither store ran out of room: " << warden.log();
}

TEST(ServeEngine, MetricsShowTheNewestBenchRunPerModel) {
  Container sim("mwit-bench-sim", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18899", "-m", "2g"},
                {"/bin/ollama-sim", "--model", "llama3.2:1b=1450", "--tokens-per-second", "50"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening")) << sim.logs();
  Warden warden(18737, k_detect + "fix:\n  auto: off\n");
  ASSERT_TRUE(warden.healthy()) << warden.log();
  const std::string rate = R"(memwarden_bench_output_tokens_per_second{model="llama3.2:1b",concurrency="1"})";
  EXPECT_FALSE(metric(warden.metrics(), rate).has_value()) << "no run stored yet";
  // A benchmark stores its run in the daemon's own history database; a reload reads it at the next tick.
  const auto r = memwarden({"bench", "llama3.2:1b", "--server", sim.name(), "--runs", "2", "--max-tokens", "10",
                            "--cooldown", "0", "--state-dir", warden.state_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  warden.process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return metric(warden.metrics(), rate).has_value(); }, 30s)) << warden.metrics();
  const auto text = warden.metrics();
  EXPECT_GT(*metric(text, rate), 10.0) << text;
  EXPECT_TRUE(metric(text, R"(memwarden_bench_last_run_timestamp_seconds{model="llama3.2:1b"})").has_value()) << text;
  EXPECT_EQ(metric(text, R"(memwarden_bench_verdict{model="llama3.2:1b",criterion="memory returned"})"), 1.0) << text;
  EXPECT_TRUE(
      metric(text, R"(memwarden_bench_ttft_seconds{model="llama3.2:1b",concurrency="1",quantile="0.5"})").has_value())
      << text;
}
