#include "engine/snapshot.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/shard.h"

namespace tickwire::engine {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'000LL * kSec;  // a whole minute

// One shard's snapshot file, written in slices of `slice` bytes.
std::string SnapshotFile(const Shard& shard, unsigned index, unsigned count,
                         std::uint64_t generation = 1, std::uint64_t epoch = 77,
                         std::size_t slice = 512) {
  SnapshotCursor cursor;
  std::string body;
  std::size_t slices = 0;
  while (!cursor.finished) {
    shard.SnapshotSlice(cursor, body, slice);
    EXPECT_LT(++slices, 100'000u);
  }
  SnapshotHeader h;
  h.generation = generation;
  h.shard_index = index;
  h.shard_count = count;
  h.stream_epoch = epoch;
  h.written_ns = kT0;
  h.topics = cursor.topics;
  h.body_length = body.size();
  h.body_crc = Crc32c(0, body);
  return EncodeSnapshotHeader(h) + body;
}

ParsedSnapshot MustParse(std::string_view file) {
  auto p = ParseSnapshot(file);
  if (auto* err = std::get_if<SnapshotError>(&p)) {
    ADD_FAILURE() << err->reason;
    return {};
  }
  return std::get<ParsedSnapshot>(p);
}

// Every topic of the shards, as its encoded record (what a snapshot holds of it).
std::map<std::string, std::string> Records(const std::vector<const Shard*>& shards) {
  std::map<std::string, std::string> out;
  for (const Shard* s : shards) {
    const std::string file = SnapshotFile(*s, 0, 1);
    const ParsedSnapshot p = MustParse(file);
    for (const TopicRef& ref : p.topics) {
      EXPECT_TRUE(out.emplace(std::string(ref.name), file.substr(ref.offset, ref.length)).second)
          << ref.name << " held twice";
    }
  }
  return out;
}

// A shard with `topics` topics and some history: closed SECOND and MINUTE bars, open buckets,
// ticks, one topic published much later than the others.
void Fill(Shard& shard, int topics, std::uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> price(1, 100);
  RecordBlock out;
  for (int second = 0; second < 130; second += 3) {
    std::vector<IngestTick> ticks;
    for (int t = 0; t < topics; ++t) {
      if (rng() % 3 == 0) continue;
      const std::int64_t ts = kT0 + second * kSec + static_cast<std::int64_t>(rng() % kSec);
      ticks.push_back(IngestTick{"T" + std::to_string(t), price(rng), 1 + price(rng), ts, ts});
    }
    shard.Apply(ticks, out);
    shard.AdvanceWatermark(kT0 + second * kSec, out);
  }
}

std::vector<IngestTick> OneTick(std::string topic, std::int64_t ts) {
  return {IngestTick{std::move(topic), 5.0, 1.0, ts, ts}};
}

TEST(SnapshotTest, RoundTripRestoresEveryTopicExactly) {
  Shard shard(0);
  Fill(shard, 20);
  ASSERT_GT(shard.topic_count(), 15u);
  const std::string file = SnapshotFile(shard, 0, 1, 3, 1234, 700);
  const ParsedSnapshot parsed = MustParse(file);
  EXPECT_EQ(parsed.header.generation, 3u);
  EXPECT_EQ(parsed.header.stream_epoch, 1234u);
  ASSERT_EQ(parsed.topics.size(), shard.topic_count());

  Shard restored(0);
  const RestorePlan plan = PlanRestore({parsed}, 1, 1000);
  ASSERT_EQ(plan.shards.size(), 1u);
  EXPECT_EQ(plan.dropped, 0u);
  for (const PlannedTopic& p : plan.shards[0]) {
    auto image = DecodeTopic(file, parsed.topics[p.topic]);
    ASSERT_TRUE(image);
    EXPECT_TRUE(restored.Restore(*image));
    EXPECT_FALSE(restored.Restore(*image)) << "restored twice";
  }
  EXPECT_EQ(Records({&restored}), Records({&shard}));
  for (int t = 0; t < 20; ++t) {
    const std::string name = "T" + std::to_string(t);
    EXPECT_EQ(restored.LastSeq(name), shard.LastSeq(name));
    EXPECT_EQ(restored.RetainedBars(name, Mode::kSecond).size(),
              shard.RetainedBars(name, Mode::kSecond).size());
  }
  // The numbering continues, and the open buckets close and are emitted as bars.
  RecordBlock out;
  const std::uint64_t before = restored.LastSeq("T1");
  ASSERT_GT(before, 0u);
  restored.Apply(OneTick("T1", kT0 + 200 * kSec), out);
  EXPECT_EQ(restored.LastSeq("T1"), before + 1);
  EXPECT_GT(restored.AdvanceWatermark(kT0 + 400 * kSec, out), 0u);
}

TEST(SnapshotTest, ReplayAfterRestoreReturnsTheSameRecords) {
  Shard shard(0);
  Fill(shard, 5);
  const std::string file = SnapshotFile(shard, 0, 1);
  const ParsedSnapshot parsed = MustParse(file);
  Shard restored(0);
  const RestorePlan plan = PlanRestore({parsed}, 1, 100);
  for (const PlannedTopic& p : plan.shards[0]) {
    ASSERT_TRUE(restored.Restore(*DecodeTopic(file, parsed.topics[p.topic])));
  }
  for (Mode mode : {Mode::kTick, Mode::kSecond, Mode::kMinute}) {
    HistoryRequest req;
    req.mode = mode;
    req.wildcard = true;
    req.backfill = 100000;
    auto a = shard.NextHistorySlice(req, {}, {1 << 24, 1 << 24});
    auto b = restored.NextHistorySlice(req, {}, {1 << 24, 1 << 24});
    EXPECT_TRUE(a.cursor.finished);
    EXPECT_GT(a.records.entries.size(), 0u);
    EXPECT_EQ(a.records.bytes, b.records.bytes) << ModeName(mode);
  }
}

TEST(SnapshotTest, ReshardsToAnotherWorkerCount) {
  constexpr unsigned kFrom = 3;
  std::vector<std::unique_ptr<Shard>> old;
  for (unsigned i = 0; i < kFrom; ++i) old.push_back(std::make_unique<Shard>(i));
  // Route 40 topics by the hash, as the server does.
  {
    Shard all(0);
    Fill(all, 40, 9);
    const std::string file = SnapshotFile(all, 0, 1);
    const ParsedSnapshot p = MustParse(file);
    for (const TopicRef& ref : p.topics) {
      ASSERT_TRUE(old[ShardOf(ref.name, kFrom)]->Restore(*DecodeTopic(file, ref)));
    }
  }
  std::vector<const Shard*> old_ptrs;
  std::vector<std::string> files;
  std::vector<ParsedSnapshot> parsed;
  for (unsigned i = 0; i < kFrom; ++i) {
    old_ptrs.push_back(old[i].get());
    files.push_back(SnapshotFile(*old[i], i, kFrom));
  }
  for (const auto& f : files) parsed.push_back(MustParse(f));
  const auto want = Records(old_ptrs);
  ASSERT_EQ(want.size(), 40u);
  for (unsigned to : {1u, 2u, 5u}) {
    std::vector<std::unique_ptr<Shard>> now;
    std::vector<const Shard*> ptrs;
    for (unsigned i = 0; i < to; ++i) {
      now.push_back(std::make_unique<Shard>(i));
      ptrs.push_back(now.back().get());
    }
    const RestorePlan plan = PlanRestore(parsed, to, 1000);
    for (unsigned s = 0; s < to; ++s) {
      for (const PlannedTopic& p : plan.shards[s]) {
        auto image = DecodeTopic(files[p.file], parsed[p.file].topics[p.topic]);
        ASSERT_TRUE(image);
        EXPECT_EQ(ShardOf(image->name, to), s) << image->name;
        ASSERT_TRUE(now[s]->Restore(*image));
      }
    }
    EXPECT_EQ(Records(ptrs), want) << "to " << to << " workers";
  }
}

TEST(SnapshotTest, RestoreKeepsTheMostRecentlyPublishedWithinTheCap) {
  Shard shard(0);
  RecordBlock out;
  for (int t = 0; t < 10; ++t) shard.Apply(OneTick("T" + std::to_string(t), kT0 + t * kSec), out);
  const std::string file = SnapshotFile(shard, 0, 1);
  const ParsedSnapshot parsed = MustParse(file);
  const RestorePlan plan = PlanRestore({parsed}, 1, 4);
  EXPECT_EQ(plan.dropped, 6u);
  ShardOptions small;
  small.max_topics = 4;
  Shard restored(0, small);
  for (const PlannedTopic& p : plan.shards[0]) {
    ASSERT_TRUE(restored.Restore(*DecodeTopic(file, parsed.topics[p.topic])));
  }
  EXPECT_EQ(restored.topic_count(), 4u);
  for (int t = 6; t < 10; ++t) EXPECT_EQ(restored.LastSeq("T" + std::to_string(t)), 1u);
  EXPECT_EQ(restored.LastSeq("T5"), 0u);
  // Restored least recently published first: a new topic takes the place of T6 (no open bar
  // once its minute closed).
  restored.AdvanceWatermark(kT0 + 120 * kSec, out);
  restored.Apply(OneTick("NEW", kT0 + 130 * kSec), out);
  EXPECT_EQ(restored.LastSeq("T6"), 0u);
  EXPECT_EQ(restored.LastSeq("T7"), 1u);
  // At its cap a shard refuses more.
  TopicImage extra;
  extra.name = "EXTRA";
  EXPECT_FALSE(restored.Restore(extra));
}

TEST(SnapshotTest, RestoreRespectsSmallerHistoryLimits) {
  Shard shard(0);
  Fill(shard, 2);
  const std::string file = SnapshotFile(shard, 0, 1);
  const ParsedSnapshot parsed = MustParse(file);
  ShardOptions small;
  small.ticks = 3;
  small.second_bars = 2;
  small.minute_bars = 1;
  Shard restored(0, small);
  for (const TopicRef& ref : parsed.topics) ASSERT_TRUE(restored.Restore(*DecodeTopic(file, ref)));
  const auto full = shard.RetainedBars("T0", Mode::kSecond);
  const auto kept = restored.RetainedBars("T0", Mode::kSecond);
  ASSERT_GE(full.size(), 2u);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].start_ms, full[full.size() - 2].start_ms);
  EXPECT_EQ(kept[1].start_ms, full.back().start_ms);
  EXPECT_LE(restored.RetainedBars("T0", Mode::kMinute).size(), 1u);
  const auto re = MustParse(SnapshotFile(restored, 0, 1));
  for (const TopicRef& ref : re.topics) {
    EXPECT_LE(DecodeTopic(SnapshotFile(restored, 0, 1), ref)->ticks.size(), 3u);
  }
}

