#include "delivery/outbound_queue.h"

#include <gtest/gtest.h>

namespace tickwire::delivery {
namespace {

TEST(OutboundQueueTest, EnforcesTheLimitAndTracksInFlightFrames) {
  OutboundQueue q(100);
  EXPECT_TRUE(q.Push(std::string(60, 'a')));
  EXPECT_FALSE(q.Push(std::string(41, 'b')));  // 101 > 100
  EXPECT_TRUE(q.Push(std::string(40, 'c')));
  EXPECT_EQ(q.pending_bytes(), 100u);
  std::size_t seen = 0;
  EXPECT_EQ(q.BeginWrite(1, [&](const std::string& f) { seen += f.size(); }), 1u);
  EXPECT_EQ(seen, 60u);
  EXPECT_TRUE(q.write_in_flight());
  EXPECT_TRUE(q.has_unsent());
  q.CompleteWrite();
  EXPECT_EQ(q.pending_bytes(), 40u);
  EXPECT_FALSE(q.write_in_flight());
}

TEST(OutboundQueueTest, DropUnsentKeepsTheInFlightPrefix) {
  OutboundQueue q(1000);
  q.Push("one");
  q.Push("two");
  q.BeginWrite(1, [](const std::string&) {});
  q.Push("three");
  q.DropUnsent();
  EXPECT_EQ(q.frame_count(), 1u);
  EXPECT_EQ(q.pending_bytes(), 3u);
  q.PushUnbounded(std::string(5000, 'e'));  // the final ERROR ignores the limit
  EXPECT_EQ(q.frame_count(), 2u);
}

}  // namespace
}  // namespace tickwire::delivery
