// PROTOCOL S8a and S8b through the real server: bars against a reference fold of the ticks
// the server accepted, late ticks, and history (backfill, since_ms) under concurrent publishing.
#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "integration/bars_support.h"
#include "integration/integration_test.h"
#include "support/bar_fold.h"
#include "support/http_client.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class BarsTest : public IntegrationTest {};

TEST_F(BarsTest, RandomStreamsFromSeveralProducersMatchTheReferenceFold) {
  // Two workers, so topics are owned by different shards than the producers' connections and
  // buckets close on the cross-worker watermark. The close delay covers the 100 ms of producer
  // clock lag the stream uses, with room for a slow (sanitized) build.
  ASSERT_TRUE(Start({{"WORKERS", "2"}, {"BAR_CLOSE_DELAY_MS", "1000"}}));
  const std::vector<std::string> topics = {Topic("a"), Topic("b"), Topic("c"), Topic("d"),
                                           Topic("e")};
  RawClient ticks_all, bars_all, bars_some;
  ASSERT_TRUE(ConnectAuthed(ticks_all));
  ASSERT_TRUE(ConnectAuthed(bars_all));
  ASSERT_TRUE(ConnectAuthed(bars_some));
  ASSERT_TRUE(ticks_all.Subscribe(1, v1::MODE_TICK, {"*"}));
  ASSERT_TRUE(bars_all.Subscribe(1, v1::MODE_SECOND, {"*"}));
  ASSERT_TRUE(bars_some.Subscribe(1, v1::MODE_SECOND, {topics[0], topics[3]}));

  // Producer-stamped, out of order: from 100 ms behind to 1.5 s ahead; some server-stamped.
  const RandomTickRun run =
      PublishRandomTicks(server_->port(), topics, 3, milliseconds(2500), 1, SkewedStamp(100, 1500));
  ASSERT_TRUE(run.ok);
  const std::int64_t last_ts = std::max(run.newest_ts_ns, NowNs());

  // Every tick the server accepted, with its final ts_ns and seq.
  Received ticks;
  ASSERT_TRUE(Drain(ticks_all, ticks, milliseconds(500)));
  std::map<std::string, std::vector<v1::Tick>> per_topic;
  for (const auto& t : ticks.ticks) per_topic[t.topic()].push_back(t);
  for (const auto& [topic, list] : per_topic) EXPECT_TRUE(CheckSequence(list)) << topic;
  const auto want = ReferenceSecondBars(ticks.ticks);
  ASSERT_GT(want.size(), 20u);

  // All buckets close by the newest tick's second end + the close delay.
  const std::int64_t last_close_ms = (last_ts / 1'000'000'000 + 1) * 1000 + 1000;
  Received all, some;
  const auto wait = milliseconds(std::max<std::int64_t>(0, last_close_ms - NowMs()) + 3000);
  ASSERT_TRUE(ReadUntil(bars_all, all, wait, [&] { return all.bars.size() >= want.size(); }));
  ASSERT_TRUE(Drain(bars_all, all, milliseconds(300)));
  EXPECT_TRUE(all.ticks.empty());
  EXPECT_TRUE(SameBars(all.bars, want));

  std::map<BarKey, v1::Bar> want_some;
  for (const auto& [key, bar] : want) {
    if (std::get<0>(key) == topics[0] || std::get<0>(key) == topics[3]) want_some[key] = bar;
  }
  ASSERT_TRUE(ReadUntil(bars_some, some, milliseconds(3000),
                        [&] { return some.bars.size() >= want_some.size(); }));
  ASSERT_TRUE(Drain(bars_some, some, milliseconds(300)));
  EXPECT_TRUE(SameBars(some.bars, want_some));
  // Per topic, bars arrive in start order.
  std::map<std::string, std::int64_t> last_start;
  for (const auto& b : all.bars) {
    EXPECT_GT(b.start_ms(), last_start[b.topic()]) << b.topic();
    last_start[b.topic()] = b.start_ms();
  }
}

// PROTOCOL S8a: ticks the server stamps are never late, even with no close delay and several
// workers, where a bucket closes on the cross-worker watermark alone.
TEST_F(BarsTest, ServerStampedTicksAreNeverLateWithoutACloseDelay) {
  ASSERT_TRUE(Start({{"WORKERS", "2"}, {"BAR_CLOSE_DELAY_MS", "0"}}));
  const std::vector<std::string> topics = {Topic("a"), Topic("b"), Topic("c"),
                                           Topic("d"), Topic("e"), Topic("f")};
  RawClient ticks_all, bars_all;
  ASSERT_TRUE(ConnectAuthed(ticks_all));
  ASSERT_TRUE(ConnectAuthed(bars_all));
  ASSERT_TRUE(ticks_all.Subscribe(1, v1::MODE_TICK, {"*"}));
  ASSERT_TRUE(bars_all.Subscribe(1, v1::MODE_SECOND, {"*"}));

  // Four producers (so both workers ingest) publish server-stamped ticks across at least two
  // second boundaries.
  ASSERT_TRUE(PublishRandomTicks(server_->port(), topics, 4, milliseconds(2200), 11,
                                 [](std::mt19937_64&) -> std::int64_t { return 0; })
                  .ok);

  Received ticks;
  ASSERT_TRUE(Drain(ticks_all, ticks, milliseconds(500)));
  const auto want = ReferenceSecondBars(ticks.ticks);
  ASSERT_GE(want.size(), 2 * topics.size());
  Received bars;
  ASSERT_TRUE(ReadUntil(bars_all, bars, milliseconds(5000),
                        [&] { return bars.bars.size() >= want.size(); }));
  ASSERT_TRUE(Drain(bars_all, bars, milliseconds(300)));
  EXPECT_TRUE(SameBars(bars.bars, want));  // every tick is in its SECOND bar
  std::uint64_t folded = 0;
  for (const auto& b : bars.bars) folded += b.count();
  EXPECT_EQ(folded, ticks.ticks.size());

  // The counters are up to date once they account for every published tick and closed bar.
  std::map<std::string, double> m;
  EXPECT_TRUE(WaitUntil(
      [&] {
        const HttpResult r = HttpGet(server_->metrics_port(), "/metrics");
        m = ParseMetrics(r.body);
        return MetricValue(m, "records_published_total") ==
                   static_cast<double>(ticks.ticks.size()) &&
               MetricValue(m, "bars_closed_total{interval=\"second\"}") >=
                   static_cast<double>(want.size());
      },
      milliseconds(3000), milliseconds(50)));
  EXPECT_EQ(MetricValue(m, "late_ticks_total{interval=\"second\"}"), 0);
  EXPECT_EQ(MetricValue(m, "late_ticks_total{interval=\"minute\"}"), 0);
}

TEST_F(BarsTest, LateTickReachesTickSubscribersButNoBar) {
  ASSERT_TRUE(Start({{"BAR_CLOSE_DELAY_MS", "100"}}));
  const std::string topic = Topic();
  RawClient ticks_sub, bars_sub, producer;
  ASSERT_TRUE(ConnectAuthed(ticks_sub));
  ASSERT_TRUE(ConnectAuthed(bars_sub));
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ticks_sub.Subscribe(1, v1::MODE_TICK, {topic}));
  ASSERT_TRUE(bars_sub.Subscribe(1, v1::MODE_SECOND, {topic}));
  const std::int64_t late_ts = NowNs() - 10'000'000'000;  // its second closed long ago
  ASSERT_TRUE(
      producer.PublishAcked(1, {MakeTick(topic, 1.0, 1.0, late_ts), MakeTick(topic, 2.0, 3.0, 0)}));
  Received ticks, bars;
  ASSERT_TRUE(
      ReadUntil(ticks_sub, ticks, milliseconds(3000), [&] { return ticks.ticks.size() >= 2; }));
  EXPECT_EQ(ticks.ticks[0].ts_ns(), late_ts);
  ASSERT_TRUE(ReadUntil(bars_sub, bars, milliseconds(3000), [&] { return !bars.bars.empty(); }));
  ASSERT_TRUE(Drain(bars_sub, bars, milliseconds(1500)));
  ASSERT_EQ(bars.bars.size(), 1u);  // no bar for the late tick's second
  EXPECT_EQ(bars.bars[0].count(), 1u);
  EXPECT_EQ(bars.bars[0].open(), 2.0);
  EXPECT_EQ(bars.bars[0].volume(), 3.0);
  EXPECT_EQ(bars.bars[0].vwap(), 2.0);
}

