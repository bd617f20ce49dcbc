// History rings, the topic cap and history requests (PROTOCOL S8b).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/history_ring.h"
#include "engine/shard.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::engine {
namespace {

constexpr std::int64_t kMs = kNsPerMs;
constexpr std::int64_t kSec = 1000 * kMs;
constexpr std::int64_t kT0 = 1'699'999'980'000 * kMs;  // a whole UTC minute

// Every slice of one replay, joined: what a subscriber is sent besides live records.
struct Replayed {
  RecordBlock records;
  std::size_t slices = 0;
  bool truncated = false;
};
Replayed Replay(Shard& shard, const HistoryRequest& req, SliceLimits limits = {}) {
  Replayed r;
  HistoryCursor cursor;
  while (!cursor.finished) {
    HistorySlice slice = shard.NextHistorySlice(req, cursor, limits);
    ++r.slices;
    r.records.Append(slice.records);
    cursor = std::move(slice.cursor);
    EXPECT_LT(r.slices, 100'000u);
    if (r.slices >= 100'000u) break;
  }
  r.truncated = cursor.truncated;
  return r;
}

std::shared_ptr<const std::vector<std::string>> Topics(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return std::make_shared<const std::vector<std::string>>(std::move(names));
}

std::vector<v1::Record> Records(const RecordBlock& block) {
  std::vector<v1::Record> out;
  for (const auto& e : block.entries) {
    const auto bytes = block.EntryBytes(e);
    v1::DataBatch batch;
    EXPECT_TRUE(batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    out.push_back(batch.records(0));
  }
  return out;
}

TEST(HistoryRing, KeepsTheNewestAndEvictsOldestFirst) {
  HistoryRing<int> ring(3);
  EXPECT_TRUE(ring.empty());
  for (int i = 1; i <= 2; ++i) ring.Push(i);
  ASSERT_EQ(ring.size(), 2u);
  EXPECT_EQ(ring[0], 1);
  for (int i = 3; i <= 7; ++i) ring.Push(i);
  ASSERT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring[0], 5);
  EXPECT_EQ(ring[1], 6);
  EXPECT_EQ(ring[2], 7);
  EXPECT_EQ(ring.back(), 7);
  EXPECT_LE(ring.allocated_bytes(), 3 * sizeof(int));  // never more than its capacity
}

TEST(HistoryRing, ZeroCapacityKeepsNothing) {
  HistoryRing<int> ring(0);
  ring.Push(1);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.allocated_bytes(), 0u);
}

TEST(HistoryRing, StorageGrowsWithUseOnly) {
  HistoryRing<double> ring(3600);
  ring.Push(1);
  EXPECT_LT(ring.allocated_bytes(), 64u);
}

ShardOptions Small() {
  ShardOptions o;
  o.second_bars = 5;
  o.minute_bars = 2;
  o.ticks = 10;
  return o;
}

// Applies ticks 1..count of `topic`, tick i at accept-order place i * 100.
void PublishInAcceptOrder(Shard& shard, const std::string& topic, int count) {
  RecordBlock block;
  for (int i = 1; i <= count; ++i) {
    shard.AdvanceOrderClock(i * 100);
    std::vector<IngestTick> t = {{topic, static_cast<double>(i), 1, kT0, kT0}};
    shard.Apply(t, block);
  }
}

TEST(ShardHistory, RingsAreBoundedPerTopic) {
  Shard shard(0, Small());
  RecordBlock block;
  std::size_t bytes_at_half = 0;
  for (int i = 0; i < 200; ++i) {
    std::vector<IngestTick> t = {{"R", static_cast<double>(i), 1, kT0 + i * kSec, kT0 + i * kSec}};
    shard.Apply(t, block);
    shard.AdvanceWatermark(kT0 + i * kSec, block);
    if (i == 129) bytes_at_half = shard.HistoryBytes();
  }
  EXPECT_EQ(shard.HistoryBytes(), bytes_at_half);  // full rings stop growing
  shard.AdvanceWatermark(kT0 + 1000 * kSec, block);
  const auto seconds = shard.RetainedBars("R", Mode::kSecond);
  ASSERT_EQ(seconds.size(), 5u);
  EXPECT_EQ(seconds.front().start_ms, (kT0 + 195 * kSec) / kMs);  // the oldest went first
  EXPECT_EQ(seconds.back().start_ms, (kT0 + 199 * kSec) / kMs);
  EXPECT_EQ(shard.RetainedBars("R", Mode::kMinute).size(), 2u);
  // 5 + 2 bars and 10 ticks of 48 bytes, plus the few open-bucket accumulators.
  EXPECT_LE(shard.HistoryBytes(), (5 + 2) * sizeof(Bar) + 10 * 48 + 8 * sizeof(BarAccumulator));
}

TEST(ShardHistory, BackfillReturnsTheNewestNOldestFirst) {
  Shard shard(0, Small());
  RecordBlock block;
  std::vector<IngestTick> ticks;
  for (int i = 0; i < 25; ++i) ticks.push_back({"K", 1.0 + i, 1, kT0 + i * kMs, kT0});
  shard.Apply(ticks, block);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.topics = Topics({"K", "missing"});
  req.backfill = 4;
  const Replayed reply = Replay(shard, req);
  const auto recs = Records(reply.records);
  ASSERT_EQ(recs.size(), 4u);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(recs[static_cast<std::size_t>(i)].tick().seq(), 22u + static_cast<unsigned>(i));
  EXPECT_EQ(reply.records.entries[0].key, 22u);
  EXPECT_FALSE(reply.truncated);
  // More than the ring holds: what is retained.
  req.backfill = 1000;
  EXPECT_EQ(Records(Replay(shard, req).records).size(), 10u);
}

// Topic names of a replay's records, one per record, in order.
std::vector<std::string> ReplayedTopics(const RecordBlock& block) {
  std::vector<std::string> out;
  for (const auto& e : block.entries) out.emplace_back(block.Topic(e));
  return out;
}

TEST(ShardHistory, PrefixRequestsReplayEveryTopicUnderThePrefixMergedWithExactOnes) {
  Shard shard(0, Small());
  RecordBlock block;
  std::vector<IngestTick> ticks;
  for (const char* t : {"FX.B", "FXX.A", "FX", "EQ.A", "FX.A", "EQ.B", "GX.A", "FX.A.1", "Z.1"}) {
    ticks.push_back({t, 1, 1, kT0, kT0});
    ticks.push_back({t, 2, 1, kT0 + kMs, kT0});
  }
  shard.Apply(ticks, block);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.backfill = 1;
  req.prefixes = Topics({"FX.", "GX."});
  req.topics = Topics({"EQ.B", "FX.A", "missing"});  // FX.A also under FX.: replayed once
  const Replayed r = Replay(shard, req);
  EXPECT_EQ(ReplayedTopics(r.records),
            (std::vector<std::string>{"EQ.B", "FX.A", "FX.A.1", "FX.B", "GX.A"}));
  for (const auto& rec : Records(r.records)) EXPECT_EQ(rec.tick().seq(), 2u);
  // One record per topic and step limit: the same topics, a slice at a time.
  HistoryCursor cursor;
  RecordBlock joined;
  for (int n = 0; !cursor.finished && n < 100; ++n) {
    HistorySlice slice = shard.NextHistorySlice(req, cursor, SliceLimits{1, 2});
    joined.Append(slice.records);
    cursor = std::move(slice.cursor);
  }
  EXPECT_TRUE(cursor.finished);
  EXPECT_EQ(joined.bytes, r.records.bytes);
  // The fair share counts the topics under the prefixes and the listed ones (6, "missing"
  // included): a budget of 5 gives each topic with history one record.
  ShardOptions o = Small();
  o.max_backfill_records = 5;
  Shard small(0, o);
  small.Apply(ticks, block);
  req.backfill = 2;
  const Replayed cut = Replay(small, req);
  EXPECT_EQ(ReplayedTopics(cut.records),
            (std::vector<std::string>{"EQ.B", "FX.A", "FX.A.1", "FX.B", "GX.A"}));
  EXPECT_TRUE(cut.truncated);
}

TEST(ShardHistory, SinceSelectsByEventTimeForTicksAndStartForBars) {
  Shard shard(0, Small());
  RecordBlock block;
  // Event times out of order: 3 s, 1 s, 4 s, 2 s after kT0.
  std::vector<IngestTick> ticks = {{"S", 1, 1, kT0 + 3 * kSec, kT0},
                                   {"S", 2, 1, kT0 + 1 * kSec, kT0},
                                   {"S", 3, 1, kT0 + 4 * kSec, kT0},
                                   {"S", 4, 1, kT0 + 2 * kSec, kT0}};
  shard.Apply(ticks, block);
  shard.AdvanceWatermark(kT0 + 10 * kSec, block);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.since_ms = (kT0 + 2 * kSec) / kMs;
  auto recs = Records(Replay(shard, req).records);
  ASSERT_EQ(recs.size(), 3u);  // seq order, ts >= since
  EXPECT_EQ(recs[0].tick().seq(), 1u);
  EXPECT_EQ(recs[1].tick().seq(), 3u);
  EXPECT_EQ(recs[2].tick().seq(), 4u);
  req.mode = Mode::kSecond;
  recs = Records(Replay(shard, req).records);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].bar().start_ms(), (kT0 + 2 * kSec) / kMs);
  EXPECT_EQ(recs[2].bar().start_ms(), (kT0 + 4 * kSec) / kMs);
}

