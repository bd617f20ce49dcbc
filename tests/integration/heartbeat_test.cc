// PROTOCOL S2: heartbeat echo, HEARTBEAT_TIMEOUT, and which frames reset the timer.
#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

// Short heartbeats so the timeout is observable; the sweep is coarse, so a timeout is allowed
// to arrive up to timeout + 50% + 200 ms after the last heartbeat.
constexpr int kIntervalMs = 200;
constexpr int kTimeoutMs = 600;
constexpr int kLatestMs = kTimeoutMs * 3 / 2 + 200;
// A little early is tolerated for clock granularity; much earlier is a bug.
constexpr int kEarliestMs = kTimeoutMs - 50;

class HeartbeatTest : public IntegrationTest {
 protected:
  ::testing::AssertionResult StartShort() {
    return Start({{"HEARTBEAT_INTERVAL", std::to_string(kIntervalMs) + "ms"},
                  {"HEARTBEAT_TIMEOUT", std::to_string(kTimeoutMs) + "ms"}});
  }
};

long long MsSince(steady_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - t).count();
}

TEST_F(HeartbeatTest, EchoesTsMs) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  EXPECT_TRUE(c.HeartbeatRoundTrip(1));
  EXPECT_TRUE(c.HeartbeatRoundTrip(NowMs()));
  EXPECT_TRUE(c.HeartbeatRoundTrip(-5));
  EXPECT_TRUE(c.HeartbeatRoundTrip(INT64_MAX));
}

TEST_F(HeartbeatTest, AuthOkAnnouncesConfiguredHeartbeat) {
  ASSERT_TRUE(StartShort());
  RawClient c;
  v1::AuthOk ok;
  ASSERT_TRUE(ConnectAuthed(c, &ok));
  EXPECT_EQ(ok.heartbeat_interval_ms(), static_cast<unsigned>(kIntervalMs));
  EXPECT_EQ(ok.heartbeat_timeout_ms(), static_cast<unsigned>(kTimeoutMs));
}

TEST_F(HeartbeatTest, SilenceAfterAuthOkIsFatalHeartbeatTimeout) {
  ASSERT_TRUE(StartShort());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  const auto t0 = steady_clock::now();
  ASSERT_TRUE(c.ExpectFatal(v1::HEARTBEAT_TIMEOUT, nullptr, milliseconds(3000)));
  const auto elapsed = MsSince(t0);
  EXPECT_GE(elapsed, kEarliestMs);
  EXPECT_LE(elapsed, kLatestMs);
}

TEST_F(HeartbeatTest, SilenceAfterLastHeartbeatIsFatalHeartbeatTimeout) {
  ASSERT_TRUE(StartShort());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.HeartbeatRoundTrip(i));
    ASSERT_TRUE(c.ExpectNothing(milliseconds(kIntervalMs / 2)));
  }
  ASSERT_TRUE(c.HeartbeatRoundTrip(100));
  const auto t0 = steady_clock::now();
  ASSERT_TRUE(c.ExpectFatal(v1::HEARTBEAT_TIMEOUT, nullptr, milliseconds(3000)));
  const auto elapsed = MsSince(t0);
  EXPECT_GE(elapsed, kEarliestMs);
  EXPECT_LE(elapsed, kLatestMs);
}

TEST_F(HeartbeatTest, RegularHeartbeatsKeepTheConnectionOpen) {
  ASSERT_TRUE(StartShort());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  const auto t0 = steady_clock::now();
  std::int64_t ts = 0;
  // Three timeouts' worth of time, heartbeating at the announced interval.
  while (MsSince(t0) < 3 * kTimeoutMs) {
    ASSERT_TRUE(c.HeartbeatRoundTrip(++ts)) << "after " << MsSince(t0) << " ms";
    ASSERT_TRUE(c.ExpectNothing(milliseconds(kIntervalMs)));
  }
  EXPECT_TRUE(c.Subscribe(1, v1::MODE_TICK, {Topic()}));
}

// Only HEARTBEAT counts: a busy connection that never heartbeats still times out.
TEST_F(HeartbeatTest, OtherFramesDoNotResetTheTimer) {
  ASSERT_TRUE(StartShort());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  const auto t0 = steady_clock::now();
  std::uint32_t request_id = 0;
  v1::Error error;
  bool got_error = false;
  while (!got_error && MsSince(t0) < 3000) {
    ++request_id;
    v1::Publish pub;
    pub.set_request_id(request_id);
    pub.set_ack(true);
    *pub.add_ticks() = MakeTick(Topic(), 1, 1);
    if (request_id % 2 == 0) {
      v1::Subscribe sub;
      sub.set_request_id(request_id);
      sub.set_mode(v1::MODE_TICK);
      sub.add_topics(Topic("other"));
      if (!c.SendFrame(FrameType::kSubscribe, sub)) break;
    } else if (!c.SendFrame(FrameType::kPublish, pub)) {
      break;
    }
    // Read the reply, then idle for a while; an ERROR may arrive at any point.
    for (int reads = 0; reads < 2 && !got_error; ++reads) {
      ReadResult r = c.ReadFrame(milliseconds(reads == 0 ? 1000 : 80));
      if (r.status == ReadStatus::kTimeout) break;
      ASSERT_TRUE(r.ok()) << ReadStatusName(r.status) << " " << r.detail;
      if (r.frame.frame_type() == FrameType::kError) {
        ASSERT_TRUE(error.ParseFromString(r.frame.payload));
        got_error = true;
      } else {
        ASSERT_TRUE(r.frame.frame_type() == FrameType::kPublishAck ||
                    r.frame.frame_type() == FrameType::kSubscribeOk)
            << DescribeFrame(r.frame);
      }
    }
  }
  if (!got_error) {
    // A send failed because the server had already closed: its ERROR is still readable.
    ReadResult r = c.ReadFrame(milliseconds(1000));
    if (r.ok() && r.frame.frame_type() == FrameType::kError) {
      got_error = error.ParseFromString(r.frame.payload);
    }
  }
  const auto elapsed = MsSince(t0);
  ASSERT_TRUE(got_error) << "no HEARTBEAT_TIMEOUT after " << elapsed << " ms of other frames";
  EXPECT_EQ(error.code(), v1::HEARTBEAT_TIMEOUT) << error.message();
  EXPECT_TRUE(error.fatal());
  EXPECT_GE(elapsed, kEarliestMs);
  EXPECT_LE(elapsed, kLatestMs);
  EXPECT_TRUE(c.ExpectClosed());
}

// The heartbeat timer starts at AUTH_OK; before it, AUTH_TIMEOUT governs.
TEST_F(HeartbeatTest, HeartbeatTimeoutDoesNotApplyBeforeAuth) {
  ASSERT_TRUE(Start({{"HEARTBEAT_INTERVAL", "100ms"},
                     {"HEARTBEAT_TIMEOUT", "200ms"},
                     {"AUTH_TIMEOUT_MS", "1000"}}));
  RawClient c;
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.ExpectFatal(v1::AUTH_TIMEOUT, nullptr, milliseconds(3000)));
}

}  // namespace
}  // namespace tickwire::testing