// PROTOCOL S6/S8a: PUBLISH_ACK says how many of the frame's ticks were late, summed over the
// owner shards of its topics, and the late ones are in no bar.
TEST_F(BarsTest, PublishAckCountsLateTicks) {
  ASSERT_TRUE(Start({{"WORKERS", "2"}, {"BAR_CLOSE_DELAY_MS", "100"}}));
  std::vector<std::string> topics;
  for (int i = 0; i < 6; ++i) topics.push_back(Topic("t" + std::to_string(i)));
  RawClient bars_sub, producer;
  ASSERT_TRUE(ConnectAuthed(bars_sub));
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(bars_sub.Subscribe(1, v1::MODE_SECOND, {"*"}));
  v1::Publish pub;
  pub.set_request_id(77);
  pub.set_ack(true);
  const std::int64_t now = NowNs();
  std::uint32_t want_late = 0;
  for (std::size_t i = 0; i < topics.size(); ++i) {
    // Even topics: one tick stamped 10 s ago (late); every topic: one server-stamped tick.
    if (i % 2 == 0) {
      *pub.add_ticks() = MakeTick(topics[i], 1.0, 1.0, now - 10'000'000'000);
      ++want_late;
    }
    *pub.add_ticks() = MakeTick(topics[i], 2.0, 1.0, 0);
  }
  *pub.add_ticks() = MakeTick(topics[1], 3.0, 1.0, 1);  // stamped in 1970
  ++want_late;
  ASSERT_TRUE(producer.SendFrame(FrameType::kPublish, pub));
  v1::PublishAck ack;
  ASSERT_TRUE(producer.ReadMessage(FrameType::kPublishAck, &ack));
  EXPECT_EQ(ack.request_id(), 77u);
  EXPECT_EQ(ack.accepted(), static_cast<std::uint32_t>(pub.ticks_size()));
  EXPECT_EQ(ack.late(), want_late);

  // An on-time frame reports none.
  v1::Publish on_time;
  on_time.set_request_id(78);
  on_time.set_ack(true);
  *on_time.add_ticks() = MakeTick(topics[0], 4.0, 1.0, 0);
  ASSERT_TRUE(producer.SendFrame(FrameType::kPublish, on_time));
  ASSERT_TRUE(producer.ReadMessage(FrameType::kPublishAck, &ack));
  EXPECT_EQ(ack.request_id(), 78u);
  EXPECT_EQ(ack.late(), 0u);

  // Each topic's SECOND bars hold only its server-stamped ticks.
  Received bars;
  ASSERT_TRUE(ReadUntil(bars_sub, bars, milliseconds(5000), [&] {
    std::uint64_t n = 0;
    for (const auto& b : bars.bars) n += b.count();
    return n >= topics.size() + 1;
  }));
  ASSERT_TRUE(Drain(bars_sub, bars, milliseconds(300)));
  std::uint64_t folded = 0;
  for (const auto& b : bars.bars) {
    folded += b.count();
    EXPECT_GE(b.low(), 2.0) << b.topic();  // no late tick (price 1 or 3) in any bar
    EXPECT_LE(b.high(), 4.0) << b.topic();
    EXPECT_NE(b.high(), 3.0) << b.topic();
  }
  EXPECT_EQ(folded, topics.size() + 1);
  std::map<std::string, double> m;
  EXPECT_TRUE(WaitUntil(
      [&] {
        m = ParseMetrics(HttpGet(server_->metrics_port(), "/metrics").body);
        return MetricValue(m, "late_ticks_total{interval=\"second\"}") == want_late;
      },
      milliseconds(3000), milliseconds(50)));
}

TEST_F(BarsTest, BucketWithoutTicksEmitsNoBarOnlyItsWatermark) {
  ASSERT_TRUE(Start({{"BAR_CLOSE_DELAY_MS", "50"}}));
  RawClient sub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_SECOND, {"*"}));
  // Two bucket ends pass without ticks: no bar, one watermark each (PROTOCOL S8d).
  const auto deadline = steady_clock::now() + milliseconds(2200);
  std::size_t watermarks = 0;
  for (;;) {
    const ReadResult r = sub.ReadFrame(Remaining(deadline));
    if (r.status == ReadStatus::kTimeout) break;
    ASSERT_TRUE(r.ok()) << ReadStatusName(r.status);
    ASSERT_EQ(r.frame.frame_type(), protocol::FrameType::kDataBatch) << DescribeFrame(r.frame);
    v1::DataBatch batch;
    ASSERT_TRUE(batch.ParseFromString(r.frame.payload));
    for (const auto& rec : batch.records()) {
      ASSERT_TRUE(rec.has_watermark()) << rec.ShortDebugString();
      ++watermarks;
    }
  }
  EXPECT_GE(watermarks, 1u);
  EXPECT_LE(watermarks, 3u);
}

