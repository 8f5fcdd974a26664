#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/inventory.hpp"
#include "fake_services.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::engine;
using namespace std::chrono_literals;
using mw::test::FakeEngine;
using mw::test::TempDir;

namespace {

// A 64-hex container id that sorts differently from its index: the list's order is not the ids' order.
std::string id_of(int i) {
  return fmt::format("{:02x}", (i * 37) % 256) + std::string(62, static_cast<char>('a' + (i % 6)));
}

// n running containers on a cgroup v2 host tree (systemd driver), each with its cgroup, pid 0 (so found by its
// scope's name).
std::vector<nlohmann::json> make_host(const TempDir& root, int n) {
  root.write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  std::vector<nlohmann::json> containers;
  for (int i = 0; i < n; ++i) {
    const auto id = id_of(i);
    root.write("sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.current", "4096\n");
    containers.push_back(test::inspect_like(id, fmt::format("c{}", i), 0, 0, "http://127.0.0.1:11434"));
  }
  return containers;
}

InventoryOptions options_for(const TempDir& root, const FakeEngine& engine) {
  InventoryOptions o;
  o.root = probes::HostRoot(root.path());
  o.docker_host = engine.address();
  o.timeout = 2s;
  return o;
}

std::vector<std::string> names_of(const Inventory& inv) {
  std::vector<std::string> names;
  for (const auto& c : inv.containers) {
    names.push_back(c.name);
  }
  return names;
}

}  // namespace

TEST(InventoryConnections, OnePerEightContainersUpToFour) {
  EXPECT_EQ(inspect_connections(0), 1U);
  EXPECT_EQ(inspect_connections(1), 1U);
  EXPECT_EQ(inspect_connections(8), 1U);
  EXPECT_EQ(inspect_connections(9), 2U);
  EXPECT_EQ(inspect_connections(24), 3U);
  EXPECT_EQ(inspect_connections(25), 4U);
  EXPECT_EQ(inspect_connections(50), k_max_inspect_connections);
  EXPECT_EQ(inspect_connections(500), k_max_inspect_connections);
}

TEST(Inventory, FiftyContainersAreInspectedInParallelInTheListsOrder) {
  TempDir root;
  const auto containers = make_host(root, 50);
  TempDir sockets;
  FakeEngine engine(sockets.path() / "d.sock", containers);
  engine.hold_first_inspects(k_max_inspect_connections);  // answered only once 4 are in flight at once
  InventoryReader reader(options_for(root, engine));
  const auto inv = reader.read();
  ASSERT_TRUE(inv.docker.reachable) << (inv.docker.error ? inv.docker.error->line() : "");
  EXPECT_TRUE(inv.problems.empty()) << inv.problems.front().line();
  EXPECT_EQ(engine.max_inspects_at_once(), k_max_inspect_connections);
  ASSERT_EQ(inv.containers.size(), 50U);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(inv.containers[static_cast<std::size_t>(i)].name, fmt::format("c{}", i)) << "the list's order";
  }
  EXPECT_EQ(inv.cgroups.size(), 50U);
  EXPECT_TRUE(inv.cgroup_errors.empty());
  EXPECT_EQ(inv.cgroups.at(id_of(7)).memory_path, "system.slice/docker-" + id_of(7) + ".scope");
  EXPECT_EQ(engine.connections(), 4) << "the kept connection and 3 more";

  // Read again on the same reader: the kept connection was closed after the inspects and opens again.
  const auto again = reader.read();
  ASSERT_TRUE(again.docker.reachable);
  EXPECT_EQ(names_of(again), names_of(inv));
  ASSERT_NE(reader.client(), nullptr);
  EXPECT_EQ(reader.client()->api_version().text(), "1.41");
}

TEST(Inventory, AContainerGoneMidwayIsLeftOutWithoutAWord) {
  TempDir root;
  const auto containers = make_host(root, 30);
  TempDir sockets;
  FakeEngine engine(sockets.path() / "d.sock", containers);
  engine.fail_inspect(id_of(13), 404);
  const auto inv = read_inventory(options_for(root, engine));
  ASSERT_TRUE(inv.docker.reachable);
  EXPECT_TRUE(inv.problems.empty()) << inv.problems.front().line();
  ASSERT_EQ(inv.containers.size(), 29U);
  std::vector<std::string> expected;
  for (int i = 0; i < 30; ++i) {
    if (i != 13) {
      expected.push_back(fmt::format("c{}", i));
    }
  }
  EXPECT_EQ(names_of(inv), expected);
  EXPECT_FALSE(inv.cgroups.contains(id_of(13)));
  EXPECT_EQ(inv.cgroups.size(), 29U);
}

