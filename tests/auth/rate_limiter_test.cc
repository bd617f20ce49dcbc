#include "auth/rate_limiter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tickwire::auth {
namespace {

using std::chrono::milliseconds;
using Clock = AuthRateLimiter::Clock;

RateLimitSettings Settings() {
  RateLimitSettings s;
  s.address_budget = 3;
  s.user_budget = 5;
  s.backoff_min = milliseconds(100);
  s.backoff_max = milliseconds(800);
  s.capacity = 64;
  return s;
}

TEST(AuthRateLimiter, AddressBudgetThenExponentialBackoffWithCap) {
  AuthRateLimiter rl(Settings());
  auto t = Clock::now();
  EXPECT_EQ(rl.Check("10.0.0.1", "u", t), 0u);
  rl.OnFailure("10.0.0.1", "u", t);
  rl.OnFailure("10.0.0.1", "u", t);
  EXPECT_EQ(rl.Check("10.0.0.1", "u", t), 0u);
  rl.OnFailure("10.0.0.1", "u", t);  // third: budget used, 100 ms
  EXPECT_EQ(rl.Check("10.0.0.1", "other", t), 100u);
  EXPECT_EQ(rl.Check("10.0.0.2", "other", t), 0u) << "another address is not affected";
  std::vector<std::uint32_t> waits;
  for (int i = 0; i < 6; ++i) {
    t += milliseconds(rl.Check("10.0.0.1", "x", t));  // wait out the block, fail again
    rl.OnFailure("10.0.0.1", "v" + std::to_string(i), t);
    waits.push_back(rl.Check("10.0.0.1", "x", t));
  }
  EXPECT_EQ(waits, (std::vector<std::uint32_t>{200, 400, 800, 800, 800, 800}));
  EXPECT_EQ(rl.Check("10.0.0.1", "x", t + milliseconds(799)), 1u);
  EXPECT_EQ(rl.Check("10.0.0.1", "x", t + milliseconds(800)), 0u);
  EXPECT_EQ(rl.failures_total(), 9u);
}

TEST(AuthRateLimiter, UserBudgetAcrossAddresses) {
  AuthRateLimiter rl(Settings());
  const auto t = Clock::now();
  for (int i = 0; i < 5; ++i) rl.OnFailure("10.1.0." + std::to_string(i), "alice", t);
  EXPECT_EQ(rl.Check("10.2.0.1", "alice", t), 100u);
  EXPECT_EQ(rl.Check("10.2.0.1", "bob", t), 0u);
}

TEST(AuthRateLimiter, SuccessClearsTheAddressAndQuietPeriodsForgive) {
  AuthRateLimiter rl(Settings());
  auto t = Clock::now();
  for (int i = 0; i < 3; ++i) rl.OnFailure("10.0.0.1", "u" + std::to_string(i), t);
  EXPECT_GT(rl.Check("10.0.0.1", "x", t), 0u);
  rl.OnSuccess("10.0.0.1");
  EXPECT_EQ(rl.Check("10.0.0.1", "x", t), 0u);
  // Two failures, a long quiet time, then two more: the count started over, no block.
  rl.OnFailure("10.0.0.3", "a", t);
  rl.OnFailure("10.0.0.3", "b", t);
  t += milliseconds(5000);
  rl.OnFailure("10.0.0.3", "c", t);
  rl.OnFailure("10.0.0.3", "d", t);
  EXPECT_EQ(rl.Check("10.0.0.3", "x", t), 0u);
}

TEST(AuthRateLimiter, Ipv6CountsPerSlash64) {
  EXPECT_EQ(AuthRateLimiter::AddressKey("2001:db8:1:2:aaaa::1"), "a:2001:db8:1:2::/64");
  EXPECT_EQ(AuthRateLimiter::AddressKey("2001:db8:1:2:bbbb::9"), "a:2001:db8:1:2::/64");
  EXPECT_EQ(AuthRateLimiter::AddressKey("::ffff:10.0.0.1"), "a:::ffff:10.0.0.1");
  EXPECT_EQ(AuthRateLimiter::AddressKey("10.0.0.1"), "a:10.0.0.1");
  AuthRateLimiter rl(Settings());
  const auto t = Clock::now();
  for (int i = 1; i <= 3; ++i) rl.OnFailure("2001:db8::" + std::to_string(i), "u", t);
  EXPECT_GT(rl.Check("2001:db8::ffff", "x", t), 0u);
  EXPECT_EQ(rl.Check("2001:db9::1", "x", t), 0u);
}

TEST(AuthRateLimiter, MemoryIsBoundedAndBlockedKeysSurviveEviction) {
  AuthRateLimiter rl(Settings());  // 64 keys
  const auto t = Clock::now();
  for (int i = 0; i < 3; ++i) rl.OnFailure("192.0.2.1", "victim-" + std::to_string(i), t);
  ASSERT_GT(rl.Check("192.0.2.1", "x", t), 0u);
  for (int i = 0; i < 5000; ++i) {
    rl.OnFailure("198.51." + std::to_string(i / 250) + "." + std::to_string(i % 250), "spray",
                 t + milliseconds(1));
  }
  EXPECT_LE(rl.size(), 64u);
  EXPECT_GT(rl.Check("192.0.2.1", "x", t + milliseconds(1)), 0u)
      << "a blocked address is evicted only after unblocked ones";
}

TEST(AuthRateLimiter, ConcurrentUse) {
  AuthRateLimiter rl(Settings());
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&rl, th] {
      for (int i = 0; i < 2000; ++i) {
        const auto now = Clock::now();
        const std::string addr = "10.9." + std::to_string(th) + "." + std::to_string(i % 200);
        if (rl.Check(addr, "u", now) == 0) rl.OnFailure(addr, "u", now);
        if (i % 7 == 0) rl.OnSuccess(addr);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(rl.size(), 64u);
}

}  // namespace
}  // namespace tickwire::auth