// A producer thread publishing seq-checked ticks on `topics` until told to stop.
class Producer {
 public:
  Producer(IntegrationTest* fixture, std::uint16_t port, std::vector<std::string> topics)
      : topics_(std::move(topics)) {
    thread_ = std::thread([this, port] {
      RawClient c;
      if (!c.Connect(port) || !c.Authenticate(ServerProcess::kUser, ServerProcess::kPass)) {
        failed_ = true;
        return;
      }
      std::uint32_t rid = 0;
      while (!stop_) {
        std::vector<v1::Tick> frame;
        for (const auto& t : topics_) frame.push_back(MakeTick(t, 1.0 + rid, 1.0));
        if (!c.PublishAcked(++rid, frame)) {
          failed_ = true;
          return;
        }
        sent_ += frame.size() / topics_.size();
        std::this_thread::sleep_for(milliseconds(1));
      }
    });
    (void)fixture;
  }
  // Stops and returns how many ticks each topic got (all applied: every frame was acked).
  std::uint64_t Stop() {
    stop_ = true;
    thread_.join();
    return sent_;
  }
  bool failed() const { return failed_; }
  // Frames acked so far (each carries one tick per topic).
  std::uint64_t sent() const { return sent_; }

 private:
  std::vector<std::string> topics_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> sent_{0};
};