// PROTOCOL S8c resume_from_ns: a topic without a position replays the ticks accepted at or
// after the position in the accept order, whatever their event time, besides what since_ms or
// backfill select; a listed topic still resumes by seq.
TEST(ShardHistory, ResumeFromSelectsUnlistedTopicsByAcceptOrder) {
  Shard shard(0, Small());
  RecordBlock block;
  const std::int64_t old_ts = kT0 - 3600 * kSec;  // back-dated an hour: no since_ms reaches it
  shard.AdvanceOrderClock(100);
  std::vector<IngestTick> before = {{"U", 1, 1, old_ts, kT0}, {"L", 1, 1, old_ts, kT0}};
  shard.Apply(before, block);
  shard.AdvanceOrderClock(200);
  std::vector<IngestTick> after = {{"U", 2, 1, old_ts, kT0 + kSec},
                                   {"L", 2, 1, old_ts, kT0 + kSec},
                                   {"U", 3, 1, kT0 + 2 * kSec, kT0 + 2 * kSec}};
  shard.Apply(after, block);
  shard.AdvanceOrderClock(150);  // never moves back
  EXPECT_EQ(shard.order_clock_ns(), 200);

  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.resume = std::make_shared<const std::vector<ResumePoint>>(
      std::vector<ResumePoint>{{"L", 1, shard.TopicEpoch("L")}});
  req.since_ms = (kT0 + 2 * kSec) / kMs;  // what the client's lookback asks besides
  req.resume_from_ns = 200;
  HistorySlice slice = shard.NextHistorySlice(req, {});
  auto recs = Records(slice.records);
  std::vector<std::string> got;
  for (const auto& r : recs) got.push_back(r.tick().topic() + "/" + std::to_string(r.tick().seq()));
  EXPECT_EQ(got, (std::vector<std::string>{"L/2", "U/2", "U/3"}));
  EXPECT_FALSE(slice.cursor.retention_cut);
  EXPECT_TRUE(slice.lost.empty());

  // Without resume_from_ns the back-dated U/2 is missed (what the extension fixes).
  req.resume_from_ns = 0;
  recs = Records(Replay(shard, req).records);
  got.clear();
  for (const auto& r : recs) got.push_back(r.tick().topic() + "/" + std::to_string(r.tick().seq()));
  EXPECT_EQ(got, (std::vector<std::string>{"L/2", "U/3"}));

  // Backfill adds the newest N of a topic without a position.
  req.since_ms = 0;
  req.backfill = 3;
  req.resume_from_ns = 1000;  // nothing accepted since
  recs = Records(Replay(shard, req).records);
  got.clear();
  for (const auto& r : recs) got.push_back(r.tick().topic() + "/" + std::to_string(r.tick().seq()));
  EXPECT_EQ(got, (std::vector<std::string>{"L/2", "U/1", "U/2", "U/3"}));
}

