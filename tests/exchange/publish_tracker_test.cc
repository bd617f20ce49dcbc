#include "exchange/publish_tracker.h"

#include <gtest/gtest.h>

namespace tickwire::exchange {
namespace {

TEST(PublishTrackerTest, OnlyTheLastReleaseReports) {
  auto t = MakePublishTracker({}, 0, 1, 10, true, 3);
  EXPECT_FALSE(t->Release());
  EXPECT_FALSE(t->Release());
  EXPECT_TRUE(t->Release());
}

TEST(PublishTrackerTest, KeepsTheLowestRefusedPositionAndSumsCounts) {
  auto t = MakePublishTracker({}, 0, 1, 10, false, 2);
  EXPECT_FALSE(t->HasReport());
  t->AddRefused(2, 7, "late", engine::Refusal::kTopicLimit);
  t->AddRefused(1, 3, "early", engine::Refusal::kTopicLimit);
  t->AddRefused(4, 5, "middle", engine::Refusal::kTopicLimit);
  EXPECT_EQ(t->refused, 7U);
  EXPECT_EQ(t->first.index, 3U);
  EXPECT_EQ(t->first.topic, "early");
  EXPECT_TRUE(t->HasReport());
}

class Recorder final : public PublishOrigin {
 public:
  void OnPublishApplied(std::uint32_t, std::uint32_t accepted, std::uint32_t late) override {
    log += "A" + std::to_string(accepted);
    if (late > 0) log += "L" + std::to_string(late);
  }
  void OnPublishRefused(std::uint32_t, const session::PublishRefusal& r) override {
    log += "R" + std::to_string(r.refused) + "/" + std::to_string(r.total);
  }
  void OnPublishFailed(std::uint32_t, std::string_view, std::uint32_t) override { log += "F"; }
  std::string log;
};

TEST(PublishTrackerTest, ReportSaysRefusalsBeforeTheAck) {
  auto origin = std::make_shared<Recorder>();
  auto t = MakePublishTracker(origin, 0, 1, 10, true, 1);
  t->AddRefused(3, 2, "x", engine::Refusal::kTopicLimit);
  ReportPublish(*t);
  EXPECT_EQ(origin->log, "R3/10A7");
}

TEST(PublishTrackerTest, AckCarriesTheLateTicksEveryPartAdded) {
  auto origin = std::make_shared<Recorder>();
  auto t = MakePublishTracker(origin, 0, 1, 10, true, 2);
  t->late.fetch_add(2, std::memory_order_relaxed);
  EXPECT_FALSE(t->Release());
  t->late.fetch_add(3, std::memory_order_relaxed);
  ASSERT_TRUE(t->Release());
  ReportPublish(*t);
  EXPECT_EQ(origin->log, "A10L5");
}

TEST(PublishTrackerTest, ReportToAClosedOriginIsDropped) {
  auto origin = std::make_shared<Recorder>();
  auto t = MakePublishTracker(origin, 0, 1, 10, true, 1);
  origin.reset();
  ReportPublish(*t);  // nothing to call; must not crash
  EXPECT_TRUE(t->origin.expired());
}

}  // namespace
}  // namespace tickwire::exchange
