#include <gtest/gtest.h>

#include "probes/cgroup.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::probes;
using mw::test::TempDir;

namespace {

const std::string k_hybrid_id = "1a41e922df86006078d99eb27e8cdf5cd62c8b9ada79ffb2cc02328721727c2b";
const std::string k_ollama_id = "3f1c9a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6b8c0a1e3f5d7b9c2a4e6f8d0b1c3a";
const std::string k_grafana_id = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
const std::string k_v1sd_id = "7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f2a4c6e8b0d1f3a5c7e9b2d";
const std::string k_515_id = "c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6";

HostRoot fixture(const std::string& name) {
  return HostRoot(test::fixture_path("hosts/" + name));
}

struct Read {
  CgroupLayout layout;
  CgroupLocation where;
  CgroupMemory memory;
  std::vector<Error> problems;
};

Read read_container(const HostRoot& root, std::int64_t pid, const std::string& id) {
  Read r;
  auto layout = detect_cgroup_layout(root);
  EXPECT_TRUE(layout) << layout.error().line();
  r.layout = *layout;
  auto where = locate_container_cgroup(root, r.layout, pid, id);
  EXPECT_TRUE(where) << where.error().line();
  r.where = *where;
  auto memory = read_cgroup_memory(r.layout, r.where, r.problems);
  EXPECT_TRUE(memory) << memory.error().line();
  r.memory = *memory;
  return r;
}

}  // namespace

TEST(CgroupLayout, DetectsEachMode) {
  EXPECT_EQ(detect_cgroup_layout(fixture("v1-hybrid-cgroupfs"))->mode, CgroupMode::hybrid);
  EXPECT_EQ(detect_cgroup_layout(fixture("v1-systemd-nopsi"))->mode, CgroupMode::v1);
  EXPECT_EQ(detect_cgroup_layout(fixture("v2-systemd-incident"))->mode, CgroupMode::v2);
  const auto hybrid = detect_cgroup_layout(fixture("v1-hybrid-cgroupfs"));
  EXPECT_EQ(hybrid->memory_root.filename(), "memory");
  ASSERT_TRUE(hybrid->unified_root);
  EXPECT_EQ(hybrid->unified_root->filename(), "unified");
  EXPECT_FALSE(detect_cgroup_layout(fixture("v1-systemd-nopsi"))->unified_root);
}

TEST(CgroupLayout, NoHierarchyIsAnError) {
  TempDir dir;
  const auto layout = detect_cgroup_layout(HostRoot(dir.path()));
  ASSERT_FALSE(layout);
  EXPECT_NE(layout.error().message.find("no cgroup memory hierarchy"), std::string::npos);
}

TEST(ProcCgroup, ParsesV1AndV2Lines) {
  const auto entries = parse_proc_cgroup(test::read_fixture("hosts/v1-systemd-nopsi/proc/777/cgroup"), "c");
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 6U);
  EXPECT_EQ((*entries)[3].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ((*entries)[4].controllers, (std::vector<std::string>{"name=systemd"}));
  EXPECT_TRUE((*entries)[5].controllers.empty());
  const auto v1 = location_from_entries(*entries, CgroupMode::v1);
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->memory_path, "system.slice/docker-" + k_v1sd_id + ".scope");
  EXPECT_FALSE(v1->unified_path) << "v1-only hosts have no unified tree for PSI";
}

TEST(ProcCgroup, HybridTakesMemoryControllerAndUnifiedPath) {
  const auto entries = parse_proc_cgroup(test::read_fixture("hosts/v1-hybrid-cgroupfs/proc/15798/cgroup"), "c");
  ASSERT_TRUE(entries);
  const auto where = location_from_entries(*entries, CgroupMode::hybrid);
  ASSERT_TRUE(where);
  EXPECT_EQ(where->memory_path, "docker/" + k_hybrid_id);
  EXPECT_EQ(where->unified_path, "docker/" + k_hybrid_id);
}

TEST(ProcCgroup, V2WithoutUnifiedLineHasNoLocation) {
  const auto entries = parse_proc_cgroup("4:memory:/docker/abc\n", "c");
  ASSERT_TRUE(entries);
  EXPECT_FALSE(location_from_entries(*entries, CgroupMode::v2));
  EXPECT_TRUE(location_from_entries(*entries, CgroupMode::v1));
}

