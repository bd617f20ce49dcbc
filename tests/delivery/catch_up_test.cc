// The subscriber's side of a sliced history replay: how replayed and live records are joined
// (delivery::CatchUp), then random replays end to end against a real Shard.
#include "delivery/catch_up.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "catch_up_script.h"

namespace tickwire::delivery {
namespace {

using engine::Mode;

// Records are "<topic>:<key>" here; only the join is under test.
void Add(engine::RecordBlock& block, const std::string& topic, std::uint64_t key) {
  const auto offset = static_cast<std::uint32_t>(block.bytes.size());
  block.bytes += topic + ":" + std::to_string(key);
  block.entries.push_back({offset, static_cast<std::uint32_t>(block.bytes.size() - offset), offset,
                           static_cast<std::uint16_t>(topic.size()), Mode::kTick, 0, key});
}

engine::HistorySlice Slice(std::vector<std::pair<std::string, std::uint64_t>> records,
                           std::string after, std::string partial = {}, bool finished = false) {
  engine::HistorySlice s;
  for (const auto& [topic, key] : records) Add(s.records, topic, key);
  s.cursor.started = true;
  s.cursor.after = std::move(after);
  s.cursor.partial = std::move(partial);
  s.cursor.finished = finished;
  return s;
}

class CatchUpTest : public ::testing::Test {
 protected:
  CatchUp::Emit emit = [this](std::string_view entry) { sent.emplace_back(entry); };
  std::vector<std::string> sent;

