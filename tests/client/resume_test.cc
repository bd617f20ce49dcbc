// The pure parts of reconnect-and-resume: backoff, since_ms, and the duplicate filter.

#include "client/resume.h"

#include <gtest/gtest.h>

namespace tickwire::client {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, GrowsByMultiplierUpToTheCap) {
  ReconnectOptions o;
  o.initial_backoff = milliseconds(100);
  o.max_backoff = milliseconds(1000);
  o.multiplier = 2;
  o.jitter = 0;
  EXPECT_EQ(BackoffDelay(o, 1, 0.9), milliseconds(100));
  EXPECT_EQ(BackoffDelay(o, 2, 0.9), milliseconds(200));
  EXPECT_EQ(BackoffDelay(o, 3, 0.9), milliseconds(400));
  EXPECT_EQ(BackoffDelay(o, 4, 0.9), milliseconds(800));
  EXPECT_EQ(BackoffDelay(o, 5, 0.9), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(o, 1000000, 0.9), milliseconds(1000));  // no overflow on long outages
}

TEST(BackoffTest, JitterTakesUpToItsShareOff) {
  ReconnectOptions o;
  o.initial_backoff = milliseconds(1000);
  o.max_backoff = milliseconds(1000);
  o.jitter = 0.5;
  EXPECT_EQ(BackoffDelay(o, 1, 0.0), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(o, 1, 0.5), milliseconds(750));
  EXPECT_EQ(BackoffDelay(o, 1, 0.999), milliseconds(500));
  o.jitter = 7;  // clamped to 1: never negative
  EXPECT_GE(BackoffDelay(o, 1, 0.999).count(), 0);
}

TEST(BackoffTest, RetryAfterIsNeverShortened) {
  ReconnectOptions o;
  o.jitter = 0.5;
  EXPECT_EQ(RetryAfterDelay(o, 1000, 0.0), milliseconds(1000));
  EXPECT_EQ(RetryAfterDelay(o, 1000, 0.5), milliseconds(1250));
  EXPECT_LE(RetryAfterDelay(o, 1000, 0.999), milliseconds(1500));
}

TEST(ResumeSinceTest, TickPointIsTheFlooredMillisecond) {
  EXPECT_EQ(TickPointMs(1'700'000'000'123'999'999), 1'700'000'000'123);
  EXPECT_EQ(TickPointMs(1'700'000'000'123'000'000), 1'700'000'000'123);
  EXPECT_EQ(TickPointMs(0), 0);
  EXPECT_EQ(TickPointMs(-1), -1);
}

