// Bars (PROTOCOL S8a) computed by the shard, checked against a plain reference fold.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "engine/bar.h"
#include "engine/shard.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::engine {
namespace {

constexpr std::int64_t kMs = kNsPerMs;
constexpr std::int64_t kSec = 1000 * kMs;
constexpr std::int64_t kT0 = 1'699'999'980'000 * kMs;  // a whole UTC minute

struct GotBar {
  std::string topic;
  Mode interval;
  v1::Bar bar;
};

std::vector<GotBar> Bars(const RecordBlock& block) {
  std::vector<GotBar> out;
  for (const auto& e : block.entries) {
    if (e.mode == Mode::kTick) continue;
    const auto bytes = block.EntryBytes(e);
    v1::DataBatch batch;
    EXPECT_TRUE(batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    EXPECT_TRUE(batch.records(0).has_bar());
    const v1::Bar& b = batch.records(0).bar();
    EXPECT_EQ(b.topic(), block.Topic(e));
    EXPECT_EQ(static_cast<Mode>(b.interval()), e.mode);
    EXPECT_EQ(static_cast<std::uint64_t>(b.start_ms()), e.key);
    out.push_back({b.topic(), e.mode, b});
  }
  return out;
}

// The plain reference: fold the accepted ticks that are not late for their SECOND bucket into
// each (topic, bucket), in acceptance order.
struct RefBar {
  double open = 0, high = 0, low = 0, close = 0, volume = 0, pv = 0;
  std::uint64_t count = 0;
  std::int64_t open_ts = 0, close_ts = 0;
};
using RefKey = std::tuple<std::string, int, std::int64_t>;  // topic, interval, start_ms

std::map<RefKey, RefBar> Reference(const std::vector<IngestTick>& ticks,
                                   std::int64_t close_delay_ns) {
  std::map<RefKey, RefBar> bars;
  for (const auto& t : ticks) {
    // Late once, for its second: then it is in no bar (PROTOCOL S8a).
    if (t.accepted_ns >= (t.ts_ns / kSec + 1) * kSec + close_delay_ns) continue;
    for (Mode m : {Mode::kSecond, Mode::kMinute}) {
      const std::int64_t len = m == Mode::kSecond ? 1000 : 60000;
      const std::int64_t start = t.ts_ns / (len * kMs) * len;
      RefBar& b = bars[{t.topic, static_cast<int>(m), start}];
      if (b.count == 0) {
        b.open = b.high = b.low = b.close = t.price;
        b.open_ts = b.close_ts = t.ts_ns;
      } else {
        if (t.ts_ns < b.open_ts) b.open = t.price, b.open_ts = t.ts_ns;
        if (t.ts_ns >= b.close_ts) b.close = t.price, b.close_ts = t.ts_ns;
        b.high = std::max(b.high, t.price);
        b.low = std::min(b.low, t.price);
      }
      b.volume += t.size;
      b.pv += t.price * t.size;
      ++b.count;
    }
  }
  return bars;
}

void ExpectSame(const v1::Bar& got, const RefBar& want, const std::string& what) {
  EXPECT_EQ(got.open(), want.open) << what;
  EXPECT_EQ(got.high(), want.high) << what;
  EXPECT_EQ(got.low(), want.low) << what;
  EXPECT_EQ(got.close(), want.close) << what;
  EXPECT_EQ(got.count(), want.count) << what;
  EXPECT_NEAR(got.volume(), want.volume, 1e-9 * std::max(1.0, std::abs(want.volume))) << what;
  const double vwap = want.volume != 0 ? want.pv / want.volume : 0;
  EXPECT_NEAR(got.vwap(), vwap, 1e-9 * std::max(1.0, std::abs(vwap))) << what;
}

void SubscribeBars(Shard& shard) {
  shard.SetWildcardInterest(Mode::kSecond, 0, true);
  shard.SetWildcardInterest(Mode::kMinute, 0, true);
}

TEST(Bars, RandomStreamsMatchTheReferenceFold) {
  std::mt19937_64 rng(42);
  const std::int64_t delay = 250 * kMs;
  ShardOptions options;
  options.close_delay_ns = delay;
  Shard shard(0, options);
  SubscribeBars(shard);
  const std::vector<std::string> topics = {"AAPL", "MSFT", "BTC-USD", "x.y:z", "EURUSD"};
  std::vector<IngestTick> accepted;
  std::vector<GotBar> got;
  RecordBlock block;
  // 150 s of server time in 10 ms steps; producers stamp ticks up to 400 ms in the past (some
  // late) and up to 5 s ahead, out of order; a tenth are stamped by the server.
  for (std::int64_t now = kT0; now < kT0 + 150 * kSec; now += 10 * kMs) {
    std::vector<IngestTick> frame;
    const int n = static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      IngestTick t;
      t.topic = topics[rng() % topics.size()];
      t.price = 100.0 + static_cast<double>(rng() % 2000) / 100.0;
      t.size = static_cast<double>(rng() % 500) / 10.0;  // zero sizes too
      const auto skew = static_cast<std::int64_t>(rng() % (5400 * 1000)) * 1000 - 400 * kMs;
      t.ts_ns = rng() % 10 == 0 ? now : now + skew;
      t.accepted_ns = now;
      frame.push_back(t);
    }
    shard.Apply(frame, block);
    accepted.insert(accepted.end(), frame.begin(), frame.end());
    shard.AdvanceWatermark(now, block);
  }
  shard.AdvanceWatermark(kT0 + 300 * kSec, block);  // close everything
  got = Bars(block);

  const auto want = Reference(accepted, delay);
  std::map<RefKey, int> seen;
  for (const auto& g : got) {
    const RefKey key{g.topic, static_cast<int>(g.interval), g.bar.start_ms()};
    ASSERT_TRUE(want.contains(key)) << "extra bar " << g.topic << " " << g.bar.start_ms();
    ExpectSame(g.bar, want.at(key), g.topic + " " + std::to_string(g.bar.start_ms()));
    ++seen[key];
  }
  for (const auto& [key, bar] : want) {
    EXPECT_EQ(seen[key], 1) << "bar " << std::get<0>(key) << " " << std::get<2>(key);
  }
  EXPECT_GT(shard.stats().late_second, 0u);  // the stream did include late ticks
  EXPECT_EQ(shard.stats().bars_second + shard.stats().bars_minute, want.size());
}

TEST(Bars, PerTopicBarsArriveInStartOrder) {
  Shard shard(0);
  SubscribeBars(shard);
  RecordBlock block;
  // Ticks for three future seconds arrive newest first.
  std::vector<IngestTick> ticks = {
      {"A", 3, 1, kT0 + 2 * kSec, kT0}, {"A", 2, 1, kT0 + 1 * kSec, kT0}, {"A", 1, 1, kT0, kT0}};
  shard.Apply(ticks, block);
  shard.AdvanceWatermark(kT0 + 10 * kSec, block);
  const auto got = Bars(block);
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].bar.start_ms(), (kT0 + static_cast<std::int64_t>(i) * kSec) / kMs);
    EXPECT_EQ(got[i].bar.open(), static_cast<double>(i + 1));
  }
}

