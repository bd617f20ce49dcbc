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
      next_epoch_(index + 1),
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
  st.serial = next_serial_++;
  by_name_.emplace(it->first, &st);
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
  // Its numbering is gone: remembered, so that a resume by accept order can say so (S8c).
  Bury(Tombstone{*st.name, st.epoch, st.last_seq, st.last_order_ns});
  cap_.Remove(st);
  if (st.in_open_list) {
    open_topics_.erase(std::find(open_topics_.begin(), open_topics_.end(), &st));
  }
  by_name_.erase(*st.name);
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
      bool late = false;
      const Refusal r = ApplyOne(t, st != nullptr ? st : Find(t.topic), user, out, late);
      if (r == Refusal::kNone) {
        result.late += late ? 1 : 0;
        continue;
      }
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

Refusal Shard::ApplyOne(const IngestTick& t, TopicState* found, UserId user, RecordBlock& out,
                        bool& late) {
  if (found == nullptr) {
    Refusal refusal = Refusal::kNone;
    found = Create(t.topic, user, refusal);
    if (found == nullptr) return refusal;
    // A new incarnation. Multi-instance mode: the log's number of its first tick, the same on
    // every instance (numbers there never restart, PROTOCOL S7a); else a number no earlier
    // incarnation in this stream epoch had.
    if (t.seq != 0) {
      found->epoch = t.seq;
    } else {
      found->epoch = next_epoch_;
      next_epoch_ += kEpochStride;
    }
  } else {
    cap_.Touch(*found);
  }
  TopicState& st = *found;
  const std::uint64_t prev = st.last_seq;
  st.last_seq = t.seq > prev ? t.seq : prev + 1;
  st.last_publish_ns = t.accepted_ns;
  ++stats_.ticks;
  st.ticks.Push(TickRecord{t.price, t.size, t.ts_ns, prev, st.last_order_ns});
  st.last_order_ns = order_ns_;
  // Lateness is decided once, against the SECOND bucket: a tick too late for it is folded into
  // no bar, so every MINUTE bar is the fold of its SECOND bars. (A tick in time for its SECOND
  // bucket is in time for its MINUTE bucket, which ends no earlier and closes no earlier.)
  late = LateFor(Mode::kSecond, t.ts_ns, t.accepted_ns);
  if (late) {
    ++stats_.late_second;
    if (LateFor(Mode::kMinute, t.ts_ns, t.accepted_ns)) ++stats_.late_minute;
  } else {
    Fold(st, Mode::kSecond, t);
    Fold(st, Mode::kMinute, t);
  }
  const WorkerMask dest = Destinations(st, kTickSlot);
  if (dest == 0) return Refusal::kNone;  // nobody listens: nothing to encode
  const auto offset = out.bytes.size();
  const std::size_t topic_offset = protocol::AppendTickRecordEntry(
      out.bytes,
      protocol::TickFields{t.topic, t.price, t.size, t.ts_ns, st.last_seq, prev, st.epoch});
  AppendEntry(out, offset, topic_offset, t.topic.size(), Mode::kTick, dest, st.last_seq);
  return Refusal::kNone;
}

bool Shard::LateFor(Mode interval, std::int64_t ts_ns, std::int64_t accepted_ns) const {
  const std::int64_t start = BucketStartMs(ts_ns, interval);
  const std::int64_t end_ns = (start + IntervalMs(interval)) * kNsPerMs;
  const std::int64_t closed_before =
      interval == Mode::kSecond ? second_closed_before_ms_ : minute_closed_before_ms_;
  return start < closed_before || accepted_ns >= end_ns + options_.close_delay_ns;
}

