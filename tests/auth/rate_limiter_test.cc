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
  s.user_delay_max = milliseconds(400);
  s.capacity = 64;
  return s;
}

// One whole AUTH as the session runs it: the address check, then the verdict.
std::uint32_t Fail(AuthRateLimiter& rl, const std::string& address, const std::string& user,
                   Clock::time_point t) {
  const std::uint32_t wait = rl.BeginAttempt(address, t);
  if (wait == 0) rl.OnFailure(address, user, t);
  return wait;
}
std::uint32_t Succeed(AuthRateLimiter& rl, const std::string& address, const std::string& user,
                      Clock::time_point t) {
  const std::uint32_t wait = rl.BeginAttempt(address, t);
  if (wait == 0) rl.OnSuccess(address, user, t);
  return wait;
}

TEST(AuthRateLimiter, AddressBudgetThenExponentialBackoffWithCap) {
  AuthRateLimiter rl(Settings());
  auto t = Clock::now();
  EXPECT_EQ(Fail(rl, "10.0.0.1", "u", t), 0u);
  EXPECT_EQ(Fail(rl, "10.0.0.1", "u", t), 0u);
  EXPECT_EQ(Fail(rl, "10.0.0.1", "u", t), 0u);  // third: budget used, 100 ms
  EXPECT_EQ(rl.BeginAttempt("10.0.0.1", t), 100u);
  EXPECT_EQ(rl.BeginAttempt("10.0.0.2", t), 0u) << "another address is not affected";
  std::vector<std::uint32_t> waits;
  for (int i = 0; i < 6; ++i) {
    t += milliseconds(rl.BeginAttempt("10.0.0.1", t));  // wait out the block, fail again
    EXPECT_EQ(Fail(rl, "10.0.0.1", "v" + std::to_string(i), t), 0u);
    waits.push_back(rl.BeginAttempt("10.0.0.1", t));
  }
  // At the cap one failure leaks away per wait (backoff_max is also the leak), so the count
  // stays where it is: one attempt per 800 ms for as long as the address keeps failing.
  EXPECT_EQ(waits, (std::vector<std::uint32_t>{200, 400, 800, 800, 800, 800}));
  EXPECT_EQ(rl.failures_total(), 9u);
}

// A refused attempt is not charged: waiting it out is all a blocked address can do.
TEST(AuthRateLimiter, RefusedAttemptsAreNotCounted) {
  AuthRateLimiter rl(Settings());
  const auto t = Clock::now();
  for (int i = 0; i < 3; ++i) Fail(rl, "10.0.0.1", "u", t);
  for (int i = 0; i < 50; ++i) EXPECT_GT(rl.BeginAttempt("10.0.0.1", t + milliseconds(i)), 0u);
  EXPECT_EQ(rl.BeginAttempt("10.0.0.1", t + milliseconds(100)), 0u) << "still the first wait";
}

// Regression (a success used to erase the address's failures, so "budget - 1 wrong guesses,
// then one right login" could be repeated for ever): failures leak away at one per
// backoff_max, and a success only refunds its own charge.
TEST(AuthRateLimiter, SuccessDoesNotResetTheAddressFailuresLeakAway) {
  AuthRateLimiter rl(Settings());  // budget 3, one failure forgotten per 800 ms
  const auto t0 = Clock::now();
  auto t = t0;
  int guesses = 0;
  // The attacker knows one password (its own account) and guesses another's, as fast as the
  // limiter lets it, for 8 s: 2 wrong, 1 right, repeated.
  for (int round = 0; round < 1000 && t < t0 + milliseconds(8000); ++round) {
    for (int i = 0; i < 2; ++i) {
      const std::uint32_t wait = rl.BeginAttempt("10.0.0.9", t);
      if (wait > 0) {
        t += milliseconds(wait);
        continue;
      }
      rl.OnFailure("10.0.0.9", "victim", t);
      ++guesses;
    }
    t += milliseconds(Succeed(rl, "10.0.0.9", "mine", t));
  }
  // At most: the budget (3) at once, one attempt in each of the doubling waits below the cap
  // (100, 200, 400 ms), then one per 800 ms. Successes use up attempts too.
  EXPECT_LE(guesses, 3 + 3 + 8000 / 800);
  EXPECT_GE(guesses, 3);
}

