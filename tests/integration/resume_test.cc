// PROTOCOL S8c: resume ticks by the server's numbering (Subscribe.resume_after), the end of
// history marker (Record.history_end), and S8's merge rule for several subscriptions in one mode.
#include <algorithm>
#include <string>
#include <vector>

#include "integration/bars_support.h"
#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

class ResumeBySeqTest : public IntegrationTest {};

// What a consumer read: ticks and history_end markers, in arrival order.
struct Stream {
  std::vector<v1::Tick> ticks;
  std::vector<v1::HistoryEnd> ends;
  std::string trace;  // "t<seq>" per tick, "E" per marker, space separated
};

// Reads DATA_BATCH frames into `s` until `until` holds or `timeout` passes.
template <typename Until>
::testing::AssertionResult ReadStream(RawClient& c, Stream& s, milliseconds timeout, Until until) {
  const auto deadline = steady_clock::now() + timeout;
  while (!until()) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) return ::testing::AssertionFailure() << "timed out: " << s.trace;
    ReadResult r = c.ReadFrame(left);
    if (!r.ok()) return ::testing::AssertionFailure() << "read failed: " << s.trace;
    if (r.frame.frame_type() != protocol::FrameType::kDataBatch) {
      return ::testing::AssertionFailure() << "unexpected " << DescribeFrame(r.frame);
    }
    v1::DataBatch b;
    if (!b.ParseFromString(r.frame.payload)) {
      return ::testing::AssertionFailure() << "DATA_BATCH does not parse";
    }
    for (const auto& rec : b.records()) {
      if (!s.trace.empty()) s.trace += ' ';
      if (rec.has_tick()) {
        s.ticks.push_back(rec.tick());
        s.trace += "t" + std::to_string(rec.tick().seq());
      } else if (rec.has_history_end()) {
        s.ends.push_back(rec.history_end());
        s.trace += "E";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// SUBSCRIBE `req` and read its SUBSCRIBE_OK.
::testing::AssertionResult SubscribeWith(RawClient& c, const v1::Subscribe& req,
                                         v1::SubscribeOk* ok) {
  if (!c.SendFrame(protocol::FrameType::kSubscribe, req)) {
    return ::testing::AssertionFailure() << "send failed";
  }
  return c.ReadMessage(protocol::FrameType::kSubscribeOk, ok);
}

TEST_F(ResumeBySeqTest, BackDatedTickPublishedWhileAwayIsReplayedOnResume) {
  ASSERT_TRUE(Start());
  const std::string a = Topic("a");
  RawClient producer, consumer;
  v1::AuthOk auth;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(consumer, &auth));
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_TICK, {a}));
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(a, 1, 1), MakeTick(a, 2, 1)}));
  Stream first;
  ASSERT_TRUE(
      ReadStream(consumer, first, milliseconds(3000), [&] { return first.ticks.size() >= 2; }));
  const v1::Tick last = first.ticks.back();
  ASSERT_EQ(last.seq(), 2u);
  consumer.Close();

  // While the consumer is away: a tick stamped a minute ago, then one stamped now.
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(a, 3, 1, NowNs() - 60'000'000'000)}));
  ASSERT_TRUE(producer.PublishAcked(3, {MakeTick(a, 4, 1)}));

  // since_ms alone (the old resume rule) misses the back-dated tick.
  const std::int64_t since = last.ts_ns() / 1'000'000;
  RawClient by_time;
  ASSERT_TRUE(ConnectAuthed(by_time));
  v1::Subscribe req;
  req.set_request_id(1);
  req.set_mode(v1::MODE_TICK);
  req.add_topics(a);
  req.set_since_ms(since);
  v1::SubscribeOk ok;
  ASSERT_TRUE(SubscribeWith(by_time, req, &ok));
  EXPECT_TRUE(ok.history_end());
  Stream old_rule;
  ASSERT_TRUE(
      ReadStream(by_time, old_rule, milliseconds(3000), [&] { return !old_rule.ends.empty(); }));
  // (t1 may come too: it was stamped in the same millisecond as t2.)
  EXPECT_EQ(old_rule.trace.find("t3"), std::string::npos) << old_rule.trace;
  EXPECT_TRUE(old_rule.trace.ends_with("t2 t4 E")) << old_rule.trace;

  // By seq: everything after seq 2, the back-dated tick included, then the marker, once.
  RawClient resumed;
  ASSERT_TRUE(ConnectAuthed(resumed));
  auto* p = req.add_resume_after();
  p->set_topic(a);
  p->set_after_seq(last.seq());
  p->set_topic_epoch(last.topic_epoch());
  req.set_resume_stream_epoch(auth.stream_epoch());
  ASSERT_TRUE(SubscribeWith(resumed, req, &ok));
  EXPECT_TRUE(ok.history_end());
  Stream got;
  ASSERT_TRUE(ReadStream(resumed, got, milliseconds(3000), [&] { return !got.ends.empty(); }));
  EXPECT_EQ(got.trace, "t3 t4 E");
  EXPECT_EQ(got.ends[0].subscription_id(), ok.subscription_id());
  EXPECT_FALSE(got.ends[0].truncated());
  EXPECT_EQ(got.ends[0].lost_size(), 0);
  // Live after the marker, and no second marker.
  ASSERT_TRUE(producer.PublishAcked(4, {MakeTick(a, 5, 1)}));
  ASSERT_TRUE(ReadStream(resumed, got, milliseconds(3000), [&] { return got.ticks.size() >= 3; }));
  EXPECT_EQ(got.trace, "t3 t4 E t5");
}