TEST(ResumeSinceTest, StartsLookbackBeforeTheNewestRecord) {
  EXPECT_EQ(ResumeSinceMs(0, 5'000, 10'000, milliseconds(1000)), 9'000);
  EXPECT_EQ(ResumeSinceMs(0, 5'000, 10'000, milliseconds(0)), 10'000);
}

TEST(ResumeSinceTest, NothingReceivedResumesFromTheSubscriptionsStart) {
  EXPECT_EQ(ResumeSinceMs(0, 5'000, std::nullopt, milliseconds(1000)), 4'000);
  // Old records (a backfill) do not pull the resume back before the start.
  EXPECT_EQ(ResumeSinceMs(0, 5'000, 100, milliseconds(1000)), 4'000);
}

TEST(ResumeSinceTest, NeverBeforeTheCallersSinceAndNeverZero) {
  EXPECT_EQ(ResumeSinceMs(4'800, 4'800, 5'000, milliseconds(1000)), 4'800);
  EXPECT_EQ(ResumeSinceMs(0, 0, std::nullopt, milliseconds(1000)), 1);
}

TEST(DeliveredStateTest, DropsTicksAtOrBelowTheLastSeqPerTopic) {
  DeliveredState d;
  EXPECT_TRUE(d.AcceptTick("A", 5, 4, 1000));
  EXPECT_TRUE(d.AcceptTick("A", 6, 5, 2000));
  EXPECT_TRUE(d.AcceptTick("B", 1, 0, 1500));
  EXPECT_FALSE(d.AcceptTick("A", 5, 4, 1000));
  EXPECT_FALSE(d.AcceptTick("A", 6, 5, 2000));
  EXPECT_FALSE(d.AcceptTick("B", 1, 0, 1500));  // a re-sent first tick is still a duplicate
  EXPECT_TRUE(d.AcceptTick("A", 7, 6, 3000));
  EXPECT_EQ(d.duplicates(), 3u);
  EXPECT_EQ(d.tick_gaps(), 0u);
}

TEST(DeliveredStateTest, CountsGapsWhenPrevSeqIsNotTheLastSeen) {
  DeliveredState d;
  EXPECT_TRUE(d.AcceptTick("A", 1, 0, 1));
  EXPECT_TRUE(d.AcceptTick("A", 4, 3, 2));  // 2 and 3 never arrived
  EXPECT_TRUE(d.AcceptTick("A", 9, 5, 3));  // cluster numbering: skips are fine, prev_seq is not
  EXPECT_EQ(d.tick_gaps(), 2u);
}

TEST(DeliveredStateTest, FreshNumberingAfterAServerRestartIsAccepted) {
  DeliveredState d;
  EXPECT_TRUE(d.AcceptTick("A", 1, 0, 1'000'000'000));
  EXPECT_TRUE(d.AcceptTick("A", 2, 1, 2'000'000'000));
  EXPECT_TRUE(d.AcceptTick("A", 1, 0, 3'000'000'000));  // newer, numbered from 1 again
  EXPECT_TRUE(d.AcceptTick("A", 2, 1, 4'000'000'000));
  EXPECT_FALSE(d.AcceptTick("A", 2, 1, 4'000'000'000));
  EXPECT_EQ(d.renumbered(), 1u);
  EXPECT_EQ(d.duplicates(), 1u);
}

// PROTOCOL S7a: a topic evicted and created again numbers from 1 under a new topic_epoch; the
// new incarnation's ticks are not duplicates of the old one's, however their seqs compare.
TEST(DeliveredStateTest, NewTopicEpochStartsTheNumberingOver) {
  DeliveredState d;
  EXPECT_TRUE(d.AcceptTick("A", 500, 499, 1000, 7));
  EXPECT_FALSE(d.AcceptTick("A", 500, 499, 1000, 7));  // a duplicate within the epoch
  EXPECT_TRUE(d.AcceptTick("A", 3, 2, 900, 71));       // older ts, lower seq: still new
  EXPECT_EQ(d.topic_epoch_changes(), 1u);
  EXPECT_EQ(d.tick_gaps(), 0u);  // a restart is not a gap within one numbering
  EXPECT_FALSE(d.AcceptTick("A", 3, 2, 900, 71));
  EXPECT_TRUE(d.AcceptTick("A", 5, 4, 950, 71));
  EXPECT_EQ(d.tick_gaps(), 1u);  // seq 4 of the new epoch was missed
  EXPECT_EQ(d.duplicates(), 2u);
}

TEST(DeliveredStateTest, ResetTickNumberingForgetsSeqsButNotBars) {
  DeliveredState d;
  EXPECT_TRUE(d.AcceptTick("A", 10, 9, 5000, 1));
  EXPECT_TRUE(d.AcceptBar(Mode::kSecond, "A", 5000));
  d.ResetTickNumbering();  // a reconnect found a new stream epoch
  EXPECT_TRUE(d.AcceptTick("A", 2, 1, 4000, 65));
  EXPECT_EQ(d.topic_epoch_changes(), 0u);  // reported as a stream epoch change instead
  EXPECT_FALSE(d.AcceptBar(Mode::kSecond, "A", 5000));
}

TEST(DeliveredStateTest, DropsBarsAtOrBelowTheLastStartPerTopicAndInterval) {
  DeliveredState d;
  EXPECT_TRUE(d.AcceptBar(Mode::kSecond, "A", 1000));
  EXPECT_TRUE(d.AcceptBar(Mode::kSecond, "A", 2000));
  EXPECT_TRUE(d.AcceptBar(Mode::kSecond, "B", 1000));
  EXPECT_TRUE(d.AcceptBar(Mode::kMinute, "A", 0));  // minute bars are tracked on their own
  EXPECT_FALSE(d.AcceptBar(Mode::kSecond, "A", 2000));
  EXPECT_FALSE(d.AcceptBar(Mode::kSecond, "A", 1000));
  EXPECT_FALSE(d.AcceptBar(Mode::kMinute, "A", 0));
  EXPECT_TRUE(d.AcceptBar(Mode::kSecond, "A", 3000));
  EXPECT_EQ(d.duplicates(), 3u);
}

TEST(DeliveredStateTest, NewestPointPerSubscription) {
  DeliveredState d;
  EXPECT_FALSE(d.NewestPoint(Mode::kTick, true, {}).has_value());
  d.AcceptTick("A", 1, 0, 5'000'000'000);
  d.AcceptTick("B", 1, 0, 7'000'999'999);
  d.AcceptTick("A", 2, 1, 4'000'000'000);  // stamped earlier by its producer: newest stays 5 s
  d.AcceptBar(Mode::kSecond, "A", 60'000);
  d.AcceptBar(Mode::kSecond, "C", 61'000);
  EXPECT_EQ(d.NewestPoint(Mode::kTick, false, {"A"}), 5'000);
  EXPECT_EQ(d.NewestPoint(Mode::kTick, false, {"A", "B", "Z"}), 7'000);
  EXPECT_EQ(d.NewestPoint(Mode::kTick, true, {}), 7'000);
  EXPECT_FALSE(d.NewestPoint(Mode::kTick, false, {"Z"}).has_value());
  EXPECT_EQ(d.NewestPoint(Mode::kSecond, false, {"A"}), 60'000);
  EXPECT_EQ(d.NewestPoint(Mode::kSecond, true, {}), 61'000);
  EXPECT_FALSE(d.NewestPoint(Mode::kMinute, true, {}).has_value());
  // A prefix subscription resumes from the newest of the topics under its prefix.
  d.AcceptTick("FX.A", 1, 0, 9'000'000'000);
  d.AcceptTick("FXX.B", 1, 0, 11'000'000'000);
  d.AcceptBar(Mode::kSecond, "FX.A", 62'000);
  EXPECT_EQ(d.NewestPoint(Mode::kTick, false, {"FX.*"}), 9'000);
  EXPECT_EQ(d.NewestPoint(Mode::kTick, false, {"FX.*", "B"}), 9'000);
  EXPECT_EQ(d.NewestPoint(Mode::kSecond, false, {"FX.*"}), 62'000);
  EXPECT_FALSE(d.NewestPoint(Mode::kTick, false, {"EQ.*"}).has_value());
}

}  // namespace
}  // namespace tickwire::client
