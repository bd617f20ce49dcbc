// PROTOCOL S4 and S5: SUBSCRIBE validation and replies, UNSUBSCRIBE.
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class SubscribeTest : public IntegrationTest {
 protected:
  // Sends SUBSCRIBE and expects a non-fatal INVALID_REQUEST carrying its request_id, after
  // which the connection still answers a heartbeat.
  void ExpectRejected(RawClient& c, const v1::Subscribe& sub) {
    ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
    EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, sub.request_id()));
    EXPECT_TRUE(c.HeartbeatRoundTrip(sub.request_id()));
  }
};

v1::Subscribe MakeSubscribe(std::uint32_t request_id, int mode,
                            const std::vector<std::string>& topics) {
  v1::Subscribe sub;
  sub.set_request_id(request_id);
  sub.set_mode(static_cast<v1::Mode>(mode));
  for (const auto& t : topics) sub.add_topics(t);
  return sub;
}

TEST_F(SubscribeTest, TickSubscriptionIsAnsweredWithSubscribeOk) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, MakeSubscribe(77, v1::MODE_TICK, {Topic()})));
  v1::SubscribeOk ok;
  ASSERT_TRUE(c.ReadMessage(FrameType::kSubscribeOk, &ok));
  EXPECT_EQ(ok.request_id(), 77u);
  EXPECT_NE(ok.subscription_id(), 0u);
}

TEST_F(SubscribeTest, SubscriptionIdsAreUniquePerConnection) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  std::set<std::uint64_t> ids;
  const std::vector<std::vector<std::string>> topic_sets = {
      {Topic("a")}, {Topic("a")}, {Topic("b"), Topic("c")}, {"*"}, {Topic("a")}};
  std::uint32_t request_id = 0;
  for (const auto& topics : topic_sets) {
    std::uint64_t id = 0;
    ASSERT_TRUE(c.Subscribe(++request_id, v1::MODE_TICK, topics, &id));
    EXPECT_TRUE(ids.insert(id).second) << "subscription_id " << id << " handed out twice";
  }
}

TEST_F(SubscribeTest, SecondAndMinuteModesAreAccepted) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  EXPECT_TRUE(c.Subscribe(1, v1::MODE_SECOND, {Topic()}));
  EXPECT_TRUE(c.Subscribe(2, v1::MODE_MINUTE, {Topic(), "*"}));
}

TEST_F(SubscribeTest, BackfillAloneIsAccepted) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  auto sub = MakeSubscribe(5, v1::MODE_TICK, {Topic()});
  sub.set_backfill(10);
  ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
  v1::SubscribeOk ok;
  ASSERT_TRUE(c.ReadMessage(FrameType::kSubscribeOk, &ok));
  EXPECT_EQ(ok.request_id(), 5u);
}

TEST_F(SubscribeTest, SinceMsAloneIsAccepted) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  auto sub = MakeSubscribe(6, v1::MODE_TICK, {Topic()});
  sub.set_since_ms(NowMs() - 60'000);
  ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
  v1::SubscribeOk ok;
  ASSERT_TRUE(c.ReadMessage(FrameType::kSubscribeOk, &ok));
  EXPECT_EQ(ok.request_id(), 6u);
}

class SubscribeModeTest : public SubscribeTest, public ::testing::WithParamInterface<int> {};

TEST_P(SubscribeModeTest, InvalidModeIsNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ExpectRejected(c, MakeSubscribe(31, GetParam(), {Topic()}));
}

INSTANTIATE_TEST_SUITE_P(Modes, SubscribeModeTest, ::testing::Values(0, 4, 1000),
                         [](const auto& p) { return "mode" + std::to_string(p.param); });

struct TopicCase {
  const char* name;
  std::vector<std::string> topics;
};

void PrintTo(const TopicCase& p, std::ostream* os) { *os << p.name; }

class SubscribeBadTopicTest : public SubscribeTest,
                              public ::testing::WithParamInterface<TopicCase> {};