TEST(Bars, BucketEdgesAreHalfOpen) {
  Shard shard(0);
  SubscribeBars(shard);
  RecordBlock block;
  std::vector<IngestTick> ticks = {{"E", 1, 1, kT0, kT0},             // first ns of second 0
                                   {"E", 2, 1, kT0 + kSec - 1, kT0},  // last ns of second 0
                                   {"E", 3, 1, kT0 + kSec, kT0}};     // first ns of second 1
  shard.Apply(ticks, block);
  shard.AdvanceWatermark(kT0 + 5 * kSec, block);
  const auto got = Bars(block);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].bar.start_ms(), kT0 / kMs);
  EXPECT_EQ(got[0].bar.count(), 2u);
  EXPECT_EQ(got[0].bar.open(), 1);
  EXPECT_EQ(got[0].bar.close(), 2);
  EXPECT_EQ(got[1].bar.start_ms(), kT0 / kMs + 1000);
  EXPECT_EQ(got[1].bar.count(), 1u);
}

TEST(Bars, OpenAndCloseFollowEventTimeWithTiesInAcceptanceOrder) {
  Shard shard(0);
  SubscribeBars(shard);
  RecordBlock block;
  std::vector<IngestTick> ticks = {{"T", 5, 1, kT0 + 500 * kMs, kT0},
                                   {"T", 7, 1, kT0 + 100 * kMs, kT0},  // earliest: open
                                   {"T", 8, 1, kT0 + 100 * kMs, kT0},  // tie: not the open
                                   {"T", 9, 1, kT0 + 900 * kMs, kT0},  // latest: close...
                                   {"T", 4, 1, kT0 + 900 * kMs, kT0},  // ...tie: last wins
                                   {"T", 6, 1, kT0 + 300 * kMs, kT0}};
  shard.Apply(ticks, block);
  shard.AdvanceWatermark(kT0 + 5 * kSec, block);
  const auto got = Bars(block);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bar.open(), 7);
  EXPECT_EQ(got[0].bar.close(), 4);
  EXPECT_EQ(got[0].bar.high(), 9);
  EXPECT_EQ(got[0].bar.low(), 4);
  EXPECT_EQ(got[0].bar.count(), 6u);
  EXPECT_EQ(got[0].bar.volume(), 6);
  EXPECT_DOUBLE_EQ(got[0].bar.vwap(), (5 + 7 + 8 + 9 + 4 + 6) / 6.0);
}