// SUBSCRIBE with backfill or since_ms, then SUBSCRIBE_OK.
::testing::AssertionResult SubscribeWithHistory(RawClient& c, std::uint32_t request_id,
                                                v1::Mode mode,
                                                const std::vector<std::string>& topics,
                                                std::uint32_t backfill, std::int64_t since_ms) {
  v1::Subscribe s;
  s.set_request_id(request_id);
  s.set_mode(mode);
  for (const auto& t : topics) s.add_topics(t);
  s.set_backfill(backfill);
  s.set_since_ms(since_ms);
  if (!c.SendFrame(FrameType::kSubscribe, s)) return ::testing::AssertionFailure() << "send";
  v1::SubscribeOk ok;
  return c.ReadMessage(FrameType::kSubscribeOk, &ok);
}

class HistoryTest : public IntegrationTest {};

TEST_F(HistoryTest, SinceAndBackfillUnderConcurrentPublishingHaveNoGapOrDuplicate) {
  ASSERT_TRUE(Start({{"WORKERS", "2"}, {"HISTORY_TICKS", "1000000"}}));
  const std::vector<std::string> topics = {Topic("a"), Topic("b"), Topic("c")};
  const std::int64_t start_ms = NowMs() - 1;
  Producer producer(this, server_->port(), topics);
  std::this_thread::sleep_for(milliseconds(300));
  // Joining mid-stream: everything since the start, and the 50 newest of each topic.
  RawClient since, backfill;
  ASSERT_TRUE(ConnectAuthed(since));
  ASSERT_TRUE(ConnectAuthed(backfill));
  ASSERT_TRUE(SubscribeWithHistory(since, 1, v1::MODE_TICK, {"*"}, 0, start_ms));
  // Every tick acked before the SUBSCRIBE is in the history snapshot. The snapshots are taken
  // before the first history record is sent, and at most one frame is unacked at any time, so
  // each topic's newest seq at its snapshot lies in [acked_before, acked_after + 1].
  const std::uint64_t acked_before = producer.sent();
  ASSERT_TRUE(SubscribeWithHistory(backfill, 2, v1::MODE_TICK, topics, 50, 0));
  std::map<RawClient*, Received> received;
  ASSERT_TRUE(ReadUntil(backfill, received[&backfill], milliseconds(3000),
                        [&] { return !received[&backfill].ticks.empty(); }));
  const std::uint64_t acked_after = producer.sent();
  ASSERT_GT(acked_before, 50u);
  std::this_thread::sleep_for(milliseconds(300));
  const std::uint64_t per_topic = producer.Stop();
  ASSERT_FALSE(producer.failed());
  ASSERT_GT(per_topic, 100u);

  for (RawClient* c : {&since, &backfill}) {
    Received& got = received[c];
    std::map<std::string, std::vector<v1::Tick>> by_topic;
    auto complete = [&] {
      for (const auto& t : got.ticks) by_topic[t.topic()].push_back(t);
      got.ticks.clear();
      for (const auto& topic : topics) {
        if (by_topic[topic].empty() || by_topic[topic].back().seq() < per_topic) return false;
      }
      return true;
    };
    ASSERT_TRUE(ReadUntil(*c, got, milliseconds(5000), complete));
    ASSERT_TRUE(Drain(*c, got, milliseconds(200)));
    EXPECT_TRUE(got.ticks.empty()) << "records after the last published tick";
    for (const auto& topic : topics) {
      const auto& list = by_topic[topic];
      const std::uint64_t first = c == &since ? 1 : list.front().seq();
      EXPECT_TRUE(CheckSequence(list, first)) << topic;  // no gap, no duplicate
      EXPECT_EQ(list.back().seq(), per_topic);
      if (c == &backfill) {
        // Exactly the 50 newest at the snapshot: the first is the snapshot's newest seq - 49.
        EXPECT_GE(first + 49, acked_before) << topic;
        EXPECT_LE(first + 49, acked_after + 1) << topic;
      }
    }
  }
}

