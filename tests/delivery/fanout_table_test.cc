#include "delivery/fanout_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/shard.h"

namespace tickwire::delivery {
namespace {

using engine::Mode;

struct Recorder : Subscriber {
  std::vector<std::string> got;
  void DeliverRecord(const engine::RecordBlock& block,
                     const engine::RecordBlock::Entry& e) override {
    got.emplace_back(block.EntryBytes(e));
  }
};

engine::RecordBlockPtr Block(const std::vector<std::string>& topics, engine::WorkerMask workers) {
  engine::Shard shard(0);
  for (const auto& t : topics) shard.SetInterest(t, Mode::kTick, 0, true);
  std::vector<engine::IngestTick> ticks;
  for (const auto& t : topics) ticks.push_back({t, 1.0, 1.0, 1});
  engine::RecordBlock block;
  shard.Apply(ticks, block);
  for (auto& e : block.entries) e.workers = workers;
  return std::make_shared<const engine::RecordBlock>(std::move(block));
}

TEST(FanoutTableTest, ReportsFirstAndLastInterestOnly) {
  FanoutTable table;
  Recorder a, b;
  std::vector<FanoutTable::InterestChange> changes;
  const std::vector<std::string> topics = {"X"};
  table.Add(&a, Mode::kTick, topics, false, changes);
  table.Add(&b, Mode::kTick, topics, false, changes);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].topic, "X");
  EXPECT_TRUE(changes[0].interested);
  changes.clear();
  table.Remove(&a, Mode::kTick, topics, false, changes);
  EXPECT_TRUE(changes.empty());
  table.Remove(&b, Mode::kTick, topics, false, changes);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].interested);
  EXPECT_EQ(table.topic_count(), 0u);
}

TEST(FanoutTableTest, DeliversOncePerSubscriberEvenWithOverlappingSubscriptions) {
  FanoutTable table;
  Recorder a, b;
  std::vector<FanoutTable::InterestChange> changes;
  const std::vector<std::string> x = {"X"};
  table.Add(&a, Mode::kTick, x, false, changes);
  table.Add(&a, Mode::kTick, x, false, changes);  // a second subscription to X
  table.Add(&a, Mode::kTick, {}, true, changes);  // and "*"
  table.Add(&b, Mode::kTick, x, false, changes);
  const auto block = Block({"X", "Y"}, engine::WorkerBit(0));
  EXPECT_EQ(table.Deliver(block, 0), 3u);
  EXPECT_EQ(a.got.size(), 2u);  // X once, Y through "*"
  EXPECT_EQ(b.got.size(), 1u);
  // Dropping "*" makes a receive X through its topic subscriptions again.
  table.Remove(&a, Mode::kTick, {}, true, changes);
  a.got.clear();
  b.got.clear();
  table.Deliver(block, 0);
  EXPECT_EQ(a.got.size(), 1u);
  EXPECT_EQ(b.got.size(), 1u);
}

TEST(FanoutTableTest, IgnoresEntriesForOtherWorkersAndOtherModes) {
  FanoutTable table;
  Recorder a;
  std::vector<FanoutTable::InterestChange> changes;
  table.Add(&a, Mode::kSecond, std::vector<std::string>{"X"}, false, changes);
  EXPECT_EQ(table.Deliver(Block({"X"}, engine::WorkerBit(0)), 0), 0u);
  table.Add(&a, Mode::kTick, std::vector<std::string>{"X"}, false, changes);
  EXPECT_EQ(table.Deliver(Block({"X"}, engine::WorkerBit(1)), 0), 0u);
  EXPECT_EQ(table.Deliver(Block({"X"}, engine::WorkerBit(0)), 0), 1u);
}

}  // namespace
}  // namespace tickwire::delivery
