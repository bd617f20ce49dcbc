#include "client/resume.h"

#include <algorithm>
#include <cmath>

namespace tickwire::client {

namespace {

std::chrono::milliseconds ToMs(double ms) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(std::max(0.0, ms))));
}

double Clamp01(double v) { return std::clamp(v, 0.0, 1.0); }

}  // namespace

std::chrono::milliseconds BackoffDelay(const ReconnectOptions& options, std::uint32_t attempt,
                                       double u) {
  const double initial =
      static_cast<double>(std::max<std::int64_t>(0, options.initial_backoff.count()));
  const double cap = static_cast<double>(
      std::max<std::int64_t>(options.initial_backoff.count(), options.max_backoff.count()));
  const double multiplier = std::max(1.0, options.multiplier);
  double d = initial;
  for (std::uint32_t i = 1; i < attempt && d < cap; ++i) d *= multiplier;
  d = std::min(d, cap);
  return ToMs(d * (1.0 - Clamp01(options.jitter) * Clamp01(u)));
}

std::chrono::milliseconds RetryAfterDelay(const ReconnectOptions& options,
                                          std::uint32_t retry_after_ms, double u) {
  const double base = static_cast<double>(retry_after_ms);
  return ToMs(base * (1.0 + Clamp01(options.jitter) * Clamp01(u)));
}

std::int64_t TickPointMs(std::int64_t ts_ns) {
  std::int64_t ms = ts_ns / 1'000'000;
  if (ts_ns < 0 && ms * 1'000'000 != ts_ns) --ms;  // floor, not truncation
  return ms;
}

std::int64_t ResumeSinceMs(std::int64_t user_since_ms, std::int64_t anchor_ms,
                           std::optional<std::int64_t> newest_point_ms,
                           std::chrono::milliseconds lookback) {
  // Records older than the subscription's start (backfill, or the resume of another
  // subscription on the same topic) must not pull the resume back before that start.
  std::int64_t from = anchor_ms;
  if (newest_point_ms) from = std::max(from, *newest_point_ms);
  std::int64_t since = from - std::max<std::int64_t>(0, lookback.count());
  if (user_since_ms > 0) since = std::max(since, user_since_ms);
  return std::max<std::int64_t>(since, 1);
}

bool DeliveredState::AcceptTick(std::string_view topic, std::uint64_t seq, std::uint64_t prev_seq,
                                std::int64_t ts_ns, std::uint64_t topic_epoch) {
  auto it = ticks_.find(topic);
  if (it == ticks_.end()) it = ticks_.emplace(std::string(topic), TickState{}).first;
  TickState& s = it->second;
  auto& newest = newest_[Index(Mode::kTick)];
  const std::int64_t point = TickPointMs(ts_ns);
  if (topic_epoch != 0 && s.epoch != 0 && topic_epoch != s.epoch) {
    ++topic_epoch_changes_;  // a new incarnation: its seqs do not compare with the old ones
    s.last_seq = 0;
  }
  if (topic_epoch != 0) s.epoch = topic_epoch;
  if (s.last_seq != 0 && seq <= s.last_seq) {
    if (prev_seq != 0 || ts_ns <= s.max_ts_ns) {
      ++duplicates_;
      return false;
    }
    ++renumbered_;  // a fresh numbering: a restarted server that kept no history
  } else if (s.last_seq != 0 && prev_seq != s.last_seq) {
    ++tick_gaps_;
  }
  s.last_seq = seq;
  s.max_ts_ns = std::max(s.max_ts_ns, ts_ns);
  newest = newest ? std::max(*newest, point) : point;
  return true;
}

std::vector<ResumePoint> DeliveredState::TickPositions(bool wildcard,
                                                       const std::vector<std::string>& topics,
                                                       std::size_t max_bytes) const {
  auto covers = [&](std::string_view topic) {
    if (wildcard) return true;
    for (const auto& t : topics) {
      if (t == topic) return true;
      if (t.size() >= 2 && t.ends_with(".*") &&
          topic.starts_with(std::string_view(t).substr(0, t.size() - 1))) {
        return true;
      }
    }
    return false;
  };
  std::vector<ResumePoint> out;
  for (const auto& [topic, s] : ticks_) {
    if (s.last_seq != 0 && covers(topic)) out.push_back(ResumePoint{topic, s.last_seq, s.epoch});
  }
  std::sort(out.begin(), out.end(),
            [](const ResumePoint& a, const ResumePoint& b) { return a.topic < b.topic; });
  // Each entry costs its topic plus tags, lengths and two varints (at most 26 bytes).
  std::size_t bytes = 0;
  std::size_t keep = 0;
  while (keep < out.size() && bytes + out[keep].topic.size() + 26 <= max_bytes) {
    bytes += out[keep].topic.size() + 26;
    ++keep;
  }
  out.resize(keep);
  return out;
}

void DeliveredState::ResetTickNumbering() {
  for (auto& [topic, s] : ticks_) {
    s.last_seq = 0;
    s.epoch = 0;
  }
}

bool DeliveredState::AcceptBar(Mode interval, std::string_view topic, std::int64_t start_ms) {
  if (interval != Mode::kSecond && interval != Mode::kMinute) return true;  // nothing to compare
  auto& map = bars_[Index(interval) - 1];
  auto it = map.find(topic);
  if (it == map.end()) {
    map.emplace(std::string(topic), start_ms);
  } else {
    if (start_ms <= it->second) {
      ++duplicates_;
      return false;
    }
    it->second = start_ms;
  }
  auto& newest = newest_[Index(interval)];
  newest = newest ? std::max(*newest, start_ms) : start_ms;
  return true;
}

std::optional<std::int64_t> DeliveredState::NewestPoint(
    Mode mode, bool wildcard, const std::vector<std::string>& topics) const {
  if (wildcard) return newest_[Index(mode)];
  std::optional<std::int64_t> newest;
  auto take = [&](std::int64_t p) { newest = newest ? std::max(*newest, p) : p; };
  for (const auto& topic : topics) {
    if (topic.size() >= 3 && topic.ends_with(".*")) {
      // A prefix subscription ("FX.*"): every topic received under the prefix.
      const std::string_view prefix = std::string_view(topic).substr(0, topic.size() - 1);
      if (mode == Mode::kTick) {
        for (const auto& [name, state] : ticks_) {
          if (name.starts_with(prefix)) take(TickPointMs(state.max_ts_ns));
        }
      } else if (mode == Mode::kSecond || mode == Mode::kMinute) {
        for (const auto& [name, start] : bars_[Index(mode) - 1]) {
          if (name.starts_with(prefix)) take(start);
        }
      }
      continue;
    }
    if (mode == Mode::kTick) {
      if (auto it = ticks_.find(topic); it != ticks_.end()) take(TickPointMs(it->second.max_ts_ns));
    } else if (mode == Mode::kSecond || mode == Mode::kMinute) {
      const auto& map = bars_[Index(mode) - 1];
      if (auto it = map.find(topic); it != map.end()) take(it->second);
    }
  }
  return newest;
}

}  // namespace tickwire::client