TEST(Inventory, AnInspectErrorIsAProblemNamingTheContainer) {
  TempDir root;
  const auto containers = make_host(root, 20);
  TempDir sockets;
  FakeEngine engine(sockets.path() / "d.sock", containers);
  engine.fail_inspect(id_of(4), 500);
  engine.fail_inspect(id_of(17), 404);
  const auto inv = read_inventory(options_for(root, engine));
  ASSERT_TRUE(inv.docker.reachable);
  ASSERT_EQ(inv.problems.size(), 1U);
  EXPECT_EQ(inv.problems[0].line(),
            engine.address() + " (GET /v1.41/containers/" + id_of(4) + "/json): HTTP 500: internal error");
  EXPECT_EQ(inv.containers.size(), 18U) << "left out too";
  EXPECT_EQ(inv.containers.front().name, "c0");
  EXPECT_EQ(inv.containers[4].name, "c5");
  EXPECT_EQ(inv.containers.back().name, "c19");
}

TEST(Inventory, FewContainersTakeOnlyTheKeptConnection) {
  TempDir root;
  const auto containers = make_host(root, 8);
  TempDir sockets;
  FakeEngine engine(sockets.path() / "d.sock", containers);
  InventoryReader reader(options_for(root, engine));
  const auto inv = reader.read();
  ASSERT_EQ(inv.containers.size(), 8U);
  EXPECT_EQ(engine.connections(), 1);
  EXPECT_EQ(engine.max_inspects_at_once(), 1U);
  (void)reader.read();
  EXPECT_EQ(engine.connections(), 1) << "kept between reads";
  const auto requests = engine.requests();
  EXPECT_EQ(requests.front(), "GET /_ping");
  EXPECT_EQ(std::count(requests.begin(), requests.end(), "GET /_ping"), 1) << "connected once";
}

TEST(Inventory, ACgroupThatCannotBeFoundStaysWithItsReason) {
  TempDir root;
  auto containers = make_host(root, 12);
  std::filesystem::remove_all(root.path() / "sys/fs/cgroup/system.slice" / ("docker-" + id_of(9) + ".scope"));
  TempDir sockets;
  FakeEngine engine(sockets.path() / "d.sock", containers);
  const auto inv = read_inventory(options_for(root, engine));
  ASSERT_EQ(inv.containers.size(), 12U);
  EXPECT_EQ(inv.cgroups.size(), 11U);
  ASSERT_TRUE(inv.cgroup_errors.contains(id_of(9)));
  EXPECT_EQ(inv.cgroup_errors.at(id_of(9)).code, ENOENT);
}

TEST(Inventory, ReadsEachContainersMemoryWithItWhenAsked) {
  TempDir root;
  const auto containers = make_host(root, 20);
  for (int i = 0; i < 20; ++i) {
    root.write("sys/fs/cgroup/system.slice/docker-" + id_of(i) + ".scope/memory.current",
               fmt::format("{}\n", 1000 + i));
  }
  root.write("sys/fs/cgroup/system.slice/docker-" + id_of(3) + ".scope/memory.stat", "anon lots\n");
  TempDir sockets;
  FakeEngine engine(sockets.path() / "d.sock", containers);
  auto options = options_for(root, engine);
  EXPECT_TRUE(read_inventory(options).memory.empty()) << "only when asked";
  options.read_memory = true;
  const auto inv = read_inventory(options);
  ASSERT_EQ(inv.memory.size(), 20U);
  for (int i = 0; i < 20; ++i) {
    const auto& read = inv.memory.at(id_of(i));
    ASSERT_TRUE(read.memory) << read.memory.error().line();
    EXPECT_EQ(read.memory->usage, static_cast<std::uint64_t>(1000 + i));
    EXPECT_EQ(read.problems.size(), i == 3 ? 1U : 0U) << i;
  }
  EXPECT_NE(inv.memory.at(id_of(3)).problems.front().line().find("memory.stat: "), std::string::npos);
}
