#include "delivery/outbound_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace tickwire::delivery {
namespace {

TEST(OutboundQueueTest, EnforcesTheLimitAndTracksInFlightFrames) {
  OutboundQueue q(100);
  EXPECT_TRUE(q.Push(std::string(60, 'a')));
  EXPECT_FALSE(q.Push(std::string(41, 'b')));  // 101 > 100
  EXPECT_TRUE(q.Push(std::string(40, 'c')));
  EXPECT_EQ(q.pending_bytes(), 100u);
  std::size_t seen = 0;
  EXPECT_EQ(q.BeginWrite(1, [&](std::string_view f) { seen += f.size(); }), 1u);
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
  q.BeginWrite(1, [](std::string_view) {});
  q.Push("three");
  q.DropUnsent();
  EXPECT_EQ(q.frame_count(), 1u);
  EXPECT_EQ(q.pending_bytes(), 3u);
  q.PushUnbounded(std::string(5000, 'e'));  // the final ERROR ignores the limit
  EXPECT_EQ(q.frame_count(), 2u);
}

TEST(OutboundQueueTest, SharedFramesAreWrittenAsHeadThenTailAndKeepTheBlockAlive) {
  OutboundQueue q(100);
  auto block = std::make_shared<engine::RecordBlock>();
  block->bytes = "0123456789abcdefghij";
  std::weak_ptr<const engine::RecordBlock> weak = block;
  const std::string_view tail = std::string_view(block->bytes).substr(5, 10);
  EXPECT_TRUE(q.PushShared("HEAD", block, tail, {}));
  EXPECT_FALSE(q.PushShared(std::string(90, 'h'), block, tail, {}));  // 14 + 100 > 100
  block.reset();
  EXPECT_FALSE(weak.expired());  // the queue holds it
  EXPECT_EQ(q.pending_bytes(), 14u);
  std::vector<std::string> parts;
  EXPECT_EQ(q.BeginWrite(8, [&](std::string_view f) { parts.emplace_back(f); }), 1u);
  EXPECT_EQ(parts, (std::vector<std::string>{"HEAD", "56789abcde"}));
  q.CompleteWrite();
  EXPECT_EQ(q.pending_bytes(), 0u);
  EXPECT_TRUE(weak.expired());  // released once written
}

}  // namespace
}  // namespace tickwire::delivery