TEST(ProcCgroup, Malformed) {
  for (const char* text : {"garbage", "0::relative/path", "1:memory", "::"}) {
    const auto entries = parse_proc_cgroup(text, "/proc/1/cgroup");
    ASSERT_FALSE(entries) << text;
    EXPECT_EQ(entries.error().source, "/proc/1/cgroup");
  }
}

TEST(ContainerId, FromEveryDriversPath) {
  EXPECT_EQ(container_id_from_cgroup_path("/docker/" + k_hybrid_id), k_hybrid_id);
  EXPECT_EQ(container_id_from_cgroup_path("/system.slice/docker-" + k_ollama_id + ".scope"), k_ollama_id);
  EXPECT_EQ(container_id_from_cgroup_path("/kubepods/burstable/pod1/cri-containerd-" + k_grafana_id + ".scope"),
            k_grafana_id);
  EXPECT_FALSE(container_id_from_cgroup_path("/user.slice/user-1000.slice/session-2.scope"));
  EXPECT_FALSE(container_id_from_cgroup_path("/docker/" + k_hybrid_id.substr(0, 63)));
  EXPECT_FALSE(container_id_from_cgroup_path("/docker/" + k_hybrid_id + "0")) << "65 hex digits is not an id";
  EXPECT_FALSE(container_id_from_cgroup_path(""));
}

TEST(ReadCgroupMemory, CapturedV1HybridCgroupfs) {
  const auto r = read_container(fixture("v1-hybrid-cgroupfs"), 15798, k_hybrid_id);
  EXPECT_TRUE(r.problems.empty());
  const auto& m = r.memory;
  EXPECT_EQ(m.version, CgroupVersion::v1);
  EXPECT_EQ(m.path, "docker/" + k_hybrid_id);
  EXPECT_EQ(m.usage, 319488U);
  EXPECT_EQ(m.limit, MemoryLimit::of(64ULL << 20));
  EXPECT_EQ(m.anon, 53248U);
  EXPECT_EQ(m.file, 0U);
  EXPECT_EQ(m.peak, 3964928U);
  EXPECT_EQ(m.limit_hits, 0U);
  EXPECT_EQ(m.oom_kills, 0U);
  EXPECT_FALSE(m.oom_events) << "v1 has no OOM event counter";
  EXPECT_EQ(m.working_set(), 319488U);
  ASSERT_TRUE(m.pressure) << "hybrid hosts have PSI on the unified tree";
  EXPECT_DOUBLE_EQ(m.pressure->full->avg10, 0.0);
}

TEST(ReadCgroupMemory, V2SystemdIncident) {
  const auto r = read_container(fixture("v2-systemd-incident"), 4242, k_ollama_id);
  EXPECT_TRUE(r.problems.empty());
  const auto& m = r.memory;
  EXPECT_EQ(m.version, CgroupVersion::v2);
  EXPECT_EQ(r.where.memory_path, "system.slice/docker-" + k_ollama_id + ".scope");
  EXPECT_EQ(m.usage, 27004866560U);
  ASSERT_TRUE(m.limit);
  EXPECT_TRUE(m.limit->is_unlimited());
  EXPECT_EQ(m.anon, 26843545600U);
  EXPECT_EQ(m.file, 125829120U);
  EXPECT_EQ(m.file_mapped, 41943040U);
  EXPECT_EQ(m.shmem, 0U);
  EXPECT_EQ(m.inactive_file, 104857600U);
  EXPECT_EQ(m.active_file, 20971520U);
  EXPECT_EQ(m.swap, 5905580032U);
  EXPECT_EQ(m.peak, 27100000256U);
  EXPECT_EQ(m.oom_events, 0U);
  EXPECT_EQ(m.working_set(), 27004866560U - 104857600U);
  EXPECT_FALSE(m.percent_of_limit());
  ASSERT_TRUE(m.pressure && m.pressure->some);
  EXPECT_DOUBLE_EQ(m.pressure->some->avg10, 18.20);
}

