// Differential fuzzer for the engine: a byte-coded script of ticks (several topics and users,
// producer timestamps out of order and some late), clock advances, subscribers' interest
// coming and going, and history requests runs against a Shard and against a plain reference
// fold, with a small topic cap (overall and per user) so that topics are created, evicted and
// refused.
//
// Oracles:
//  - every bar the shard emits equals the reference bar of the same (topic, interval, start)
//    computed from the applied non-late ticks, and every reference bar is emitted exactly once;
//  - ticks get seq 1, 2, 3, ... per topic (until the topic is evicted);
//  - the shard never holds more topics than its cap; a refused tick leaves no trace (no record,
//    no topic, no seq); an applied one is encoded once;
//  - interest creates no topic, and every record goes to the workers subscribed at the time
//    (exact interest of the topic and mode, or the wildcard);
//  - history replays (joined from slices of random small limits) are in ascending key order per
//    topic, never more than the ring holds, than `backfill` asks for or than the budget allows,
//    and encode parseable records.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/shard.h"
#include "tickwire/v1/tickwire.pb.h"

namespace {

using namespace tickwire::engine;  // NOLINT: a fuzzer, not library code
namespace v1 = tickwire::v1;

void Check(bool ok, int line) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_shard: check failed at line %d\n", line);
  std::abort();
}
#define CHECK(cond) Check((cond), __LINE__)

constexpr std::int64_t kT0 = 1'699'999'980'000 * kNsPerMs;
const char* const kTopics[] = {"A", "B", "C", "D", "E"};

struct Ref {
  double open = 0, high = 0, low = 0, close = 0, volume = 0, pv = 0;
  std::uint64_t count = 0;
  std::int64_t open_ts = 0, close_ts = 0;
};

class Reader {
 public:
  Reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool more() const { return i_ < n_; }
  std::uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t i_ = 0;
};

