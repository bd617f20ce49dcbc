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
  std::vector<std::string> topics;  // of the records in `got`
  void DeliverRecord(const engine::RecordBlock& block,
                     const engine::RecordBlock::Entry& e) override {
    got.emplace_back(block.EntryBytes(e));
    topics.emplace_back(block.Topic(e));
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

TEST(FanoutTableTest, PrefixPatternsMatchAtDotBoundariesOnly) {
  FanoutTable table;
  Recorder a;
  std::vector<FanoutTable::InterestChange> changes;
  table.Add(&a, Mode::kTick, std::vector<std::string>{"FX.*"}, false, changes);
  // The owner shards learn of the prefix as they learn of "*": by a wildcard change.
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].wildcard);
  EXPECT_EQ(changes[0].topic, "FX.");
  EXPECT_EQ(table.prefix_count(), 1u);
  EXPECT_EQ(table.topic_count(), 0u);
  const auto block =
      Block({"FX.EURUSD", "FXX.A", "FX", "FX.", "EQ.A", "FX.EUR.X"}, engine::WorkerBit(0));
  EXPECT_EQ(table.Deliver(block, 0), 3u);
  // "FX.*" is every topic starting "FX.": not FXX.A, not FX, but FX. itself (nothing after).
  EXPECT_EQ(a.topics, (std::vector<std::string>{"FX.EURUSD", "FX.", "FX.EUR.X"}));
  changes.clear();
  table.Remove(&a, Mode::kTick, std::vector<std::string>{"FX.*"}, false, changes);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].interested);
  EXPECT_EQ(changes[0].topic, "FX.");
  EXPECT_EQ(table.prefix_count(), 0u);
  a.got.clear();
  EXPECT_EQ(table.Deliver(block, 0), 0u);
}

TEST(FanoutTableTest, OverlappingPrefixesAndTopicsDeliverOnce) {
  FanoutTable table;
  Recorder a, b, c;
  std::vector<FanoutTable::InterestChange> changes;
  // a: the topic, its prefix and a longer prefix, in separate subscriptions.
  table.Add(&a, Mode::kTick, std::vector<std::string>{"FX.EUR.X"}, false, changes);
  table.Add(&a, Mode::kTick, std::vector<std::string>{"FX.*"}, false, changes);
  table.Add(&a, Mode::kTick, std::vector<std::string>{"FX.EUR.*", "FX.*"}, false, changes);
  // b: only the longer prefix. c: "*" and a prefix.
  table.Add(&b, Mode::kTick, std::vector<std::string>{"FX.EUR.*"}, false, changes);
  table.Add(&c, Mode::kTick, std::vector<std::string>{"FX.*"}, true, changes);
  const auto block = Block({"FX.EUR.X", "FX.EURUSD", "EQ.A"}, engine::WorkerBit(0));
  EXPECT_EQ(table.Deliver(block, 0), 2u + 1u + 3u);
  EXPECT_EQ(a.topics, (std::vector<std::string>{"FX.EUR.X", "FX.EURUSD"}));
  EXPECT_EQ(b.topics, (std::vector<std::string>{"FX.EUR.X"}));
  EXPECT_EQ(c.got.size(), 3u);
  // Removing one "FX.*" of a's two leaves it subscribed through the other.
  table.Remove(&a, Mode::kTick, std::vector<std::string>{"FX.*"}, false, changes);
  a.topics.clear();
  table.Deliver(block, 0);
  EXPECT_EQ(a.topics, (std::vector<std::string>{"FX.EUR.X", "FX.EURUSD"}));
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