TEST(ShardHistory, ResumeFromReportsTicksTheRingDroppedAfterThePosition) {
  Shard shard(0, Small());  // 10 ticks per topic
  PublishInAcceptOrder(shard, "D", 14);
  // Ticks 1-4 (accepted at 100-400) are dropped; 5-14 retained.
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.resume_from_ns = 450;  // after every dropped tick: nothing lost
  HistorySlice slice = shard.NextHistorySlice(req, {});
  EXPECT_EQ(Records(slice.records).size(), 10u);
  EXPECT_FALSE(slice.cursor.retention_cut);
  EXPECT_TRUE(slice.lost.empty());

  req.resume_from_ns = 300;  // ticks 3 and 4 were accepted after it and are gone
  slice = shard.NextHistorySlice(req, {});
  EXPECT_EQ(Records(slice.records).size(), 10u);
  EXPECT_TRUE(slice.cursor.retention_cut);
  ASSERT_EQ(slice.lost.size(), 1u);
  EXPECT_EQ(slice.lost[0].topic, "D");
  EXPECT_EQ(slice.lost[0].from_seq, 1u);
  EXPECT_EQ(slice.lost[0].to_seq, 4u);
  EXPECT_EQ(slice.lost[0].topic_epoch, shard.TopicEpoch("D"));
}

// HISTORY_TICKS=0: nothing is retained, so every tick accepted at or after resume_from_ns is
// reported lost (the newest tick is the newest dropped one).
TEST(ShardHistory, ResumeFromWithoutTickHistoryReportsEveryTickSinceThePosition) {
  ShardOptions none = Small();
  none.ticks = 0;
  Shard shard(0, none);
  PublishInAcceptOrder(shard, "Z", 3);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.resume_from_ns = 350;  // after the last tick: nothing lost
  HistorySlice slice = shard.NextHistorySlice(req, {});
  EXPECT_TRUE(Records(slice.records).empty());
  EXPECT_FALSE(slice.cursor.retention_cut);
  EXPECT_TRUE(slice.lost.empty());

  req.resume_from_ns = 300;  // tick 3 was accepted at it
  slice = shard.NextHistorySlice(req, {});
  EXPECT_TRUE(Records(slice.records).empty());
  EXPECT_TRUE(slice.cursor.retention_cut);
  ASSERT_EQ(slice.lost.size(), 1u);
  EXPECT_EQ(slice.lost[0].topic, "Z");
  EXPECT_EQ(slice.lost[0].from_seq, 1u);
  EXPECT_EQ(slice.lost[0].to_seq, 3u);
}