TEST_P(SubscribeBadTopicTest, IsNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ExpectRejected(c, MakeSubscribe(41, v1::MODE_TICK, GetParam().topics));
}

INSTANTIATE_TEST_SUITE_P(
    Topics, SubscribeBadTopicTest,
    ::testing::Values(TopicCase{"NoTopics", {}}, TopicCase{"EmptyName", {""}},
                      TopicCase{"TooLong", {std::string(129, 'a')}}, TopicCase{"Space", {"a b"}},
                      TopicCase{"Slash", {"a/b"}}, TopicCase{"Comma", {"a,b"}},
                      TopicCase{"StarInName", {"a*"}}, TopicCase{"DoubleStar", {"**"}},
                      TopicCase{"NonAscii", {"caf\xC3\xA9"}}, TopicCase{"Tab", {"a\tb"}},
                      TopicCase{"Nul", {std::string("a\0b", 3)}},
                      TopicCase{"OneBadAmongGood", {"good.one", "bad one", "good.two"}}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(SubscribeTest, TopicNameEdgesAreAccepted) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  EXPECT_TRUE(c.Subscribe(1, v1::MODE_TICK, {std::string(128, 'x')}));
  EXPECT_TRUE(c.Subscribe(2, v1::MODE_TICK, {"AZaz09._:-"}));
  EXPECT_TRUE(c.Subscribe(3, v1::MODE_TICK, {"a"}));
  EXPECT_TRUE(c.Subscribe(4, v1::MODE_TICK, {"*"}));
}

TEST_F(SubscribeTest, BackfillWithSinceMsIsNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  auto sub = MakeSubscribe(51, v1::MODE_TICK, {Topic()});
  sub.set_backfill(5);
  sub.set_since_ms(NowMs() - 1000);
  ExpectRejected(c, sub);
}

TEST_F(SubscribeTest, NegativeSinceMsIsNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  auto sub = MakeSubscribe(52, v1::MODE_TICK, {Topic()});
  sub.set_since_ms(-1);
  ExpectRejected(c, sub);
}

TEST_F(SubscribeTest, RejectedSubscribeDoesNotSubscribe) {
  ASSERT_TRUE(Start());
  RawClient c;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(ConnectAuthed(pub));
  // The good topic in a rejected request must not be subscribed either.
  ExpectRejected(c, MakeSubscribe(61, v1::MODE_TICK, {Topic(), "bad topic"}));
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic(), 1, 1)}));
  EXPECT_TRUE(c.ExpectNothing(milliseconds(150)));
}

// A connection may hold many subscriptions; an error on one request leaves the rest working.
TEST_F(SubscribeTest, ErrorsDoNotDisturbExistingSubscriptions) {
  ASSERT_TRUE(Start());
  RawClient c;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(c.Subscribe(1, v1::MODE_TICK, {Topic()}));
  ExpectRejected(c, MakeSubscribe(2, 0, {Topic()}));
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic(), 1, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(c, 1, milliseconds(2000), d));
  EXPECT_EQ(d.ticks[0].topic(), Topic());
}

// Per-connection limits (1024 subscriptions): the one over is refused, non-fatally; freeing one
// makes room again.
TEST_F(SubscribeTest, SubscriptionOverTheLimitIsNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  std::uint64_t first = 0;
  for (std::uint32_t i = 1; i <= 1024; ++i) {
    ASSERT_TRUE(c.Subscribe(i, v1::MODE_TICK, {Topic()}, i == 1 ? &first : nullptr)) << i;
  }
  v1::Error err;
  ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, MakeSubscribe(2000, v1::MODE_TICK, {Topic()})));
  ASSERT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 2000u, &err));
  EXPECT_NE(err.message().find("too many subscriptions"), std::string::npos) << err.message();
  EXPECT_TRUE(c.HeartbeatRoundTrip(1));
  v1::Unsubscribe unsub;
  unsub.set_request_id(2001);
  unsub.set_subscription_id(first);
  ASSERT_TRUE(c.SendFrame(FrameType::kUnsubscribe, unsub));
  EXPECT_TRUE(c.Subscribe(2002, v1::MODE_TICK, {Topic()}));
}