  void Live(CatchUp& c, const std::string& topic, std::uint64_t key) {
    ASSERT_TRUE(c.Covers(topic, Mode::kTick));
    c.OnLive(topic, key, topic + ":" + std::to_string(key), emit);
  }
  static CatchUp Wildcard(CatchUp::TopicSet live_elsewhere = {}) {
    return CatchUp(1, 7, Mode::kTick, true, std::move(live_elsewhere), 0, 1, 1);
  }
};

TEST_F(CatchUpTest, JoinsReplayAndLiveRecordsInKeyOrderWithoutDuplicates) {
  CatchUp c = Wildcard();
  CatchUp::SliceRequest req;
  ASSERT_TRUE(c.NextRequest(req));
  EXPECT_FALSE(c.NextRequest(req));  // one request per owner at a time
  // Live while the replay is read: 4 and 5 were produced before the read, 9 after it.
  Live(c, "T", 4);
  Live(c, "T", 5);
  EXPECT_TRUE(sent.empty());
  EXPECT_GT(c.held_bytes(), 0u);
  // The replay has 2..5 (4 and 5 are the live ones again), the topic completes.
  EXPECT_TRUE(c.OnSlice(0, Slice({{"T", 2}, {"T", 3}, {"T", 4}, {"T", 5}}, "T", {}, true), emit));
  EXPECT_EQ(sent, (std::vector<std::string>{"T:2", "T:3", "T:4", "T:5"}));
  EXPECT_EQ(c.held_bytes(), 0u);
  EXPECT_TRUE(c.complete());
}

TEST_F(CatchUpTest, HeldRecordsTheReplayDoesNotHaveGoInTheirPlace) {
  // since_ms leaves out a tick stamped early but published after the SUBSCRIBE (live: key 3);
  // a topic in progress keeps what is newer than its last replayed key.
  CatchUp c = Wildcard();
  CatchUp::SliceRequest req;
  ASSERT_TRUE(c.NextRequest(req));
  Live(c, "T", 3);
  Live(c, "T", 6);
  Live(c, "T", 8);
  EXPECT_FALSE(c.OnSlice(0, Slice({{"T", 1}, {"T", 4}, {"T", 6}}, "", "T"), emit));
  EXPECT_EQ(sent, (std::vector<std::string>{"T:1", "T:3", "T:4", "T:6"}));
  ASSERT_TRUE(c.NextRequest(req));
  Live(c, "T", 9);
  c.OnSlice(0, Slice({{"T", 7}}, "T", {}, true), emit);
  EXPECT_EQ(sent, (std::vector<std::string>{"T:1", "T:3", "T:4", "T:6", "T:7", "T:8", "T:9"}));
}

TEST_F(CatchUpTest, CompletedTopicsGoLiveAndTopicsAheadWait) {
  CatchUp c = Wildcard();
  CatchUp::SliceRequest req;
  ASSERT_TRUE(c.NextRequest(req));
  Live(c, "A", 1);  // replayed in this slice without a record: nothing retained was selected
  Live(c, "M", 1);  // ahead of the cursor
  EXPECT_FALSE(c.OnSlice(0, Slice({{"B", 1}}, "C"), emit));
  EXPECT_EQ(sent, (std::vector<std::string>{"B:1", "A:1"}));
  Live(c, "B", 2);  // complete: straight through
  Live(c, "M", 2);
  EXPECT_EQ(sent.back(), "B:2");
  ASSERT_TRUE(c.NextRequest(req));
  EXPECT_EQ(req.cursor.after, "C");
  EXPECT_TRUE(c.OnSlice(0, Slice({}, "Z", {}, true), emit));
  EXPECT_EQ(sent, (std::vector<std::string>{"B:1", "A:1", "B:2", "M:1", "M:2"}));
}

TEST_F(CatchUpTest, ARestartedTopicSendsWhatIsHeldOfItsOlderIncarnationAtOnce) {
  CatchUp c = Wildcard();
  CatchUp::SliceRequest req;
  ASSERT_TRUE(c.NextRequest(req));
  Live(c, "T", 41);
  Live(c, "T", 42);
  Live(c, "T", 1);  // evicted and created again: seq starts over
  EXPECT_EQ(sent, (std::vector<std::string>{"T:41", "T:42"}));
  c.OnSlice(0, Slice({{"T", 1}}, "T", {}, true), emit);
  EXPECT_EQ(sent, (std::vector<std::string>{"T:41", "T:42", "T:1"}));
}

TEST_F(CatchUpTest, TopicsLiveElsewhereAreNeitherReplayedNorHeld) {
  CatchUp c = Wildcard({"X"});
  EXPECT_FALSE(c.Covers("X", Mode::kTick));
  EXPECT_FALSE(c.Covers("Y", Mode::kSecond));
  CatchUp::SliceRequest req;
  ASSERT_TRUE(c.NextRequest(req));
  c.OnSlice(0, Slice({{"X", 1}, {"Y", 1}}, "Y", {}, true), emit);
  EXPECT_EQ(sent, (std::vector<std::string>{"Y:1"}));
}

TEST_F(CatchUpTest, ExactTopicsAskOnlyTheirOwnersWithSortedLists) {
  CatchUp c(2, 9, Mode::kSecond, false, {"b", "a", "c"}, 5, 0, 64);
  std::set<unsigned> shards;
  std::size_t topics = 0;
  CatchUp::SliceRequest req;
  while (c.NextRequest(req)) {
    EXPECT_TRUE(shards.insert(req.shard).second);
    ASSERT_TRUE(req.request.topics);
    EXPECT_TRUE(std::is_sorted(req.request.topics->begin(), req.request.topics->end()));
    for (const auto& t : *req.request.topics) EXPECT_EQ(engine::ShardOf(t, 64), req.shard);
    topics += req.request.topics->size();
    EXPECT_EQ(req.request.backfill, 5u);
    EXPECT_EQ(req.request.mode, Mode::kSecond);
  }
  EXPECT_EQ(topics, 3u);
  for (unsigned s : shards) c.OnSlice(s, Slice({}, "z", {}, true), emit);
  EXPECT_TRUE(c.complete());
}

TEST_F(CatchUpTest, AbandonCancelsAndKeepsOnlyWhatAnotherSubscriptionDelivers) {
  CatchUp c = Wildcard();
  CatchUp::SliceRequest req;
  ASSERT_TRUE(c.NextRequest(req));
  Live(c, "K", 1);
  Live(c, "D", 1);
  c.Abandon([](std::string_view topic) { return topic == "K"; }, emit);
  EXPECT_TRUE(c.cancel()->cancelled.load());
  EXPECT_EQ(sent, (std::vector<std::string>{"K:1"}));
  EXPECT_EQ(c.held_bytes(), 0u);
}

// Random replays against a real shard with topics created and evicted between slices (the
// fuzz_catch_up target runs the same script; this keeps it in every test run).
TEST(CatchUpScript, RandomReplaysDeliverEveryRecordOnceAndInOrder) {
  std::mt19937_64 rng(20240613);
  for (int run = 0; run < 4000; ++run) {
    std::vector<std::uint8_t> script(16 + rng() % 400);
    for (auto& b : script) b = static_cast<std::uint8_t>(rng());
    const std::string failure = fuzzing::RunCatchUpScript(script.data(), script.size());
    ASSERT_EQ(failure, "") << "run " << run;
  }
}

}  // namespace
}  // namespace tickwire::delivery