// PROTOCOL S8c: a numbering forgotten with its topic (eviction) since resume_from_ns is reported,
// with the seq it had reached; older ones are not; more than kMaxTombstones are counted.
TEST(ShardHistory, ResumeFromReportsNumberingsForgottenSinceThePosition) {
  Shard shard(0, Small());
  RecordBlock block;
  shard.AdvanceOrderClock(100);
  std::vector<IngestTick> early = {{"G.old", 1, 1, kT0, kT0}};
  shard.Apply(early, block);
  shard.AdvanceOrderClock(200);
  std::vector<IngestTick> late = {{"G.new", 1, 1, kT0, kT0}, {"G.new", 2, 1, kT0, kT0}};
  shard.Apply(late, block);
  const std::uint64_t epoch = shard.TopicEpoch("G.new");
  ASSERT_TRUE(shard.Forget("G.old"));
  ASSERT_TRUE(shard.Forget("G.new"));
  EXPECT_EQ(shard.tombstone_count(), 2u);

  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.resume_from_ns = 150;
  HistorySlice slice = shard.NextHistorySlice(req, {});
  ASSERT_TRUE(slice.cursor.finished);
  EXPECT_TRUE(slice.cursor.epoch_changed);
  ASSERT_EQ(slice.lost.size(), 1u);  // G.old's last tick came before the position
  EXPECT_EQ(slice.lost[0].topic, "G.new");
  EXPECT_EQ(slice.lost[0].from_seq, 1u);
  EXPECT_EQ(slice.lost[0].to_seq, 2u);
  EXPECT_EQ(slice.lost[0].topic_epoch, epoch);
  EXPECT_EQ(slice.lost_unnamed, 0u);
  // Not covered: an exact list without it, or a prefix that does not match.
  req.wildcard = false;
  req.topics = Topics({"G.other"});
  EXPECT_TRUE(shard.NextHistorySlice(req, {}).lost.empty());
  req.prefixes = Topics({"G."});
  EXPECT_EQ(shard.NextHistorySlice(req, {}).lost.size(), 1u);
  // A position in that very numbering reports it itself, once.
  req.wildcard = true;
  req.resume = std::make_shared<const std::vector<ResumePoint>>(
      std::vector<ResumePoint>{{"G.new", 1, epoch}});
  slice = shard.NextHistorySlice(req, {});
  ASSERT_EQ(slice.lost.size(), 1u);
  EXPECT_EQ(slice.lost[0].from_seq, 2u);
  EXPECT_EQ(slice.lost[0].to_seq, 0u);

  // Beyond kMaxTombstones the oldest are only counted.
  for (std::size_t i = 0; i < kMaxTombstones; ++i) {
    std::vector<IngestTick> t = {{"F." + std::to_string(i), 1, 1, kT0, kT0}};
    shard.Apply(t, block);
    ASSERT_TRUE(shard.Forget(t[0].topic));
  }
  EXPECT_EQ(shard.tombstone_count(), kMaxTombstones);
  req.resume.reset();
  slice = shard.NextHistorySlice(req, {});
  // G.new's numbering can no longer be named; of the 4096 it remembers, 512 are listed (what a
  // marker can hold) and the others counted.
  EXPECT_EQ(slice.lost.size(), kMaxBuriedRangesPerReply);
  EXPECT_EQ(slice.lost_unnamed, 1u + kMaxTombstones - kMaxBuriedRangesPerReply);
}

// Over the budget, topics replay in name order and each keeps its newest records up to a fair
// share of what is left: ceil(left / topics still to begin).
TEST(ShardHistory, OverBudgetKeepsTheNewestOfEveryTopicUpToAFairShare) {
  ShardOptions o = Small();
  o.max_backfill_records = 12;
  Shard shard(0, o);
  RecordBlock block;
  std::vector<IngestTick> ticks;
  for (int i = 0; i < 10; ++i) {
    ticks.push_back({"A", 1, 1, kT0 + i, kT0});
    ticks.push_back({"B", 1, 1, kT0 + i, kT0});
    ticks.push_back({"D", 1, 1, kT0 + i, kT0});
  }
  ticks.push_back({"C", 1, 1, kT0, kT0});
  shard.Apply(ticks, block);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.backfill = 100;
  const Replayed reply = Replay(shard, req);
  EXPECT_TRUE(reply.truncated);
  EXPECT_EQ(shard.stats().backfills_truncated, 1u);
  std::map<std::string, std::vector<std::uint64_t>> by_topic;
  for (const auto& r : Records(reply.records)) by_topic[r.tick().topic()].push_back(r.tick().seq());
  EXPECT_EQ(by_topic["A"], (std::vector<std::uint64_t>{8, 9, 10}));        // ceil(12 / 4)
  EXPECT_EQ(by_topic["B"], (std::vector<std::uint64_t>{8, 9, 10}));        // ceil(9 / 3)
  EXPECT_EQ(by_topic["C"], std::vector<std::uint64_t>{1});                 // ceil(6 / 2), has 1
  EXPECT_EQ(by_topic["D"], (std::vector<std::uint64_t>{6, 7, 8, 9, 10}));  // the 5 left
  // Exactly the budget, never more.
  EXPECT_EQ(reply.records.entries.size(), 12u);
  // Ticks since a time are cut the same way (newest first), and so are bars.
  req.backfill = 0;
  req.since_ms = 1;
  const Replayed since = Replay(shard, req);
  EXPECT_TRUE(since.truncated);
  EXPECT_EQ(since.records.entries.size(), 12u);
  EXPECT_EQ(since.records.entries.front().key, 8u);
}