TEST(Bars, ZeroVolumeBarHasZeroVwapAndEmptyBucketsEmitNothing) {
  Shard shard(0);
  SubscribeBars(shard);
  RecordBlock block;
  std::vector<IngestTick> ticks = {{"Z", 5, 0, kT0, kT0}, {"Z", 6, 0, kT0 + 3 * kSec, kT0}};
  shard.Apply(ticks, block);
  shard.AdvanceWatermark(kT0 + 10 * kSec, block);
  const auto got = Bars(block);
  ASSERT_EQ(got.size(), 2u);  // seconds 1 and 2 had no ticks: no bars
  EXPECT_EQ(got[0].bar.vwap(), 0);
  EXPECT_EQ(got[0].bar.volume(), 0);
  EXPECT_EQ(got[1].bar.start_ms(), kT0 / kMs + 3000);
}

TEST(Bars, NothingClosesBeforeEndPlusDelay) {
  ShardOptions options;
  options.close_delay_ns = 100 * kMs;
  Shard shard(0, options);
  SubscribeBars(shard);
  RecordBlock block;
  std::vector<IngestTick> ticks = {{"D", 1, 1, kT0 + 10 * kMs, kT0 + 10 * kMs}};
  shard.Apply(ticks, block);
  EXPECT_EQ(shard.AdvanceWatermark(kT0 + kSec + 99 * kMs, block), 0u);
  EXPECT_TRUE(Bars(block).empty());
  EXPECT_EQ(shard.AdvanceWatermark(kT0 + kSec + 100 * kMs, block), 1u);
  EXPECT_EQ(Bars(block).size(), 1u);
}