TEST_F(ResumeBySeqTest, APositionRetentionHasPassedIsReportedLost) {
  ASSERT_TRUE(Start({{"WORKERS", "1"}, {"HISTORY_TICKS", "4"}}));
  const std::string a = Topic("a");
  RawClient producer, consumer;
  v1::AuthOk auth;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(consumer, &auth));
  std::vector<v1::Tick> ticks;
  for (int i = 1; i <= 10; ++i) ticks.push_back(MakeTick(a, i, 1));
  ASSERT_TRUE(producer.PublishAcked(1, ticks));
  v1::Subscribe req;
  req.set_request_id(1);
  req.set_mode(v1::MODE_TICK);
  req.add_topics(a);
  auto* p = req.add_resume_after();
  p->set_topic(a);
  p->set_after_seq(2);
  req.set_resume_stream_epoch(auth.stream_epoch());
  v1::SubscribeOk ok;
  ASSERT_TRUE(SubscribeWith(consumer, req, &ok));
  Stream got;
  ASSERT_TRUE(ReadStream(consumer, got, milliseconds(3000), [&] { return !got.ends.empty(); }));
  EXPECT_EQ(got.trace, "t7 t8 t9 t10 E");
  const auto& end = got.ends[0];
  EXPECT_TRUE(end.truncated());
  EXPECT_TRUE(end.retention());
  ASSERT_EQ(end.lost_size(), 1);
  EXPECT_EQ(end.lost(0).topic(), a);
  EXPECT_EQ(end.lost(0).from_seq(), 3u);
  EXPECT_EQ(end.lost(0).to_seq(), 6u);
  EXPECT_EQ(end.lost(0).topic_epoch(), got.ticks[0].topic_epoch());

  // A position of another stream epoch: all that is retained, and what followed it is lost.
  RawClient other;
  ASSERT_TRUE(ConnectAuthed(other));
  req.set_resume_stream_epoch(auth.stream_epoch() ^ 1);
  ASSERT_TRUE(SubscribeWith(other, req, &ok));
  Stream all;
  ASSERT_TRUE(ReadStream(other, all, milliseconds(3000), [&] { return !all.ends.empty(); }));
  EXPECT_EQ(all.trace, "t7 t8 t9 t10 E");
  EXPECT_TRUE(all.ends[0].epoch_changed());
  EXPECT_TRUE(all.ends[0].retention());  // seqs 1..6 of the current stream are gone too
}