TEST(ShardHistory, SlicesStayWithinTheirLimitsAndJoinToTheWholeReplay) {
  ShardOptions o = Small();
  o.ticks = 1000;
  Shard shard(0, o);
  RecordBlock block;
  std::vector<IngestTick> ticks;
  for (int t = 0; t < 30; ++t) {
    for (int i = 0; i < 40; ++i) {
      ticks.push_back({"T" + std::to_string(100 + t), 1.0 + i, 1, kT0 + i * kMs, kT0});
    }
  }
  shard.Apply(ticks, block);
  for (int t = 0; t < 200; ++t) {  // topics with nothing in TICK history beyond one tick
    std::vector<IngestTick> one = {{"E" + std::to_string(t), 1, 1, kT0, kT0}};
    shard.Apply(one, block);
  }
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.since_ms = 1;
  const Replayed whole = Replay(shard, req, SliceLimits{1 << 20, 1 << 20});
  ASSERT_EQ(whole.slices, 1u);
  ASSERT_EQ(whole.records.entries.size(), 30u * 40 + 200);
  // Small slices: the same records in the same order, each slice within its byte limit (plus
  // the one record that crossed it) and its step limit.
  HistoryCursor cursor;
  RecordBlock joined;
  std::size_t slices = 0;
  while (!cursor.finished) {
    HistorySlice slice = shard.NextHistorySlice(req, cursor, SliceLimits{500, 64});
    ASSERT_LT(++slices, 10'000u);
    EXPECT_LT(slice.records.bytes.size(), 500u + 100);
    EXPECT_LE(slice.records.entries.size(), 64u);
    joined.Append(slice.records);
    // Every topic up to `after` is complete: the one in progress is beyond it.
    if (!slice.cursor.partial.empty()) {
      EXPECT_GT(slice.cursor.partial, slice.cursor.after);
    }
    cursor = std::move(slice.cursor);
  }
  EXPECT_GT(slices, 20u);
  EXPECT_EQ(joined.bytes, whole.records.bytes);
}

TEST(ShardHistory, ATopicInProgressResumesAfterItsLastKeyAndStopsAtItsNewestWhenBegun) {
  ShardOptions o = Small();
  o.ticks = 100;
  Shard shard(0, o);
  RecordBlock block;
  auto publish = [&](const std::string& topic, int n) {
    std::vector<IngestTick> ticks;
    for (int i = 0; i < n; ++i) ticks.push_back({topic, 1, 1, kT0, kT0});
    shard.Apply(ticks, block);
  };
  publish("P", 60);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.topics = Topics({"P"});
  req.since_ms = 1;
  HistorySlice first = shard.NextHistorySlice(req, {}, SliceLimits{1, 1000});
  ASSERT_EQ(first.records.entries.size(), 1u);
  EXPECT_EQ(first.records.entries[0].key, 1u);
  ASSERT_EQ(first.cursor.partial, "P");
  // 70 more: the ring (100) drops seq 1..30; 61..130 are newer than the replay's start and
  // reach the subscriber live, not in the replay.
  publish("P", 70);
  HistorySlice rest = shard.NextHistorySlice(req, first.cursor, SliceLimits{1 << 20, 1000});
  EXPECT_TRUE(rest.cursor.finished);
  ASSERT_EQ(rest.records.entries.size(), 30u);  // 31..60: what is still retained
  EXPECT_EQ(rest.records.entries.front().key, 31u);
  EXPECT_EQ(rest.records.entries.back().key, 60u);
}

TEST(ShardHistory, AnEvictedTopicInProgressIsReplayedAgainFromItsNewIncarnation) {
  ShardOptions o = Small();
  o.max_topics = 2;
  Shard shard(0, o);
  RecordBlock block;
  auto publish = [&](const std::string& topic, int n, std::int64_t at) {
    std::vector<IngestTick> ticks;
    for (int i = 0; i < n; ++i) ticks.push_back({topic, 1, 1, at, at});
    shard.Apply(ticks, block);
  };
  publish("P", 5, kT0);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.backfill = 100;
  HistorySlice first = shard.NextHistorySlice(req, {}, SliceLimits{1, 1000});
  ASSERT_EQ(first.cursor.partial, "P");
  shard.AdvanceWatermark(kT0 + 70 * kSec, block);  // no open bars: P may go
  publish("Q", 1, kT0 + 70 * kSec);
  publish("R", 1, kT0 + 70 * kSec);  // evicts P
  ASSERT_EQ(shard.LastSeq("P"), 0u);
  shard.AdvanceWatermark(kT0 + 140 * kSec, block);  // Q's and R's bars close: Q may go
  publish("P", 3, kT0 + 140 * kSec);                // P again (in Q's place), seq 1..3
  const Replayed rest = [&] {
    Replayed r;
    HistoryCursor c = first.cursor;
    while (!c.finished) {
      HistorySlice s = shard.NextHistorySlice(req, c);
      for (const auto& rec : Records(s.records)) {
        r.records.entries.push_back({0, 0, 0, 0, Mode::kTick, 0, rec.tick().seq()});
        r.records.bytes += rec.tick().topic();
      }
      c = std::move(s.cursor);
    }
    return r;
  }();
  // P from its new first tick, then the topics after it.
  ASSERT_EQ(rest.records.entries.size(), 4u);
  EXPECT_EQ(rest.records.bytes, "PPPR");
  EXPECT_EQ(rest.records.entries[0].key, 1u);
}

TEST(ShardHistory, TopicsCreatedBehindTheCursorAreSkippedAndAheadOfItReplayed) {
  Shard shard(0, Small());
  RecordBlock block;
  auto publish = [&](const std::string& topic) {
    std::vector<IngestTick> t = {{topic, 1, 1, kT0, kT0}};
    shard.Apply(t, block);
  };
  publish("B");
  publish("D");
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.backfill = 10;
  HistorySlice first = shard.NextHistorySlice(req, {}, SliceLimits{1, 1000});  // B only
  ASSERT_EQ(first.cursor.after, "B");
  publish("A");  // behind the cursor: live for this subscriber
  publish("C");  // ahead of it: replayed
  HistorySlice rest = shard.NextHistorySlice(req, first.cursor);
  EXPECT_TRUE(rest.cursor.finished);
  std::string order;
  for (const auto& r : Records(rest.records)) order += r.tick().topic();
  EXPECT_EQ(order, "CD");
}

TEST(ShardTopicCap, EvictsTheLeastRecentlyPublishedTopic) {
  ShardOptions o = Small();
  o.max_topics = 3;
  Shard shard(0, o);
  RecordBlock block;
  auto publish = [&](const std::string& topic, std::int64_t at) {
    std::vector<IngestTick> t = {{topic, 1, 1, at, at}};
    shard.Apply(t, block);
  };
  publish("A", kT0);
  publish("B", kT0);
  publish("C", kT0);
  shard.AdvanceWatermark(kT0 + 70 * kSec, block);  // no open buckets left
  publish("A", kT0 + 70 * kSec);                   // A is fresh again; B is now the oldest
  shard.AdvanceWatermark(kT0 + 140 * kSec, block);
  publish("D", kT0 + 140 * kSec);
  EXPECT_EQ(shard.topic_count(), 3u);
  EXPECT_EQ(shard.stats().topics_evicted, 1u);
  EXPECT_EQ(shard.LastSeq("B"), 0u);  // evicted with its history
  EXPECT_TRUE(shard.RetainedBars("B", Mode::kSecond).empty());
  EXPECT_EQ(shard.LastSeq("A"), 2u);
  EXPECT_EQ(shard.LastSeq("C"), 1u);
  // An evicted topic starts over: prev_seq 0 tells its subscribers the history is gone.
  publish("B", kT0 + 140 * kSec);
  EXPECT_EQ(shard.LastSeq("B"), 1u);
}

// PROTOCOL S7a: each incarnation of a topic has its own topic_epoch, carried by its live and
// replayed ticks; shards never hand out the same one.
TEST(ShardTopicCap, AnEvictedTopicComesBackUnderANewTopicEpoch) {
  ShardOptions o = Small();
  o.max_topics = 1;
  Shard shard(3, o);
  Shard other(4, o);
  shard.SetWildcardInterest(Mode::kTick, 0, true);
  RecordBlock block;
  auto publish = [&](const std::string& topic, std::int64_t at) {
    std::vector<IngestTick> t = {{topic, 1, 1, at, at}};
    EXPECT_EQ(shard.Apply(t, block).applied, 1u);
    shard.AdvanceWatermark(at + 70 * kSec, block);  // its bars close: it may be evicted
  };
  publish("A", kT0);
  publish("A", kT0 + 1);
  const std::uint64_t first = shard.TopicEpoch("A");
  EXPECT_NE(first, 0u);
  publish("B", kT0 + 100 * kSec);  // evicts A
  EXPECT_EQ(shard.TopicEpoch("A"), 0u);
  publish("A", kT0 + 200 * kSec);  // evicts B; A starts over at seq 1
  const std::uint64_t second = shard.TopicEpoch("A");
  EXPECT_NE(second, 0u);
  EXPECT_NE(second, first);
  EXPECT_EQ(shard.LastSeq("A"), 1u);
  std::vector<IngestTick> t = {{"A", 1, 1, kT0, kT0}};
  other.Apply(t, block);
  EXPECT_NE(other.TopicEpoch("A"), first);
  EXPECT_NE(other.TopicEpoch("A"), second);

  std::vector<std::uint64_t> epochs;
  for (const auto& r : Records(block)) {
    if (r.has_tick() && r.tick().topic() == "A") epochs.push_back(r.tick().topic_epoch());
  }
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_EQ(epochs[0], first);
  EXPECT_EQ(epochs[1], first);
  EXPECT_EQ(epochs[2], second);
  // The replay of A's history carries the same epoch.
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.topics = Topics({"A"});
  req.backfill = 10;
  const HistorySlice slice = shard.NextHistorySlice(req, {});
  const auto replayed = Records(slice.records);
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].tick().topic_epoch(), second);
}