TEST(Bars, LateTicksAreCountedExcludedAndStillDeliveredAsTicks) {
  ShardOptions options;
  options.close_delay_ns = 100 * kMs;
  Shard shard(0, options);
  SubscribeBars(shard);
  shard.SetWildcardInterest(Mode::kTick, 0, true);
  RecordBlock block;
  std::vector<IngestTick> on_time = {{"L", 10, 1, kT0 + 500 * kMs, kT0 + 500 * kMs}};
  shard.Apply(on_time, block);
  shard.AdvanceWatermark(kT0 + 2 * kSec, block);  // second 0 closed
  // Stamped inside second 0, accepted after it closed: late for the second, so for no bar,
  // though its minute is still open.
  std::vector<IngestTick> late = {{"L", 99, 1, kT0 + 600 * kMs, kT0 + 2 * kSec}};
  EXPECT_EQ(shard.Apply(late, block).late, 1u);
  // Accepted within the delay but after the bucket was closed by the clock (a clock step):
  // also late.
  std::vector<IngestTick> stepped = {{"L", 98, 1, kT0 + 700 * kMs, kT0 + 800 * kMs}};
  EXPECT_EQ(shard.Apply(stepped, block).late, 1u);
  EXPECT_EQ(shard.stats().late_second, 2u);
  EXPECT_EQ(shard.stats().late_minute, 0u);  // their minute had not closed
  shard.AdvanceWatermark(kT0 + 61 * kSec, block);
  int ticks = 0;
  for (const auto& e : block.entries) ticks += e.mode == Mode::kTick ? 1 : 0;
  EXPECT_EQ(ticks, 3);  // late ticks still reach TICK subscribers
  const auto got = Bars(block);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].interval, Mode::kSecond);
  EXPECT_EQ(got[0].bar.count(), 1u);
  EXPECT_EQ(got[0].bar.high(), 10);
  EXPECT_EQ(got[1].interval, Mode::kMinute);
  // Lateness is decided once: the minute leaves out what its second left out.
  EXPECT_EQ(got[1].bar.count(), 1u);
  EXPECT_EQ(got[1].bar.high(), 10);
}

TEST(Bars, ApplyCountsLateTicksOnceAndMinuteLateOnesToo) {
  ShardOptions options;
  options.close_delay_ns = 100 * kMs;
  Shard shard(0, options);
  SubscribeBars(shard);
  RecordBlock block;
  shard.AdvanceWatermark(kT0 + 61 * kSec, block);  // second 0 .. 60 and minute 0 closed
  const std::int64_t now = kT0 + 61 * kSec + 200 * kMs;
  std::vector<IngestTick> frame = {
      {"A", 1, 1, kT0 + 100 * kMs, now},            // late: minute 0 past its end + delay too
      {"A", 2, 1, kT0 + 60 * kSec + 5 * kMs, now},  // late for second 60, minute 1 open
      {"A", 3, 1, kT0 + 61 * kSec, now},            // on time
      {"B", 4, 1, 1, now}};                         // stamped in 1970: very late
  const ApplyResult r = shard.Apply(frame, block);
  EXPECT_EQ(r.applied, 4u);
  EXPECT_EQ(r.late, 3u);
  EXPECT_EQ(shard.stats().late_second, 3u);
  EXPECT_EQ(shard.stats().late_minute, 2u);
  shard.AdvanceWatermark(kT0 + 200 * kSec, block);
  const auto got = Bars(block);
  ASSERT_EQ(got.size(), 2u);  // second 61 and minute 1 of A, each with the one on-time tick
  for (const auto& g : got) {
    EXPECT_EQ(g.bar.count(), 1u);
    EXPECT_EQ(g.bar.open(), 3);
  }
}

// Random producers, many stamping into seconds already closed while their minute is open:
// every MINUTE bar equals the fold of its SECOND bars, late ticks included.
TEST(Bars, MinuteEqualsFoldOfSecondsWithLateTicks) {
  std::mt19937_64 rng(99);
  ShardOptions options;
  options.close_delay_ns = 50 * kMs;
  Shard shard(0, options);
  SubscribeBars(shard);
  RecordBlock block;
  std::size_t late = 0;
  for (std::int64_t now = kT0; now < kT0 + 130 * kSec; now += 7 * kMs) {
    std::vector<IngestTick> t = {{"M", 50 + static_cast<double>(rng() % 1000) / 10.0,
                                  static_cast<double>(1 + rng() % 9),
                                  now - static_cast<std::int64_t>(rng() % 3000) * kMs, now}};
    late += shard.Apply(t, block).late;
    shard.AdvanceWatermark(now, block);
  }
  shard.AdvanceWatermark(kT0 + 300 * kSec, block);
  EXPECT_GT(late, 1000u);  // most ticks above were stamped into closed seconds
  EXPECT_EQ(late, shard.stats().late_second);
  std::map<std::int64_t, std::uint64_t> second_counts;
  std::map<std::int64_t, double> second_volume;
  std::vector<v1::Bar> minutes;
  for (const auto& g : Bars(block)) {
    if (g.interval == Mode::kSecond) {
      second_counts[g.bar.start_ms() / 60000 * 60000] += g.bar.count();
      second_volume[g.bar.start_ms() / 60000 * 60000] += g.bar.volume();
    } else {
      minutes.push_back(g.bar);
    }
  }
  ASSERT_GE(minutes.size(), 2u);
  for (const auto& m : minutes) {
    EXPECT_EQ(m.count(), second_counts[m.start_ms()]) << m.start_ms();
    EXPECT_DOUBLE_EQ(m.volume(), second_volume[m.start_ms()]) << m.start_ms();
  }
}