TEST_F(HistoryTest, BackfillSendsTheNewestThenLive) {
  ASSERT_TRUE(Start());
  const std::string topic = Topic();
  RawClient producer, sub;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(sub));
  std::vector<v1::Tick> ten;
  for (int i = 1; i <= 10; ++i) ten.push_back(MakeTick(topic, i, 1));
  ASSERT_TRUE(producer.PublishAcked(1, ten));
  ASSERT_TRUE(SubscribeWithHistory(sub, 5, v1::MODE_TICK, {topic}, 4, 0));
  Received got;
  ASSERT_TRUE(ReadUntil(sub, got, milliseconds(3000), [&] { return got.ticks.size() >= 4; }));
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(topic, 11, 1), MakeTick(topic, 12, 1)}));
  ASSERT_TRUE(ReadUntil(sub, got, milliseconds(3000), [&] { return got.ticks.size() >= 6; }));
  ASSERT_TRUE(Drain(sub, got, milliseconds(200)));
  EXPECT_TRUE(CheckSequence(got.ticks, 7));
  EXPECT_EQ(got.ticks.size(), 6u);
}

// MAX_BACKFILL_RECORDS is split over the workers: each owner answers with at most
// ceil(MAX_BACKFILL_RECORDS / WORKERS) records, so one topic gets 4 of 10 with three workers.
TEST_F(HistoryTest, BackfillLimitIsSplitOverTheWorkers) {
  ASSERT_TRUE(Start({{"WORKERS", "3"}, {"MAX_BACKFILL_RECORDS", "10"}}));
  const std::string topic = Topic();
  RawClient producer, sub;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(sub));
  std::vector<v1::Tick> twenty;
  for (int i = 1; i <= 20; ++i) twenty.push_back(MakeTick(topic, i, 1));
  ASSERT_TRUE(producer.PublishAcked(1, twenty));
  ASSERT_TRUE(SubscribeWithHistory(sub, 3, v1::MODE_TICK, {topic}, 20, 0));
  Received got;
  ASSERT_TRUE(ReadUntil(sub, got, milliseconds(3000), [&] { return got.ticks.size() >= 4; }));
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(topic, 21, 1)}));
  ASSERT_TRUE(ReadUntil(sub, got, milliseconds(3000), [&] { return got.ticks.size() >= 5; }));
  ASSERT_TRUE(Drain(sub, got, milliseconds(300)));
  EXPECT_EQ(got.ticks.size(), 5u);
  EXPECT_TRUE(CheckSequence(got.ticks, 17));  // the 4 newest, then live with no gap
  EXPECT_TRUE(WaitUntil(
      [&] {
        const HttpResult r = HttpGet(server_->metrics_port(), "/metrics");
        return MetricValue(ParseMetrics(r.body), "backfills_truncated_total") == 1;
      },
      milliseconds(3000), milliseconds(50)));
}

