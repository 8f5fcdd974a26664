// Timestamps are points in time: differences are durations, and two points cannot be added.
#include <gtest/gtest.h>

#include <type_traits>

#include "core/clock.hpp"

namespace mw {
namespace {

using namespace std::chrono_literals;

template <class A, class B>
concept Addable = requires(A a, B b) {
  a + b;
};

static_assert(!Addable<Timestamp, Timestamp>, "two points in time cannot be added");
static_assert(Addable<Timestamp, Duration>);
static_assert(std::is_same_v<decltype(Timestamp{} + Duration{}), Timestamp>);
static_assert(std::is_same_v<decltype(Timestamp{} - Timestamp{}), Duration>);
static_assert(!std::is_convertible_v<Duration, Timestamp>, "a duration is not silently a point in time");
static_assert(!std::is_convertible_v<std::int64_t, Timestamp>);

TEST(Timestamp, MillisecondsRoundTrip) {
  const auto t = timestamp_from_ms(1'234'567);
  EXPECT_EQ(to_ms(t), 1'234'567);
  EXPECT_EQ(to_ms(t + 3s), 1'237'567);
  EXPECT_EQ(timestamp_from_ms(5000) - timestamp_from_ms(2000), 3s);
  EXPECT_EQ(to_ms(Timestamp{}), 0) << "a default timestamp is the epoch";
  EXPECT_LT(timestamp_from_ms(-1), Timestamp{});
}

}  // namespace
}  // namespace mw
