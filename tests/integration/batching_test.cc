// PROTOCOL S8: DATA_BATCH window, batch_seq, and the MAX_MSG_SIZE cut.
#include <algorithm>
#include <string>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

// Scheduling slack on a shared, loaded CI machine on top of the configured window.
constexpr long long kMarginMs = 150;

class BatchingTest : public IntegrationTest {
 protected:
  // Publishes one tick at a time and measures, for each, the time from sending PUBLISH to the
  // subscriber reading the DATA_BATCH that carries it.
  void MeasureLoneTickLatency(int rounds, std::vector<long long>& latencies_ms) {
    RawClient sub;
    RawClient pub;
    ASSERT_TRUE(ConnectAuthed(sub));
    ASSERT_TRUE(ConnectAuthed(pub));
    ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}));
    Delivery d;
    for (int i = 0; i < rounds; ++i) {
      v1::Publish frame;
      frame.set_request_id(static_cast<std::uint32_t>(i + 1));
      frame.set_ack(true);
      *frame.add_ticks() = MakeTick(Topic(), i, 1);
      const auto sent = steady_clock::now();
      ASSERT_TRUE(pub.SendFrame(FrameType::kPublish, frame));
      ASSERT_TRUE(ReadTicks(sub, d.ticks.size() + 1, milliseconds(2000), d));
      latencies_ms.push_back(
          std::chrono::duration_cast<milliseconds>(d.frame_arrivals.back() - sent).count());
      ASSERT_TRUE(pub.ReadMessage<v1::PublishAck>(FrameType::kPublishAck, nullptr));
    }
    EXPECT_TRUE(CheckSequence(d.ticks));
  }
};

TEST_F(BatchingTest, BurstInOnePublishArrivesInFewFrames) {
  ASSERT_TRUE(Start({{"BATCH_WINDOW_MS", "50"}}));
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}));
  std::vector<v1::Tick> ticks;
  for (int i = 0; i < 200; ++i) ticks.push_back(MakeTick(Topic(), i, 1));
  ASSERT_TRUE(pub.PublishAcked(1, ticks));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 200, milliseconds(3000), d));
  EXPECT_LE(d.frame_payload_sizes.size(), 3u) << "200 ticks of one PUBLISH in too many frames";
  EXPECT_TRUE(CheckSequence(d.ticks));
}

TEST_F(BatchingTest, LoneTickArrivesWithinTheWindow) {
  constexpr long long kWindowMs = 50;
  ASSERT_TRUE(Start({{"BATCH_WINDOW_MS", std::to_string(kWindowMs)}}));
  std::vector<long long> latencies;
  ASSERT_NO_FATAL_FAILURE(MeasureLoneTickLatency(5, latencies));
  for (std::size_t i = 0; i < latencies.size(); ++i) {
    EXPECT_GE(latencies[i], 0);
    EXPECT_LE(latencies[i], kWindowMs + kMarginMs) << "tick " << i;
  }
}

TEST_F(BatchingTest, ZeroWindowDeliversPromptly) {
  ASSERT_TRUE(Start({{"BATCH_WINDOW_MS", "0"}}));
  std::vector<long long> latencies;
  ASSERT_NO_FATAL_FAILURE(MeasureLoneTickLatency(5, latencies));
  for (std::size_t i = 0; i < latencies.size(); ++i) {
    EXPECT_LE(latencies[i], kMarginMs) << "tick " << i;
  }
  // Without a window the best case is a loopback round trip, far under any timer tick.
  EXPECT_LE(*std::min_element(latencies.begin(), latencies.end()), 30);
}

TEST_F(BatchingTest, ZeroWindowBurstIsDeliveredCompletely) {
  ASSERT_TRUE(Start({{"BATCH_WINDOW_MS", "0"}}));
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}));
  std::vector<v1::Tick> ticks;
  for (int i = 0; i < 500; ++i) ticks.push_back(MakeTick(Topic(), i, 1));
  ASSERT_TRUE(pub.PublishAcked(1, ticks));
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, 500, milliseconds(3000), d));
  EXPECT_TRUE(CheckSequence(d.ticks));
}