TEST(SnapshotTest, DuplicateTopicsKeepTheNewerRecord) {
  Shard a(0);
  Shard b(1);
  RecordBlock out;
  a.Apply(OneTick("X", kT0), out);
  b.Apply(OneTick("X", kT0), out);
  b.Apply(OneTick("X", kT0 + kSec), out);
  const std::string fa = SnapshotFile(a, 0, 2);
  const std::string fb = SnapshotFile(b, 1, 2);
  const RestorePlan plan = PlanRestore({MustParse(fa), MustParse(fb)}, 1, 10);
  EXPECT_EQ(plan.duplicates, 1u);
  ASSERT_EQ(plan.shards[0].size(), 1u);
  EXPECT_EQ(plan.shards[0][0].file, 1u);
}

std::string Reason(std::string_view file) {
  auto p = ParseSnapshot(file);
  auto* err = std::get_if<SnapshotError>(&p);
  return err != nullptr ? err->reason : "";
}

// A topic record in the version 1 layout: without dropped_order_ns and the ticks' order_ns.
std::string V1Record(const TopicImage& t) {
  std::string v2;
  AppendTopicImage(v2, t);
  const std::size_t head = 4 + 2 + t.name.size() + 3 * 8;  // up to last_publish_ns
  std::string v1 = v2.substr(0, head) + v2.substr(head + 8);
  const std::size_t ticks_at = v1.size() - t.ticks.size() * kSnapshotTickBytes;
  std::string out = v1.substr(0, ticks_at);
  for (std::size_t i = 0; i < t.ticks.size(); ++i) {
    out += v1.substr(ticks_at + i * kSnapshotTickBytes, kSnapshotTickBytesV1);
  }
  const auto length = static_cast<std::uint32_t>(out.size() - 4);
  std::memcpy(out.data(), &length, sizeof length);
  return out;
}

