// The allocation test's safety floor and size refusal.
#include <gtest/gtest.h>

#include "core/ram_test.hpp"

namespace mw {
namespace {

constexpr std::uint64_t k_gib = 1ULL << 30;
constexpr std::uint64_t k_chunk = 256ULL << 20;

HostGauge gauge(std::uint64_t available, std::uint64_t pswpin, std::optional<double> psi = 0.0,
                std::optional<std::uint64_t> pswpout = 7) {
  return HostGauge{available, pswpin, pswpout, psi};
}

TEST(SafetyFloor, GoesOnWhileTheNextChunkLeavesTheReserve) {
  const SafetyFloor floor;
  const auto base = gauge(20 * k_gib, 100);
  EXPECT_EQ(check_floor(floor, base, gauge(20 * k_gib, 100), k_chunk), std::nullopt);
  EXPECT_EQ(check_floor(floor, base, gauge(4 * k_gib + k_chunk, 100), k_chunk), std::nullopt) << "exactly the reserve";
  EXPECT_EQ(check_floor(floor, base, gauge(4 * k_gib + k_chunk - 1, 100), k_chunk), StopReason::reserve);
  EXPECT_EQ(check_floor(floor, base, gauge(3 * k_gib, 100), k_chunk), StopReason::reserve) << "already under it";
}

TEST(SafetyFloor, AnySwapInSinceTheStartStops) {
  const SafetyFloor floor;
  const auto base = gauge(20 * k_gib, 100);
  EXPECT_EQ(check_floor(floor, base, gauge(20 * k_gib, 101), k_chunk), StopReason::swap_in);
  EXPECT_EQ(check_floor(floor, base, gauge(20 * k_gib, 100, 0.0, 8), k_chunk), StopReason::swap_out)
      << "the host pushing other processes out for the test";
  EXPECT_EQ(check_floor(floor, base, gauge(20 * k_gib, 100, 0.0, std::nullopt), k_chunk), std::nullopt)
      << "no pswpout counter: the swap-in guard still holds";
}

TEST(SafetyFloor, PressureAboveTheThresholdStopsAndUnknownPressureDoesNot) {
  SafetyFloor floor;
  floor.psi_full_max = 5.0;
  const auto base = gauge(20 * k_gib, 100);
  EXPECT_EQ(check_floor(floor, base, gauge(20 * k_gib, 100, 5.01), k_chunk), StopReason::pressure);
  EXPECT_EQ(check_floor(floor, base, gauge(20 * k_gib, 100, 5.0), k_chunk), std::nullopt);
  EXPECT_EQ(check_floor(floor, base, gauge(20 * k_gib, 100, std::nullopt), k_chunk), std::nullopt)
      << "a kernel without PSI: the other guards still hold";
}

TEST(SafetyFloor, AnUnreadableGaugeIsNoFloorAndStops) {
  const SafetyFloor floor;
  const auto base = gauge(20 * k_gib, 100);
  EXPECT_EQ(check_floor(floor, base, HostGauge{std::nullopt, 100, 7, 0.0}, k_chunk), StopReason::unreadable);
  EXPECT_EQ(check_floor(floor, base, HostGauge{20 * k_gib, std::nullopt, 7, 0.0}, k_chunk), StopReason::unreadable);
  EXPECT_EQ(check_floor(floor, HostGauge{20 * k_gib, std::nullopt, 7, 0.0}, gauge(20 * k_gib, 100), k_chunk),
            StopReason::unreadable);
}

TEST(RefuseSize, ZeroUnknownAndLargerThanTheHostAreRefusedBeforeAnything) {
  EXPECT_NE(refuse_size(0, 32 * k_gib, 4 * k_gib, "test ram 0").value_or("").find("0 tests nothing"),
            std::string::npos);
  EXPECT_TRUE(refuse_size(k_gib, std::nullopt, 4 * k_gib, "x").has_value());
  const auto big = refuse_size(29 * k_gib, 32 * k_gib, 4 * k_gib, "test ram 29G");
  ASSERT_TRUE(big.has_value());
  EXPECT_NE(big->find("test ram 29G: 29.0 GiB is more than this host's 32.0 GiB less the 4.00 GiB reserve"),
            std::string::npos)
      << *big;
  EXPECT_FALSE(refuse_size(28 * k_gib, 32 * k_gib, 4 * k_gib, "x").has_value());
  EXPECT_TRUE(refuse_size(k_gib, 2 * k_gib, 4 * k_gib, "x").has_value()) << "a reserve larger than the host";
}

}  // namespace
}  // namespace mw
