#include "engine/shard.h"

#include <algorithm>
#include <limits>

#include "protocol/wire.h"

namespace tickwire::engine {
namespace {

constexpr auto kTickSlot = static_cast<std::size_t>(Mode::kTick);

void SetWorkerBit(WorkerMask& mask, unsigned worker, bool on) {
  mask = on ? (mask | WorkerBit(worker)) : (mask & ~WorkerBit(worker));
}

void AppendEntry(RecordBlock& out, std::size_t offset, std::size_t topic_offset,
                 std::size_t topic_length, Mode mode, WorkerMask dest, std::uint64_t key) {
  out.entries.push_back(RecordBlock::Entry{
      static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(out.bytes.size() - offset),
      static_cast<std::uint32_t>(topic_offset), static_cast<std::uint16_t>(topic_length), mode,
      dest, key});
}

}  // namespace

Shard::Shard(unsigned index, ShardOptions options)
    : index_(index),
      options_(options),
      cap_(options.max_topics, options.max_topics_per_user),
      second_closed_before_ms_(std::numeric_limits<std::int64_t>::min()),
      minute_closed_before_ms_(std::numeric_limits<std::int64_t>::min()) {}

Shard::~Shard() = default;

Shard::TopicState* Shard::Create(std::string_view topic, UserId user, Refusal& refusal) {
  // A topic with an open bar is never evicted: that would drop accepted ticks from a bar that
  // has not been sent. So the cap holds at creation: no room, no new topic.
  refusal = cap_.MakeRoom(
      user, [](const TopicState& st) { return !st.in_open_list; },
      [this](TopicState& st) {
        Erase(st);
        ++stats_.topics_evicted;
      });
  if (refusal != Refusal::kNone) return nullptr;
  auto it = topics_.emplace(std::string(topic), TopicState(options_)).first;
  TopicState& st = it->second;
  st.name = &it->first;
  if (!interest_.empty()) {
    if (auto i = interest_.find(topic); i != interest_.end()) st.interest = i->second;
  }
  cap_.Insert(st, user);
  return &st;
}

const Shard::TopicState* Shard::Find(std::string_view topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : &it->second;
}

Shard::TopicState* Shard::Find(std::string_view topic) {
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : &it->second;
}

void Shard::Erase(TopicState& st) {
  cap_.Remove(st);
  if (st.in_open_list) {
    open_topics_.erase(std::find(open_topics_.begin(), open_topics_.end(), &st));
  }
  topics_.erase(topics_.find(*st.name));
}

bool Shard::Forget(std::string_view topic) {
  TopicState* st = Find(topic);
  if (st == nullptr) return false;
  Erase(*st);
  ++stats_.topics_evicted;
  return true;
}

ApplyResult Shard::Apply(std::span<const IngestTick> ticks, RecordBlock& out, UserId user) {
  // Two passes per chunk: look every topic up and prefetch what applying its tick will write
  // (its tick ring slot, its open bars), then apply. With thousands of topics those lines are
  // cold; fetching a chunk's worth at once overlaps the misses instead of taking them in turn.
  constexpr std::size_t kChunk = 64;
  std::array<TopicState*, kChunk> looked_up{};
  ApplyResult result;
  for (std::size_t base = 0; base < ticks.size(); base += kChunk) {
    const std::size_t n = std::min(kChunk, ticks.size() - base);
    for (std::size_t i = 0; i < n; ++i) {
      TopicState* st = Find(ticks[base + i].topic);
      looked_up[i] = st;
      if (st == nullptr) continue;
      st->ticks.PrefetchNext();
      if (!st->open_seconds.empty()) __builtin_prefetch(&st->open_seconds.back(), 1);
      if (!st->open_minutes.empty()) __builtin_prefetch(&st->open_minutes.back(), 1);
    }
    const std::uint64_t evicted = stats_.topics_evicted;
    for (std::size_t i = 0; i < n; ++i) {
      // A topic created meanwhile was not found above; an eviction may have freed a looked-up
      // state: look again in both cases.
      TopicState* st = stats_.topics_evicted == evicted ? looked_up[i] : nullptr;
      const IngestTick& t = ticks[base + i];
      const Refusal r = ApplyOne(t, st != nullptr ? st : Find(t.topic), user, out);
      if (r == Refusal::kNone) continue;
      if (result.refused++ == 0) {
        result.first_refused = base + i;
        result.reason = r;
      }
      ++stats_.ticks_refused[static_cast<std::size_t>(r)];
    }
  }
  result.applied = ticks.size() - result.refused;
  return result;
}

Refusal Shard::ApplyOne(const IngestTick& t, TopicState* found, UserId user, RecordBlock& out) {
  if (found == nullptr) {
    Refusal refusal = Refusal::kNone;
    found = Create(t.topic, user, refusal);
    if (found == nullptr) return refusal;
  } else {
    cap_.Touch(*found);
  }
  TopicState& st = *found;
  const std::uint64_t prev = st.last_seq;
  st.last_seq = t.seq > prev ? t.seq : prev + 1;
  ++stats_.ticks;
  st.ticks.Push(TickRecord{t.price, t.size, t.ts_ns, st.last_seq, prev});
  Fold(st, Mode::kSecond, t);
  Fold(st, Mode::kMinute, t);
  const WorkerMask dest = st.interest[kTickSlot] | wildcard_[kTickSlot];
  if (dest == 0) return Refusal::kNone;  // nobody listens: nothing to encode
  const auto offset = out.bytes.size();
  const std::size_t topic_offset = protocol::AppendTickRecordEntry(
      out.bytes, protocol::TickFields{t.topic, t.price, t.size, t.ts_ns, st.last_seq, prev});
  AppendEntry(out, offset, topic_offset, t.topic.size(), Mode::kTick, dest, st.last_seq);
  return Refusal::kNone;
}

void Shard::Fold(TopicState& st, Mode interval, const IngestTick& t) {
  const bool second = interval == Mode::kSecond;
  const std::int64_t start = BucketStartMs(t.ts_ns, interval);
  const std::int64_t end_ns = (start + IntervalMs(interval)) * kNsPerMs;
  const std::int64_t closed_before = second ? second_closed_before_ms_ : minute_closed_before_ms_;
  // Late: accepted after its bucket's end + close delay, or its bucket already closed (the
  // second condition only adds cases when the wall clock stepped back).
  if (start < closed_before || t.accepted_ns >= end_ns + options_.close_delay_ns) {
    ++(second ? stats_.late_second : stats_.late_minute);
    return;
  }
  auto& open = second ? st.open_seconds : st.open_minutes;
  auto it = open.end();
  while (it != open.begin() && std::prev(it)->bar.start_ms > start) --it;
  if (it == open.begin() || std::prev(it)->bar.start_ms != start) {
    BarAccumulator fresh;
    fresh.bar.start_ms = start;
    it = std::next(open.insert(it, fresh));
  }
  std::prev(it)->Fold(t.price, t.size, t.ts_ns);
  if (!st.in_open_list) {
    st.in_open_list = true;
    open_topics_.push_back(&st);
  }
}

void Shard::EmitBar(TopicState& st, Mode interval, const Bar& bar, RecordBlock& out) {
  const bool second = interval == Mode::kSecond;
  (second ? st.seconds : st.minutes).Push(bar);
  (second ? st.last_second_start : st.last_minute_start) = bar.start_ms;
  ++(second ? stats_.bars_second : stats_.bars_minute);
  const auto slot = static_cast<std::size_t>(interval);
  const WorkerMask dest = st.interest[slot] | wildcard_[slot];
  if (dest == 0) return;
  const auto offset = out.bytes.size();
  const std::size_t topic_offset = protocol::AppendBarRecordEntry(
      out.bytes,
      protocol::BarFields{*st.name, static_cast<std::uint32_t>(interval), bar.start_ms, bar.open,
                          bar.high, bar.low, bar.close, bar.volume, bar.count, bar.vwap()});
  AppendEntry(out, offset, topic_offset, st.name->size(), interval, dest,
              static_cast<std::uint64_t>(bar.start_ms));
}

std::size_t Shard::AdvanceWatermark(std::int64_t watermark_ns, RecordBlock& out) {
  const std::int64_t limit = watermark_ns - options_.close_delay_ns;
  const std::int64_t second_before = FloorDiv(limit, 1000 * kNsPerMs) * 1000;
  const std::int64_t minute_before = FloorDiv(limit, 60'000 * kNsPerMs) * 60'000;
  if (second_before <= second_closed_before_ms_ && minute_before <= minute_closed_before_ms_) {
    return 0;
  }
  second_closed_before_ms_ = std::max(second_closed_before_ms_, second_before);
  minute_closed_before_ms_ = std::max(minute_closed_before_ms_, minute_before);
  std::size_t closed = 0;
  auto close_open = [&](TopicState& st, Mode interval) {
    auto& open = interval == Mode::kSecond ? st.open_seconds : st.open_minutes;
    const std::int64_t before =
        interval == Mode::kSecond ? second_closed_before_ms_ : minute_closed_before_ms_;
    std::size_t n = 0;
    while (n < open.size() && open[n].bar.start_ms < before) {
      EmitBar(st, interval, open[n].bar, out);
      ++n;
    }
    open.erase(open.begin(), open.begin() + static_cast<std::ptrdiff_t>(n));
    closed += n;
  };
  for (std::size_t i = 0; i < open_topics_.size();) {
    TopicState& st = *open_topics_[i];
    close_open(st, Mode::kSecond);
    close_open(st, Mode::kMinute);
    if (st.open_seconds.empty() && st.open_minutes.empty()) {
      st.in_open_list = false;
      open_topics_[i] = open_topics_.back();
      open_topics_.pop_back();
    } else {
      ++i;
    }
  }
  return closed;
}

std::uint64_t Shard::LastKey(const TopicState& st, Mode mode) const {
  switch (mode) {
    case Mode::kTick:
      return st.last_seq;
    case Mode::kSecond:
      return st.last_second_start < 0 ? 0 : static_cast<std::uint64_t>(st.last_second_start);
    case Mode::kMinute:
      return st.last_minute_start < 0 ? 0 : static_cast<std::uint64_t>(st.last_minute_start);
  }
  return 0;
}

HistoryReply Shard::History(const HistoryRequest& req) {
  HistoryReply reply;
  std::vector<const TopicState*> targets;
  if (req.wildcard) {
    targets.reserve(topics_.size());
    for (const auto& [name, st] : topics_) targets.push_back(&st);
  } else {
    for (const auto& topic : req.topics) {
      if (const TopicState* st = Find(topic)) targets.push_back(st);
    }
    std::sort(targets.begin(), targets.end());  // a topic named twice is answered once
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  }
  const bool ticks = req.mode == Mode::kTick;
  const std::int64_t since_ns = req.since_ms * kNsPerMs;
  // Which retained records a topic offers: a contiguous newest run for bars and backfill; for
  // ticks since a time, the ticks stamped at or after it (event times need not be monotone).
  auto selected = [&](const TopicState& st, std::size_t i) {
    if (ticks) return st.ticks[i].ts_ns >= since_ns;
    const auto& ring = req.mode == Mode::kSecond ? st.seconds : st.minutes;
    return ring[i].start_ms >= req.since_ms;
  };
  auto ring_size = [&](const TopicState& st) {
    return ticks ? st.ticks.size()
                 : (req.mode == Mode::kSecond ? st.seconds.size() : st.minutes.size());
  };
  std::vector<std::size_t> counts(targets.size());
  std::size_t total = 0;
  std::size_t largest = 0;
  for (std::size_t k = 0; k < targets.size(); ++k) {
    const TopicState& st = *targets[k];
    if (const std::uint64_t key = LastKey(st, req.mode); key != 0) {
      reply.last_keys.emplace(*st.name, key);
    }
    const std::size_t n = ring_size(st);
    std::size_t c = 0;
    if (req.backfill > 0) {
      c = std::min<std::size_t>(n, req.backfill);
    } else {
      for (std::size_t i = 0; i < n; ++i) c += selected(st, i) ? 1U : 0U;
    }
    counts[k] = c;
    total += c;
    largest = std::max(largest, c);
  }
  // Over budget: the largest per-topic limit whose total fits, newest records kept.
  std::size_t limit = largest;
  if (total > options_.max_backfill_records) {
    reply.truncated = true;
    ++stats_.backfills_truncated;
    std::size_t lo = 0;
    std::size_t hi = largest;
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo + 1) / 2;
      std::size_t sum = 0;
      for (std::size_t c : counts) sum += std::min(c, mid);
      if (sum <= options_.max_backfill_records) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    limit = lo;
  }
  RecordBlock& out = reply.records;
  for (std::size_t k = 0; k < targets.size(); ++k) {
    const TopicState& st = *targets[k];
    const std::size_t take = std::min(counts[k], limit);
    if (take == 0) continue;
    std::size_t skip = counts[k] - take;  // oldest selected records left out
    const std::size_t n = ring_size(st);
    const std::size_t first = req.backfill > 0 ? n - counts[k] : 0;
    for (std::size_t i = first; i < n; ++i) {
      if (req.backfill == 0 && !selected(st, i)) continue;
      if (skip > 0) {
        --skip;
        continue;
      }
      const auto offset = out.bytes.size();
      if (ticks) {
        const TickRecord& r = st.ticks[i];
        const std::size_t topic_offset = protocol::AppendTickRecordEntry(
            out.bytes, protocol::TickFields{*st.name, r.price, r.size, r.ts_ns, r.seq, r.prev_seq});
        AppendEntry(out, offset, topic_offset, st.name->size(), Mode::kTick, 0, r.seq);
      } else {
        const Bar& b = (req.mode == Mode::kSecond ? st.seconds : st.minutes)[i];
        const std::size_t topic_offset = protocol::AppendBarRecordEntry(
            out.bytes,
            protocol::BarFields{*st.name, static_cast<std::uint32_t>(req.mode), b.start_ms, b.open,
                                b.high, b.low, b.close, b.volume, b.count, b.vwap()});
        AppendEntry(out, offset, topic_offset, st.name->size(), req.mode, 0,
                    static_cast<std::uint64_t>(b.start_ms));
      }
    }
  }
  return reply;
}

void Shard::SetInterest(std::string_view topic, Mode mode, unsigned worker, bool interested) {
  auto it = interest_.find(topic);
  if (it == interest_.end()) {
    if (!interested) return;
    it = interest_.emplace(std::string(topic), Masks{}).first;
  }
  SetWorkerBit(it->second[static_cast<std::size_t>(mode)], worker, interested);
  const Masks masks = it->second;
  if (std::all_of(masks.begin(), masks.end(), [](WorkerMask m) { return m == 0; })) {
    interest_.erase(it);
  }
  // The per-tick path reads the masks from the topic itself.
  if (TopicState* st = Find(topic)) st->interest = masks;
}

void Shard::SetWildcardInterest(Mode mode, unsigned worker, bool interested) {
  SetWorkerBit(wildcard_[static_cast<std::size_t>(mode)], worker, interested);
}

std::uint64_t Shard::LastSeq(std::string_view topic) const {
  const TopicState* st = Find(topic);
  return st == nullptr ? 0 : st->last_seq;
}

std::size_t Shard::HistoryBytes() const {
  std::size_t n = 0;
  for (const auto& [name, st] : topics_) {
    n += st.seconds.allocated_bytes() + st.minutes.allocated_bytes() + st.ticks.allocated_bytes() +
         (st.open_seconds.capacity() + st.open_minutes.capacity()) * sizeof(BarAccumulator);
  }
  return n;
}

std::vector<Bar> Shard::RetainedBars(std::string_view topic, Mode interval) const {
  std::vector<Bar> bars;
  if (const TopicState* st = Find(topic)) {
    const auto& ring = interval == Mode::kSecond ? st->seconds : st->minutes;
    for (std::size_t i = 0; i < ring.size(); ++i) bars.push_back(ring[i]);
  }
  return bars;
}

}  // namespace tickwire::engine
