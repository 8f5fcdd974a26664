// The VRAM test's pure part: the chunks, the reserve before each chunk, the refusal of sizes the GPU cannot
// give, and the verdict of each stop.
#include <gtest/gtest.h>

#include "core/vram_test.hpp"

namespace mw {
namespace {

constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;

TEST(VramChunks, WholeChunksThenASmallerLastOne) {
  const std::uint64_t size = k_gib + 100 * k_mib;
  EXPECT_EQ(next_vram_chunk(size, 0, 256 * k_mib), 256 * k_mib);
  EXPECT_EQ(next_vram_chunk(size, k_gib, 256 * k_mib), 100 * k_mib) << "the last chunk is what is left";
  EXPECT_EQ(next_vram_chunk(size, size, 256 * k_mib), 0U) << "reached";
  EXPECT_EQ(next_vram_chunk(size, size + 1, 256 * k_mib), 0U);
  EXPECT_EQ(next_vram_chunk(100 * k_mib, 0, 256 * k_mib), 100 * k_mib) << "a size under one chunk";
  EXPECT_EQ(vram_chunk_count(size, 256 * k_mib), 5U);
  EXPECT_EQ(vram_chunk_count(k_gib, 256 * k_mib), 4U);
  EXPECT_EQ(vram_chunk_count(1, 256 * k_mib), 1U);
  EXPECT_EQ(vram_chunk_count(k_gib, 0), 0U);
}

TEST(VramReserve, TheNextChunkMayTakeFreeMemoryDownToTheReserveAndNoFurther) {
  const std::uint64_t reserve = 512 * k_mib;
  const std::uint64_t chunk = 256 * k_mib;
  EXPECT_FALSE(breaks_vram_reserve(4 * k_gib, reserve, chunk));
  EXPECT_FALSE(breaks_vram_reserve(reserve + chunk, reserve, chunk)) << "exactly the reserve left";
  EXPECT_TRUE(breaks_vram_reserve(reserve + chunk - 1, reserve, chunk));
  EXPECT_TRUE(breaks_vram_reserve(reserve - 1, reserve, chunk)) << "already under it";
  EXPECT_FALSE(breaks_vram_reserve(chunk, 0, chunk)) << "no reserve: the whole GPU";
  EXPECT_TRUE(breaks_vram_reserve(0, 0, 1));
}

TEST(VramRefusal, ZeroAndMoreThanTheGpuLessItsReserveAreRefused) {
  const std::uint64_t total = 16 * k_gib;
  const std::uint64_t reserve = 512 * k_mib;
  EXPECT_EQ(refuse_vram_size(total - reserve, total, reserve, "GPU 0", "test vram"), std::nullopt)
      << "up to total less the reserve may be tried";
  const auto big = refuse_vram_size(total - reserve + 1, total, reserve, "GPU 0", "test vram");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(*big, "test vram: 15.5 GiB is more than GPU 0's 16.0 GiB less the 512 MiB reserve");
  EXPECT_NE(refuse_vram_size(0, total, reserve, "GPU 0", "test vram").value_or("").find("0 tests nothing"),
            std::string::npos);
  EXPECT_TRUE(refuse_vram_size(1, reserve, reserve, "GPU 0", "test vram").has_value())
      << "a reserve as large as the GPU leaves nothing";
}

TEST(VramVerdict, EachStopHasItsExitCode) {
  EXPECT_EQ(exit_code_of(verdict_of(VramStop::reached)), 0);
  EXPECT_EQ(exit_code_of(verdict_of(VramStop::reserve)), 4);
  EXPECT_EQ(exit_code_of(verdict_of(VramStop::out_of_memory)), 4);
  EXPECT_EQ(exit_code_of(verdict_of(VramStop::gpu_lost)), 1);
  EXPECT_EQ(exit_code_of(verdict_of(VramStop::failed)), 1);
  EXPECT_EQ(exit_code_of(verdict_of(VramStop::interrupted)), 130);
  EXPECT_EQ(exit_code_of(VramVerdict::source_missing), 3);
  EXPECT_STREQ(to_string(VramStop::out_of_memory), "out-of-memory");
  EXPECT_STREQ(to_string(VramStop::gpu_lost), "gpu-lost");
  EXPECT_STREQ(to_string(VramStop::reserve), "reserve");
}

}  // namespace
}  // namespace mw