class UnsubscribeTest : public IntegrationTest {};

TEST_F(UnsubscribeTest, UnknownSubscriptionIdIsNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  v1::Unsubscribe unsub;
  unsub.set_request_id(91);
  unsub.set_subscription_id(123456789);
  ASSERT_TRUE(c.SendFrame(FrameType::kUnsubscribe, unsub));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 91u));
  EXPECT_TRUE(c.HeartbeatRoundTrip(91));
}

TEST_F(UnsubscribeTest, AnotherConnectionsSubscriptionIdIsUnknown) {
  ASSERT_TRUE(Start());
  RawClient a;
  RawClient b;
  ASSERT_TRUE(ConnectAuthed(a));
  ASSERT_TRUE(ConnectAuthed(b));
  std::uint64_t id_a = 0;
  std::uint64_t id_b = 0;
  ASSERT_TRUE(a.Subscribe(1, v1::MODE_TICK, {Topic()}, &id_a));
  ASSERT_TRUE(b.Subscribe(1, v1::MODE_TICK, {Topic("b")}, &id_b));
  // Ids are per connection; pick one b does not hold.
  const std::uint64_t foreign = id_a == id_b ? id_a + 1000 : id_a;
  v1::Unsubscribe unsub;
  unsub.set_request_id(92);
  unsub.set_subscription_id(foreign);
  ASSERT_TRUE(b.SendFrame(FrameType::kUnsubscribe, unsub));
  EXPECT_TRUE(b.ExpectError(v1::INVALID_REQUEST, false, 92u));
}

TEST_F(UnsubscribeTest, StopsDeliveryAndSendsNoReply) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  std::uint64_t id = 0;
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}, &id));
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic(), 1, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(2000), d));

  v1::Unsubscribe unsub;
  unsub.set_request_id(2);
  unsub.set_subscription_id(id);
  ASSERT_TRUE(sub.SendFrame(FrameType::kUnsubscribe, unsub));
  // No reply: the next frame is the heartbeat echo.
  ASSERT_TRUE(sub.HeartbeatRoundTrip(2));
  ASSERT_TRUE(pub.PublishAcked(2, {MakeTick(Topic(), 2, 1), MakeTick(Topic(), 3, 1)}));
  // Well past the batch window: nothing may arrive.
  EXPECT_TRUE(sub.ExpectNothing(milliseconds(200)));

  // Unsubscribing the same id again: it is unknown now.
  unsub.set_request_id(3);
  ASSERT_TRUE(sub.SendFrame(FrameType::kUnsubscribe, unsub));
  EXPECT_TRUE(sub.ExpectError(v1::INVALID_REQUEST, false, 3u));
}

TEST_F(UnsubscribeTest, OtherSubscriptionsKeepDelivering) {
  ASSERT_TRUE(Start());
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  std::uint64_t id_a = 0;
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic("a")}, &id_a));
  ASSERT_TRUE(sub.Subscribe(2, v1::MODE_TICK, {Topic("b")}));
  v1::Unsubscribe unsub;
  unsub.set_request_id(3);
  unsub.set_subscription_id(id_a);
  ASSERT_TRUE(sub.SendFrame(FrameType::kUnsubscribe, unsub));
  ASSERT_TRUE(sub.HeartbeatRoundTrip(3));
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(Topic("a"), 1, 1), MakeTick(Topic("b"), 2, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(2000), d));
  ASSERT_EQ(d.ticks.size(), 1u);
  EXPECT_EQ(d.ticks[0].topic(), Topic("b"));
  EXPECT_TRUE(sub.ExpectNothing(milliseconds(150)));
}

}  // namespace
}  // namespace tickwire::testing