TEST(AuthRateLimiter, ChargedAtTheStartSoConcurrentAttemptsCannotOvershoot) {
  AuthRateLimiter rl(Settings());
  const auto t = Clock::now();
  int admitted = 0;
  for (int i = 0; i < 20; ++i) {
    if (rl.BeginAttempt("10.0.0.1", t) == 0) ++admitted;  // all in flight, none answered yet
  }
  EXPECT_EQ(admitted, 3);
  // A success refunds: a fourth attempt from the same address can go once one was right.
  rl.OnSuccess("10.0.0.1", "u", t);
  rl.OnUnchecked("10.0.0.1", t);  // and one that never got checked
  EXPECT_EQ(rl.BeginAttempt("10.0.0.1", t), 0u);
}

TEST(AuthRateLimiter, FailuresAreForgottenOneByOne) {
  AuthRateLimiter rl(Settings());
  auto t = Clock::now();
  for (int i = 0; i < 3; ++i) Fail(rl, "10.0.0.3", "u", t);
  EXPECT_EQ(rl.BeginAttempt("10.0.0.3", t + milliseconds(99)), 1u);
  // 800 ms later one failure is forgotten: 2 < 3, so one more attempt goes ahead at once...
  t += milliseconds(800);
  EXPECT_EQ(Fail(rl, "10.0.0.3", "u", t), 0u);
  EXPECT_EQ(rl.BeginAttempt("10.0.0.3", t), 100u) << "...and the budget is used again";
  // After 4 x 800 ms quiet everything is forgotten: the whole budget again.
  t += milliseconds(3200);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Fail(rl, "10.0.0.3", "u", t), 0u) << i;
  EXPECT_GT(rl.BeginAttempt("10.0.0.3", t), 0u);
}

// Regression (a user name over its budget used to refuse every AUTH for it from anywhere, the
// right password included, renewable for ever by a few addresses): the name is throttled, not
// blocked.
TEST(AuthRateLimiter, UserBudgetThrottlesAndNeverRefuses) {
  AuthRateLimiter rl(Settings());  // user budget 5, delay 100 ms doubling to 400 ms
  auto t = Clock::now();
  for (int i = 0; i < 5; ++i) Fail(rl, "10.1.0." + std::to_string(i), "alice", t);
  EXPECT_EQ(rl.BeginAttempt("10.2.0.1", t), 0u) << "a fresh address is never refused";
  EXPECT_EQ(rl.UserDelay("10.2.0.1", "alice", t), milliseconds(100));
  EXPECT_EQ(rl.UserDelay("10.2.0.1", "bob", t), milliseconds(0));
  for (int i = 5; i < 9; ++i) Fail(rl, "10.1.0." + std::to_string(i), "alice", t);
  EXPECT_EQ(rl.UserDelay("10.2.0.2", "alice", t), milliseconds(400)) << "doubled up to the cap";
  EXPECT_EQ(rl.delayed_total(), 2u);
  // Failures for the name leak away like an address's: 5 x 800 ms later it is below budget.
  EXPECT_EQ(rl.UserDelay("10.2.0.2", "alice", t + milliseconds(4000)), milliseconds(0));
}

TEST(AuthRateLimiter, AddressesThatAuthenticatedAsTheUserAreNotDelayed) {
  AuthRateLimiter rl(Settings());
  auto t = Clock::now();
  EXPECT_EQ(Succeed(rl, "192.0.2.7", "alice", t), 0u);      // alice's usual address
  EXPECT_EQ(Succeed(rl, "2001:db8:5::1", "alice", t), 0u);  // and her /64
  for (int i = 0; i < 10; ++i) Fail(rl, "10.1.0." + std::to_string(i), "alice", t);
  EXPECT_GT(rl.UserDelay("10.2.0.1", "alice", t).count(), 0);
  EXPECT_EQ(rl.UserDelay("192.0.2.7", "alice", t).count(), 0);
  EXPECT_EQ(rl.UserDelay("2001:db8:5::99", "alice", t).count(), 0);
  // Trust is per user name and expires.
  for (int i = 0; i < 10; ++i) Fail(rl, "10.3.0." + std::to_string(i), "bob", t);
  EXPECT_GT(rl.UserDelay("192.0.2.7", "bob", t).count(), 0);
  const auto later = t + AuthRateLimiter::kTrustFor + milliseconds(1);
  for (int i = 0; i < 10; ++i) Fail(rl, "10.4.0." + std::to_string(i), "alice", later);
  EXPECT_GT(rl.UserDelay("192.0.2.7", "alice", later).count(), 0);
}

