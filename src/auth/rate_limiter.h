#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tickwire::auth {

// Budgets for failed AUTHs (AUTH_FAIL_BUDGET_ADDR, AUTH_FAIL_BUDGET_USER, AUTH_BACKOFF_MIN,
// AUTH_BACKOFF_MAX, AUTH_USER_DELAY_MAX, AUTH_RATE_TABLE_SIZE).
struct RateLimitSettings {
  std::uint32_t address_budget = 5;  // failures a source address may make before back-off
  std::uint32_t user_budget = 20;    // failures against one user name before it is throttled
  std::chrono::milliseconds backoff_min{1'000};
  // The longest wait; also the leak rate: every key forgets one failure per backoff_max.
  std::chrono::milliseconds backoff_max{60'000};
  std::chrono::milliseconds user_delay_max{2'000};  // longest delay of a throttled name's AUTH
  std::size_t capacity = 16'384;                    // tracked keys (addresses + user names)
};

// Failed-AUTH accounting per source address and per user name, as leaky buckets: a key's count
// of failures grows by one per failure and forgets one per backoff_max, whatever happens in
// between; a successful AUTH does not erase it. IPv6 addresses count per /64.
//
// Address (its own failures): while its count is below address_budget an AUTH goes ahead; at or
// above it, each further attempt must wait backoff_min * 2^(count - budget), at most
// backoff_max, after the previous one, and is refused (AUTH_RATE_LIMITED) without a password
// check until then. Every attempt is charged when it starts, so concurrent AUTHs cannot
// overshoot the budget; a success or an attempt that was never checked gets its charge back.
//
// User name (everyone's failures for it): over user_budget the name is throttled, never
// blocked: its AUTHs are checked after a delay of backoff_min * 2^(count - budget), at most
// user_delay_max, so a correct password still gets in. Addresses that authenticated as that
// user within kTrustFor are not delayed at all.
//
// Memory is bounded: at most `capacity` keys, in 16 shards each with its own mutex; a full shard
// evicts the key touched longest ago, preferring one that is not holding anybody back. Thread-
// safe; the clock is passed in, so tests drive it.
class AuthRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // Addresses remembered per user name as having authenticated as it, and for how long.
  static constexpr std::size_t kTrustedPerUser = 8;
  static constexpr std::chrono::hours kTrustFor{24};

  explicit AuthRateLimiter(RateLimitSettings settings = {});

  // An AUTH from `address` is about to be checked. Returns the milliseconds until the address
  // may try again (the AUTH is refused unchecked and not counted), or 0: go ahead; the attempt
  // is charged to the address now, as a failure, until OnSuccess or OnUnchecked refunds it.
  std::uint32_t BeginAttempt(std::string_view address, Clock::time_point now);
  // How long the check of a password for `user` from `address` waits (0 when the name is not
  // throttled, or `address` authenticated as `user` recently).
  std::chrono::milliseconds UserDelay(std::string_view address, std::string_view user,
                                      Clock::time_point now);
  // A checked AUTH failed: the address keeps its charge, the user name counts a failure.
  void OnFailure(std::string_view address, std::string_view user, Clock::time_point now);
  // A checked AUTH succeeded: the address gets its charge back (earlier failures stay), and is
  // trusted for `user` from now on.
  void OnSuccess(std::string_view address, std::string_view user, Clock::time_point now);
  // A started AUTH was not checked (the hashing queue was full): the address gets its charge
  // back.
  void OnUnchecked(std::string_view address, Clock::time_point now);
  // New budgets (SIGHUP); tracked keys keep their counts. A smaller capacity takes effect as
  // new keys evict old ones.
  void Configure(const RateLimitSettings& settings);

  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  std::uint64_t failures_total() const { return failures_.load(std::memory_order_relaxed); }
  std::uint64_t throttled_total() const { return throttled_.load(std::memory_order_relaxed); }
  std::uint64_t delayed_total() const { return delayed_.load(std::memory_order_relaxed); }
  // An AUTH answered AUTH_RATE_LIMITED without a password check.
  void CountThrottled() { throttled_.fetch_add(1, std::memory_order_relaxed); }

  // "a:<address>" with IPv6 cut to its /64, or "u:<user>" (user names cut to 128 bytes).
  static std::string AddressKey(std::string_view address);
  static std::string UserKey(std::string_view user);

 private:
  static constexpr std::size_t kShards = 16;
  struct Trust {
    std::string address_key;
    Clock::time_point until;
  };
  struct Entry {
    std::uint32_t failures = 0;        // not yet forgotten
    Clock::time_point forgot_at{};     // when the last one was forgotten (leak clock)
    Clock::time_point last_failure{};  // waits are counted from it
    Clock::time_point touched{};       // for eviction
    std::vector<Trust> trusted;        // user names only: at most kTrustedPerUser
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
  };

  Shard& ShardOf(const std::string& key);
  // The entry for `key` (created when missing, evicting another when the shard is full), with
  // the failures it has forgotten by `now` taken off. Call with the shard locked.
  Entry& Touch(Shard& shard, const std::string& key, const RateLimitSettings& s,
               Clock::time_point now);
  static void Leak(Entry& e, const RateLimitSettings& s, Clock::time_point now);
  // backoff_min * 2^(failures - budget), at most `cap`.
  static std::chrono::milliseconds Backoff(const RateLimitSettings& s, std::uint32_t failures,
                                           std::uint32_t budget, std::chrono::milliseconds cap);
  void Evict(Shard& shard, const RateLimitSettings& s, Clock::time_point now);
  void Refund(std::string_view address, Clock::time_point now);
  RateLimitSettings Settings();

  std::mutex settings_mu_;
  RateLimitSettings settings_;
  std::atomic<std::size_t> per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> throttled_{0};
  std::atomic<std::uint64_t> delayed_{0};
};

}  // namespace tickwire::auth
