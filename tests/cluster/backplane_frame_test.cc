#include "cluster/backplane_frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "session/session.h"
#include "tickwire/v1/backplane.pb.h"

namespace tickwire::cluster {
namespace {

std::vector<std::uint8_t> Frame(std::int64_t accepted_ns, std::vector<std::int64_t> ts) {
  v1::BackplaneFrame f;
  f.set_origin("a");
  f.set_accepted_ns(accepted_ns);
  for (auto t : ts) {
    auto* tick = f.add_ticks();
    tick->set_topic("EURUSD");
    tick->set_price(1.0);
    tick->set_size(1.0);
    tick->set_ts_ns(t);
  }
  const std::string bytes = f.SerializeAsString();
  return {bytes.begin(), bytes.end()};
}

TEST(BackplaneFrameTest, SkewBoundMatchesTheSessions) {
  EXPECT_EQ(kMaxFrameFutureSkewNs, session::kMaxFutureSkewNs);
}

TEST(BackplaneFrameTest, DecodesTicksInsideTheBounds) {
  const std::int64_t now = 1'700'000'000'000'000'000;
  const auto frame = DecodeBackplaneFrame(Frame(now, {0, now, now + kMaxFrameFutureSkewNs}), 7);
  ASSERT_TRUE(frame.has_value());
  ASSERT_EQ(frame->ticks.size(), 3U);
  EXPECT_EQ(frame->ticks[2].ts_ns, now + kMaxFrameFutureSkewNs);
  EXPECT_EQ(frame->ticks[1].seq, 7 * kSeqPerMessage + 1);
}

// A fuzzer found that a frame with ts_ns near INT64_MAX overflowed the log's bucket arithmetic;
// such frames (which no instance publishes) are refused whole, the same way on every instance.
TEST(BackplaneFrameTest, RefusesTimesNoInstancePublishes) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t now = 1'700'000'000'000'000'000;
  EXPECT_FALSE(DecodeBackplaneFrame(Frame(now, {kMax}), 1).has_value());
  EXPECT_FALSE(DecodeBackplaneFrame(Frame(now, {now + kMaxFrameFutureSkewNs + 1}), 1));
  EXPECT_FALSE(DecodeBackplaneFrame(Frame(now, {now, -1}), 1).has_value());
  EXPECT_FALSE(DecodeBackplaneFrame(Frame(-1, {}), 1).has_value());
  EXPECT_FALSE(DecodeBackplaneFrame(Frame(kMaxFrameAcceptNs + 1, {}), 1).has_value());
  EXPECT_TRUE(DecodeBackplaneFrame(Frame(kMaxFrameAcceptNs, {kMaxFrameAcceptNs}), 1).has_value());
}

TEST(BackplaneFrameTest, AdmitsTheLatestAcceptedTimeWithoutOverflow) {
  auto frame = DecodeBackplaneFrame(
      Frame(kMaxFrameAcceptNs, {kMaxFrameAcceptNs + kMaxFrameFutureSkewNs}), 1);
  ASSERT_TRUE(frame.has_value());
  TopicDirectory directory(10, 0, 1'000'000'000);
  const AdmittedFrame admitted = AdmitFrame(*frame, 1, kMaxFrameAcceptNs, directory, 2);
  EXPECT_EQ(admitted.applied, 1U);
}

}  // namespace
}  // namespace tickwire::cluster