TEST(ReadCgroupMemory, V2FoundByIdWhenThereIsNoPid) {
  const auto r = read_container(fixture("v2-systemd-incident"), 0, k_grafana_id);
  EXPECT_EQ(r.where.memory_path, "system.slice/docker-" + k_grafana_id + ".scope");
  EXPECT_EQ(r.memory.limit, MemoryLimit::of(1ULL << 30));
  EXPECT_EQ(r.memory.limit_hits, 2U);
  EXPECT_EQ(r.memory.oom_events, 1U);
  EXPECT_EQ(r.memory.oom_kills, 1U);
  EXPECT_EQ(r.memory.shmem, 4194304U);
}

TEST(ReadCgroupMemory, StalePidFallsBackToId) {
  // pid 15798 in the v2 tree does not exist: the id still finds the cgroup.
  const auto r = read_container(fixture("v2-systemd-incident"), 15798, k_ollama_id);
  EXPECT_EQ(r.memory.usage, 27004866560U);
}

TEST(ReadCgroupMemory, V1SystemdWithoutPsi) {
  const auto r = read_container(fixture("v1-systemd-nopsi"), 777, k_v1sd_id);
  EXPECT_TRUE(r.problems.empty());
  const auto& m = r.memory;
  EXPECT_EQ(m.usage, 8581545984U);
  EXPECT_EQ(m.limit, MemoryLimit::of(8ULL << 30));
  EXPECT_EQ(m.anon, 7776239616U);
  EXPECT_EQ(m.file, 805306368U);
  EXPECT_EQ(m.swap, 268435456U);
  EXPECT_EQ(m.shmem, 16777216U);
  EXPECT_EQ(m.file_mapped, 134217728U);
  EXPECT_EQ(m.oom_kills, 3U);
  EXPECT_EQ(m.limit_hits, 41U);
  EXPECT_FALSE(m.pressure);
  EXPECT_NEAR(*m.percent_of_limit(), 100.0 * (8581545984.0 - 536870912.0) / 8589934592.0, 1e-9);
}

TEST(ReadCgroupMemory, OlderV2KernelLeavesMissingFilesUnknown) {
  const auto r = read_container(fixture("v2-cgroupfs-5.15"), 0, k_515_id);
  EXPECT_TRUE(r.problems.empty()) << "absent files are not problems";
  EXPECT_EQ(r.where.memory_path, "docker/" + k_515_id);
  EXPECT_EQ(r.memory.usage, 1048576000U);
  EXPECT_FALSE(r.memory.peak) << "no memory.peak before 5.19: unknown, not 0";
  EXPECT_FALSE(r.memory.swap) << "no swap accounting: unknown, not 0";
  EXPECT_FALSE(r.memory.pressure);
  EXPECT_EQ(r.memory.anon, 943718400U);
}

TEST(ReadCgroupMemory, V1UnlimitedSentinel) {
  EXPECT_TRUE(parse_v1_limit("9223372036854771712\n", "l")->is_unlimited());
  EXPECT_EQ(*parse_v1_limit("67108864\n", "l")->bytes, 67108864U);
  EXPECT_FALSE(parse_v1_limit("-1\n", "l"));
  EXPECT_TRUE(parse_v2_limit("max\n", "l")->is_unlimited());
  EXPECT_EQ(*parse_v2_limit("1073741824\n", "l")->bytes, 1073741824U);
  const auto bad = parse_v2_limit("maximum\n", "memory.max");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().line(), "memory.max: expected 'max' or a number, got 'maximum'");
}