void Shard::Fold(TopicState& st, Mode interval, const IngestTick& t) {
  const bool second = interval == Mode::kSecond;
  const std::int64_t start = BucketStartMs(t.ts_ns, interval);
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
  const WorkerMask dest = Destinations(st, static_cast<std::size_t>(interval));
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

struct Shard::SliceState {
  const HistoryRequest& req;
  HistoryCursor& cursor;
  RecordBlock& out;
  SliceLimits limits;
  std::int64_t since_ns;
  std::vector<LostRange>& lost;
  std::size_t steps = 0;

  bool Full() const { return out.bytes.size() >= limits.max_bytes || steps >= limits.max_steps; }
};

bool Shard::ReplayTopic(const TopicState& st, bool resume, SliceState& s) {
  const Mode mode = s.req.mode;
  const bool ticks = mode == Mode::kTick;
  const auto& bars = mode == Mode::kSecond ? st.seconds : st.minutes;
  const std::size_t n = ticks ? st.ticks.size() : bars.size();
  HistoryCursor& c = s.cursor;
  // Keys ascend in ring order (ticks by seq, bars by start), so positions are found by binary
  // search, whatever the ring's size.
  auto key_at = [&](std::size_t i) {
    return ticks ? SeqOf(st, i) : static_cast<std::uint64_t>(bars[i].start_ms);
  };
  auto first_above = [&](std::uint64_t key) {
    std::size_t lo = 0;
    std::size_t hi = n;
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (key_at(mid) <= key) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  // A resume position (ticks only) takes the ticks numbered after it. A backfill and a bar
  // since take a contiguous newest run; ticks since are those stamped at or after it, in seq
  // order (event times need not be monotone).
  const ResumePoint* pos = ticks ? FindResume(s.req, *st.name) : nullptr;
  // A position in another numbering of the topic (evicted and created again since): what came
  // after it is gone with that numbering, and all of this one is new to the client.
  const bool stale = pos != nullptr && pos->topic_epoch != 0 && pos->topic_epoch != st.epoch;
  const std::uint64_t after = pos != nullptr && !stale ? pos->after_seq : 0;
  // A topic without a position in a resume that gave resume_from_ns (S8c): the ticks accepted
  // at or after it, and those backfill or since_ms select.
  const std::int64_t from_ns = s.req.resume_from_ns;
  const bool by_order = ticks && pos == nullptr && from_ns > 0;
  const bool filtered = ticks && pos == nullptr && (s.req.backfill == 0 || by_order);
  // by_order with backfill: the newest `backfill` ticks up to the replay's cap start at this seq.
  std::uint64_t backfill_seq = std::numeric_limits<std::uint64_t>::max();
  if (by_order && s.req.backfill > 0 && n > 0) {
    std::size_t m = n;  // ticks at or below the cap (the ring may have grown since it was set)
    if (resume) {
      while (m > 0 && SeqOf(st, m - 1) > c.partial_cap) --m;
    }
    if (m > 0) backfill_seq = SeqOf(st, m - std::min<std::size_t>(m, s.req.backfill));
  }
  auto selected = [&](std::size_t i) {
    if (!filtered) return true;
    const TickRecord& r = st.ticks[i];
    if (!by_order) return r.ts_ns >= s.since_ns;
    return OrderOf(st, i) >= from_ns || (s.req.since_ms > 0 && r.ts_ns >= s.since_ns) ||
           SeqOf(st, i) >= backfill_seq;
  };

  std::size_t i = 0;
  std::uint64_t cap = 0;
  std::uint64_t quota = 0;
  if (resume) {
    i = first_above(c.partial_key);
    cap = c.partial_cap;
    quota = c.partial_quota;
  } else {
    ++s.steps;
    const std::uint64_t topics = std::max<std::uint64_t>(c.topics_left, 1);
    if (c.topics_left > 0) --c.topics_left;
    if (pos == nullptr && !by_order && s.req.backfill == 0 && s.req.since_ms <= 0) {
      return true;  // not asked
    }
    if (stale) {
      c.epoch_changed = true;
      s.lost.push_back(LostRange{*st.name, pos->after_seq + 1, 0, pos->topic_epoch});
    }
    // Ticks accepted at or after resume_from_ns that the ring dropped: the server keeps only
    // the newest dropped one's place, so the range names every dropped seq (S8c).
    if (by_order && DroppedOrder(st) >= from_ns && st.last_seq > 0) {
      c.retention_cut = true;
      s.lost.push_back(
          LostRange{*st.name, 1, n == 0 ? st.last_seq : st.ticks[0].prev_seq, st.epoch});
    }
    if (n == 0) {
      if (pos != nullptr && st.last_seq > after) {  // nothing retained (HISTORY_TICKS=0)
        c.retention_cut = true;
        s.lost.push_back(LostRange{*st.name, after + 1, st.last_seq, st.epoch});
      }
      return true;
    }
    const std::uint64_t share = (c.budget + topics - 1) / topics;
    cap = LastKey(st, mode);
    // Ticks since: the ring no longer reaches back to since_ms when it dropped ticks and its
    // oldest is stamped at or after it (producers stamp in near order).
    if (filtered && (!by_order || s.req.since_ms > 0) && st.ticks[0].prev_seq != 0 &&
        st.ticks[0].ts_ns >= s.since_ns) {
      c.retention_cut = true;
    }
    if (!filtered) {
      std::size_t first = 0;  // the oldest selected
      if (pos != nullptr) {
        first = first_above(after);
        // Ticks are numbered in order and prev_seq names the one before, so the first retained
        // tick after the position shows whether retention dropped some in between.
        if (first < n && st.ticks[first].prev_seq > after) {
          c.retention_cut = true;
          s.lost.push_back(LostRange{*st.name, after + 1, st.ticks[first].prev_seq, st.epoch});
        }
      } else if (s.req.backfill > 0) {
        first = n - std::min<std::size_t>(n, s.req.backfill);
        if (n < s.req.backfill && (ticks ? st.ticks[0].prev_seq != 0 : bars.dropped())) {
          c.retention_cut = true;  // more were asked for than the ring still holds
        }
      } else if (s.req.since_ms > 0) {
        first = first_above(static_cast<std::uint64_t>(s.req.since_ms) - 1);
        if (first == 0 && bars.dropped() && bars[0].start_ms > s.req.since_ms) {
          c.retention_cut = true;  // the ring no longer reaches back to since_ms
        }
      }
      const std::size_t wanted = n - first;
      quota = std::min<std::uint64_t>(wanted, share);
      if (quota < wanted) {
        c.truncated = true;
        if (pos != nullptr) {  // the oldest of those asked for are left out
          const std::size_t skip_end = n - static_cast<std::size_t>(quota);
          s.lost.push_back(
              LostRange{*st.name, SeqOf(st, first), SeqOf(st, skip_end - 1), st.epoch});
        }
      }
      i = n - static_cast<std::size_t>(quota);
    } else if (n <= share) {
      quota = n;  // every selected tick fits
    } else {
      // The newest `share` selected ticks: walk back to where they start.
      i = n;
      while (i > 0 && quota < share) {
        --i;
        ++s.steps;
        if (selected(i)) ++quota;
      }
      for (std::size_t j = i; j > 0 && !c.truncated; --j) {
        ++s.steps;
        if (selected(j - 1)) c.truncated = true;
      }
    }
  }
  for (; i < n && quota > 0; ++i) {
    const std::uint64_t key = key_at(i);
    if (key > cap) break;
    ++s.steps;
    c.partial_key = key;
    if (selected(i)) {
      const auto offset = s.out.bytes.size();
      if (ticks) {
        const TickRecord& r = st.ticks[i];
        const std::uint64_t seq = SeqOf(st, i);
        const std::size_t topic_offset = protocol::AppendTickRecordEntry(
            s.out.bytes,
            protocol::TickFields{*st.name, r.price, r.size, r.ts_ns, seq, r.prev_seq, st.epoch});
        AppendEntry(s.out, offset, topic_offset, st.name->size(), Mode::kTick, 0, seq);
      } else {
        const Bar& b = bars[i];
        const std::size_t topic_offset = protocol::AppendBarRecordEntry(
            s.out.bytes,
            protocol::BarFields{*st.name, static_cast<std::uint32_t>(mode), b.start_ms, b.open,
                                b.high, b.low, b.close, b.volume, b.count, b.vwap()});
        AppendEntry(s.out, offset, topic_offset, st.name->size(), mode, 0, key);
      }
      --quota;
      --c.budget;
    }
    if (s.Full() && i + 1 < n && quota > 0 && key_at(i + 1) <= cap) {
      c.partial_cap = cap;
      c.partial_quota = quota;
      return false;
    }
  }
  return true;
}

HistorySlice Shard::NextHistorySlice(const HistoryRequest& req, HistoryCursor cursor,
                                     SliceLimits limits) {
  HistorySlice slice;
  slice.cursor = std::move(cursor);
  HistoryCursor& c = slice.cursor;
  if (c.finished) return slice;
  const bool listed = !req.wildcard && req.prefixes && !req.prefixes->empty();
  if (!c.started) {
    c.started = true;
    c.budget = options_.max_backfill_records;
    c.topics_left = req.wildcard ? topics_.size()
                    : listed     ? CountListedTopics(req)
                                 : (req.topics ? req.topics->size() : 0);
  }
  limits.max_bytes = std::max<std::size_t>(limits.max_bytes, 1);
  limits.max_steps = std::max<std::size_t>(limits.max_steps, 1);
  const std::int64_t since_ns = req.since_ms > std::numeric_limits<std::int64_t>::max() / kNsPerMs
                                    ? std::numeric_limits<std::int64_t>::max()
                                    : req.since_ms * kNsPerMs;
  SliceState s{req, c, slice.records, limits, since_ns, slice.lost};
  const bool was_truncated = c.truncated;
  static const std::vector<std::string> kNone;
  const std::vector<std::string>& list = req.topics ? *req.topics : kNone;
  while (!s.Full()) {
    // The next topic in name order. While one is in progress it comes next: topics named
    // between it and `after` were created after it began, so all their records reach the
    // subscriber live.
    std::string_view name;
    const TopicState* st = nullptr;
    if (req.wildcard) {
      const auto it =
          c.partial.empty() ? by_name_.upper_bound(c.after) : by_name_.lower_bound(c.partial);
      if (it == by_name_.end()) {
        c.finished = true;
        break;
      }
      name = it->first;
      st = it->second;
    } else if (listed) {
      const NextTopic next = c.partial.empty() ? NextListedTopic(req, c.after, false, s.steps)
                                               : NextListedTopic(req, c.partial, true, s.steps);
      if (next.name.empty()) {
        c.finished = true;
        break;
      }
      name = next.name;
      st = next.st;
    } else {
      const auto it = c.partial.empty() ? std::upper_bound(list.begin(), list.end(), c.after)
                                        : std::lower_bound(list.begin(), list.end(), c.partial);
      if (it == list.end()) {
        c.finished = true;
        break;
      }
      name = *it;
      st = Find(name);
    }
    const bool resume =
        st != nullptr && !c.partial.empty() && name == c.partial && st->serial == c.partial_serial;
    c.partial.clear();
    if (st == nullptr) {  // named, but nothing retained
      ++s.steps;
      if (!req.wildcard && !listed) ReportForgotten(req, name, s);
      c.after = name;
      continue;
    }
    if (!resume && c.budget == 0) {
      const std::size_t retained = req.mode == Mode::kTick     ? st->ticks.size()
                                   : req.mode == Mode::kSecond ? st->seconds.size()
                                                               : st->minutes.size();
      if (retained > 0) {
        c.truncated = true;  // the share is spent and this topic has history left out
        c.finished = true;
        break;
      }
    }
    if (!ReplayTopic(*st, resume, s)) {
      c.partial = name;
      c.partial_serial = st->serial;
      break;
    }
    c.after = name;
  }
  if (c.finished && (req.wildcard || listed) && req.resume) {
    // Positions of topics this shard no longer holds: the walk above only meets held topics.
    for (const auto& p : *req.resume) {
      if (Find(p.topic) == nullptr) ReportForgotten(req, p.topic, s);
    }
  }
  if (c.finished && req.mode == Mode::kTick && req.resume_from_ns > 0) {
    ReportBuried(req, slice);
  }
  if (c.truncated && !was_truncated) ++stats_.backfills_truncated;
  return slice;
}

void Shard::ReportBuried(const HistoryRequest& req, HistorySlice& slice) const {
  const std::int64_t from = req.resume_from_ns;
  if (tombstones_dropped_order_ns_ >= from) {
    slice.cursor.epoch_changed = true;
    ++slice.lost_unnamed;
  }
  std::size_t listed = 0;
  for (const Tombstone& t : tombstones_) {
    if (t.last_order_ns < from || !Covers(req, t.name)) continue;
    // A position in that very numbering is reported by ReportForgotten.
    const ResumePoint* p = FindResume(req, t.name);
    if (p != nullptr && p->topic_epoch == t.topic_epoch) continue;
    slice.cursor.epoch_changed = true;
    if (listed >= kMaxBuriedRangesPerReply) {  // more than a marker can list: counted
      ++slice.lost_unnamed;
      continue;
    }
    ++listed;
    slice.lost.push_back(LostRange{t.name, 1, t.last_seq, t.topic_epoch});
  }
}

bool Shard::Covers(const HistoryRequest& req, std::string_view topic) {
  if (req.wildcard) return true;
  if (req.topics && std::binary_search(req.topics->begin(), req.topics->end(), topic)) {
    return true;
  }
  if (req.prefixes) {
    const auto& p = *req.prefixes;
    const auto it = std::upper_bound(p.begin(), p.end(), topic);
    if (it != p.begin() && topic.starts_with(*std::prev(it))) return true;
  }
  return false;
}

void Shard::RestoreTombstones(std::vector<Tombstone> tombstones, std::int64_t dropped_order_ns) {
  tombstones_dropped_order_ns_ = std::max(tombstones_dropped_order_ns_, dropped_order_ns);
  std::sort(tombstones.begin(), tombstones.end(), [](const Tombstone& a, const Tombstone& b) {
    return a.last_order_ns < b.last_order_ns;
  });
  for (auto& t : tombstones) {
    order_ns_ = std::max(order_ns_, t.last_order_ns);
    max_restored_epoch_ = std::max(max_restored_epoch_, t.topic_epoch);
    Bury(std::move(t));
  }
}

void Shard::Bury(Tombstone t) {
  if (tombstones_.size() == kMaxTombstones) {  // the oldest goes; only its place is kept
    tombstones_dropped_order_ns_ =
        std::max(tombstones_dropped_order_ns_, tombstones_.front().last_order_ns);
    tombstones_.pop_front();
  }
  tombstones_.push_back(std::move(t));
}

const ResumePoint* Shard::FindResume(const HistoryRequest& req, std::string_view topic) {
  if (!req.resume || req.mode != Mode::kTick) return nullptr;
  const auto& v = *req.resume;
  const auto it = std::lower_bound(
      v.begin(), v.end(), topic,
      [](const ResumePoint& p, std::string_view t) { return std::string_view(p.topic) < t; });
  return it != v.end() && it->topic == topic ? &*it : nullptr;
}

void Shard::ReportForgotten(const HistoryRequest& req, std::string_view topic, SliceState& s) {
  const ResumePoint* p = FindResume(req, topic);
  if (p == nullptr || (p->after_seq == 0 && p->topic_epoch == 0)) return;  // never seen
  // The client held ticks of it, and the topic has been forgotten (S6b) since: what followed
  // its position went with it.
  s.cursor.epoch_changed = true;
  s.lost.push_back(LostRange{std::string(topic), p->after_seq + 1, 0, p->topic_epoch});
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

void Shard::SetWildcardInterest(Mode mode, unsigned worker, bool interested,
                                std::string_view prefix) {
  const auto slot = static_cast<std::size_t>(mode);
  if (prefix.empty()) {
    SetWorkerBit(wildcard_[slot], worker, interested);
    return;
  }
  auto it = prefix_interest_.find(prefix);
  if (it == prefix_interest_.end()) {
    if (!interested) return;
    it = prefix_interest_.emplace(std::string(prefix), Masks{}).first;
  }
  SetWorkerBit(it->second[slot], worker, interested);
  if (std::all_of(it->second.begin(), it->second.end(), [](WorkerMask m) { return m == 0; })) {
    prefix_interest_.erase(it);
  }
  ++prefix_epoch_;  // every topic recomputes its prefix masks when it next emits a record
}

void Shard::RefreshPrefixInterest(TopicState& st) const {
  st.prefix_interest = {};
  st.prefix_epoch = prefix_epoch_;
  if (prefix_interest_.empty()) return;
  ForEachPatternPrefix(*st.name, [&](std::string_view prefix) {
    if (auto it = prefix_interest_.find(prefix); it != prefix_interest_.end()) {
      for (std::size_t m = 0; m < st.prefix_interest.size(); ++m) {
        st.prefix_interest[m] |= it->second[m];
      }
    }
  });
}

Shard::NextTopic Shard::NextListedTopic(const HistoryRequest& req, std::string_view from,
                                        bool inclusive, std::size_t& steps) const {
  NextTopic exact;
  if (req.topics) {
    const auto& list = *req.topics;
    const auto it = inclusive ? std::lower_bound(list.begin(), list.end(), from)
                              : std::upper_bound(list.begin(), list.end(), from);
    if (it != list.end()) exact.name = *it;
  }
  // The first topic at or after `from` under one of the prefixes. They are sorted and none is
  // a prefix of another, so a name starts with one only if it starts with the greatest one not
  // above it; otherwise jump to the next prefix's first topic (at most one jump per prefix).
  NextTopic matched;
  const auto& prefixes = *req.prefixes;
  auto it = inclusive ? by_name_.lower_bound(from) : by_name_.upper_bound(from);
  while (it != by_name_.end()) {
    ++steps;
    const std::string_view name = it->first;
    const auto p = std::upper_bound(prefixes.begin(), prefixes.end(), name);
    if (p != prefixes.begin() && name.starts_with(*std::prev(p))) {
      matched = {name, it->second};
      break;
    }
    if (p == prefixes.end()) break;
    it = by_name_.lower_bound(*p);
  }
  if (matched.name.empty())
    return exact.name.empty() ? exact : NextTopic{exact.name, Find(exact.name)};
  if (exact.name.empty() || matched.name <= exact.name) return matched;
  return {exact.name, Find(exact.name)};
}

std::uint64_t Shard::CountListedTopics(const HistoryRequest& req) const {
  const auto& prefixes = *req.prefixes;
  std::uint64_t n = 0;
  for (const std::string& p : prefixes) {
    for (auto it = by_name_.lower_bound(p); it != by_name_.end() && it->first.starts_with(p);
         ++it) {
      ++n;
    }
  }
  if (req.topics) {
    for (const std::string& t : *req.topics) {
      bool under_prefix = false;
      ForEachPatternPrefix(t, [&](std::string_view p) {
        under_prefix = under_prefix || std::binary_search(prefixes.begin(), prefixes.end(), p);
      });
      if (!under_prefix) ++n;
    }
  }
  return n;
}

void Shard::SnapshotSlice(SnapshotCursor& cursor, std::string& out, std::size_t max_bytes) const {
  if (cursor.finished) return;
  const std::size_t start = out.size();
  auto it = cursor.after.empty() ? by_name_.begin() : by_name_.upper_bound(cursor.after);
  for (; it != by_name_.end() && out.size() - start < max_bytes; ++it) {
    const TopicState& st = *it->second;
    TopicRecordWriter w(out, *st.name, st.last_seq, st.epoch, st.last_publish_ns, DroppedOrder(st),
                        st.last_second_start, st.last_minute_start,
                        static_cast<std::uint32_t>(st.open_seconds.size()),
                        static_cast<std::uint32_t>(st.open_minutes.size()),
                        static_cast<std::uint32_t>(st.seconds.size()),
                        static_cast<std::uint32_t>(st.minutes.size()),
                        static_cast<std::uint32_t>(st.ticks.size()));
    for (const auto& a : st.open_seconds) w.Open(a);
    for (const auto& a : st.open_minutes) w.Open(a);
    for (std::size_t i = 0; i < st.seconds.size(); ++i) w.ClosedBar(st.seconds[i]);
    for (std::size_t i = 0; i < st.minutes.size(); ++i) w.ClosedBar(st.minutes[i]);
    for (std::size_t i = 0; i < st.ticks.size(); ++i) {
      const TickRecord& r = st.ticks[i];
      w.Tick(TickImage{r.price, r.size, r.ts_ns, SeqOf(st, i), r.prev_seq, OrderOf(st, i)});
    }
    w.Finish();
    ++cursor.topics;
    cursor.after = *st.name;
  }
  if (it == by_name_.end()) {
    cursor.finished = true;
    AppendTombstones(out, tombstones_, tombstones_dropped_order_ns_);
  }
}

bool Shard::Restore(const TopicImage& image) {
  if (Find(image.name) != nullptr || cap_.size() >= cap_.max_topics()) return false;
  auto it = topics_.emplace(image.name, TopicState(options_)).first;
  TopicState& st = it->second;
  st.name = &it->first;
  st.serial = next_serial_++;
  by_name_.emplace(it->first, &st);
  if (auto i = interest_.find(image.name); i != interest_.end()) st.interest = i->second;
  cap_.Insert(st, 0);  // the most recently published now: the caller restores oldest first
  ++restored_;
  st.last_seq = image.last_seq;
  if (image.topic_epoch != 0) {
    st.epoch = image.topic_epoch;
    max_restored_epoch_ = std::max(max_restored_epoch_, image.topic_epoch);
  } else {
    st.epoch = next_epoch_;
    next_epoch_ += kEpochStride;
  }
  st.last_publish_ns = image.last_publish_ns;
  st.last_second_start = image.last_second_start;
  st.last_minute_start = image.last_minute_start;
  st.open_seconds = image.open_seconds;
  st.open_minutes = image.open_minutes;
  auto newest = [](const auto& v, std::size_t cap) {
    return v.size() > cap ? v.size() - cap : std::size_t{0};
  };
  for (std::size_t i = newest(image.seconds, st.seconds.capacity()); i < image.seconds.size();
       ++i) {
    st.seconds.Push(image.seconds[i]);
  }
  for (std::size_t i = newest(image.minutes, st.minutes.capacity()); i < image.minutes.size();
       ++i) {
    st.minutes.Push(image.minutes[i]);
  }
  const std::size_t first_tick = newest(image.ticks, st.ticks.capacity());
  // The chain of places (TickRecord::prev_order_ns) starts at the newest dropped tick; the
  // reader checked the chain of seqs (each prev_seq the seq before, the newest last_seq).
  st.last_order_ns = image.dropped_order_ns;
  if (first_tick > 0) {  // this run retains fewer: the older ones are dropped
    st.last_order_ns = std::max(st.last_order_ns, image.ticks[first_tick - 1].order_ns);
  }
  for (std::size_t i = first_tick; i < image.ticks.size(); ++i) {
    const TickImage& t = image.ticks[i];
    st.ticks.Push(TickRecord{t.price, t.size, t.ts_ns, t.prev_seq, st.last_order_ns});
    st.last_order_ns = t.order_ns;
    order_ns_ = std::max(order_ns_, t.order_ns);  // new ticks come after the restored ones
  }
  order_ns_ = std::max(order_ns_, st.last_order_ns);
  if (!st.open_seconds.empty() || !st.open_minutes.empty()) {
    st.in_open_list = true;
    open_topics_.push_back(&st);
  }
  return true;
}

void Shard::AdvanceTopicEpochsPast(std::uint64_t epoch) {
  if (next_epoch_ > epoch) return;
  next_epoch_ += ((epoch - next_epoch_) / kEpochStride + 1) * kEpochStride;
}

void Shard::RenewTopicEpochs() {
  for (auto& [name, st] : topics_) {
    st.epoch = next_epoch_;
    next_epoch_ += kEpochStride;
  }
}

std::uint64_t Shard::LastSeq(std::string_view topic) const {
  const TopicState* st = Find(topic);
  return st == nullptr ? 0 : st->last_seq;
}

std::uint64_t Shard::TopicEpoch(std::string_view topic) const {
  const TopicState* st = Find(topic);
  return st == nullptr ? 0 : st->epoch;
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
