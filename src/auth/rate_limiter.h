#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tickwire::auth {

// Budgets for failed AUTHs (AUTH_FAIL_BUDGET_ADDR, AUTH_FAIL_BUDGET_USER, AUTH_BACKOFF_MIN,
// AUTH_BACKOFF_MAX, AUTH_RATE_TABLE_SIZE).
struct RateLimitSettings {
  std::uint32_t address_budget = 5;  // failures a source address may make before back-off
  std::uint32_t user_budget = 20;    // failures against one user name (from anywhere)
  std::chrono::milliseconds backoff_min{1'000};
  std::chrono::milliseconds backoff_max{60'000};
  std::size_t capacity = 16'384;  // tracked keys (addresses + user names), in total
};

// Failed-AUTH budgets per source address and per user name. A key that has used its budget is
// blocked for backoff_min, doubling with each further failure up to backoff_max; a key quiet for
// backoff_max starts over. While a key is blocked its AUTHs are refused without checking the
// password, and do not count as failures (so a blocked address cannot use up the budget of the
// user name it is guessing). IPv6 addresses count per /64.
//
// Memory is bounded: at most `capacity` keys, in 16 shards each with its own mutex; a full shard
// evicts its least recently failed key, preferring one that is not blocked. Only AUTHs take a
// lock, and none at all while the table is empty. Thread-safe.
class AuthRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AuthRateLimiter(RateLimitSettings settings = {});

  // Milliseconds until `address` and `user` may try again (the longer of the two), 0 if now.
  std::uint32_t Check(std::string_view address, std::string_view user, Clock::time_point now);
  // A failed AUTH.
  void OnFailure(std::string_view address, std::string_view user, Clock::time_point now);
  // A successful AUTH clears the address's failures (not the user name's: those may come from
  // elsewhere).
  void OnSuccess(std::string_view address);
  // New budgets (SIGHUP); tracked keys keep their counts. A smaller capacity takes effect as
  // new keys evict old ones.
  void Configure(const RateLimitSettings& settings);

  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  std::uint64_t failures_total() const { return failures_.load(std::memory_order_relaxed); }
  std::uint64_t throttled_total() const { return throttled_.load(std::memory_order_relaxed); }
  void CountThrottled() { throttled_.fetch_add(1, std::memory_order_relaxed); }

  // "a:<address>" with IPv6 cut to its /64, or "u:<user>" (user names cut to 128 bytes).
  static std::string AddressKey(std::string_view address);
  static std::string UserKey(std::string_view user);

 private:
  static constexpr std::size_t kShards = 16;
  struct Entry {
    std::uint32_t failures = 0;
    Clock::time_point last_failure{};
    Clock::time_point blocked_until{};
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
  };

  Shard& ShardOf(const std::string& key);
  std::uint32_t RetryAfter(const std::string& key, Clock::time_point now);
  void Fail(const std::string& key, std::uint32_t budget, Clock::time_point now);
  void Evict(Shard& shard, Clock::time_point now);
  void Settings(RateLimitSettings& out);

  std::mutex settings_mu_;
  RateLimitSettings settings_;
  std::atomic<std::size_t> per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> throttled_{0};
};

}  // namespace tickwire::auth
