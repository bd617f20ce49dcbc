#include "engine/shard.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::engine {
namespace {

// Parses one DataBatch.records entry (field 2) back into a Record.
v1::Record ParseEntry(std::string_view entry) {
  v1::DataBatch batch;
  EXPECT_TRUE(batch.ParseFromArray(entry.data(), static_cast<int>(entry.size())));
  EXPECT_EQ(batch.records_size(), 1);
  return batch.records(0);
}

TEST(ShardTest, AssignsConsecutiveSeqPerTopic) {
  Shard shard(0);
  shard.SetInterest("A", Mode::kTick, 0, true);
  shard.SetInterest("B", Mode::kTick, 1, true);
  std::vector<IngestTick> ticks = {
      {"A", 1.0, 1.0, 10}, {"B", 2.0, 1.0, 11}, {"A", 3.0, 2.0, 12}, {"A", 4.0, 0.5, 13}};
  RecordBlock block;
  EXPECT_EQ(shard.Apply(ticks, block).applied, 4u);
  ASSERT_EQ(block.entries.size(), 4u);
  const std::uint64_t want_seq[] = {1, 1, 2, 3};
  const std::uint64_t want_prev[] = {0, 0, 1, 2};
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& e = block.entries[i];
    const v1::Record r = ParseEntry(block.EntryBytes(e));
    ASSERT_TRUE(r.has_tick());
    EXPECT_EQ(r.tick().topic(), ticks[i].topic);
    EXPECT_EQ(block.Topic(e), ticks[i].topic);
    EXPECT_EQ(r.tick().price(), ticks[i].price);
    EXPECT_EQ(r.tick().size(), ticks[i].size);
    EXPECT_EQ(r.tick().ts_ns(), ticks[i].ts_ns);
    EXPECT_EQ(r.tick().seq(), want_seq[i]);
    EXPECT_EQ(r.tick().prev_seq(), want_prev[i]);
    EXPECT_EQ(e.mode, Mode::kTick);
  }
  EXPECT_EQ(block.entries[0].workers, WorkerBit(0));
  EXPECT_EQ(block.entries[1].workers, WorkerBit(1));
  EXPECT_EQ(shard.LastSeq("A"), 3u);
}

TEST(ShardTest, SkipsEncodingWithoutSubscribersButKeepsCounting) {
  Shard shard(0);
  std::vector<IngestTick> ticks = {{"A", 1.0, 1.0, 10}, {"A", 2.0, 1.0, 11}};
  RecordBlock block;
  shard.Apply(ticks, block);
  EXPECT_TRUE(block.empty());
  shard.SetInterest("A", Mode::kTick, 2, true);
  shard.Apply(std::span(ticks).first(1), block);
  ASSERT_EQ(block.entries.size(), 1u);
  EXPECT_EQ(ParseEntry(block.EntryBytes(block.entries[0])).tick().seq(), 3u);
  EXPECT_EQ(ParseEntry(block.EntryBytes(block.entries[0])).tick().prev_seq(), 2u);
}

TEST(ShardTest, WildcardCoversPresentAndFutureTopics) {
  Shard shard(0);
  shard.SetWildcardInterest(Mode::kTick, 3, true);
  shard.SetInterest("A", Mode::kTick, 1, true);
  std::vector<IngestTick> ticks = {{"A", 1.0, 1.0, 10}, {"Z", 2.0, 1.0, 11}};
  RecordBlock block;
  shard.Apply(ticks, block);
  ASSERT_EQ(block.entries.size(), 2u);
  EXPECT_EQ(block.entries[0].workers, WorkerBit(1) | WorkerBit(3));
  EXPECT_EQ(block.entries[1].workers, WorkerBit(3));
  shard.SetWildcardInterest(Mode::kTick, 3, false);
  shard.SetInterest("A", Mode::kTick, 1, false);
  RecordBlock none;
  shard.Apply(ticks, none);
  EXPECT_TRUE(none.empty());
}

TEST(ShardTest, PrefixInterestCoversPresentAndFutureTopicsUnderIt) {
  Shard shard(0);
  std::vector<IngestTick> ticks = {
      {"FX.EURUSD", 1.0, 1.0, 10}, {"FXX.A", 1.0, 1.0, 10}, {"FX", 1.0, 1.0, 10}};
  RecordBlock block;
  shard.Apply(ticks, block);  // FX.EURUSD, FXX.A and FX exist before the subscription
  EXPECT_TRUE(block.empty());
  shard.SetWildcardInterest(Mode::kTick, 2, true, "FX.");
  shard.SetWildcardInterest(Mode::kTick, 5, true, "FX.EUR.");
  shard.SetInterest("FX.EURUSD", Mode::kTick, 1, true);
  EXPECT_EQ(shard.prefix_interest_count(), 2u);
  ticks.push_back({"FX.EUR.NEW", 1.0, 1.0, 11});  // a topic created after the subscription
  ticks.push_back({"EQ.FX.A", 1.0, 1.0, 11});
  shard.Apply(ticks, block);
  std::map<std::string, WorkerMask> dest;
  for (const auto& e : block.entries) dest[std::string(block.Topic(e))] = e.workers;
  EXPECT_EQ(dest, (std::map<std::string, WorkerMask>{{"FX.EURUSD", WorkerBit(1) | WorkerBit(2)},
                                                     {"FX.EUR.NEW", WorkerBit(2) | WorkerBit(5)}}));
  // Other modes are not affected, and dropping the interest stops the records.
  shard.SetWildcardInterest(Mode::kTick, 2, false, "FX.");
  RecordBlock after;
  shard.Apply(ticks, after);
  dest.clear();
  for (const auto& e : after.entries) dest[std::string(after.Topic(e))] = e.workers;
  EXPECT_EQ(dest, (std::map<std::string, WorkerMask>{{"FX.EURUSD", WorkerBit(1)},
                                                     {"FX.EUR.NEW", WorkerBit(5)}}));
  shard.SetWildcardInterest(Mode::kTick, 5, false, "FX.EUR.");
  EXPECT_EQ(shard.prefix_interest_count(), 0u);
}

TEST(ShardTest, PrefixInterestReachesBars) {
  Shard shard(0);
  shard.SetWildcardInterest(Mode::kSecond, 4, true, "FX.");
  std::vector<IngestTick> ticks = {{"FX.A", 1.0, 1.0, 1'000'000'000, 1'000'000'000},
                                   {"EQ.A", 1.0, 1.0, 1'000'000'000, 1'000'000'000}};
  RecordBlock block;
  shard.Apply(ticks, block);
  EXPECT_TRUE(block.empty());
  shard.AdvanceWatermark(10'000'000'000, block);
  ASSERT_EQ(block.entries.size(), 1u);
  EXPECT_EQ(block.Topic(block.entries[0]), "FX.A");
  EXPECT_EQ(block.entries[0].mode, Mode::kSecond);
  EXPECT_EQ(block.entries[0].workers, WorkerBit(4));
}

TEST(ShardTest, BarModesDoNotReceiveTicks) {
  Shard shard(0);
  shard.SetInterest("A", Mode::kSecond, 0, true);
  shard.SetWildcardInterest(Mode::kMinute, 1, true);
  std::vector<IngestTick> ticks = {{"A", 1.0, 1.0, 10}};
  RecordBlock block;
  shard.Apply(ticks, block);
  EXPECT_TRUE(block.empty());
}

}  // namespace
}  // namespace tickwire::engine