TEST_F(ResumeBySeqTest, ResumeAfterIsRefusedOutsideTheSubscription) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  v1::Subscribe req;
  req.set_request_id(7);
  req.set_mode(v1::MODE_TICK);
  req.add_topics(Topic("a"));
  req.add_resume_after()->set_topic(Topic("b"));
  ASSERT_TRUE(c.SendFrame(protocol::FrameType::kSubscribe, req));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 7u));
  req.set_mode(v1::MODE_SECOND);
  req.mutable_resume_after(0)->set_topic(Topic("a"));
  ASSERT_TRUE(c.SendFrame(protocol::FrameType::kSubscribe, req));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 7u));
  // A live-only SUBSCRIBE says no marker follows.
  v1::Subscribe live;
  live.set_request_id(8);
  live.set_mode(v1::MODE_TICK);
  live.add_topics(Topic("a"));
  v1::SubscribeOk ok;
  ASSERT_TRUE(SubscribeWith(c, live, &ok));
  EXPECT_FALSE(ok.history_end());
}

// S8c resume_from_ns: every TICK SUBSCRIBE_OK carries its place in the accept order; a resume
// with it replays the back-dated ticks of a topic the client holds no position in (created
// while it was away), which since_ms misses, and reports a numbering forgotten meanwhile.
TEST_F(ResumeBySeqTest, ResumeFromReplaysTopicsWithoutAPositionAndReportsForgottenOnes) {
  ASSERT_TRUE(Start({{"WORKERS", "1"}, {"MAX_TOPICS", "2"}}));
  const std::string pattern = Topic("p") + ".*";
  const std::string prefix = pattern.substr(0, pattern.size() - 1);
  RawClient producer, consumer;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(consumer));
  v1::Subscribe req;
  req.set_request_id(1);
  req.set_mode(v1::MODE_TICK);
  req.add_topics(pattern);
  v1::SubscribeOk first;
  ASSERT_TRUE(SubscribeWith(consumer, req, &first));
  EXPECT_GT(first.resume_from_ns(), 0);
  EXPECT_FALSE(first.history_end());
  consumer.Close();

  // While it is away: a topic stamped an hour back (late for every bar, so it can be forgotten),
  // forgotten again by two newer ones under MAX_TOPICS=2, and one that stays.
  const std::int64_t hour_ago = NowNs() - 3'600'000'000'000;
  ASSERT_TRUE(producer.PublishAcked(
      1, {MakeTick(prefix + "gone", 1, 1, hour_ago), MakeTick(prefix + "gone", 2, 1, hour_ago)}));
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(prefix + "x", 3, 1, hour_ago)}));
  ASSERT_TRUE(producer.PublishAcked(
      3, {MakeTick(prefix + "new", 4, 1, hour_ago), MakeTick(prefix + "new", 5, 1, hour_ago)}));

  RawClient back;
  ASSERT_TRUE(ConnectAuthed(back));
  req.set_since_ms((NowNs() - 1'000'000'000) / 1'000'000);  // what the lookback would ask
  req.set_resume_from_ns(first.resume_from_ns());
  v1::SubscribeOk ok;
  ASSERT_TRUE(SubscribeWith(back, req, &ok));
  EXPECT_TRUE(ok.history_end());
  EXPECT_GE(ok.resume_from_ns(), first.resume_from_ns());
  Stream got;
  ASSERT_TRUE(ReadStream(back, got, milliseconds(3000), [&] { return !got.ends.empty(); }));
  std::string topics;
  for (const auto& t : got.ticks) topics += t.topic().substr(prefix.size()) + " ";
  EXPECT_EQ(topics, "new new x ") << got.trace;
  const v1::HistoryEnd& end = got.ends[0];
  EXPECT_TRUE(end.epoch_changed());
  EXPECT_TRUE(end.truncated());
  ASSERT_EQ(end.lost_size(), 1);
  EXPECT_EQ(end.lost(0).topic(), prefix + "gone");
  EXPECT_EQ(end.lost(0).from_seq(), 1u);
  EXPECT_EQ(end.lost(0).to_seq(), 2u);
  EXPECT_NE(end.lost(0).topic_epoch(), 0u);

  // Only for TICK, and never negative.
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  req.set_request_id(9);
  req.set_mode(v1::MODE_SECOND);
  ASSERT_TRUE(c.SendFrame(protocol::FrameType::kSubscribe, req));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 9u));
  req.set_mode(v1::MODE_TICK);
  req.set_resume_from_ns(-1);
  ASSERT_TRUE(c.SendFrame(protocol::FrameType::kSubscribe, req));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 9u));
  req.set_mode(v1::MODE_SECOND);
  req.clear_resume_from_ns();
  req.clear_since_ms();
  ASSERT_TRUE(SubscribeWith(c, req, &ok));
  EXPECT_EQ(ok.resume_from_ns(), 0);  // bars have no accept order
}