TEST_F(HistoryTest, TopicAlreadyLiveOnTheConnectionGetsNoHistoryAndNoDuplicates) {
  ASSERT_TRUE(Start());
  const std::string topic = Topic();
  RawClient producer, sub;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(topic, 1, 1), MakeTick(topic, 2, 1)}));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {"*"}));
  ASSERT_TRUE(SubscribeWithHistory(sub, 2, v1::MODE_TICK, {topic}, 10, 0));
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(topic, 3, 1)}));
  Received got;
  ASSERT_TRUE(ReadUntil(sub, got, milliseconds(3000), [&] { return !got.ticks.empty(); }));
  ASSERT_TRUE(Drain(sub, got, milliseconds(300)));
  ASSERT_EQ(got.ticks.size(), 1u);
  EXPECT_EQ(got.ticks[0].seq(), 3u);
}

TEST_F(HistoryTest, SecondBarsSinceReplayClosedBarsThenLive) {
  ASSERT_TRUE(Start({{"BAR_CLOSE_DELAY_MS", "50"}}));
  const std::string topic = Topic();
  const std::int64_t since_ms = NowMs() / 1000 * 1000;
  RawClient live;
  ASSERT_TRUE(ConnectAuthed(live));
  ASSERT_TRUE(live.Subscribe(1, v1::MODE_SECOND, {topic}));
  Producer producer(this, server_->port(), {topic});
  std::this_thread::sleep_for(milliseconds(2300));  // at least two closed bars
  RawClient late;
  ASSERT_TRUE(ConnectAuthed(late));
  ASSERT_TRUE(SubscribeWithHistory(late, 9, v1::MODE_SECOND, {"*"}, 0, since_ms));
  std::this_thread::sleep_for(milliseconds(1200));
  producer.Stop();
  ASSERT_FALSE(producer.failed());
  Received a, b;
  ASSERT_TRUE(ReadUntil(live, a, milliseconds(3000), [&] { return a.bars.size() >= 3; }));
  ASSERT_TRUE(Drain(live, a, milliseconds(1500)));
  ASSERT_TRUE(ReadUntil(late, b, milliseconds(3000), [&] { return b.bars.size() >= 3; }));
  ASSERT_TRUE(Drain(late, b, milliseconds(300)));
  // The late joiner has exactly what the live subscriber saw: history, then live, no gap.
  ASSERT_EQ(a.bars.size(), b.bars.size());
  for (std::size_t i = 0; i < a.bars.size(); ++i) {
    EXPECT_EQ(a.bars[i].SerializeAsString(), b.bars[i].SerializeAsString()) << i;
  }
}

}  // namespace
}  // namespace tickwire::testing
