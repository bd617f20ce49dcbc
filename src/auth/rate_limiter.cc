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

RateLimitSettings AuthRateLimiter::Settings() {
  std::lock_guard lock(settings_mu_);
  return settings_;
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

void AuthRateLimiter::Leak(Entry& e, const RateLimitSettings& s, Clock::time_point now) {
  if (e.failures == 0 || now <= e.forgot_at) {
    if (e.failures == 0) e.forgot_at = now;
    return;
  }
  const auto forgotten = static_cast<std::uint64_t>((now - e.forgot_at) / s.backoff_max);
  if (forgotten >= e.failures) {
    e.failures = 0;
    e.forgot_at = now;
    return;
  }
  e.failures -= static_cast<std::uint32_t>(forgotten);
  e.forgot_at += s.backoff_max * static_cast<std::int64_t>(forgotten);
}

std::chrono::milliseconds AuthRateLimiter::Backoff(const RateLimitSettings& s,
                                                   std::uint32_t failures, std::uint32_t budget,
                                                   std::chrono::milliseconds cap) {
  const std::uint32_t doublings = std::min<std::uint32_t>(failures - budget, 30);
  return std::min(cap, s.backoff_min * (std::int64_t{1} << doublings));
}

AuthRateLimiter::Entry& AuthRateLimiter::Touch(Shard& shard, const std::string& key,
                                               const RateLimitSettings& s, Clock::time_point now) {
  auto it = shard.entries.find(key);
  if (it == shard.entries.end()) {
    if (shard.entries.size() >= per_shard_.load(std::memory_order_relaxed)) Evict(shard, s, now);
    it = shard.entries.emplace(key, Entry{}).first;
    it->second.forgot_at = now;
    size_.fetch_add(1, std::memory_order_relaxed);
  }
  Leak(it->second, s, now);
  return it->second;
}

void AuthRateLimiter::Evict(Shard& shard, const RateLimitSettings& s, Clock::time_point now) {
  // Holding somebody back: an address inside its wait, or a throttled user name.
  auto holding = [&](const std::string& key, const Entry& e) {
    if (key.starts_with("u:")) return e.failures >= s.user_budget;
    return e.failures >= s.address_budget &&
           now < e.last_failure + Backoff(s, e.failures, s.address_budget, s.backoff_max);
  };
  auto victim = shard.entries.end();
  bool victim_holding = true;
  for (auto it = shard.entries.begin(); it != shard.entries.end(); ++it) {
    const bool h = holding(it->first, it->second);
    if (victim == shard.entries.end() || (victim_holding && !h) ||
        (h == victim_holding && it->second.touched < victim->second.touched)) {
      victim = it;
      victim_holding = h;
    }
  }
  if (victim != shard.entries.end()) {
    shard.entries.erase(victim);
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
}

std::uint32_t AuthRateLimiter::BeginAttempt(std::string_view address, Clock::time_point now) {
  const RateLimitSettings s = Settings();
  const std::string key = AddressKey(address);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  Entry& e = Touch(shard, key, s, now);
  if (e.failures >= s.address_budget) {
    const auto until = e.last_failure + Backoff(s, e.failures, s.address_budget, s.backoff_max);
    if (now < until) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      return static_cast<std::uint32_t>(std::max<std::int64_t>(1, left));
    }
  }
  if (e.failures < UINT32_MAX) ++e.failures;
  e.last_failure = now;
  e.touched = now;
  return 0;
}

std::chrono::milliseconds AuthRateLimiter::UserDelay(std::string_view address,
                                                     std::string_view user, Clock::time_point now) {
  if (size_.load(std::memory_order_relaxed) == 0) return {};
  const RateLimitSettings s = Settings();
  const std::string key = UserKey(user);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(key);
  if (it == shard.entries.end()) return {};
  Entry& e = it->second;
  Leak(e, s, now);
  if (e.failures < s.user_budget || s.user_delay_max.count() == 0) return {};
  const std::string address_key = AddressKey(address);
  for (const auto& t : e.trusted) {
    if (t.address_key == address_key && now < t.until) return {};
  }
  delayed_.fetch_add(1, std::memory_order_relaxed);
  return Backoff(s, e.failures, s.user_budget, s.user_delay_max);
}

void AuthRateLimiter::OnFailure(std::string_view address, std::string_view user,
                                Clock::time_point now) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  const RateLimitSettings s = Settings();
  {
    // The address was charged when the attempt began; its entry may have been evicted since.
    const std::string key = AddressKey(address);
    Shard& shard = ShardOf(key);
    std::lock_guard lock(shard.mu);
    if (auto it = shard.entries.find(key); it != shard.entries.end()) it->second.touched = now;
  }
  const std::string key = UserKey(user);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  Entry& e = Touch(shard, key, s, now);
  if (e.failures < UINT32_MAX) ++e.failures;
  e.last_failure = now;
  e.touched = now;
}

void AuthRateLimiter::Refund(std::string_view address, Clock::time_point now) {
  const RateLimitSettings s = Settings();
  const std::string key = AddressKey(address);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(key);
  if (it == shard.entries.end()) return;
  Leak(it->second, s, now);
  if (it->second.failures > 0) --it->second.failures;
  if (it->second.failures == 0) {
    shard.entries.erase(it);  // nothing left to remember
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void AuthRateLimiter::OnSuccess(std::string_view address, std::string_view user,
                                Clock::time_point now) {
  Refund(address, now);
  const RateLimitSettings s = Settings();
  const std::string key = UserKey(user);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  Entry& e = Touch(shard, key, s, now);
  e.touched = now;
  std::string address_key = AddressKey(address);
  auto slot = std::find_if(e.trusted.begin(), e.trusted.end(),
                           [&](const Trust& t) { return t.address_key == address_key; });
  if (slot == e.trusted.end()) {
    if (e.trusted.size() < kTrustedPerUser) {
      slot = e.trusted.insert(e.trusted.end(), Trust{});
    } else {  // replace the one that expires first
      slot = std::min_element(e.trusted.begin(), e.trusted.end(),
                              [](const Trust& a, const Trust& b) { return a.until < b.until; });
    }
    slot->address_key = std::move(address_key);
  }
  slot->until = now + kTrustFor;
}

void AuthRateLimiter::OnUnchecked(std::string_view address, Clock::time_point now) {
  Refund(address, now);
}

}  // namespace tickwire::auth