TEST(ReadCgroupMemory, MalformedOptionalFileIsReportedAndTheRestKept) {
  TempDir dir;
  test::copy_fixture("hosts/v2-systemd-incident", dir);
  const auto cg = "sys/fs/cgroup/system.slice/docker-" + k_ollama_id + ".scope/";
  dir.write(cg + "memory.stat", "anon 12\nfile twelve\n");
  dir.write(cg + "memory.max", "");
  std::filesystem::remove(dir.path() / cg / "memory.events");
  std::filesystem::remove(dir.path() / cg / "memory.peak");
  std::filesystem::create_directories(dir.path() / cg / "memory.peak");  // read() fails with EISDIR
  const auto r = read_container(HostRoot(dir.path()), 4242, k_ollama_id);
  EXPECT_EQ(r.memory.usage, 27004866560U) << "usage still read";
  EXPECT_EQ(r.memory.swap, 5905580032U) << "other files still read";
  EXPECT_FALSE(r.memory.anon) << "a malformed memory.stat leaves its fields unknown";
  EXPECT_FALSE(r.memory.limit);
  EXPECT_FALSE(r.memory.peak);
  EXPECT_FALSE(r.memory.oom_kills);
  ASSERT_EQ(r.problems.size(), 3U);
  EXPECT_NE(r.problems[0].line().find("memory.max: expected 'max' or a number"), std::string::npos)
      << r.problems[0].line();
  EXPECT_NE(r.problems[1].line().find("memory.stat: line 2: expected 'name number', got 'file twelve'"),
            std::string::npos)
      << r.problems[1].line();
  EXPECT_EQ(r.problems[2].code, EISDIR);
}

TEST(ReadCgroupMemory, GoneCgroupIsAnError) {
  const auto root = fixture("v2-systemd-incident");
  const auto layout = detect_cgroup_layout(root);
  const auto where = locate_container_cgroup(root, *layout, 99999, std::string(64, 'e'));
  ASSERT_FALSE(where);
  EXPECT_EQ(where.error().code, ENOENT);
  EXPECT_NE(where.error().message.find("no memory cgroup for container eeeeeeeeeeee"), std::string::npos);
  std::vector<Error> problems;
  const auto memory = read_cgroup_memory(*layout, CgroupLocation{"system.slice/gone.scope", std::nullopt}, problems);
  ASSERT_FALSE(memory);
  EXPECT_EQ(memory.error().code, ENOENT);
}

TEST(ReadCgroupMemory, GarbageUsage) {
  TempDir dir;
  test::copy_fixture("hosts/v2-cgroupfs-5.15", dir);
  dir.write("sys/fs/cgroup/docker/" + k_515_id + "/memory.current", "\x01\x02\xff\n");
  const auto layout = detect_cgroup_layout(HostRoot(dir.path()));
  std::vector<Error> problems;
  const auto memory = read_cgroup_memory(*layout, CgroupLocation{"docker/" + k_515_id, std::nullopt}, problems);
  ASSERT_FALSE(memory);
  EXPECT_NE(memory.error().line().find("memory.current: expected a number"), std::string::npos);
}

TEST(FlatKeyed, ParsesAndRejects) {
  const auto f = parse_flat_keyed("a 1\nb 2\n", "s");
  ASSERT_TRUE(f);
  EXPECT_EQ(find_key(*f, "b"), 2U);
  EXPECT_FALSE(find_key(*f, "c"));
  EXPECT_FALSE(parse_flat_keyed("a -1\n", "s"));
  EXPECT_FALSE(parse_flat_keyed(" 5\n", "s"));
  EXPECT_FALSE(parse_flat_keyed("a 99999999999999999999999\n", "s"));
}

TEST(CgroupFiles, KeepsDescriptorsOnlyOnACgroupFileSystem) {
  // The fixture trees are regular files: nothing is kept, each read opens the files as before.
  const auto r = read_container(fixture("v2-systemd-incident"), 4242, k_ollama_id);
  ASSERT_NE(r.where.files, nullptr) << "locate gives a location its descriptors";
  std::vector<Error> problems;
  ASSERT_TRUE(read_cgroup_memory(r.layout, r.where, problems));
  EXPECT_EQ(r.where.files->kept(), 0U);
}

namespace {

struct KeptCase {
  TempDir dir;
  CgroupLayout layout;
  CgroupLocation where;
  std::string cgroup;  // relative to dir
};

void make_kept_case(KeptCase& c) {
  test::copy_fixture("hosts/v2-cgroupfs-5.15", c.dir);
  c.layout = *detect_cgroup_layout(HostRoot(c.dir.path()));
  c.where = CgroupLocation{"docker/" + k_515_id, std::nullopt,
                           std::make_shared<CgroupFiles>(CgroupFiles::Keep::on_any_file_system)};
  c.cgroup = "sys/fs/cgroup/docker/" + k_515_id + "/";
}

}  // namespace

