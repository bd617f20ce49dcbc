// PROTOCOL S4 (extension): prefix subscriptions such as "FX.*" over the real server, with the
// topics spread over several workers.
#include <map>
#include <string>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class PrefixSubscribeTest : public IntegrationTest {
 protected:
  // Topics under the test's prefix (Topic("fx") + ".") and near misses.
  std::string Under(const std::string& rest) const { return Topic("fx") + "." + rest; }
  std::string Pattern() const { return Topic("fx") + ".*"; }
};

// Ticks per topic, in arrival order.
std::map<std::string, std::vector<std::uint64_t>> SeqsByTopic(const std::vector<v1::Tick>& ticks) {
  std::map<std::string, std::vector<std::uint64_t>> out;
  for (const auto& t : ticks) out[t.topic()].push_back(t.seq());
  return out;
}

TEST_F(PrefixSubscribeTest, DeliversEveryMatchingTopicOnceAndNothingElse) {
  ASSERT_TRUE(Start({{"WORKERS", "3"}}));
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  // A topic that exists before the subscription, and one created after it.
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Under("OLD"), 1, 1)}));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Pattern()}));
  // Overlapping subscriptions on the same connection: still one copy of each record.
  ASSERT_TRUE(sub.Subscribe(2, v1::MODE_TICK, {Under("A"), Under("B.*")}));
  std::vector<v1::Tick> ticks;
  const std::vector<std::string> matching = {Under("OLD"), Under("A"), Under("B.C"), Under("D")};
  const std::vector<std::string> others = {Topic("fxx.A"), Topic("fx"), Topic("other.A"),
                                           Topic("fx") + "A.B"};
  for (int round = 0; round < 5; ++round) {
    for (const auto& t : matching) ticks.push_back(MakeTick(t, 1 + round, 1));
    for (const auto& t : others) ticks.push_back(MakeTick(t, 1 + round, 1));
  }
  ASSERT_TRUE(pub.PublishAcked(2, ticks));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 4 * 5, milliseconds(3000), d));
  EXPECT_TRUE(sub.ExpectNothing(milliseconds(150)));
  const auto got = SeqsByTopic(d.ticks);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got.at(Under("OLD")), (std::vector<std::uint64_t>{2, 3, 4, 5, 6}));
  for (const auto& t : {Under("A"), Under("B.C"), Under("D")}) {
    EXPECT_EQ(got.at(t), (std::vector<std::uint64_t>{1, 2, 3, 4, 5})) << t;
  }
}

TEST_F(PrefixSubscribeTest, BackfillReplaysEachMatchingTopicThenGoesLiveWithoutGapOrDuplicate) {
  ASSERT_TRUE(Start({{"WORKERS", "3"}}));
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(pub));
  std::vector<v1::Tick> ticks;
  for (int i = 0; i < 6; ++i) {
    for (const auto& t : {Under("A"), Under("B"), Under("C.D"), Topic("fxx.A")}) {
      ticks.push_back(MakeTick(t, 1 + i, 1));
    }
  }
  ASSERT_TRUE(pub.PublishAcked(1, ticks));
  RawClient sub;
  ASSERT_TRUE(ConnectAuthed(sub));
  v1::Subscribe req;
  req.set_request_id(1);
  req.set_mode(v1::MODE_TICK);
  req.add_topics(Pattern());
  req.set_backfill(2);
  ASSERT_TRUE(sub.SendFrame(FrameType::kSubscribe, req));
  v1::SubscribeOk ok;
  ASSERT_TRUE(sub.ReadMessage(FrameType::kSubscribeOk, &ok));
  // Live ticks while (or after) the history is replayed, for old and new topics.
  ASSERT_TRUE(pub.PublishAcked(2, {MakeTick(Under("A"), 9, 1), MakeTick(Under("NEW"), 9, 1),
                                   MakeTick(Topic("fxx.A"), 9, 1)}));
  // The owner serves the backfill when the request reaches it, which may be after it applied
  // the live tick of A: then A's two newest are 6 and 7, and 7 is not sent twice.
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 3 * 2 + 1, milliseconds(3000), d));
  ReadTicks(sub, 3 * 2 + 2, milliseconds(300), d);  // A's 5th, when it was still among the newest
  EXPECT_TRUE(sub.ExpectNothing(milliseconds(150)));
  const auto got = SeqsByTopic(d.ticks);
  ASSERT_EQ(got.size(), 4u);
  const auto& a = got.at(Under("A"));
  EXPECT_TRUE(a == (std::vector<std::uint64_t>{5, 6, 7}) || a == (std::vector<std::uint64_t>{6, 7}))
      << ::testing::PrintToString(a);
  EXPECT_EQ(got.at(Under("B")), (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(got.at(Under("C.D")), (std::vector<std::uint64_t>{5, 6}));
  EXPECT_EQ(got.at(Under("NEW")), (std::vector<std::uint64_t>{1}));
}

TEST_F(PrefixSubscribeTest, MalformedPatternsAreNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  std::uint32_t rid = 0;
  for (const std::string& bad : std::vector<std::string>{"FX*", ".*", "FX.*.A", "*.FX", "FX.**",
                                                         std::string(127, 'x') + ".*"}) {
    v1::Subscribe req;
    req.set_request_id(++rid);
    req.set_mode(v1::MODE_TICK);
    req.add_topics(bad);
    ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, req));
    EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, rid)) << bad;
  }
  // A prefix is not a topic you can publish to.
  v1::Publish p;
  p.set_request_id(++rid);
  *p.add_ticks() = MakeTick("FX.*", 1, 1);
  ASSERT_TRUE(c.SendFrame(FrameType::kPublish, p));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, rid));
  EXPECT_TRUE(c.HeartbeatRoundTrip(1));
}

}  // namespace
}  // namespace tickwire::testing
