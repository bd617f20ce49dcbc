// PROTOCOL S9: a consumer that stops reading is dropped (ERROR{SLOW_CONSUMER}, best effort,
// then close); other consumers are unaffected.
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "integration/integration_test.h"
#include "protocol/frame.h"
#include "support/sanitizers.h"

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

// A client that never reads and sends HEARTBEATs and small requests as fast as it can: the
// replies it makes the server queue are charged what they occupy (a queued frame costs far more
// than its few wire bytes), and the echoes of its heartbeats wait as one. The server's memory
// grows by about MAX_PENDING_BYTES before it drops the client as a slow consumer (counting only
// wire bytes, this flood took about 9 times the limit).
TEST_F(SlowConsumerTest, NonReaderFloodingRequestsIsDroppedNearMaxPendingBytes) {
  constexpr std::uint64_t kLimit = 2 << 20;
  ASSERT_TRUE(Start({{"WORKERS", "1"},
                     {"MAX_PENDING_BYTES", std::to_string(kLimit)},
                     {"SO_SNDBUF", "65536"},
                     {"LOG_LEVEL", "warn"}}));
  const auto rss_before = ProcStatusKb(server_->pid(), "VmRSS");
  const auto peak_before = ProcStatusKb(server_->pid(), "VmHWM");
  ASSERT_TRUE(rss_before && peak_before);
  RawClient flood;
  flood.SetReceiveBuffer(4096);
  ASSERT_TRUE(ConnectAuthed(flood));
  // 400 HEARTBEATs and 20 UNSUBSCRIBEs of unknown ids (each answered with a non-fatal ERROR)
  // per write; never a read.
  auto frame = [](FrameType type, const google::protobuf::MessageLite& m) {
    return protocol::MakeFrame(type, m.SerializeAsString());
  };
  std::string burst;
  for (int i = 0; i < 400; ++i) {
    v1::Heartbeat hb;
    hb.set_ts_ms(i + 1);
    burst += frame(FrameType::kHeartbeat, hb);
    if (i % 20 != 0) continue;
    v1::Unsubscribe u;
    u.set_request_id(static_cast<std::uint32_t>(i + 1));
    u.set_subscription_id(1'000'000 + static_cast<std::uint64_t>(i));
    burst += frame(FrameType::kUnsubscribe, u);
  }
  const auto deadline = steady_clock::now() + milliseconds(30'000);
  std::uint64_t bursts = 0;
  while (steady_clock::now() < deadline && flood.SendBytes(burst)) ++bursts;
  EXPECT_LT(steady_clock::now(), deadline) << "still not dropped after " << bursts << " bursts";
  EXPECT_TRUE(Reaches("slow_consumer_disconnects_total{reason=\"pending_bytes\"}", 1));
  const auto peak_after = ProcStatusKb(server_->pid(), "VmHWM");
  ASSERT_TRUE(peak_after);
  const std::uint64_t base = std::max(*rss_before, *peak_before);
  const std::uint64_t growth_kb = *peak_after > base ? *peak_after - base : 0;
  std::printf("[ request flood ] %llu bursts sent; peak RSS grew by %llu kB (limit %llu kB)\n",
              static_cast<unsigned long long>(bursts), static_cast<unsigned long long>(growth_kb),
              static_cast<unsigned long long>(kLimit / 1024));
  if (!kSanitized) {  // shadow memory and quarantine make RSS meaningless
    EXPECT_LT(growth_kb * 1024, 3 * kLimit) << "peak RSS grew by " << growth_kb << " kB";
  }
  // Everybody else is still served.
  RawClient other;
  ASSERT_TRUE(ConnectAuthed(other));
  EXPECT_TRUE(other.HeartbeatRoundTrip(1));
}

}  // namespace
}  // namespace tickwire::testing
