#include "auth/rate_limiter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <functional>

namespace tickwire::auth {

AuthRateLimiter::AuthRateLimiter(RateLimitSettings settings)
    : settings_(settings), per_shard_(std::max<std::size_t>(1, settings.capacity / kShards)) {}

void AuthRateLimiter::Configure(const RateLimitSettings& settings) {
  std::lock_guard lock(settings_mu_);
  settings_ = settings;
  per_shard_.store(std::max<std::size_t>(1, settings.capacity / kShards));
}

void AuthRateLimiter::Settings(RateLimitSettings& out) {
  std::lock_guard lock(settings_mu_);
  out = settings_;
}

std::string AuthRateLimiter::AddressKey(std::string_view address) {
  std::string text(address);
  in6_addr v6{};
  if (text.find(':') != std::string::npos && inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    const bool v4_mapped =
        std::all_of(v6.s6_addr, v6.s6_addr + 10, [](auto b) { return b == 0; }) &&
        v6.s6_addr[10] == 0xff && v6.s6_addr[11] == 0xff;
    if (!v4_mapped) {
      // One host usually owns a whole /64: count it as one source.
      std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, &v6, buf, sizeof(buf));
      return "a:" + std::string(buf) + "/64";
    }
  }
  return "a:" + text;
}

std::string AuthRateLimiter::UserKey(std::string_view user) {
  return "u:" + std::string(user.substr(0, 128));
}

AuthRateLimiter::Shard& AuthRateLimiter::ShardOf(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShards];
}

std::uint32_t AuthRateLimiter::RetryAfter(const std::string& key, Clock::time_point now) {
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(key);
  if (it == shard.entries.end() || it->second.blocked_until <= now) return 0;
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(it->second.blocked_until - now).count();
  return static_cast<std::uint32_t>(std::max<std::int64_t>(1, left));
}

std::uint32_t AuthRateLimiter::Check(std::string_view address, std::string_view user,
                                     Clock::time_point now) {
  if (size_.load(std::memory_order_relaxed) == 0) return 0;
  return std::max(RetryAfter(AddressKey(address), now), RetryAfter(UserKey(user), now));
}

void AuthRateLimiter::Evict(Shard& shard, Clock::time_point now) {
  auto victim = shard.entries.end();
  bool victim_blocked = true;
  for (auto it = shard.entries.begin(); it != shard.entries.end(); ++it) {
    const bool blocked = it->second.blocked_until > now;
    if (victim == shard.entries.end() || (victim_blocked && !blocked) ||
        (blocked == victim_blocked && it->second.last_failure < victim->second.last_failure)) {
      victim = it;
      victim_blocked = blocked;
    }
  }
  if (victim != shard.entries.end()) {
    shard.entries.erase(victim);
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void AuthRateLimiter::Fail(const std::string& key, std::uint32_t budget, Clock::time_point now) {
  RateLimitSettings s;
  Settings(s);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end()) {
    if (shard.entries.size() >= per_shard_.load(std::memory_order_relaxed)) Evict(shard, now);
    it = shard.entries.emplace(key, Entry{}).first;
    size_.fetch_add(1, std::memory_order_relaxed);
  }
  Entry& e = it->second;
  if (e.failures > 0 && now - e.last_failure > s.backoff_max) e.failures = 0;  // quiet: start over
  e.failures = e.failures == UINT32_MAX ? e.failures : e.failures + 1;
  e.last_failure = now;
  if (e.failures >= budget) {
    const std::uint32_t doublings = std::min<std::uint32_t>(e.failures - budget, 30);
    auto backoff = s.backoff_min * (std::int64_t{1} << doublings);
    backoff = std::min(backoff, s.backoff_max);
    e.blocked_until = now + backoff;
  }
}

void AuthRateLimiter::OnFailure(std::string_view address, std::string_view user,
                                Clock::time_point now) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  RateLimitSettings s;
  Settings(s);
  Fail(AddressKey(address), s.address_budget, now);
  Fail(UserKey(user), s.user_budget, now);
}

void AuthRateLimiter::OnSuccess(std::string_view address) {
  if (size_.load(std::memory_order_relaxed) == 0) return;
  const std::string key = AddressKey(address);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  if (shard.entries.erase(key) > 0) size_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace tickwire::auth