std::vector<v1::Record> Decode(const RecordBlock& block) {
  std::vector<v1::Record> out;
  for (const auto& e : block.entries) {
    const auto bytes = block.EntryBytes(e);
    v1::DataBatch b;
    CHECK(b.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    CHECK(b.records_size() == 1);
    out.push_back(b.records(0));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  ShardOptions o;
  o.close_delay_ns = (in.u8() % 4) * 100 * kNsPerMs;
  o.second_bars = 1 + in.u8() % 8;
  o.minute_bars = 1 + in.u8() % 4;
  o.ticks = 1 + in.u8() % 16;
  o.max_topics = 2 + in.u8() % 4;
  o.max_topics_per_user = in.u8() % 3;
  o.max_backfill_records = 1 + in.u8() % 32;
  Shard shard(0, o);
  shard.SetWildcardInterest(Mode::kSecond, 0, true);
  shard.SetWildcardInterest(Mode::kMinute, 0, true);
  shard.SetWildcardInterest(Mode::kTick, 0, true);
  // Exact interest of workers 1..3, as the shard should hold it.
  std::map<std::pair<std::string, int>, WorkerMask> interest;
  auto dest = [&](std::string_view topic, Mode m) {
    auto it = interest.find({std::string(topic), static_cast<int>(m)});
    return WorkerBit(0) | (it == interest.end() ? 0 : it->second);
  };

  std::map<std::tuple<std::string, int, std::int64_t>, Ref> want;
  std::map<std::string, std::uint64_t> seq;
  RecordBlock block;
  std::int64_t now = kT0;
  int ops = 0;
  while (in.more() && ++ops < 2000) {
    const std::uint8_t op = in.u8();
    if (op % 4 <= 1) {
      IngestTick t;
      t.topic = kTopics[op / 4 % 5];
      t.price = 1 + in.u8() % 50;
      t.size = in.u8() % 5;
      // Event time from 2 s behind to 5 s ahead of the clock, in 10 ms steps.
      t.ts_ns = now + (static_cast<std::int64_t>(in.u16() % 700) - 200) * 10 * kNsPerMs;
      t.accepted_ns = now;
      const UserId user = op / 64 % 3;
      const std::size_t before = block.entries.size();
      const std::size_t topics_before = shard.topic_count();
      const std::uint64_t seq_before = shard.LastSeq(t.topic);
      const ApplyResult result = shard.Apply(std::span(&t, 1), block, user);
      CHECK(shard.topic_count() <= o.max_topics);
      if (result.refused == 1) {
        // Only a new topic is refused, and it leaves nothing behind.
        CHECK(seq_before == 0 && result.applied == 0 && result.first_refused == 0);
        CHECK(result.reason != Refusal::kNone);
        CHECK(result.reason == Refusal::kTopicLimit || o.max_topics_per_user > 0);
        CHECK(block.entries.size() == before && shard.LastSeq(t.topic) == 0);
        CHECK(shard.topic_count() <= topics_before);
        continue;
      }
      CHECK(result.applied == 1 && result.refused == 0);
      CHECK(block.entries.size() == before + 1);
      CHECK(block.entries.back().workers == dest(t.topic, Mode::kTick));
      v1::Record rec;
      {
        const auto bytes = block.EntryBytes(block.entries.back());
        v1::DataBatch one;
        CHECK(one.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
        rec = one.records(0);
      }
      const std::uint64_t s = shard.LastSeq(t.topic);
      CHECK(rec.tick().seq() == s && rec.tick().prev_seq() == s - 1);
      CHECK(s == seq[t.topic] + 1 || s == 1);  // consecutive, or restarted after eviction
      seq[t.topic] = s;
      // Lateness is decided once, by the tick's SECOND bucket: a tick late for it is in no bar,
      // so that a MINUTE bar is the fold of its SECOND bars.
      const std::int64_t second_start = BucketStartMs(t.ts_ns, Mode::kSecond);
      const bool late = t.accepted_ns >= (second_start + 1000) * kNsPerMs + o.close_delay_ns;
      for (Mode m : {Mode::kSecond, Mode::kMinute}) {
        if (late) break;
        const std::int64_t start = BucketStartMs(t.ts_ns, m);
        Ref& r = want[{t.topic, static_cast<int>(m), start}];
        if (r.count == 0) {
          r.open = r.high = r.low = r.close = t.price;
          r.open_ts = r.close_ts = t.ts_ns;
        } else {
          if (t.ts_ns < r.open_ts) r.open = t.price, r.open_ts = t.ts_ns;
          if (t.ts_ns >= r.close_ts) r.close = t.price, r.close_ts = t.ts_ns;
          if (t.price > r.high) r.high = t.price;
          if (t.price < r.low) r.low = t.price;
        }
        r.volume += t.size;
        r.pv += t.price * t.size;
        ++r.count;
      }
    } else if (op % 4 == 2 && (op & 0x80) != 0) {
      // A worker's first subscriber for (topic, mode) arrives, or its last leaves.
      const std::string topic = kTopics[in.u8() % 5];
      const auto mode = static_cast<Mode>(1 + op / 4 % 3);
      const unsigned worker = 1 + op / 16 % 3;
      const bool on = (op & 0x40) != 0;
      const std::size_t topics_before = shard.topic_count();
      shard.SetInterest(topic, mode, worker, on);
      WorkerMask& m = interest[{topic, static_cast<int>(mode)}];
      m = on ? (m | WorkerBit(worker)) : (m & ~WorkerBit(worker));
      CHECK(shard.topic_count() == topics_before);  // interest creates and frees nothing
    } else if (op % 4 == 2) {
      now += (1 + in.u8()) * 20 * kNsPerMs;  // up to ~5 s
      const std::size_t before = block.entries.size();
      shard.AdvanceWatermark(now, block);
      for (std::size_t i = before; i < block.entries.size(); ++i) {
        const auto& e = block.entries[i];
        CHECK(e.workers == dest(block.Topic(e), e.mode));
      }
    } else {
      HistoryRequest req;
      req.mode = static_cast<Mode>(1 + in.u8() % 3);
      req.wildcard = (op & 0x10) != 0;
      if (!req.wildcard) {
        std::vector<std::string> names = {kTopics[in.u8() % 5], kTopics[in.u8() % 5]};
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        req.topics = std::make_shared<const std::vector<std::string>>(std::move(names));
      }
      if ((op & 0x20) != 0) {
        req.backfill = in.u8() % 20;
      } else {
        req.since_ms = (now - static_cast<std::int64_t>(in.u8()) * 100 * kNsPerMs) / kNsPerMs;
      }
      RecordBlock replay;
      HistoryCursor cursor;
      const SliceLimits limits{1 + in.u8() * 16u, 1 + in.u8() % 64u};
      for (int slices = 0; !cursor.finished; ++slices) {
        CHECK(slices < 100'000);
        HistorySlice slice = shard.NextHistorySlice(req, cursor, limits);
        CHECK(slice.records.entries.size() <= limits.max_steps);
        replay.Append(slice.records);
        cursor = std::move(slice.cursor);
      }
      const auto recs = Decode(replay);
      std::map<std::string, std::pair<std::uint64_t, std::size_t>> per_topic;  // last key, n
      for (std::size_t i = 0; i < recs.size(); ++i) {
        const auto& e = replay.entries[i];
        CHECK(e.mode == req.mode);
        const std::string topic(replay.Topic(e));
        auto& [last, n] = per_topic[topic];
        CHECK(n == 0 || e.key > last);
        last = e.key;
        ++n;
        const std::size_t ring = req.mode == Mode::kTick
                                     ? o.ticks
                                     : (req.mode == Mode::kSecond ? o.second_bars : o.minute_bars);
        CHECK(n <= ring);
        if (req.backfill > 0) CHECK(n <= req.backfill);
        if (req.mode == Mode::kTick) {
          CHECK(recs[i].has_tick() && recs[i].tick().seq() == e.key);
          if (req.backfill == 0) CHECK(recs[i].tick().ts_ns() >= req.since_ms * kNsPerMs);
        } else {
          CHECK(recs[i].has_bar() && static_cast<std::uint64_t>(recs[i].bar().start_ms()) == e.key);
          if (req.backfill == 0) CHECK(recs[i].bar().start_ms() >= req.since_ms);
        }
      }
      CHECK(recs.size() <= o.max_backfill_records);
    }
  }
  shard.AdvanceWatermark(now + 3600LL * 1000 * kNsPerMs, block);
  CHECK(shard.topic_count() <= o.max_topics);

  std::map<std::tuple<std::string, int, std::int64_t>, int> seen;
  for (const auto& r : Decode(block)) {
    if (!r.has_bar()) continue;
    const v1::Bar& b = r.bar();
    const auto key = std::make_tuple(b.topic(), static_cast<int>(b.interval()), b.start_ms());
    auto it = want.find(key);
    CHECK(it != want.end());
    const Ref& w = it->second;
    CHECK(b.open() == w.open && b.high() == w.high && b.low() == w.low && b.close() == w.close &&
          b.count() == w.count && b.volume() == w.volume);
    CHECK(b.vwap() == (w.volume != 0 ? w.pv / w.volume : 0.0));
    CHECK(++seen[key] == 1);
  }
  CHECK(seen.size() == want.size());
  return 0;
}
