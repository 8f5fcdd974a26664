// Memory updates and recreates on the private engine (Docker 20.10, cgroup v1 here): the limit reaches the
// kernel's cgroup file, the engine's swap rule is refused in plain words, a recreate carries the container's
// environment, labels and command over with the change, and a new container that cannot become ready is rolled
// back to the old one (the same id, running, with its limit).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "adapters/docker.hpp"
#include "engine/recreate.hpp"
#include "engine_support.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_root.hpp"

namespace mw::it {
namespace {

constexpr std::int64_t k_mi = 1LL << 20;  // the engine's limits are signed

adapters::DockerClient connect() {
  auto endpoint = adapters::parse_endpoint(docker_host(), "test");
  EXPECT_TRUE(endpoint) << docker_host();
  auto docker = adapters::DockerClient::connect(*endpoint, 30s);
  EXPECT_TRUE(docker) << docker.error().line();
  return std::move(*docker);
}

std::string inspect_field(const std::string& name, const std::string& format) {
  auto out = docker({"inspect", "-f", format, name}).out;
  while (!out.empty() && out.back() == '\n') {
    out.pop_back();
  }
  return out;
}

// The kernel's memory limit of the container's cgroup (memory.limit_in_bytes on v1, memory.max on v2).
std::string cgroup_limit(const ContainerMeta& meta) {
  const probes::HostRoot root("/");
  const auto layout = probes::detect_cgroup_layout(root);
  if (!layout) {
    ADD_FAILURE() << layout.error().line();
    return {};
  }
  const auto where = probes::locate_container_cgroup(root, *layout, meta.state.pid, meta.id);
  if (!where) {
    ADD_FAILURE() << where.error().line();
    return {};
  }
  const auto file = layout->mode == probes::CgroupMode::v2 ? "memory.max" : "memory.limit_in_bytes";
  std::ifstream in(layout->memory_root / where->memory_path / file);
  std::string text;
  std::getline(in, text);
  return text;
}

// No container of these tests is left, under any name (NAME-old-... included).
void expect_none_left(const std::string& prefix) {
  const auto r = docker({"ps", "-a", "--filter", "name=" + prefix, "--format", "{{.Names}}"});
  EXPECT_EQ(r.out, "") << "left behind";
}

TEST(RecreateEngine, UpdateMemorySetsTheLimitTheEngineAndTheKernelReport) {
  Container c("mw-rc-update", {"-m", "64m", "--memory-swap", "64m"}, {"/bin/memhog", "--mib", "16"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready"));
  auto engine = connect();
  auto before = engine.inspect(c.name());
  ASSERT_TRUE(before) << before.error().line();
  EXPECT_EQ(cgroup_limit(*before), std::to_string(64 * k_mib));

  ASSERT_TRUE(engine.update_memory(c.name(), 128 * k_mi, 192 * k_mi));
  const auto after = engine.inspect(c.name());
  ASSERT_TRUE(after) << after.error().line();
  EXPECT_EQ(after->memory_limit, 128 * k_mib);
  EXPECT_EQ(after->memory_swap, 192 * k_mi);
  EXPECT_EQ(cgroup_limit(*after), std::to_string(128 * k_mib)) << "the kernel has it";
  EXPECT_EQ(after->state.pid, before->state.pid) << "updated in place, not restarted";

  const auto gone = engine.update_memory("mw-rc-no-such", 128 * k_mi, 128 * k_mi);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ENOENT);
  EXPECT_NE(gone.error().message.find("No such container"), std::string::npos) << gone.error().line();
}

TEST(RecreateEngine, TheSwapRuleIsRefusedInPlainWords) {
  Container c("mw-rc-swaprule", {"-m", "64m", "--memory-swap", "64m"}, {"/bin/memhog", "--mib", "8"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready"));
  auto engine = connect();
  // MemorySwap 0 leaves memory+swap at 64 MiB: a 128 MiB limit breaks the engine's rule.
  const auto refused = engine.update_memory(c.name(), 128 * k_mi, 0);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().message.starts_with(
      "the engine keeps memory+swap at least as large as memory, and the new limit is above the container's "
      "memory+swap limit"))
      << refused.error().line();
  EXPECT_NE(refused.error().message.find("Memory limit should be smaller than already set memoryswap limit"),
            std::string::npos)
      << "the engine's own words follow: " << refused.error().line();
  const auto below = engine.update_memory(c.name(), 128 * k_mi, 96 * k_mi);
  ASSERT_FALSE(below);
  EXPECT_TRUE(below.error().message.starts_with("the memory+swap limit is below the memory limit"))
      << below.error().line();
  EXPECT_EQ(inspect_field(c.name(), "{{.HostConfig.Memory}}"), std::to_string(64 * k_mib)) << "nothing changed";
}

TEST(RecreateEngine, ARecreateCarriesTheContainerOverWithTheChange) {
  Container c("mw-rc-recreate",
              {"-m", "64m", "--memory-swap", "64m", "-e", "KEEP=1", "-e", "FOO=old", "--label", "mw.test=recreate"},
              {"/bin/memhog", "--mib", "8"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready"));
  const auto old_id = inspect_field(c.name(), "{{.Id}}");
  const auto old_labels = inspect_field(c.name(), "{{json .Config.Labels}}");
  auto engine = connect();
  engine::RecreateChange change;
  change.env["FOO"] = "new";
  change.env["BAR"] = "2";
  change.env["KEEP"] = std::nullopt;
  change.memory = 0;
  std::vector<std::string> journal;
  engine::RecreateOptions options;
  options.stop_timeout = 2s;
  options.on_step = [&](const engine::RecreateStep& s) { journal.push_back(s.name); };
  const auto r = engine::recreate_container(engine, c.name(), change, options);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(journal, (std::vector<std::string>{"stop", "rename", "create", "start", "wait", "remove_old"}));
  EXPECT_EQ(r->old_id, old_id);
  const auto now = engine.inspect(c.name());
  ASSERT_TRUE(now) << now.error().line();
  EXPECT_EQ(now->id, r->new_id);
  EXPECT_NE(now->id, old_id);
  EXPECT_TRUE(now->state.running);
  EXPECT_EQ(now->memory_limit, std::nullopt) << "no limit";
  EXPECT_EQ(inspect_field(c.name(), "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"), "0 0");
  const auto env = inspect_field(c.name(), "{{json .Config.Env}}");
  EXPECT_NE(env.find("\"FOO=new\""), std::string::npos) << env;
  EXPECT_NE(env.find("\"BAR=2\""), std::string::npos) << env;
  EXPECT_EQ(env.find("KEEP="), std::string::npos) << env;
  EXPECT_EQ(inspect_field(c.name(), "{{json .Config.Labels}}"), old_labels);
  EXPECT_EQ(inspect_field(c.name(), "{{json .Config.Cmd}}"), R"(["/bin/memhog","--mib","8"])");
  EXPECT_EQ(inspect_field(c.name(), "{{.HostConfig.NetworkMode}}"), "none");
  EXPECT_TRUE(c.wait_for_log("memhog: ready"));
  EXPECT_NE(docker({"inspect", old_id}).exit_code, 0) << "the old one is gone";
  EXPECT_EQ(docker({"ps", "-a", "--filter", "name=mw-rc-recreate-old", "--format", "{{.Names}}"}).out, "");
}

void expect_rolled_back(const std::string& name, const std::string& old_id, const std::string& started_at,
                        const Expected<engine::RecreateReport, engine::RecreateFailure>& r) {
  ASSERT_FALSE(r) << "the new one should not have become ready";
  EXPECT_TRUE(r.error().restored) << r.error().message;
  EXPECT_NE(r.error().message.find("did not become ready"), std::string::npos) << r.error().message;
  EXPECT_EQ(inspect_field(name, "{{.Id}}"), old_id) << "the old one is back under its name";
  EXPECT_EQ(inspect_field(name, "{{.State.Running}}"), "true");
  EXPECT_NE(inspect_field(name, "{{.State.StartedAt}}"), started_at) << "started again";
  EXPECT_EQ(inspect_field(name, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"),
            std::to_string(64 * k_mib) + " " + std::to_string(64 * k_mib))
      << "with its limit";
  const auto names = docker({"ps", "-a", "--filter", "name=" + name, "--format", "{{.Names}}"}).out;
  EXPECT_EQ(names, name + "\n") << "neither the new one nor NAME-old-... is left";
  ASSERT_FALSE(r.error().lines.empty());
  EXPECT_NE(r.error().lines.back().find("is back under its name, running"), std::string::npos)
      << r.error().lines.back();
}

TEST(RecreateEngine, ANewOneThatNeverAnswersIsRolledBack) {
  Container c("mw-rc-noanswer", {"-m", "64m", "--memory-swap", "64m"}, {"/bin/memhog", "--mib", "8"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready"));
  const auto old_id = inspect_field(c.name(), "{{.Id}}");
  const auto started_at = inspect_field(c.name(), "{{.State.StartedAt}}");
  auto engine = connect();
  engine::RecreateChange change;
  change.env["FOO"] = "new";
  engine::RecreateOptions options;
  options.stop_timeout = 2s;
  options.api_url = "http://127.0.0.1:9";  // discard: nobody answers HTTP there
  options.ready_wait = 1500ms;
  expect_rolled_back(c.name(), old_id, started_at, engine::recreate_container(engine, c.name(), change, options));
  EXPECT_EQ(inspect_field(c.name(), "{{json .Config.Env}}").find("FOO=new"), std::string::npos);
}

TEST(RecreateEngine, ANewOneThatExitsAtOnceIsRolledBack) {
  Container c("mw-rc-exits", {"-m", "64m", "--memory-swap", "64m"}, {"/bin/memhog", "--mib", "8"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready"));
  const auto old_id = inspect_field(c.name(), "{{.Id}}");
  const auto started_at = inspect_field(c.name(), "{{.State.StartedAt}}");
  auto engine = connect();
  engine::RecreateChange change;
  change.memory = 6 * k_mi;  // under what memhog takes: killed as it starts
  engine::RecreateOptions options;
  options.stop_timeout = 2s;
  const auto r = engine::recreate_container(engine, c.name(), change, options);
  expect_rolled_back(c.name(), old_id, started_at, r);
  if (!r) {
    EXPECT_NE(r.error().message.find("exit code 137"), std::string::npos) << r.error().message;
  }
}

TEST(RecreateEngine, TheDataInAnAnonymousVolumeStays) {
  // `-v /data` makes a volume for the container alone (as an image's VOLUME does, for a model store): the new
  // container mounts the same one, so what was written there is still there.
  Container c("mw-rc-anon", {"-v", "/data"}, {"/bin/memhog", "--mib", "8"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready"));
  ASSERT_EQ(docker({"exec", c.name(), "/bin/busybox", "sh", "-c", "echo kept > /data/model"}).exit_code, 0);
  const auto volume = inspect_field(c.name(), "{{range .Mounts}}{{.Name}}{{end}}");
  ASSERT_EQ(volume.size(), 64U) << volume;
  auto engine = connect();
  engine::RecreateChange change;
  change.env["OLLAMA_KEEP_ALIVE"] = "5m";
  engine::RecreateOptions options;
  options.stop_timeout = 2s;
  const auto r = engine::recreate_container(engine, c.name(), change, options);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(inspect_field(c.name(), "{{range .Mounts}}{{.Name}}{{end}}"), volume);
  const auto read = docker({"exec", c.name(), "/bin/busybox", "cat", "/data/model"});
  EXPECT_EQ(read.out, "kept\n") << read.err;
  // Mounted again by name, the volume now outlives the container as a named one would: removed here by hand.
  EXPECT_EQ(docker({"rm", "-f", c.name()}).exit_code, 0);
  EXPECT_EQ(docker({"volume", "rm", volume}).exit_code, 0);
}

TEST(RecreateEngine, NothingOfTheseTestsIsLeft) {
  expect_none_left("mw-rc-");
}

}  // namespace
}  // namespace mw::it