// S8, the merge rule: overlapping subscriptions in one mode deliver each record once; removing
// one keeps what the other covers.
TEST_F(ResumeBySeqTest, OverlappingSubscriptionsInOneModeDeliverEachRecordOnce) {
  ASSERT_TRUE(Start());
  const std::string a = Topic("a");
  const std::string b = Topic("b");
  RawClient producer, consumer;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(consumer));
  std::uint64_t exact = 0;
  std::uint64_t all = 0;
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_TICK, {a}, &exact));
  ASSERT_TRUE(consumer.Subscribe(2, v1::MODE_TICK, {"*"}, &all));
  ASSERT_TRUE(consumer.Subscribe(3, v1::MODE_TICK, {a, b}));
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(a, 1, 1), MakeTick(b, 2, 1)}));
  Stream got;
  ASSERT_TRUE(ReadStream(consumer, got, milliseconds(3000), [&] { return got.ticks.size() >= 2; }));
  EXPECT_TRUE(consumer.ExpectNothing(milliseconds(200)));  // no copy for the other two
  // Topics on different owners may arrive in either order: compare them as a set.
  auto topics = [&](std::size_t from) {
    std::vector<std::string> v;
    for (std::size_t i = from; i < got.ticks.size(); ++i) v.push_back(got.ticks[i].topic());
    std::sort(v.begin(), v.end());
    return v;
  };
  ASSERT_EQ(got.ticks.size(), 2u);
  EXPECT_EQ(topics(0), (std::vector<std::string>{a, b}));

  v1::Unsubscribe un;
  un.set_request_id(4);
  un.set_subscription_id(all);
  ASSERT_TRUE(consumer.SendFrame(protocol::FrameType::kUnsubscribe, un));
  un.set_subscription_id(exact);
  ASSERT_TRUE(consumer.SendFrame(protocol::FrameType::kUnsubscribe, un));
  // UNSUBSCRIBE has no reply; the echo of a later HEARTBEAT shows both were processed.
  ASSERT_TRUE(consumer.HeartbeatRoundTrip(42));
  const std::string c = Topic("c");
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(a, 3, 1), MakeTick(c, 4, 1), MakeTick(b, 5, 1)}));
  ASSERT_TRUE(ReadStream(consumer, got, milliseconds(3000), [&] { return got.ticks.size() >= 4; }));
  EXPECT_TRUE(consumer.ExpectNothing(milliseconds(200)));  // c is no longer covered
  ASSERT_EQ(got.ticks.size(), 4u);
  EXPECT_EQ(topics(2), (std::vector<std::string>{a, b}));  // a still covered by subscription 3
}

}  // namespace
}  // namespace tickwire::testing
