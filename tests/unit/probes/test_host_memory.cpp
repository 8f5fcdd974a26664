#include <gtest/gtest.h>

#include "probes/host_memory.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::probes;
using mw::test::TempDir;

TEST(Meminfo, CapturedHostFile) {
  const auto text = test::read_fixture("hosts/v1-hybrid-cgroupfs/proc/meminfo");
  const auto mi = parse_meminfo(text, "meminfo");
  ASSERT_TRUE(mi) << mi.error().line();
  EXPECT_GT(*mi->mem_total, 1ULL << 30);
  EXPECT_TRUE(mi->mem_available && mi->cached && mi->anon_pages && mi->shmem && mi->swap_total && mi->swap_free);
  EXPECT_LE(*mi->mem_available, *mi->mem_total);
  EXPECT_EQ(mi->used(), *mi->mem_total - *mi->mem_available);
}

TEST(Meminfo, IncidentHostInBytes) {
  const auto mi = read_meminfo(HostRoot(test::fixture_path("hosts/v2-systemd-incident")));
  ASSERT_TRUE(mi) << mi.error().line();
  EXPECT_EQ(mi->mem_total, 32768000ULL * 1024);
  EXPECT_EQ(mi->mem_available, 1992294ULL * 1024);
  EXPECT_EQ(mi->cached, 1400000ULL * 1024);
  EXPECT_EQ(mi->anon_pages, 29830912ULL * 1024);
  EXPECT_EQ(mi->swap_used(), (8388604ULL - 2621436ULL) * 1024);
  EXPECT_EQ(mi->active_file, 232960ULL * 1024);
}

TEST(Meminfo, MissingKeysStayUnknown) {
  const auto mi = parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n", "m");
  ASSERT_TRUE(mi);
  EXPECT_FALSE(mi->mem_available) << "a key the kernel did not print is unknown, never 0";
  EXPECT_FALSE(mi->used());
  EXPECT_FALSE(mi->swap_used());
}

TEST(Meminfo, MalformedLineNamesFileAndLine) {
  const auto mi = parse_meminfo("MemTotal: 1000 kB\nMemFree: lots kB\n", "/host/proc/meminfo");
  ASSERT_FALSE(mi);
  EXPECT_EQ(mi.error().source, "/host/proc/meminfo");
  EXPECT_EQ(mi.error().message, "line 2: expected 'Key: number kB', got 'MemFree: lots kB'");
}

TEST(Meminfo, NotAMeminfoFile) {
  for (const char* text : {"", "\n\n", "HugePages_Total: 0\n"}) {
    const auto mi = parse_meminfo(text, "m");
    ASSERT_FALSE(mi);
    EXPECT_NE(mi.error().message.find("no MemTotal"), std::string::npos);
  }
  EXPECT_FALSE(
      parse_meminfo("\x7f"
                    "ELF\x01\x02garbage",
                    "m"));
}

TEST(Meminfo, MissingAndUnreadableFiles) {
  TempDir dir;
  auto missing = read_meminfo(HostRoot(dir.path()));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().source, (dir.path() / "proc/meminfo").string());
  std::filesystem::create_directories(dir.path() / "proc/meminfo");  // a directory: read() fails with EISDIR
  auto unreadable = read_meminfo(HostRoot(dir.path()));
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().code, EISDIR);
}

TEST(Pressure, ParsesBothLines) {
  const auto p = parse_pressure(test::read_fixture("hosts/v2-systemd-incident/proc/pressure/memory"), "psi");
  ASSERT_TRUE(p) << p.error().line();
  EXPECT_DOUBLE_EQ(p->some->avg10, 31.42);
  EXPECT_DOUBLE_EQ(p->some->avg300, 12.05);
  EXPECT_DOUBLE_EQ(p->full->avg10, 12.50);
  EXPECT_DOUBLE_EQ(p->full->avg60, 9.87);
  EXPECT_EQ(p->full->total_us, 401928374U);
}

TEST(Pressure, SomeOnlyIsValid) {
  const auto p = parse_pressure("some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n", "psi");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->full);
}

TEST(Pressure, MalformedInputs) {
  for (const char* text : {"", "partial avg10=1 avg60=1 avg300=1 total=1", "some avg10=1.0 avg60=1.0 total=5",
                           "some avg10=x avg60=1 avg300=1 total=1", "some avg10=1 avg60=1 avg300=1 total=-3",
                           "some avg10 avg60 avg300 total"}) {
    const auto p = parse_pressure(text, "/proc/pressure/memory");
    ASSERT_FALSE(p) << text;
    EXPECT_EQ(p.error().source, "/proc/pressure/memory");
  }
}

TEST(Pressure, AbsentOnOldKernelsIsNotAnError) {
  const auto p = read_host_pressure(HostRoot(test::fixture_path("hosts/v1-systemd-nopsi")));
  ASSERT_TRUE(p) << p.error().line();
  EXPECT_FALSE(p->has_value());
}

TEST(Pressure, MalformedHostFileIsAnError) {
  TempDir dir;
  dir.write("proc/pressure/memory", "some avg10=banana\n");
  const auto p = read_host_pressure(HostRoot(dir.path()));
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().line().find("proc/pressure/memory: line 1"), std::string::npos) << p.error().line();
}

TEST(VmStat, SwapCounters) {
  const auto v = read_vmstat(HostRoot(test::fixture_path("hosts/v2-systemd-incident")));
  ASSERT_TRUE(v) << v.error().line();
  EXPECT_EQ(v->pswpin, 312004U);
  EXPECT_EQ(v->pswpout, 1841920U);
  EXPECT_EQ(v->oom_kill, 0U) << "present and zero is 0";
  const auto captured = parse_vmstat(test::read_fixture("hosts/v1-hybrid-cgroupfs/proc/vmstat"), "vmstat");
  ASSERT_TRUE(captured);
  EXPECT_TRUE(captured->pswpin && captured->pswpout && captured->pgmajfault);
}

TEST(VmStat, Malformed) {
  const auto v = parse_vmstat("pswpin 1\npswpout\n", "/proc/vmstat");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().line(), "/proc/vmstat: line 2: expected 'name number', got 'pswpout'");
  const auto missing = parse_vmstat("nr_free_pages 3\n", "v");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->pswpin);
}
