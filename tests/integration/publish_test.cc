// PROTOCOL S6 to S8: PUBLISH validation and ack, delivery to TICK subscribers, sequence
// numbers, wildcard subscriptions.
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class PublishTest : public IntegrationTest {};

TEST_F(PublishTest, AckCarriesRequestIdAndAcceptedCount) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  v1::Publish pub;
  pub.set_request_id(4242);
  pub.set_ack(true);
  for (int i = 0; i < 7; ++i) *pub.add_ticks() = MakeTick(Topic(), i, 1);
  ASSERT_TRUE(c.SendFrame(FrameType::kPublish, pub));
  v1::PublishAck ack;
  ASSERT_TRUE(c.ReadMessage(FrameType::kPublishAck, &ack));
  EXPECT_EQ(ack.request_id(), 4242u);
  EXPECT_EQ(ack.accepted(), 7u);
}

TEST_F(PublishTest, NoAckWhenNotAsked) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  v1::Publish pub;
  pub.set_request_id(1);
  *pub.add_ticks() = MakeTick(Topic(), 1, 1);
  ASSERT_TRUE(c.SendFrame(FrameType::kPublish, pub));
  // The next frame is the heartbeat's echo, not a PUBLISH_ACK.
  EXPECT_TRUE(c.HeartbeatRoundTrip(1));
}

TEST_F(PublishTest, SubscriberReceivesTicksAsPublished) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}));
  const std::int64_t ts = NowNs() - 1'000'000'000;
  std::vector<v1::Tick> ticks = {MakeTick(Topic(), 101.25, 3, ts),
                                 MakeTick(Topic(), -0.5, 0, ts + 1),
                                 MakeTick(Topic(), 1e15, 1e-300, ts + 2)};  // at the bound
  ASSERT_TRUE(pub.PublishAcked(1, ticks));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, ticks.size(), milliseconds(2000), d));
  ASSERT_EQ(d.ticks.size(), ticks.size());
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    EXPECT_EQ(d.ticks[i].topic(), ticks[i].topic());
    EXPECT_EQ(d.ticks[i].price(), ticks[i].price());
    EXPECT_EQ(d.ticks[i].size(), ticks[i].size());
    EXPECT_EQ(d.ticks[i].ts_ns(), ticks[i].ts_ns());
  }
  EXPECT_TRUE(CheckSequence(d.ticks));
}

// seq and prev_seq belong to the server; values a publisher puts there are ignored.
TEST_F(PublishTest, PublisherSeqFieldsAreIgnored) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}));
  v1::Tick forged = MakeTick(Topic(), 1, 1);
  forged.set_seq(1000);
  forged.set_prev_seq(999);
  ASSERT_TRUE(pub.PublishAcked(1, {forged, MakeTick(Topic(), 2, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 2, milliseconds(2000), d));
  EXPECT_TRUE(CheckSequence(d.ticks));
}

TEST_F(PublishTest, ZeroTsNsIsStampedWithReceiveTime) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}));
  const std::int64_t before = NowNs();
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic(), 1, 1, 0)}));
  const std::int64_t after = NowNs();
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(2000), d));
  // Same host clock; a little slack for a server that reads a cached loop time.
  EXPECT_GE(d.ticks[0].ts_ns(), before - 100'000'000);
  EXPECT_LE(d.ticks[0].ts_ns(), after + 10'000'000);
}

TEST_F(PublishTest, TsNsSlightlyAheadIsAccepted) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  EXPECT_TRUE(c.PublishAcked(1, {MakeTick(Topic(), 1, 1, NowNs() + 2'000'000'000)}));
}

TEST_F(PublishTest, SeqAndPrevSeqArePerTopic) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  const std::string a = Topic("a");
  const std::string b = Topic("b");
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {a, b}));
  // Interleaved, in several frames.
  std::uint32_t request_id = 0;
  for (int frame = 0; frame < 5; ++frame) {
    std::vector<v1::Tick> ticks;
    for (int i = 0; i < 10; ++i) ticks.push_back(MakeTick(i % 3 == 0 ? b : a, frame * 10 + i, 1));
    ASSERT_TRUE(pub.PublishAcked(++request_id, ticks));
  }
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 50, milliseconds(3000), d));
  const auto ticks_a = TicksOf(d.ticks, a);
  const auto ticks_b = TicksOf(d.ticks, b);
  EXPECT_EQ(ticks_a.size() + ticks_b.size(), 50u);
  EXPECT_TRUE(CheckSequence(ticks_a));
  EXPECT_TRUE(CheckSequence(ticks_b));
  // Order within a topic is publish order (prices were increasing).
  for (const auto* list : {&ticks_a, &ticks_b}) {
    for (std::size_t i = 1; i < list->size(); ++i) {
      EXPECT_LT((*list)[i - 1].price(), (*list)[i].price());
    }
  }
}