// The accept order (PROTOCOL S8c resume_from_ns) survives a restore: each retained tick's place,
// the newest dropped one's, and the clock new ticks continue from.
TEST(SnapshotTest, RestoreKeepsTheAcceptOrder) {
  ShardOptions small;
  small.ticks = 4;
  Shard shard(0, small);
  RecordBlock out;
  for (int i = 1; i <= 6; ++i) {
    shard.AdvanceOrderClock(i * 1000);
    shard.Apply(OneTick("A", kT0 + i * kSec), out);
  }
  const std::string file = SnapshotFile(shard, 0, 1);
  const ParsedSnapshot parsed = MustParse(file);
  ASSERT_EQ(parsed.topics.size(), 1u);
  const auto image = DecodeTopic(file, parsed.topics[0]);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->dropped_order_ns, 2000);  // ticks 1 and 2 went
  ASSERT_EQ(image->ticks.size(), 4u);
  EXPECT_EQ(image->ticks.front().order_ns, 3000);
  EXPECT_EQ(image->ticks.back().order_ns, 6000);

  Shard restored(0, small);
  ASSERT_TRUE(restored.Restore(*image));
  EXPECT_EQ(restored.order_clock_ns(), 6000);
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  for (std::int64_t from : {1500, 2500, 4500}) {
    req.resume_from_ns = from;
    const auto a = shard.NextHistorySlice(req, {});
    const auto b = restored.NextHistorySlice(req, {});
    EXPECT_EQ(a.records.bytes, b.records.bytes) << from;
    EXPECT_EQ(a.lost.size(), b.lost.size()) << from;
    EXPECT_EQ(b.lost.size(), from <= 2000 ? 1u : 0u) << from;
  }
}