TEST(Bars, MinuteBarsEqualTheFoldOfTheirSecondBars) {
  std::mt19937_64 rng(7);
  Shard shard(0);
  SubscribeBars(shard);
  RecordBlock block;
  for (std::int64_t ms = 0; ms < 180'000; ms += 37) {
    std::vector<IngestTick> t = {{"M", 50 + static_cast<double>(rng() % 1000) / 10.0,
                                  static_cast<double>(1 + rng() % 9), kT0 + ms * kMs,
                                  kT0 + ms * kMs}};
    shard.Apply(t, block);
    shard.AdvanceWatermark(kT0 + ms * kMs, block);
  }
  shard.AdvanceWatermark(kT0 + 300 * kSec, block);
  const auto got = Bars(block);
  std::map<std::int64_t, std::vector<v1::Bar>> seconds_of_minute;
  std::vector<v1::Bar> minutes;
  for (const auto& g : got) {
    if (g.interval == Mode::kSecond) {
      seconds_of_minute[g.bar.start_ms() / 60000 * 60000].push_back(g.bar);
    } else {
      minutes.push_back(g.bar);
    }
  }
  ASSERT_EQ(minutes.size(), 3u);
  for (const auto& m : minutes) {
    const auto& secs = seconds_of_minute[m.start_ms()];
    ASSERT_EQ(secs.size(), 60u);
    double high = secs[0].high(), low = secs[0].low(), volume = 0, pv = 0;
    std::uint64_t count = 0;
    for (const auto& s : secs) {
      high = std::max(high, s.high());
      low = std::min(low, s.low());
      volume += s.volume();
      pv += s.vwap() * s.volume();
      count += s.count();
    }
    EXPECT_EQ(m.open(), secs.front().open());
    EXPECT_EQ(m.close(), secs.back().close());
    EXPECT_EQ(m.high(), high);
    EXPECT_EQ(m.low(), low);
    EXPECT_EQ(m.count(), count);
    EXPECT_NEAR(m.volume(), volume, 1e-9 * volume);
    EXPECT_NEAR(m.vwap(), pv / volume, 1e-9 * m.vwap());
  }
}

TEST(Bars, OnlySubscribedModesAreEncodedButHistoryIsAlwaysKept) {
  Shard shard(0);
  shard.SetInterest("S", Mode::kSecond, 3, true);
  RecordBlock block;
  std::vector<IngestTick> ticks = {{"S", 1, 1, kT0, kT0}, {"U", 1, 1, kT0, kT0}};
  shard.Apply(ticks, block);
  shard.AdvanceWatermark(kT0 + 61 * kSec, block);
  ASSERT_EQ(block.entries.size(), 1u);  // S's SECOND bar only
  EXPECT_EQ(block.Topic(block.entries[0]), "S");
  EXPECT_EQ(block.entries[0].workers, WorkerBit(3));
  EXPECT_EQ(shard.RetainedBars("U", Mode::kSecond).size(), 1u);
  EXPECT_EQ(shard.RetainedBars("U", Mode::kMinute).size(), 1u);
}

}  // namespace
}  // namespace tickwire::engine
