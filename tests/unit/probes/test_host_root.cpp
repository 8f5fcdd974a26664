// Reading files with a cap, and refusing what is not a regular file without blocking.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "probes/host_root.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::probes;
using mw::test::TempDir;

TEST(ReadFile, ReadsUpToItsCapAndRefusesMore) {
  TempDir dir;
  dir.write("exact", std::string(1000, 'a'));
  dir.write("over", std::string(1001, 'a'));
  const auto exact = read_file(dir.path() / "exact", 1000);
  ASSERT_TRUE(exact) << exact.error().line();
  EXPECT_EQ(exact->size(), 1000U);
  const auto over = read_file(dir.path() / "over", 1000);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, EFBIG);
  EXPECT_EQ(over.error().line(),
            (dir.path() / "over").string() + ": larger than 1000 bytes, the most memwarden reads of it");
  const auto cut = read_file(dir.path() / "over", 1000, Overflow::truncate);
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->size(), 1000U);
}

TEST(ReadFile, DevZeroStopsAtTheCap) {
  const auto zero = read_file("/dev/zero", 64U << 10);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, EFBIG);
}

TEST(ReadRegularFile, RefusesAFifoAtOnce) {
  TempDir dir;
  const auto fifo = dir.path() / "x.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto started = std::chrono::steady_clock::now();
  const auto r = read_regular_file(fifo, 1U << 20);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().line(), fifo.string() + ": is a FIFO, not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(ReadRegularFile, RefusesDevicesDirectoriesAndLargeFiles) {
  const auto zero = read_regular_file("/dev/zero", 1U << 20);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().line(), "/dev/zero: is a character device, not a regular file");
  TempDir dir;
  const auto d = read_regular_file(dir.path(), 1U << 20);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("a directory"), std::string::npos);
  dir.write("big", std::string((1U << 20) + 1, 'y'));
  const auto big = read_regular_file(dir.path() / "big", 1U << 20);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message, "larger than 1 MiB, the most memwarden reads of it");
  dir.write("ok", "fine\n");
  const auto ok = read_regular_file(dir.path() / "ok", 1U << 20);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, "fine\n");
  const auto missing = read_regular_file(dir.path() / "nope", 1U << 20);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
}
