#include "common/wall_clock.h"

#include <gtest/gtest.h>

#include <chrono>

namespace tickwire::common {
namespace {

std::int64_t SystemNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(WallClock, IsNanosecondsSinceTheUnixEpoch) {
  const std::int64_t before = SystemNs();
  const std::int64_t ns = WallClockNs();
  const std::int64_t after = SystemNs();
  // Unless the clock steps between the reads, the helper lies between two direct reads.
  EXPECT_LE(before, ns);
  EXPECT_LE(ns, after);
  // Nanoseconds, not milliseconds or seconds: 2020-01-01 is 1.577e18 ns after the epoch.
  EXPECT_GT(ns, 1'577'836'800'000'000'000);
}

TEST(WallClock, MillisecondsAreTheNanosecondsTruncated) {
  const std::int64_t before = WallClockNs() / 1'000'000;
  const std::int64_t ms = WallClockMs();
  const std::int64_t after = WallClockNs() / 1'000'000;
  EXPECT_LE(before, ms);
  EXPECT_LE(ms, after);
}

}  // namespace
}  // namespace tickwire::common