TEST(SnapshotTest, RestoreKeepsTheForgottenNumberings) {
  Shard shard(0);
  RecordBlock out;
  shard.AdvanceOrderClock(5000);
  shard.Apply(OneTick("gone", kT0), out);
  shard.Apply(OneTick("kept", kT0), out);
  const std::uint64_t epoch = shard.TopicEpoch("gone");
  ASSERT_TRUE(shard.Forget("gone"));
  const std::string file = SnapshotFile(shard, 0, 1);
  const ParsedSnapshot parsed = MustParse(file);
  ASSERT_EQ(parsed.tombstones.size(), 1u);
  EXPECT_EQ(parsed.tombstones[0].name, "gone");
  EXPECT_EQ(parsed.tombstones[0].topic_epoch, epoch);
  EXPECT_EQ(parsed.tombstones[0].last_seq, 1u);
  EXPECT_EQ(parsed.tombstones[0].last_order_ns, 5000);

  Shard restored(0);
  restored.RestoreTombstones(parsed.tombstones, parsed.tombstones_dropped_order_ns);
  EXPECT_EQ(restored.tombstone_count(), 1u);
  EXPECT_GE(restored.max_restored_epoch(), epoch);  // never handed out again
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.resume_from_ns = 4000;
  const auto slice = restored.NextHistorySlice(req, {});
  ASSERT_EQ(slice.lost.size(), 1u);
  EXPECT_EQ(slice.lost[0].topic, "gone");
  // A section cut short is refused.
  std::string cut = file.substr(kSnapshotHeaderSize, file.size() - kSnapshotHeaderSize - 3);
  auto h = parsed.header;
  h.body_length = cut.size();
  h.body_crc = Crc32c(0, cut);
  EXPECT_EQ(Reason(EncodeSnapshotHeader(h) + cut), "tombstone section cut short");
}

TEST(SnapshotTest, ReadsVersionOneFilesWithoutAcceptOrder) {
  Shard shard(0);
  Fill(shard, 3);
  const std::string v2 = SnapshotFile(shard, 0, 1);
  const ParsedSnapshot parsed = MustParse(v2);
  std::string body;
  for (const TopicRef& ref : parsed.topics) body += V1Record(*DecodeTopic(v2, ref));
  SnapshotHeader h = parsed.header;
  h.version = 1;
  h.body_length = body.size();
  h.body_crc = Crc32c(0, body);
  const std::string v1 = EncodeSnapshotHeader(h) + body;
  const ParsedSnapshot old = MustParse(v1);
  ASSERT_EQ(old.topics.size(), parsed.topics.size());
  for (std::size_t i = 0; i < old.topics.size(); ++i) {
    const auto a = DecodeTopic(v2, parsed.topics[i]);
    const auto b = DecodeTopic(v1, old.topics[i]);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->name, b->name);
    EXPECT_EQ(a->last_seq, b->last_seq);
    ASSERT_EQ(a->ticks.size(), b->ticks.size());
    for (std::size_t k = 0; k < a->ticks.size(); ++k) {
      EXPECT_EQ(a->ticks[k].seq, b->ticks[k].seq);
      EXPECT_EQ(a->ticks[k].price, b->ticks[k].price);
      EXPECT_EQ(b->ticks[k].order_ns, 0);
    }
  }
}