TEST_F(PublishTest, SubscriberOnlyReceivesItsTopics) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic("mine")}));
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic("other"), 1, 1), MakeTick(Topic("mine"), 2, 1),
                                   MakeTick(Topic("other"), 3, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(2000), d));
  EXPECT_TRUE(sub.ExpectNothing(milliseconds(100)));
  ASSERT_EQ(d.ticks.size(), 1u);
  EXPECT_EQ(d.ticks[0].topic(), Topic("mine"));
  EXPECT_EQ(d.ticks[0].price(), 2);
}

TEST_F(PublishTest, WildcardSeesEveryTopicIncludingNewOnes) {
  ASSERT_TRUE(Start());
  RawClient wild;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(wild));
  ASSERT_TRUE(ConnectAuthed(pub));
  // Subscribed before any of the topics exists.
  ASSERT_TRUE(wild.Subscribe(1, v1::MODE_TICK, {"*"}));
  const std::vector<std::string> topics = {Topic("x"), Topic("y"), Topic("z")};
  std::vector<v1::Tick> ticks;
  for (int i = 0; i < 30; ++i)
    ticks.push_back(MakeTick(topics[static_cast<std::size_t>(i % 3)], i, 1));
  ASSERT_TRUE(pub.PublishAcked(1, ticks));
  Delivery d;
  ASSERT_TRUE(ReadTicks(wild, 30, milliseconds(3000), d));
  for (const auto& t : topics) {
    const auto of_topic = TicksOf(d.ticks, t);
    EXPECT_EQ(of_topic.size(), 10u) << t;
    EXPECT_TRUE(CheckSequence(of_topic));
  }
}

TEST_F(PublishTest, SeveralSubscribersOfOneTopicAllReceive) {
  ASSERT_TRUE(Start());
  std::vector<RawClient> subs(3);
  for (auto& s : subs) {
    ASSERT_TRUE(ConnectAuthed(s));
    ASSERT_TRUE(s.Subscribe(1, v1::MODE_TICK, {Topic()}));
  }
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic(), 1, 1), MakeTick(Topic(), 2, 1)}));
  for (auto& s : subs) {
    Delivery d;
    ASSERT_TRUE(ReadTicks(s, 2, milliseconds(2000), d));
    EXPECT_TRUE(CheckSequence(d.ticks));
  }
}

TEST_F(PublishTest, PublisherSubscribedToItsOwnTopicReceivesAfterAck) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.Subscribe(1, v1::MODE_TICK, {Topic()}));
  std::vector<Frame> early;
  ASSERT_TRUE(c.PublishAcked(1, {MakeTick(Topic(), 1, 1)}, &early));
  Delivery d;
  std::size_t got = 0;
  for (const auto& f : early) {
    auto b = DecodeBatch(f);
    ASSERT_TRUE(b);
    got += b->ticks.size();
    d.next_batch_seq = b->batch_seq + 1;
  }
  if (got == 0) {
    ASSERT_TRUE(ReadTicks(c, 1, milliseconds(2000), d));
  }
}

// SECOND/MINUTE subscriptions never carry ticks (they carry bars: PROTOCOL S8a).
TEST_F(PublishTest, BarSubscriptionsReceiveNoTicks) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_SECOND, {Topic()}));
  ASSERT_TRUE(sub.Subscribe(2, v1::MODE_MINUTE, {Topic()}));
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic(), 1, 1)}));
  const auto deadline = steady_clock::now() + milliseconds(200);
  while (steady_clock::now() < deadline) {
    ReadResult r = sub.ReadFrame(Remaining(deadline));
    if (!r.ok()) break;
    ASSERT_EQ(r.frame.frame_type(), FrameType::kDataBatch) << DescribeFrame(r.frame);
    auto b = DecodeBatch(r.frame);
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->ticks.empty()) << "a bar subscription received ticks";
  }
}