TEST(AuthRateLimiter, TrustedAddressesPerUserAreBounded) {
  AuthRateLimiter rl(Settings());
  auto t = Clock::now();
  for (int i = 0; i < 20; ++i) {
    Succeed(rl, "192.0.2." + std::to_string(i), "alice", t + milliseconds(i));
  }
  t += milliseconds(100);
  for (int i = 0; i < 10; ++i) Fail(rl, "10.1.0." + std::to_string(i), "alice", t);
  int trusted = 0;
  for (int i = 0; i < 20; ++i) {
    if (rl.UserDelay("192.0.2." + std::to_string(i), "alice", t).count() == 0) ++trusted;
  }
  EXPECT_EQ(trusted, static_cast<int>(AuthRateLimiter::kTrustedPerUser));
  EXPECT_EQ(rl.UserDelay("192.0.2.19", "alice", t).count(), 0) << "the newest are kept";
}

TEST(AuthRateLimiter, Ipv6CountsPerSlash64) {
  EXPECT_EQ(AuthRateLimiter::AddressKey("2001:db8:1:2:aaaa::1"), "a:2001:db8:1:2::/64");
  EXPECT_EQ(AuthRateLimiter::AddressKey("2001:db8:1:2:bbbb::9"), "a:2001:db8:1:2::/64");
  EXPECT_EQ(AuthRateLimiter::AddressKey("::ffff:10.0.0.1"), "a:::ffff:10.0.0.1");
  EXPECT_EQ(AuthRateLimiter::AddressKey("10.0.0.1"), "a:10.0.0.1");
  AuthRateLimiter rl(Settings());
  const auto t = Clock::now();
  for (int i = 1; i <= 3; ++i) Fail(rl, "2001:db8::" + std::to_string(i), "u", t);
  EXPECT_GT(rl.BeginAttempt("2001:db8::ffff", t), 0u);
  EXPECT_EQ(rl.BeginAttempt("2001:db9::1", t), 0u);
}

TEST(AuthRateLimiter, MemoryIsBoundedAndBlockedKeysSurviveEviction) {
  AuthRateLimiter rl(Settings());  // 64 keys
  const auto t = Clock::now();
  for (int i = 0; i < 3; ++i) Fail(rl, "192.0.2.1", "victim-" + std::to_string(i), t);
  ASSERT_GT(rl.BeginAttempt("192.0.2.1", t), 0u);
  for (int i = 0; i < 5000; ++i) {
    Fail(rl, "198.51." + std::to_string(i / 250) + "." + std::to_string(i % 250), "spray",
         t + milliseconds(1));
  }
  EXPECT_LE(rl.size(), 64u);
  EXPECT_GT(rl.BeginAttempt("192.0.2.1", t + milliseconds(1)), 0u)
      << "a blocked address is evicted only after unblocked ones";
}

TEST(AuthRateLimiter, SuccessesLeaveNoAddressEntries) {
  AuthRateLimiter rl(Settings());
  const auto t = Clock::now();
  for (int i = 0; i < 200; ++i) Succeed(rl, "10.7.0." + std::to_string(i), "alice", t);
  EXPECT_EQ(rl.size(), 1u) << "only alice's entry (her trusted addresses)";
}

TEST(AuthRateLimiter, ConcurrentUse) {
  AuthRateLimiter rl(Settings());
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&rl, th] {
      for (int i = 0; i < 2000; ++i) {
        const auto now = Clock::now();
        const std::string addr = "10.9." + std::to_string(th) + "." + std::to_string(i % 200);
        if (rl.BeginAttempt(addr, now) != 0) continue;
        (void)rl.UserDelay(addr, "u", now);
        if (i % 7 == 0) {
          rl.OnSuccess(addr, "u", now);
        } else {
          rl.OnFailure(addr, "u", now);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(rl.size(), 64u);
}

}  // namespace
}  // namespace tickwire::auth