TEST(CgroupFiles, KeptFromTheSecondReadOnAndReadingTheCurrentContent) {
  KeptCase c;
  make_kept_case(c);
  std::vector<Error> problems;
  const auto first = read_cgroup_memory(c.layout, c.where, problems);
  ASSERT_TRUE(first) << first.error().line();
  EXPECT_EQ(c.where.files->kept(), 0U) << "a one-off read keeps nothing";
  const auto second = read_cgroup_memory(c.layout, c.where, problems);
  ASSERT_TRUE(second) << second.error().line();
  EXPECT_EQ(c.where.files->kept(), 4U) << "memory.current, memory.max, memory.stat and memory.events are there";
  EXPECT_EQ(second->usage, first->usage);
  EXPECT_EQ(second->anon, first->anon);
  EXPECT_EQ(second->limit, first->limit);
  EXPECT_EQ(second->limit_hits, first->limit_hits);

  // Written in place (as the kernel's files change): the next read sees it, on the same descriptors.
  c.dir.write(c.cgroup + "memory.current", "123456789\n");
  c.dir.write(c.cgroup + "memory.stat", "anon 42\nfile 7\n");
  const auto third = read_cgroup_memory(c.layout, c.where, problems);
  ASSERT_TRUE(third) << third.error().line();
  EXPECT_EQ(third->usage, 123456789U);
  EXPECT_EQ(third->anon, 42U);
  EXPECT_EQ(third->file, 7U);
  EXPECT_EQ(c.where.files->kept(), 4U);
  EXPECT_TRUE(problems.empty()) << problems.front().line();

  // A copy shares them.
  const CgroupLocation copy = c.where;
  ASSERT_TRUE(read_cgroup_memory(c.layout, copy, problems));
  EXPECT_EQ(c.where.files->kept(), 4U);
}

TEST(CgroupFiles, AFailureOnAKeptDescriptorDropsItAndOpensAfresh) {
  KeptCase c;
  make_kept_case(c);
  std::vector<Error> problems;
  ASSERT_TRUE(read_cgroup_memory(c.layout, c.where, problems));
  ASSERT_TRUE(read_cgroup_memory(c.layout, c.where, problems));
  ASSERT_EQ(c.where.files->kept(), 4U);
  // Past the cap (as a removed cgroup's ENODEV): the kept descriptor is dropped, a fresh open tells the error.
  c.dir.write(c.cgroup + "memory.stat", std::string(k_max_file_bytes + 1, '9'));
  const auto big = read_cgroup_memory(c.layout, c.where, problems);
  ASSERT_TRUE(big) << big.error().line();
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].code, EFBIG);
  EXPECT_FALSE(big->anon);
  EXPECT_EQ(c.where.files->kept(), 3U);
  problems.clear();
  c.dir.write(c.cgroup + "memory.stat", "anon 5\n");
  const auto again = read_cgroup_memory(c.layout, c.where, problems);
  ASSERT_TRUE(again) << again.error().line();
  EXPECT_EQ(again->anon, 5U);
  EXPECT_EQ(c.where.files->kept(), 4U) << "kept again";
  EXPECT_TRUE(problems.empty());
}

TEST(CgroupFiles, AGoneCgroupIsStillAnError) {
  KeptCase c;
  make_kept_case(c);
  std::vector<Error> problems;
  const CgroupLocation gone{"docker/" + std::string(64, 'e'), std::nullopt, c.where.files};
  for (int i = 0; i < 2; ++i) {
    const auto memory = read_cgroup_memory(c.layout, gone, problems);
    ASSERT_FALSE(memory);
    EXPECT_EQ(memory.error().code, ENOENT);
    EXPECT_EQ(memory.error().source,
              (c.dir.path() / "sys/fs/cgroup/docker" / std::string(64, 'e') / "memory.current").string());
  }
  EXPECT_EQ(c.where.files->kept(), 0U);
}