struct BadTick {
  const char* name;
  // Turns a valid tick into an invalid one.
  void (*spoil)(v1::Tick&);
};

void PrintTo(const BadTick& p, std::ostream* os) { *os << p.name; }

class PublishInvalidTickTest : public IntegrationTest,
                               public ::testing::WithParamInterface<BadTick> {};

// One invalid tick at index 2 rejects the whole frame: a non-fatal INVALID_REQUEST naming
// "ticks[2]" with the request_id, and none of the frame's ticks are applied.
TEST_P(PublishInvalidTickTest, RejectsWholeFrameNamingTheTick) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {"*"}));

  v1::Publish frame;
  frame.set_request_id(555);
  frame.set_ack(true);
  for (int i = 0; i < 4; ++i) *frame.add_ticks() = MakeTick(Topic(), 10 + i, 1, NowNs());
  GetParam().spoil(*frame.mutable_ticks(2));
  ASSERT_TRUE(pub.SendFrame(FrameType::kPublish, frame));
  v1::Error e;
  ASSERT_TRUE(pub.ExpectError(v1::INVALID_REQUEST, false, 555u, &e));
  EXPECT_NE(e.message().find("ticks[2]"), std::string::npos) << e.message();

  // Nothing of the rejected frame was applied: the next tick of the topic is its first.
  ASSERT_TRUE(pub.PublishAcked(556, {MakeTick(Topic(), 99, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(2000), d));
  EXPECT_EQ(d.ticks[0].price(), 99) << "a tick of the rejected frame was delivered";
  EXPECT_EQ(d.ticks[0].seq(), 1u);
  EXPECT_EQ(d.ticks[0].prev_seq(), 0u);
  EXPECT_TRUE(sub.ExpectNothing(milliseconds(50)));
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

INSTANTIATE_TEST_SUITE_P(
    Ticks, PublishInvalidTickTest,
    ::testing::Values(
        BadTick{"WildcardTopic", [](v1::Tick& tick) { tick.set_topic("*"); }},
        BadTick{"EmptyTopic", [](v1::Tick& tick) { tick.set_topic(""); }},
        BadTick{"TopicWithSpace", [](v1::Tick& tick) { tick.set_topic("bad topic"); }},
        BadTick{"TopicTooLong", [](v1::Tick& tick) { tick.set_topic(std::string(129, 'a')); }},
        BadTick{"PriceNaN", [](v1::Tick& tick) { tick.set_price(kNaN); }},
        BadTick{"PriceInf", [](v1::Tick& tick) { tick.set_price(kInf); }},
        BadTick{"PriceMinusInf", [](v1::Tick& tick) { tick.set_price(-kInf); }},
        BadTick{"SizeNaN", [](v1::Tick& tick) { tick.set_size(kNaN); }},
        BadTick{"SizeInf", [](v1::Tick& tick) { tick.set_size(kInf); }},
        BadTick{"SizeNegative", [](v1::Tick& tick) { tick.set_size(-1); }},
        BadTick{"TsNsNegative", [](v1::Tick& tick) { tick.set_ts_ns(-1); }},
        BadTick{"TsNsTenSecondsAhead",
                [](v1::Tick& tick) { tick.set_ts_ns(NowNs() + 10'000'000'000); }}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(PublishTest, ConnectionStaysUsableAfterRejectedPublish) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  v1::Publish bad;
  bad.set_request_id(9);
  *bad.add_ticks() = MakeTick("*", 1, 1);
  ASSERT_TRUE(c.SendFrame(FrameType::kPublish, bad));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 9u));
  EXPECT_TRUE(c.PublishAcked(10, {MakeTick(Topic(), 1, 1)}));
  EXPECT_TRUE(c.HeartbeatRoundTrip(10));
}

}  // namespace
}  // namespace tickwire::testing
