// `memwarden fix` and `history` (the real binary) on the private engine with
// the Ollama simulator: restarts that cure, unloads that cure, opt-in, budget,
// dry run, draining an open client connection, and a SIGKILL mid-action.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "engine_support.hpp"

using namespace mw::it;
using nlohmann::json;

namespace {

const std::vector<std::string> k_thresholds{"--window",  "3s", "--interval",       "1s",  "--hold",         "2s",
                                            "--reserve", "0",  "--base-allowance", "64M", "--bloat-margin", "128M"};

struct StateDir {
  mw::test::TempDir dir;
  [[nodiscard]] std::string path() const { return (dir.path() / "state").string(); }
};

mw::test::ProcessResult fix(const StateDir& state, std::vector<std::string> args) {
  args.insert(args.begin(), "fix");
  args.insert(args.end(), k_thresholds.begin(), k_thresholds.end());
  args.insert(args.end(), {"--json", "--state-dir", state.path()});
  return memwarden(args);
}

json history(const StateDir& state) {
  const auto r = mw::test::run_process({MEMWARDEN_BIN, "history", "--json", "--state-dir", state.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

const json* server_report(const json& doc, const std::string& name) {
  for (const auto& s : doc["servers"]) {
    if (s["name"] == name) {
      return &s;
    }
  }
  return nullptr;
}

// A client connection to the server's API that stays open until closed.
class OpenClient {
 public:
  explicit OpenClient(int port)
      : m_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {  // not inherited by memwarden
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m_connected = ::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~OpenClient() { close(); }
  void close() {
    if (m_fd >= 0) {
      ::close(m_fd);
      m_fd = -1;
    }
  }
  [[nodiscard]] bool connected() const { return m_connected; }

 private:
  int m_fd;
  bool m_connected = false;
};

// Waits until the journal holds an incomplete record (the action has started).
bool wait_for_incomplete(const StateDir& state, std::chrono::seconds limit = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(std::filesystem::path(state.path()) / "memwarden.db")) {
      const auto h = history(state);
      for (const auto& r : h["records"]) {
        if (r["incomplete"] == true) {
          return true;
        }
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

}  // namespace

TEST(FixOnEngine, IdleBloatIsRestartedAndVerified) {
  BloatedServer server("mwit-fix-bloat", 18601, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  const auto before_start = server.started_at();
  StateDir state;
  const auto r = fix(state, {"--all"});
  const auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2);
  const auto* s = server_report(doc, server.name());
  ASSERT_NE(s, nullptr) << doc.dump(2);
  EXPECT_EQ((*s)["outcome"], "succeeded") << s->dump(2);
  const double before = (*s)["before_anon_bytes"].get<double>();
  const double after = (*s)["after_anon_bytes"].get<double>();
  EXPECT_GT(before, 600.0 * k_mib);
  EXPECT_LT(after, 0.05 * before) << "memory after the restart under 5% of before";
  EXPECT_NE(server.started_at(), before_start);
  EXPECT_TRUE(server.api_healthy());
  const auto h = history(state);
  ASSERT_EQ(h["records"].size(), 1U);
  const auto& rec = h["records"][0];
  EXPECT_EQ(rec["outcome"], "succeeded");
  EXPECT_EQ(rec["incomplete"], false);
  EXPECT_FALSE(rec["ended_at_ms"].is_null());
  EXPECT_EQ(rec["kind"], "restart");
  std::vector<std::string> steps;
  for (const auto& st : rec["steps"]) {
    steps.push_back(st["name"].get<std::string>());
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"drain", "restart", "health_wait", "verify"}));
  EXPECT_EQ(rec["before_bytes"].get<double>(), before);
  EXPECT_EQ(rec["after_bytes"].get<double>(), after);
}

TEST(FixOnEngine, BloatThatUnloadingCuresIsNotRestarted) {
  // The runner's prompt cache grows with every request and /api/ps does not count it (ollama #18264):
  // unloading the model frees it, so no restart is needed.
  Container sim(
      "mwit-fix-unload",
      {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18609", "-m", "2g", "--label", "memwarden.enable=true"},
      {"/bin/ollama-sim", "--model", "small:1=100", "--runner-cache-per-request-mib", "200"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening"));
  const std::string url = "http://127.0.0.1:18609";
  for (int i = 0; i < 3; ++i) {
    const auto r = http_post(url + "/api/generate", R"({"model":"small:1","prompt":"hello","stream":false})");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_TRUE(sim.wait_for_log("runner_cache name=small:1 total_mib=600"));
  const auto before_start = docker({"inspect", "-f", "{{.State.StartedAt}}", sim.name()}).out;
  StateDir state;
  const auto r = fix(state, {"--all", "--settle", "2s"});
  const auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2);
  const auto* s = server_report(doc, sim.name());
  ASSERT_NE(s, nullptr) << doc.dump(2);
  EXPECT_EQ((*s)["outcome"], "succeeded") << s->dump(2);
  EXPECT_EQ((*s)["kind"], "unload");
  EXPECT_NE((*s)["message"].get<std::string>().find("unloading cured it, no restart"), std::string::npos);
  std::vector<std::string> steps;
  for (const auto& st : (*s)["steps"]) {
    steps.push_back(st["name"].get<std::string>());
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"unload", "settle"}));
  EXPECT_LT((*s)["after_anon_bytes"].get<double>(), 0.2 * (*s)["before_anon_bytes"].get<double>());
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.StartedAt}}", sim.name()}).out, before_start) << "no restart";
  EXPECT_EQ(history(state)["records"][0]["kind"], "unload");
}

TEST(FixOnEngine, NotOptedInIsNeverRestartedByAll) {
  BloatedServer server("mwit-fix-optout", 18602, {});
  ASSERT_TRUE(server.bloat());
  const auto before_start = server.started_at();
  StateDir state;
  const auto r = fix(state, {"--all"});
  const auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 4);
  const auto* s = server_report(doc, server.name());
  ASSERT_NE(s, nullptr) << doc.dump(2);
  EXPECT_EQ((*s)["eligibility"], "not_opted_in");
  EXPECT_EQ(server.started_at(), before_start);
  // Named without --yes and without a terminal to ask: refused too.
  const auto named = fix(state, {server.name()});
  EXPECT_EQ(named.exit_code, 4);
  EXPECT_EQ(server.started_at(), before_start);
}

TEST(FixOnEngine, DryRunChangesNothing) {
  BloatedServer server("mwit-fix-dry", 18603, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  const auto before_start = server.started_at();
  StateDir state;
  const auto r = fix(state, {"--all", "--dry-run"});
  const auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0);
  const auto* s = server_report(doc, server.name());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ((*s)["outcome"], "dry_run");
  const auto& plan = (*s)["plan"];
  ASSERT_EQ(plan.size(), 3U) << plan;
  EXPECT_EQ(plan[0], "would wait up to 120 s until no client is connected to port 18603");
  EXPECT_NE(plan[1].get<std::string>().find("would restart container " + server.name() + ": POST /containers/"),
            std::string::npos)
      << plan;
  EXPECT_EQ(plan[2], "would wait up to 120 s for " + server.url() + "/api/version to answer");
  EXPECT_EQ(server.started_at(), before_start);
  EXPECT_TRUE(history(state)["records"].empty());
}

TEST(FixOnEngine, RestartBudgetIsEnforced) {
  BloatedServer server("mwit-fix-budget", 18604, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  StateDir state;
  const auto first = fix(state, {"--all", "--budget", "1", "--cooldown", "0s"});
  ASSERT_EQ(first.exit_code, 0) << first.out;
  ASSERT_TRUE(server.bloat()) << "bloat it again";
  const auto after_first = server.started_at();
  const auto second = fix(state, {"--all", "--budget", "1", "--cooldown", "0s"});
  const auto doc = parse_output(second);
  EXPECT_EQ(second.exit_code, 4);
  EXPECT_EQ((*server_report(doc, server.name()))["eligibility"], "budget_exhausted");
  EXPECT_EQ(server.started_at(), after_first) << "no further restart";
  EXPECT_EQ(history(state)["records"].size(), 1U);
}

TEST(FixOnEngine, RestartWaitsForAnOpenClientConnection) {
  BloatedServer server("mwit-fix-drain", 18605, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  OpenClient client(18605);
  ASSERT_TRUE(client.connected());
  StateDir state;
  std::vector<std::string> args{MEMWARDEN_BIN, "fix",           "--all",       "--json",          "--state-dir",
                                state.path(),  "--docker-host", docker_host(), "--drain-timeout", "60s"};
  args.insert(args.end(), k_thresholds.begin(), k_thresholds.end());
  mw::test::BackgroundProcess fixer(args);
  ASSERT_TRUE(wait_for_incomplete(state)) << fixer.output();
  std::this_thread::sleep_for(2s);
  const auto before_close = server.started_at();
  client.close();
  EXPECT_EQ(fixer.wait(), 0) << fixer.output();
  EXPECT_NE(server.started_at(), before_close) << "restarted once the client left";
  const auto doc = json::parse(fixer.output(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << fixer.output();
  const auto& steps = (*server_report(doc, server.name()))["steps"];
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps[0]["name"], "drain");
  EXPECT_GE(steps[0]["ms"].get<int>(), 2000) << "the restart waited for the client";
}

TEST(FixOnEngine, DrainTimeoutRefusesToRestart) {
  BloatedServer server("mwit-fix-busy", 18606, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  OpenClient client(18606);
  ASSERT_TRUE(client.connected());
  const auto before_start = server.started_at();
  StateDir state;
  const auto r = fix(state, {"--all", "--drain-timeout", "2s"});
  EXPECT_EQ(r.exit_code, 4) << r.out;
  const auto doc = parse_output(r);
  EXPECT_EQ((*server_report(doc, server.name()))["outcome"], "refused");
  EXPECT_NE((*server_report(doc, server.name()))["message"].get<std::string>().find("1 client still connected"),
            std::string::npos);
  EXPECT_EQ(server.started_at(), before_start);
}

TEST(FixOnEngine, SigkillMidActionLeavesAnIncompleteRecord) {
  BloatedServer server("mwit-fix-kill", 18607, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  OpenClient client(18607);  // holds the fix in its drain step
  ASSERT_TRUE(client.connected());
  StateDir state;
  std::vector<std::string> args{MEMWARDEN_BIN,   "fix",         "--all",           "--state-dir", state.path(),
                                "--docker-host", docker_host(), "--drain-timeout", "60s"};
  args.insert(args.end(), k_thresholds.begin(), k_thresholds.end());
  {
    mw::test::BackgroundProcess fixer(args);
    ASSERT_TRUE(wait_for_incomplete(state)) << fixer.output();
    fixer.signal(SIGKILL);
    EXPECT_EQ(fixer.wait(), 128 + SIGKILL);
  }
  const auto h = history(state);
  ASSERT_EQ(h["records"].size(), 1U);
  EXPECT_EQ(h["records"][0]["incomplete"], true);
  EXPECT_EQ(h["records"][0]["outcome"], "in_progress");
  const auto table = mw::test::run_process({MEMWARDEN_BIN, "history", "--state-dir", state.path()});
  EXPECT_NE(table.out.find("INCOMPLETE"), std::string::npos) << table.out;
  // The next writer marks it interrupted; the record is never lost.
  client.close();
  (void)fix(state, {"--all"});
  const auto later = history(state);
  bool interrupted = false;
  for (const auto& rec : later["records"]) {
    interrupted = interrupted || rec["outcome"] == "interrupted";
  }
  EXPECT_TRUE(interrupted) << later.dump(2);
}

TEST(FixOnEngine, CorruptJournalMeansNoAction) {
  BloatedServer server("mwit-fix-corrupt", 18608, {"memwarden.enable=true"});
  ASSERT_TRUE(server.bloat());
  const auto before_start = server.started_at();
  StateDir state;
  std::filesystem::create_directories(state.path());
  std::ofstream(std::filesystem::path(state.path()) / "memwarden.db") << "this is not a database, it is garbage";
  const auto r = fix(state, {"--all"});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
  EXPECT_EQ(server.started_at(), before_start);
}
