// `memwarden optimize` (the real binary, and the engine's prepare/apply for what happens between them) on the
// private engine: an unlimited idle-bloated opted-in server (the simulator), an unlimited hog standing in for
// Grafana with 25 h of stored history, and a server whose limit is too small for its largest installed model.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "adapters/journal.hpp"
#include "adapters/sample_store.hpp"
#include "core/optimize.hpp"
#include "engine/optimize.hpp"
#include "engine_support.hpp"
#include "probes/cgroup.hpp"

using namespace mw::it;
using nlohmann::json;

namespace {

constexpr std::uint64_t k_gib = 1ULL << 30;

// Diagnose's window and thresholds kept short, as the fix tests keep them.
const std::vector<std::string> k_fast{"--window",         "3s",  "--interval",     "1s",   "--hold",        "2s",
                                      "--base-allowance", "64M", "--bloat-margin", "128M", "--api-timeout", "10s"};

struct StateDir {
  mw::test::TempDir dir;
  [[nodiscard]] std::string path() const { return (dir.path() / "state").string(); }
};

mw::test::ProcessResult optimize(const StateDir& state, std::vector<std::string> args) {
  args.insert(args.begin(), "optimize");
  args.insert(args.end(), k_fast.begin(), k_fast.end());
  args.insert(args.end(), {"--json", "--state-dir", state.path()});
  return memwarden(args);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `hours` of samples of each subject, one a minute, the working set at `base` with one minute at `peak`, rolled
// up as serve's maintenance does (once: serve rolls up in time order, as the samples come).
void store_history(const StateDir& state, const std::vector<std::string>& subjects, double hours, std::uint64_t base,
                   std::uint64_t peak) {
  auto store = mw::adapters::SampleStore::open(state.path());
  ASSERT_TRUE(store) << store.error().line();
  const auto now = now_ms();
  const auto minutes = static_cast<std::int64_t>(hours * 60);
  std::vector<mw::adapters::StoredSample> batch;
  for (std::int64_t m = minutes; m >= 1; --m) {
    for (const auto& subject : subjects) {
      mw::adapters::StoredSample s;
      s.at_ms = now - m * 60'000;
      s.subject = subject;
      s.working_set = m == minutes / 2 ? peak : base;
      s.anon = s.working_set;
      s.usage = s.working_set;
      batch.push_back(s);
    }
  }
  ASSERT_TRUE(store->append(batch));
  ASSERT_TRUE(store->maintain(now));
}

struct Limits {
  std::int64_t memory = -2;
  std::int64_t memory_swap = -2;
};

Limits inspect_limits(const std::string& name) {
  const auto r = docker({"inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", name});
  Limits l;
  if (r.exit_code == 0) {
    std::sscanf(r.out.c_str(), "%ld %ld", &l.memory, &l.memory_swap);
  }
  return l;
}

// The limit the kernel holds for the container (memory.limit_in_bytes or memory.max), through the probes.
std::optional<std::uint64_t> cgroup_limit(const std::string& name) {
  const auto r = docker({"inspect", "-f", "{{.Id}} {{.State.Pid}}", name});
  char id[80] = {};
  long pid = 0;
  if (r.exit_code != 0 || std::sscanf(r.out.c_str(), "%79s %ld", id, &pid) != 2) {
    return std::nullopt;
  }
  const mw::probes::HostRoot root;
  auto layout = mw::probes::detect_cgroup_layout(root);
  if (!layout) {
    return std::nullopt;
  }
  auto where = mw::probes::locate_container_cgroup(root, *layout, pid, id);
  if (!where) {
    return std::nullopt;
  }
  std::vector<mw::Error> problems;
  auto m = mw::probes::read_cgroup_memory(*layout, *where, problems);
  if (!m || !m->limit) {
    return std::nullopt;
  }
  return m->limit->bytes.value_or(UINT64_MAX);
}

const json* item(const json& doc, const std::string& name) {
  for (const auto& c : doc["containers"]) {
    if (c["container"] == name) {
      return &c;
    }
  }
  return nullptr;
}

const json* applied(const json& doc, const std::string& name) {
  for (const auto& c : doc["applied"]) {
    if (c["container"] == name) {
      return &c;
    }
  }
  return nullptr;
}

json journal(const StateDir& state) {
  const auto r = mw::test::run_process({MEMWARDEN_BIN, "history", "--json", "--state-dir", state.path()});
  return json::parse(r.out, nullptr, false);
}

std::size_t optimize_records(const json& h) {
  std::size_t n = 0;
  for (const auto& r : h["records"]) {
    n += r["kind"].get<std::string>().rfind("optimize", 0) == 0 ? 1U : 0U;
  }
  return n;
}

bool bloat(const std::string& url, const Container& sim) {
  const auto load = http_post(url + "/api/generate", R"({"model":"small:1","prompt":"","stream":false})");
  const auto unload = http_post(url + "/api/generate", R"({"model":"small:1","keep_alive":0})");
  return load.exit_code == 0 && unload.out.find("unload") != std::string::npos &&
         sim.wait_for_log("retained_after_unload");
}

}  // namespace

TEST(OptimizeOnEngine, ShowsTheChangesThenMakesThemAndUndoPutsBackTheExactValues) {
  const std::string ollama = "mwit-opt-ollama";
  const std::string grafana = "mwit-opt-grafana";
  const std::string small = "mwit-opt-small";
  Container sim(ollama, {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18941", "--label", "memwarden.enable=true"},
                {"/bin/ollama-sim", "--model", "small:1=100", "--retain-after-unload-mib", "600"}, k_sim_image);
  Container hog(grafana, {"--label", "memwarden.enable=true"}, {"/bin/memhog", "--mib", "64"});
  Container tight(
      small,
      {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18942", "-m", "512m", "--label", "memwarden.enable=true"},
      {"/bin/ollama-sim", "--model", "big:8b=4700"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening"));
  ASSERT_TRUE(tight.wait_for_log("ollama-sim: listening"));
  ASSERT_TRUE(hog.wait_for_log("memhog: ready"));
  ASSERT_TRUE(bloat("http://127.0.0.1:18941", sim));
  const auto small_before = inspect_limits(small);
  ASSERT_EQ(small_before.memory, 512LL << 20);

  StateDir state;
  store_history(state, {grafana}, 25, 80ULL << 20, 300ULL << 20);
  const std::vector<std::string> names{ollama, grafana, small};

  // Without --yes: the three changes listed, nothing changed, nothing journaled.
  auto args = names;
  auto r = optimize(state, args);
  auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  for (const auto& name : names) {
    const auto* c = item(doc, name);
    ASSERT_NE(c, nullptr) << name << doc.dump(2);
    EXPECT_TRUE((*c)["new_limit_bytes"].is_number()) << c->dump(2);
  }
  EXPECT_EQ((*item(doc, ollama))["action"], "set");
  EXPECT_EQ((*item(doc, grafana))["action"], "set");
  EXPECT_EQ((*item(doc, small))["action"], "raise");
  EXPECT_TRUE(doc["applied"].empty());
  EXPECT_EQ(inspect_limits(ollama).memory, 0);
  EXPECT_EQ(inspect_limits(grafana).memory, 0);
  EXPECT_EQ(inspect_limits(small).memory, small_before.memory);
  EXPECT_EQ(optimize_records(journal(state)), 0U);

  // The grafana stand-in: its stored peak plus 25%, rounded up to 256 MiB.
  EXPECT_EQ((*item(doc, grafana))["new_limit_bytes"].get<std::uint64_t>(),
            mw::round_up_to_step((300ULL << 20) + (300ULL << 20) / 4));
  // The tight server: its installed 8B model's plan, well above 512 MiB.
  const auto small_wanted = (*item(doc, small))["new_limit_bytes"].get<std::uint64_t>();
  EXPECT_GT(small_wanted, 4ULL * k_gib);
  const auto& models = (*item(doc, small))["models"];
  ASSERT_EQ(models.size(), 1U) << doc.dump(2);
  EXPECT_EQ(models[0]["model"], "big:8b");
  EXPECT_EQ(models[0]["container_limit_bytes"].get<std::uint64_t>(), small_wanted);

  // With --yes: the bloat fixed first, then the limits set, read back from the engine and the cgroup.
  const auto started = docker({"inspect", "-f", "{{.State.StartedAt}}", ollama}).out;
  args.push_back("--yes");
  r = optimize(state, args);
  doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  bool fixed = false;
  for (const auto& f : doc["fixes"]) {
    fixed = fixed || (f["server"] == ollama && f["outcome"] == "succeeded");
  }
  EXPECT_TRUE(fixed) << doc["fixes"].dump(2);
  EXPECT_NE(docker({"inspect", "-f", "{{.State.StartedAt}}", ollama}).out, started) << "restarted by the fix";
  for (const auto& name : names) {
    const auto* a = applied(doc, name);
    ASSERT_NE(a, nullptr) << name << doc.dump(2);
    EXPECT_EQ((*a)["outcome"], "applied") << a->dump(2);
    const auto want = (*item(doc, name))["new_limit_bytes"].get<std::int64_t>();
    const auto now = inspect_limits(name);
    EXPECT_EQ(now.memory, want) << name;
    EXPECT_EQ(now.memory_swap, want) << name << ": no swap for the container";
    EXPECT_EQ(cgroup_limit(name), static_cast<std::uint64_t>(want)) << name;
    // Never below what it uses.
    const auto use = (*item(doc, name))["use_bytes"];
    ASSERT_TRUE(use.is_number()) << name;
    EXPECT_GT(want, use.get<std::int64_t>()) << name;
  }
  EXPECT_EQ(inspect_limits(small).memory, static_cast<std::int64_t>(small_wanted));
  // The reserve holds: every limit together within MemTotal less 4 GiB.
  EXPECT_TRUE(doc["reserve_holds"].get<bool>()) << doc.dump(2);
  EXPECT_LE(doc["limits_total_bytes"].get<std::uint64_t>(),
            doc["before"]["mem_total_bytes"].get<std::uint64_t>() - doc["reserve_bytes"].get<std::uint64_t>());
  EXPECT_TRUE(doc["after"].is_object());
  EXPECT_EQ(optimize_records(journal(state)), 3U);

  // --undo: the exact values before. A limit the engine cannot take away in place is taken away by re-creating
  // the container.
  r = memwarden({"optimize", "--undo", "--json", "--state-dir", state.path()});
  doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  EXPECT_EQ(doc["changes"].size(), 3U) << doc.dump(2);
  EXPECT_EQ(inspect_limits(ollama).memory, 0);
  EXPECT_EQ(inspect_limits(grafana).memory, 0);
  const auto small_after = inspect_limits(small);
  EXPECT_EQ(small_after.memory, small_before.memory);
  EXPECT_EQ(small_after.memory_swap, small_before.memory_swap);
  EXPECT_EQ(cgroup_limit(small), static_cast<std::uint64_t>(small_before.memory));
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", ollama}).out.substr(0, 4), "true");
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", grafana}).out.substr(0, 4), "true");
  EXPECT_EQ(docker({"inspect", "-f", "{{index .Config.Labels \"memwarden.enable\"}}", ollama}).out.substr(0, 4),
            "true");

  // Again: nothing left to undo.
  r = memwarden({"optimize", "--undo", "--state-dir", state.path()});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("nothing to undo"), std::string::npos) << r.out;
}

TEST(OptimizeOnEngine, AContainerGoneBetweenPlanAndApplyIsSkippedAndTheRestGoesOn) {
  Container keep("mwit-opt-keep", {}, {"/bin/memhog", "--mib", "32"});
  Container gone("mwit-opt-gone", {}, {"/bin/memhog", "--mib", "32"});
  ASSERT_TRUE(keep.wait_for_log("memhog: ready"));
  ASSERT_TRUE(gone.wait_for_log("memhog: ready"));
  StateDir state;
  store_history(state, {keep.name(), gone.name()}, 30, 40ULL << 20, 100ULL << 20);
  mw::engine::OptimizeOptions o;
  o.docker_host = docker_host();
  o.state_dir = state.path();
  o.named = {keep.name(), gone.name()};
  o.now_wall_ms = now_ms();
  auto plan = mw::engine::prepare_optimize(o);
  ASSERT_TRUE(plan) << plan.error().line();
  ASSERT_TRUE(docker({"rm", "-f", gone.name()}).exit_code == 0);
  const auto done = mw::engine::apply_optimize(*plan, o, nullptr);
  std::string items;
  for (const auto& i : plan->items) {
    items += i.name + ": " + mw::to_string(i.decision.action) + " " + i.decision.why + " / " + i.basis + "\n";
  }
  ASSERT_EQ(done.changes.size(), 2U) << items;
  for (const auto& c : done.changes) {
    if (c.name == gone.name()) {
      EXPECT_EQ(c.outcome, mw::engine::ChangeOutcome::skipped);
      EXPECT_NE(c.detail.find("gone"), std::string::npos) << c.detail;
      EXPECT_FALSE(c.journal_id) << "nothing journaled for what was not changed";
    } else {
      EXPECT_EQ(c.outcome, mw::engine::ChangeOutcome::applied) << c.detail;
    }
  }
  EXPECT_GT(inspect_limits(keep.name()).memory, 0);
}

TEST(OptimizeOnEngine, NeverSetsALimitBelowWhatAContainerUses) {
  // Its stored peak says 100 MiB, but it uses 400 MiB now: the limit is what it uses plus the margin.
  Container hog("mwit-opt-grown", {}, {"/bin/memhog", "--mib", "400"});
  ASSERT_TRUE(hog.wait_for_log("memhog: ready"));
  StateDir state;
  store_history(state, {hog.name()}, 26, 50ULL << 20, 100ULL << 20);
  const auto r = optimize(state, {hog.name(), "--yes"});
  const auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  const auto* c = item(doc, hog.name());
  ASSERT_NE(c, nullptr) << doc.dump(2);
  const auto limit = inspect_limits(hog.name()).memory;
  EXPECT_GE(limit, (400LL << 20) + (256LL << 20));
  EXPECT_EQ(limit, (*c)["floor_bytes"].get<std::int64_t>());
}

TEST(OptimizeOnEngine, HistoryShorterThanADayIsNoBasis) {
  Container hog("mwit-opt-young", {}, {"/bin/memhog", "--mib", "16"});
  ASSERT_TRUE(hog.wait_for_log("memhog: ready"));
  StateDir state;
  store_history(state, {hog.name()}, 5, 20ULL << 20, 40ULL << 20);
  const auto r = optimize(state, {hog.name(), "--yes"});
  const auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  const auto* c = item(doc, hog.name());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["action"], "skip");
  EXPECT_NE((*c)["why"].get<std::string>().find("24 h"), std::string::npos) << c->dump(2);
  EXPECT_EQ(inspect_limits(hog.name()).memory, 0);
}

TEST(OptimizeOnEngine, AHostTooSmallForTheModelChangesNothing) {
  Container hog("mwit-opt-for", {}, {"/bin/memhog", "--mib", "16"});
  ASSERT_TRUE(hog.wait_for_log("memhog: ready"));
  StateDir state;
  store_history(state, {hog.name()}, 30, 20ULL << 20, 40ULL << 20);
  const auto r = optimize(state, {hog.name(), "--yes", "--for", "llama3.1:70b", "--vram", "0"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  const auto doc = parse_output(r);
  ASSERT_EQ(doc["for"].size(), 1U) << doc.dump(2);
  EXPECT_EQ(doc["for"][0]["verdict"], "no_fit");
  EXPECT_TRUE(doc["applied"].empty());
  EXPECT_EQ(inspect_limits(hog.name()).memory, 0);
}

TEST(OptimizeOnEngine, AnInterruptedOptimizeLeavesARecordThatUndoPutsBack) {
  // An optimize killed between the engine's answer and the end of its record: the change is made, the record
  // never finished. The journal shows it; --undo puts the value back.
  Container hog("mwit-opt-killed", {"-m", "512m"}, {"/bin/memhog", "--mib", "16"});
  ASSERT_TRUE(hog.wait_for_log("memhog: ready"));
  const auto before = inspect_limits(hog.name());
  StateDir state;
  // The writer is a process that begins the record, makes the change and dies before it can finish it.
  const pid_t writer = ::fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) {
    auto journal = mw::adapters::Journal::open(state.path());
    mw::adapters::JournalRecord rec;
    rec.started_at_ms = now_ms();
    rec.server = hog.name();
    rec.kind = "optimize_limit";
    rec.reason = "peak 40 MiB over 30 h of history, + 25%";
    rec.evidence_json = json{{"name", hog.name()},
                             {"before", {{"memory", before.memory}, {"memory_swap", before.memory_swap}}},
                             {"after", {{"memory", 256LL << 20}, {"memory_swap", 256LL << 20}}}}
                            .dump();
    const bool begun = journal && journal->begin(rec);
    const auto made = mw::test::run_process(
        {"docker", "-H", docker_host(), "update", "--memory", "256m", "--memory-swap", "256m", hog.name()});
    ::_exit(begun && made.exit_code == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(writer, &status, 0), writer);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(inspect_limits(hog.name()).memory, 256LL << 20);
  const auto h = journal(state);
  ASSERT_EQ(h["records"].size(), 1U);
  EXPECT_EQ(h["records"][0]["incomplete"], true) << h.dump(2);
  const auto r = memwarden({"optimize", "--undo", "--json", "--state-dir", state.path()});
  const auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  const auto after = inspect_limits(hog.name());
  EXPECT_EQ(after.memory, before.memory);
  EXPECT_EQ(after.memory_swap, before.memory_swap);
}

TEST(OptimizeOnEngine, RecreateAppliesTheServerSettingsAndUndoPutsThemBack) {
  // Three installed models that do not fit in the limit together, a keep-alive of forever: one at a time.
  const std::string name = "mwit-opt-settings";
  Container sim(name,
                {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18943", "-e", "OLLAMA_KEEP_ALIVE=-1", "--label",
                 "memwarden.enable=true", "--label", "custom.label=kept"},
                {"/bin/ollama-sim", "--model", "a:3b=2000", "--model", "b:3b=2000", "--model", "c:1b=700"},
                k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening"));
  StateDir state;
  auto r = optimize(state, {name, "--for", "a:3b", "--for", "b:3b", "--for", "c:1b"});
  auto doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  const auto* c = item(doc, name);
  ASSERT_NE(c, nullptr) << doc.dump(2);
  std::map<std::string, std::string> wanted;
  for (const auto& s : (*c)["settings"]) {
    wanted[s["key"]] = s["after"];
  }
  EXPECT_EQ(wanted["OLLAMA_MAX_LOADED_MODELS"], "1") << c->dump(2);
  EXPECT_EQ(wanted["OLLAMA_KEEP_ALIVE"], "5m") << c->dump(2);

  r = optimize(state, {name, "--yes", "--recreate", "--for", "a:3b", "--for", "b:3b", "--for", "c:1b"});
  doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  const auto env = docker({"inspect", "-f", "{{json .Config.Env}}", name}).out;
  EXPECT_NE(env.find("OLLAMA_MAX_LOADED_MODELS=1"), std::string::npos) << env;
  EXPECT_NE(env.find("OLLAMA_KEEP_ALIVE=5m"), std::string::npos) << env;
  EXPECT_EQ(docker({"inspect", "-f", "{{index .Config.Labels \"custom.label\"}}", name}).out.substr(0, 4), "kept");
  EXPECT_GT(inspect_limits(name).memory, 0) << "the limit set before the re-create is kept";
  ASSERT_TRUE(doc["readiness"].is_array()) << doc.dump(2);
  EXPECT_EQ(doc["readiness"].size(), 3U);
  // Nothing named NAME-old-* is left.
  EXPECT_EQ(docker({"ps", "-a", "--filter", "name=" + name + "-old", "-q"}).out, "");

  r = memwarden({"optimize", "--undo", "--json", "--state-dir", state.path()});
  doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  EXPECT_EQ(doc["changes"].size(), 1U) << "the limit and the settings put back by one re-create: " << doc.dump(2);
  const auto back = docker({"inspect", "-f", "{{json .Config.Env}}", name}).out;
  EXPECT_EQ(back.find("OLLAMA_MAX_LOADED_MODELS"), std::string::npos) << back;
  EXPECT_NE(back.find("OLLAMA_KEEP_ALIVE=-1"), std::string::npos) << back;
  EXPECT_EQ(inspect_limits(name).memory, 0);
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Running}}", name}).out.substr(0, 4), "true");
}

TEST(OptimizeOnEngine, TwoServersShareWhatTheHostCanGiveThemSoTheReserveHolds) {
  // Each wants its 8B model's limit; with a reserve that leaves less than both together, each gets its share.
  Container one("mwit-opt-share-1", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18944"},
                {"/bin/ollama-sim", "--model", "big:8b=4700"}, k_sim_image);
  Container two("mwit-opt-share-2", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18945"},
                {"/bin/ollama-sim", "--model", "big:8b=4700"}, k_sim_image);
  ASSERT_TRUE(one.wait_for_log("ollama-sim: listening"));
  ASSERT_TRUE(two.wait_for_log("ollama-sim: listening"));
  StateDir state;
  auto r = optimize(state, {one.name(), two.name()});
  auto doc = parse_output(r);
  ASSERT_TRUE(item(doc, one.name()) && item(doc, two.name())) << doc.dump(2);
  const auto alone = (*item(doc, one.name()))["new_limit_bytes"].get<std::uint64_t>();
  const auto total = doc["before"]["mem_total_bytes"].get<std::uint64_t>();
  // A reserve that leaves room for one and a half of them.
  const auto reserve = total - alone - alone / 2;
  r = optimize(state, {one.name(), two.name(), "--reserve", std::to_string(reserve)});
  doc = parse_output(r);
  EXPECT_EQ(r.exit_code, 0) << doc.dump(2) << r.err;
  std::uint64_t sum = 0;
  for (const auto* name : {&one.name(), &two.name()}) {
    const auto* c = item(doc, *name);
    ASSERT_NE(c, nullptr) << doc.dump(2);
    EXPECT_TRUE((*c)["capped"].get<bool>()) << c->dump(2);
    EXPECT_NE((*c)["basis"].get<std::string>().find("each gets its share"), std::string::npos) << c->dump(2);
    const auto limit = (*c)["new_limit_bytes"].get<std::uint64_t>();
    EXPECT_LT(limit, alone);
    sum += limit;
  }
  EXPECT_LE(sum, total - reserve);
  EXPECT_TRUE(doc["reserve_holds"].get<bool>()) << doc.dump(2);
  EXPECT_TRUE(doc["applied"].empty());
}