// Multi-instance mode: the log's number of the incarnation's first tick is its epoch, the same
// on every instance.
TEST(ShardTopicCap, LogNumberedTopicsTakeTheirFirstSeqAsEpoch) {
  Shard shard(0, Small());
  RecordBlock block;
  std::vector<IngestTick> t = {{"L", 1, 1, kT0, kT0, 1234}, {"L", 1, 1, kT0, kT0, 1240}};
  shard.Apply(t, block);
  EXPECT_EQ(shard.TopicEpoch("L"), 1234u);
  EXPECT_EQ(shard.LastSeq("L"), 1240u);
}

TEST(ShardTopicCap, OpenBarsRefuseNewTopicsInsteadOfExceedingTheCap) {
  ShardOptions o = Small();
  o.max_topics = 2;
  Shard shard(0, o);
  shard.SetWildcardInterest(Mode::kTick, 0, true);
  RecordBlock block;
  std::vector<IngestTick> t = {{"A", 1, 1, kT0, kT0}, {"B", 1, 1, kT0, kT0}};
  EXPECT_EQ(shard.Apply(t, block).applied, 2u);
  // A and B have open bars: evicting either would drop ticks from a bar not yet sent, so the
  // new topics are refused: not applied, not encoded, not kept, counted.
  block = {};
  std::vector<IngestTick> more = {{"A", 2, 1, kT0, kT0, 0, 0},
                                  {"NEW", 1, 1, kT0, kT0, 0, 1},
                                  {"B", 2, 1, kT0, kT0, 0, 2},
                                  {"NEW2", 1, 1, kT0, kT0, 0, 3},
                                  {"NEW", 1, 1, kT0, kT0, 0, 4}};
  const ApplyResult r = shard.Apply(more, block);
  EXPECT_EQ(r.applied, 2u);
  EXPECT_EQ(r.refused, 3u);
  EXPECT_EQ(r.first_refused, 1u);
  EXPECT_EQ(r.reason, Refusal::kTopicLimit);
  EXPECT_EQ(shard.topic_count(), 2u);
  EXPECT_EQ(shard.LastSeq("NEW"), 0u);
  EXPECT_EQ(shard.LastSeq("A"), 2u);
  ASSERT_EQ(block.entries.size(), 2u);  // only A's and B's ticks were encoded
  for (const auto& e : block.entries) EXPECT_NE(block.Topic(e).substr(0, 3), "NEW");
  EXPECT_EQ(shard.stats().ticks_refused[static_cast<std::size_t>(Refusal::kTopicLimit)], 3u);
  EXPECT_EQ(shard.stats().topics_evicted, 0u);
  // Once their bars have closed, a new topic takes the least recently published one's place.
  shard.AdvanceWatermark(kT0 + 70 * kSec, block);
  std::vector<IngestTick> later = {{"NEW", 1, 1, kT0 + 70 * kSec, kT0 + 70 * kSec}};
  EXPECT_EQ(shard.Apply(later, block).applied, 1u);
  EXPECT_EQ(shard.topic_count(), 2u);
  EXPECT_EQ(shard.stats().topics_evicted, 1u);
  EXPECT_EQ(shard.LastSeq("A"), 0u);  // A was published before B's last tick
  EXPECT_EQ(shard.LastSeq("B"), 2u);
}