TEST(SnapshotTest, RefusesCorruptTruncatedAndOtherVersionFiles) {
  Shard shard(0);
  Fill(shard, 3);
  const std::string file = SnapshotFile(shard, 0, 1);
  ASSERT_EQ(Reason(file), "");
  // Every truncation.
  for (std::size_t n = 0; n < file.size(); n += (n < 200 ? 1 : 97)) {
    EXPECT_NE(Reason(file.substr(0, n)), "") << "cut at " << n;
  }
  EXPECT_NE(Reason(file.substr(0, file.size() - 1)), "");
  EXPECT_EQ(Reason(file + "x"), "trailing bytes after the body");
  // Any flipped bit (sampled) is caught by a checksum or a check.
  for (std::size_t i = 0; i < file.size(); i += 13) {
    std::string bad = file;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    EXPECT_NE(Reason(bad), "") << "flip at " << i;
  }
  std::string body_flip = file;
  body_flip[kSnapshotHeaderSize + 10] ^= 1;
  EXPECT_EQ(Reason(body_flip), "body checksum mismatch");
  // Another version, with a valid header checksum.
  auto header = std::get<SnapshotHeader>(ParseSnapshotHeader(file));
  header.version = kSnapshotVersion + 1;
  const std::string other = EncodeSnapshotHeader(header) + file.substr(kSnapshotHeaderSize);
  EXPECT_NE(Reason(other).find("format version 3"), std::string::npos) << Reason(other);
  EXPECT_EQ(Reason(std::string("XXXXXXXX") + file.substr(8)), "not a snapshot file (bad magic)");
  header.version = kSnapshotVersion;
  header.flags = kSnapshotFinal;
  EXPECT_EQ(Reason(EncodeSnapshotHeader(header) + file.substr(kSnapshotHeaderSize)), "");
  header.flags = 2;
  EXPECT_EQ(Reason(EncodeSnapshotHeader(header) + file.substr(kSnapshotHeaderSize)),
            "unknown header flags");
}

TEST(SnapshotTest, RefusesRecordsAShardNeverWrites) {
  auto file_of = [](const std::vector<TopicImage>& topics) {
    std::string body;
    for (const auto& t : topics) AppendTopicImage(body, t);
    AppendTombstones(body, std::vector<Tombstone>{}, 0);
    SnapshotHeader h;
    h.shard_count = 1;
    h.topics = topics.size();
    h.body_length = body.size();
    h.body_crc = Crc32c(0, body);
    return EncodeSnapshotHeader(h) + body;
  };
  TopicImage a;
  a.name = "A";
  a.last_seq = 2;
  a.ticks = {{1, 1, 1, 1, 0}, {1, 1, 1, 2, 1}};
  TopicImage b = a;
  b.name = "B";
  EXPECT_EQ(Reason(file_of({a, b})), "");
  EXPECT_EQ(Reason(file_of({b, a})), "topic records out of name order");
  EXPECT_EQ(Reason(file_of({a, a})), "topic records out of name order");
  TopicImage bad = a;
  bad.name = "bad name";
  EXPECT_EQ(Reason(file_of({bad})), "invalid topic name");
  bad = a;
  bad.ticks = {{1, 1, 1, 2, 1}, {1, 1, 1, 1, 0}};
  EXPECT_EQ(Reason(file_of({bad})), "ticks out of order");
  bad = a;
  bad.last_seq = 1;
  EXPECT_EQ(Reason(file_of({bad})), "ticks out of order");
  // The shard keeps only the chain (each tick names the one before, the newest is last_seq).
  bad = a;
  bad.ticks = {{1, 1, 1, 1, 0}, {1, 1, 1, 3, 2}};
  bad.last_seq = 3;
  EXPECT_EQ(Reason(file_of({bad})), "ticks do not follow each other");
  bad = a;
  bad.last_seq = 3;
  EXPECT_EQ(Reason(file_of({bad})), "ticks do not follow each other");
  bad = a;
  bad.open_seconds.resize(kMaxSnapshotOpenBuckets + 1);
  EXPECT_EQ(Reason(file_of({bad})), "too many open bars in a topic record");
  bad = a;
  bad.seconds = {Bar{2000}, Bar{1000}};
  bad.last_second_start = 2000;
  EXPECT_EQ(Reason(file_of({bad})), "closed bars out of order");
}

TEST(SnapshotTest, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(Crc32c(0, "1234"), "56789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, ""), 0u);
}

}  // namespace
}  // namespace tickwire::engine