// With a small MAX_MSG_SIZE a large burst is cut into frames that each stay within it, with
// consecutive batch_seq and nothing lost or reordered.
TEST_F(BatchingTest, LargeBurstIsSplitAtMaxMsgSize) {
  constexpr std::uint32_t kMax = 1024;
  ASSERT_TRUE(Start({{"MAX_MSG_SIZE", std::to_string(kMax)}, {"BATCH_WINDOW_MS", "50"}}));
  RawClient sub;
  RawClient pub;
  v1::AuthOk ok;
  ASSERT_TRUE(ConnectAuthed(sub, &ok));
  ASSERT_EQ(ok.max_msg_size(), kMax);
  ASSERT_TRUE(ConnectAuthed(pub));
  const std::string topic = Topic("a-rather-long-topic-name-to-make-records-bigger");
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {topic}));

  // Each PUBLISH must itself fit in MAX_MSG_SIZE; send them all, then collect the acks.
  constexpr int kFrames = 40;
  constexpr int kPerFrame = 5;
  std::uint32_t request_id = 0;
  for (int f = 0; f < kFrames; ++f) {
    v1::Publish frame;
    frame.set_request_id(++request_id);
    frame.set_ack(true);
    for (int i = 0; i < kPerFrame; ++i) {
      *frame.add_ticks() = MakeTick(topic, f * kPerFrame + i, 1.5, NowNs());
    }
    ASSERT_LE(frame.ByteSizeLong(), kMax);
    ASSERT_TRUE(pub.SendFrame(FrameType::kPublish, frame));
  }
  for (int f = 0; f < kFrames; ++f) {
    ASSERT_TRUE(pub.ReadMessage<v1::PublishAck>(FrameType::kPublishAck, nullptr));
  }
  Delivery d;
  ASSERT_TRUE(ReadTicks(sub, kFrames * kPerFrame, milliseconds(5000), d));
  for (std::size_t i = 0; i < d.frame_payload_sizes.size(); ++i) {
    EXPECT_LE(d.frame_payload_sizes[i], kMax) << "DATA_BATCH " << i + 1;
  }
  // kFrames * kPerFrame records of ~100 bytes cannot fit in a few 1 KiB frames.
  EXPECT_GT(d.frame_payload_sizes.size(), 10u);
  EXPECT_TRUE(CheckSequence(d.ticks));
  for (std::size_t i = 0; i < d.ticks.size(); ++i) {
    EXPECT_EQ(d.ticks[i].price(), static_cast<double>(i));
  }
}

TEST_F(BatchingTest, BatchSeqIsPerConnectionAndStartsAtOne) {
  ASSERT_TRUE(Start());
  RawClient early;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(early));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(early.Subscribe(1, v1::MODE_TICK, {Topic()}));
  Delivery d_early;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pub.PublishAcked(static_cast<std::uint32_t>(i + 1), {MakeTick(Topic(), i, 1)}));
    ASSERT_TRUE(ReadTicks(early, d_early.ticks.size() + 1, milliseconds(2000), d_early));
  }
  // A connection that subscribes later starts its own batch_seq at 1 (ReadTicks checks).
  RawClient late;
  ASSERT_TRUE(ConnectAuthed(late));
  ASSERT_TRUE(late.Subscribe(1, v1::MODE_TICK, {Topic()}));
  ASSERT_TRUE(pub.PublishAcked(10, {MakeTick(Topic(), 10, 1)}));
  Delivery d_late;
  ASSERT_TRUE(ReadTicks(late, 1, milliseconds(2000), d_late));
  EXPECT_EQ(d_late.ticks[0].seq(), 4u);
  EXPECT_EQ(d_late.ticks[0].prev_seq(), 3u);
}

}  // namespace
}  // namespace tickwire::testing