TEST(ShardTopicCap, AFloodOfNewTopicsNeverExceedsTheCap) {
  ShardOptions o = Small();
  o.max_topics = 100;
  Shard shard(0, o);
  RecordBlock block;
  std::vector<IngestTick> frame;
  std::size_t refused = 0;
  for (int round = 0; round < 100; ++round) {
    frame.clear();
    for (int i = 0; i < 1000; ++i) {
      const std::int64_t at = kT0 + round * kMs;
      frame.push_back({"flood." + std::to_string(round * 1000 + i), 1, 1, at, at});
    }
    refused += shard.Apply(frame, block).refused;
    ASSERT_LE(shard.topic_count(), 100u);
  }
  EXPECT_EQ(refused, 100'000u - 100u);
  // Memory follows the topics held, not the topics named.
  EXPECT_LE(shard.HistoryBytes(), 100 * (4 * 48 + 2 * sizeof(BarAccumulator)));
}

TEST(ShardTopicCap, SubscriptionsNeitherCreateNorPinTopics) {
  ShardOptions o = Small();
  o.max_topics = 2;
  Shard shard(0, o);
  RecordBlock block;
  // A subscribe-only client names far more topics than the cap: no topic state is created.
  for (int i = 0; i < 1000; ++i)
    shard.SetInterest("sub." + std::to_string(i), Mode::kTick, 1, true);
  EXPECT_EQ(shard.topic_count(), 0u);
  EXPECT_EQ(shard.interest_count(), 1000u);
  // A producer's topic keeps its numbering: nothing the subscriber did pushed it out.
  std::vector<IngestTick> p = {{"PROD", 1, 1, kT0, kT0}};
  shard.Apply(p, block);
  shard.Apply(p, block);
  EXPECT_EQ(shard.LastSeq("PROD"), 2u);
  // Interest does not pin either: a subscribed topic is evicted like any other once its bars
  // are closed and it is the least recently published.
  shard.SetInterest("PROD", Mode::kTick, 1, true);
  std::vector<IngestTick> other = {{"sub.7", 1, 1, kT0, kT0}};
  shard.Apply(other, block);
  shard.AdvanceWatermark(kT0 + 70 * kSec, block);
  std::vector<IngestTick> third = {{"THIRD", 1, 1, kT0 + 70 * kSec, kT0 + 70 * kSec}};
  EXPECT_EQ(shard.Apply(third, block).applied, 1u);
  EXPECT_EQ(shard.LastSeq("PROD"), 0u);
  EXPECT_EQ(shard.interest_count(), 1001u);  // the interest itself stays
  for (int i = 0; i < 1000; ++i)
    shard.SetInterest("sub." + std::to_string(i), Mode::kTick, 1, false);
  shard.SetInterest("PROD", Mode::kTick, 1, false);
  EXPECT_EQ(shard.interest_count(), 0u);
}

TEST(ShardTopicCap, ATopicCreatedAfterTheSubscriptionTakesItsInterest) {
  Shard shard(0, Small());
  shard.SetInterest("LATER", Mode::kTick, 3, true);
  shard.SetInterest("LATER", Mode::kSecond, 5, true);
  RecordBlock block;
  std::vector<IngestTick> t = {{"LATER", 1, 1, kT0, kT0}};
  shard.Apply(t, block);
  ASSERT_EQ(block.entries.size(), 1u);
  EXPECT_EQ(block.entries[0].workers, WorkerBit(3));
  shard.AdvanceWatermark(kT0 + 2 * kSec, block);
  ASSERT_EQ(block.entries.size(), 2u);
  EXPECT_EQ(block.entries[1].mode, Mode::kSecond);
  EXPECT_EQ(block.entries[1].workers, WorkerBit(5));
  // Losing the interest reaches the existing topic too.
  shard.SetInterest("LATER", Mode::kTick, 3, false);
  block = {};
  shard.Apply(t, block);
  EXPECT_TRUE(block.empty());
}

TEST(ShardTopicCap, PerUserCapRecyclesTheUsersOwnTopicsOnly) {
  ShardOptions o = Small();
  o.max_topics = 10;
  o.max_topics_per_user = 2;
  Shard shard(0, o);
  RecordBlock block;
  auto publish = [&](UserId user, const std::string& topic, std::int64_t at) {
    std::vector<IngestTick> t = {{topic, 1, 1, at, at}};
    return shard.Apply(t, block, user);
  };
  publish(2, "OTHER", kT0);  // user 2's, the oldest topic of all
  publish(1, "A", kT0);
  publish(1, "B", kT0);
  // User 1 is at its cap and its topics have open bars: refused, whatever room is left.
  const ApplyResult r = publish(1, "C", kT0);
  EXPECT_EQ(r.refused, 1u);
  EXPECT_EQ(r.reason, Refusal::kUserTopicLimit);
  EXPECT_EQ(shard.stats().ticks_refused[static_cast<std::size_t>(Refusal::kUserTopicLimit)], 1u);
  EXPECT_EQ(publish(3, "D", kT0).applied, 1u);  // another user is not held back
  // Bars closed: C replaces user 1's least recently published topic, not OTHER.
  shard.AdvanceWatermark(kT0 + 70 * kSec, block);
  publish(1, "A", kT0 + 70 * kSec);
  EXPECT_EQ(publish(1, "C", kT0 + 70 * kSec).applied, 1u);
  EXPECT_EQ(shard.LastSeq("B"), 0u);
  EXPECT_EQ(shard.LastSeq("A"), 2u);
  EXPECT_EQ(shard.LastSeq("OTHER"), 1u);
  EXPECT_EQ(shard.topic_count(), 4u);
  // Another user's ticks on user 1's topic do not change who created it.
  publish(2, "C", kT0 + 70 * kSec);
  shard.AdvanceWatermark(kT0 + 140 * kSec, block);
  EXPECT_EQ(publish(1, "E", kT0 + 140 * kSec).applied, 1u);  // evicts A, user 1's oldest
  EXPECT_EQ(shard.LastSeq("A"), 0u);
  EXPECT_EQ(shard.LastSeq("C"), 2u);
}

TEST(ShardTopicCap, ForgetDropsATopicAndItsHistory) {
  Shard shard(0, Small());
  RecordBlock block;
  std::vector<IngestTick> t = {{"F", 1, 1, kT0, kT0}};
  shard.Apply(t, block);
  EXPECT_TRUE(shard.Forget("F"));
  EXPECT_FALSE(shard.Forget("F"));
  EXPECT_EQ(shard.topic_count(), 0u);
  EXPECT_EQ(shard.stats().topics_evicted, 1u);
  shard.Apply(t, block);
  EXPECT_EQ(shard.LastSeq("F"), 1u);  // starts over
}

}  // namespace
}  // namespace tickwire::engine
