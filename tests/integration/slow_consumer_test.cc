// PROTOCOL S9: a consumer that stops reading is dropped (ERROR{SLOW_CONSUMER}, best effort,
// then close); other consumers are unaffected.
#include <string>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class SlowConsumerTest : public IntegrationTest {};

TEST_F(SlowConsumerTest, StalledReaderIsDroppedOthersUnaffected) {
  ASSERT_TRUE(Start({{"MAX_MSG_SIZE", "16384"},
                     {"MAX_PENDING_BYTES", "32768"},
                     {"SO_SNDBUF", "8192"},
                     {"WRITE_DEADLINE_MS", "1000"}}));
  const std::string topic = Topic();
  RawClient slow;
  slow.SetReceiveBuffer(4096);
  ASSERT_TRUE(ConnectAuthed(slow));
  ASSERT_TRUE(slow.Subscribe(1, v1::MODE_TICK, {topic}));
  RawClient good;
  ASSERT_TRUE(ConnectAuthed(good));
  ASSERT_TRUE(good.Subscribe(1, v1::MODE_TICK, {topic}));

  // The good consumer reads each PUBLISH's ticks before the next is sent, so its pending output
  // stays far under the limit; the stalled one never reads and falls ever further behind.
  constexpr int kFrames = 100;
  constexpr int kPerFrame = 100;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(pub));
  Delivery good_delivery;
  for (int f = 0; f < kFrames; ++f) {
    std::vector<v1::Tick> ticks;
    for (int i = 0; i < kPerFrame; ++i) ticks.push_back(MakeTick(topic, f * kPerFrame + i, 1));
    ASSERT_TRUE(pub.PublishAcked(static_cast<std::uint32_t>(f + 1), ticks));
    ASSERT_TRUE(ReadTicks(good, static_cast<std::size_t>((f + 1) * kPerFrame), milliseconds(3000),
                          good_delivery))
        << "the consumer that keeps up, after PUBLISH " << f + 1;
  }
  EXPECT_TRUE(CheckSequence(good_delivery.ticks));

  // The stalled connection now drains what reached its socket: DATA_BATCH frames in order, at
  // most one ERROR{SLOW_CONSUMER} (fatal), then the close. Never all the ticks.
  Delivery slow_delivery;
  const auto deadline = steady_clock::now() + milliseconds(5000);
  bool closed = false;
  bool saw_error = false;
  while (!closed && steady_clock::now() < deadline) {
    ReadResult r = slow.ReadFrame(Remaining(deadline));
    if (r.status == ReadStatus::kClosed) {
      closed = true;
      break;
    }
    if (r.status == ReadStatus::kError && r.detail.find("inside a frame") != std::string::npos) {
      // The write deadline closes a socket whose write is stuck: what was in flight is cut
      // off mid-frame, which is the close too.
      closed = true;
      break;
    }
    ASSERT_TRUE(r.ok()) << ReadStatusName(r.status) << " " << r.detail;
    ASSERT_FALSE(saw_error) << "a frame after the fatal ERROR: " << DescribeFrame(r.frame);
    if (r.frame.frame_type() == FrameType::kError) {
      v1::Error e;
      ASSERT_TRUE(e.ParseFromString(r.frame.payload));
      EXPECT_EQ(e.code(), v1::SLOW_CONSUMER) << DescribeFrame(r.frame);
      EXPECT_TRUE(e.fatal());
      saw_error = true;
      continue;
    }
    ASSERT_EQ(r.frame.frame_type(), FrameType::kDataBatch) << DescribeFrame(r.frame);
    auto batch = DecodeBatch(r.frame);
    ASSERT_TRUE(batch);
    EXPECT_EQ(batch->batch_seq, slow_delivery.next_batch_seq++);
    for (auto& t : batch->ticks) slow_delivery.ticks.push_back(std::move(t));
  }
  EXPECT_TRUE(closed) << "the stalled consumer was not dropped; it received "
                      << slow_delivery.ticks.size() << " ticks";
  EXPECT_LT(slow_delivery.ticks.size(), static_cast<std::size_t>(kFrames * kPerFrame));
  EXPECT_TRUE(CheckSequence(slow_delivery.ticks)) << "what did arrive must be in order";
  // The publisher is still served.
  EXPECT_TRUE(pub.HeartbeatRoundTrip(1));
}

}  // namespace
}  // namespace tickwire::testing
