// PROTOCOL S7a: the stream epoch in AUTH_OK and the topic epoch of every tick tell a client when
// a numbering it holds has restarted (a restart without history, a topic evicted and created
// again).
#include <string>
#include <vector>

#include "integration/bars_support.h"
#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

class EpochTest : public IntegrationTest {};

TEST_F(EpochTest, StreamEpochIsTheSameForEveryConnectionAndNewAfterARestart) {
  ASSERT_TRUE(Start());
  RawClient a, b;
  v1::AuthOk ok_a, ok_b;
  ASSERT_TRUE(ConnectAuthed(a, &ok_a));
  ASSERT_TRUE(ConnectAuthed(b, &ok_b));
  EXPECT_NE(ok_a.stream_epoch(), 0u);
  EXPECT_EQ(ok_a.stream_epoch(), ok_b.stream_epoch());
  EXPECT_LT(ok_a.stream_epoch(), std::uint64_t{1} << 53);  // exact in JSON numbers
  a.Close();
  b.Close();
  EXPECT_EQ(server_->Stop(), 0);

  ASSERT_TRUE(Start());  // no DATA_DIR: the history restarts empty, under a new epoch
  RawClient c;
  v1::AuthOk ok_c;
  ASSERT_TRUE(ConnectAuthed(c, &ok_c));
  EXPECT_NE(ok_c.stream_epoch(), 0u);
  EXPECT_NE(ok_c.stream_epoch(), ok_a.stream_epoch());
}

TEST_F(EpochTest, AnEvictedTopicComesBackUnderANewTopicEpoch) {
  // One topic at most. Ticks stamped 10 s ago are late, so they open no bar and leave the
  // topic free to be evicted at once (S6b).
  ASSERT_TRUE(Start({{"WORKERS", "1"}, {"MAX_TOPICS", "1"}}));
  const std::string a = Topic("a");
  const std::string b = Topic("b");
  RawClient sub, producer;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {"*"}));
  const std::int64_t old = NowNs() - 10'000'000'000;
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(a, 1, 1, old), MakeTick(a, 2, 1, old)}));
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(b, 3, 1, old)}));  // evicts a
  ASSERT_TRUE(producer.PublishAcked(3, {MakeTick(a, 4, 1, old)}));  // evicts b; a starts over
  Received got;
  ASSERT_TRUE(ReadUntil(sub, got, milliseconds(3000), [&] { return got.ticks.size() >= 4; }));
  ASSERT_EQ(got.ticks.size(), 4u);
  const auto& t = got.ticks;
  EXPECT_EQ(t[0].seq(), 1u);
  EXPECT_EQ(t[1].seq(), 2u);
  EXPECT_EQ(t[3].topic(), a);
  EXPECT_EQ(t[3].seq(), 1u);  // the numbering restarted...
  EXPECT_EQ(t[3].prev_seq(), 0u);
  for (const auto& tick : t) EXPECT_NE(tick.topic_epoch(), 0u);
  EXPECT_EQ(t[0].topic_epoch(), t[1].topic_epoch());
  EXPECT_NE(t[3].topic_epoch(), t[0].topic_epoch());  // ...under a new topic epoch
  EXPECT_NE(t[2].topic_epoch(), t[0].topic_epoch());

  // A resuming subscriber sees the new incarnation's epoch in the replay too.
  RawClient late;
  ASSERT_TRUE(ConnectAuthed(late));
  v1::Subscribe req;
  req.set_request_id(1);
  req.set_mode(v1::MODE_TICK);
  req.add_topics(a);
  req.set_backfill(10);
  ASSERT_TRUE(late.SendFrame(protocol::FrameType::kSubscribe, req));
  v1::SubscribeOk ok;
  ASSERT_TRUE(late.ReadMessage(protocol::FrameType::kSubscribeOk, &ok));
  Received replay;
  ASSERT_TRUE(ReadUntil(late, replay, milliseconds(3000), [&] { return !replay.ticks.empty(); }));
  EXPECT_EQ(replay.ticks[0].seq(), 1u);
  EXPECT_EQ(replay.ticks[0].topic_epoch(), t[3].topic_epoch());
}

}  // namespace
}  // namespace tickwire::testing
