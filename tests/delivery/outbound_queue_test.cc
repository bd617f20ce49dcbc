#include "delivery/outbound_queue.h"

#include "protocol/frame_pool.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace tickwire::delivery {
namespace {

constexpr std::uint64_t kOverhead = OutboundQueue::kFrameOverhead;

// A frame of `n` bytes in a buffer of exactly that capacity.
std::string Frame(std::size_t n, char c = 'x') {
  std::string s;
  s.reserve(n);
  s.assign(n, c);
  return s;
}

TEST(OutboundQueueTest, EnforcesTheLimitAndTracksInFlightFrames) {
  const std::uint64_t a = Frame(600).capacity() + kOverhead;
  const std::uint64_t c = Frame(400).capacity() + kOverhead;
  OutboundQueue q(a + c);
  EXPECT_TRUE(q.Push(Frame(600, 'a')));
  EXPECT_FALSE(q.Push(Frame(401, 'b')));  // one byte over
  EXPECT_TRUE(q.Push(Frame(400, 'c')));
  EXPECT_EQ(q.pending_bytes(), 1000u);
  EXPECT_EQ(q.charged_bytes(), a + c);
  std::size_t seen = 0;
  EXPECT_EQ(q.BeginWrite(1, [&](std::string_view f) { seen += f.size(); }), 1u);
  EXPECT_EQ(seen, 600u);
  EXPECT_TRUE(q.write_in_flight());
  EXPECT_TRUE(q.has_unsent());
  q.CompleteWrite();
  EXPECT_EQ(q.pending_bytes(), 400u);
  EXPECT_EQ(q.charged_bytes(), c);
  EXPECT_FALSE(q.write_in_flight());
}

// Tiny frames cost their queue entry: 8-byte heartbeat echoes cannot hide 16 times their size.
TEST(OutboundQueueTest, EveryFrameIsChargedItsBookkeepingAndItsWholeBuffer) {
  OutboundQueue q(10 * kOverhead);
  std::size_t queued = 0;
  while (q.Push(std::string(8, 'h'))) ++queued;
  EXPECT_EQ(queued, 10u);
  EXPECT_EQ(q.pending_bytes(), 80u);
  EXPECT_EQ(q.charged_bytes(), 10 * kOverhead);
  // A short frame in a large reused buffer is copied out of it (the buffer goes back to the
  // frame pool) rather than charged 64 KiB or held.
  OutboundQueue big(1 << 20);
  std::string roomy;
  roomy.reserve(64 * 1024);
  roomy.assign(100, 'd');
  EXPECT_TRUE(big.Push(std::move(roomy)));
  EXPECT_EQ(big.pending_bytes(), 100u);
  EXPECT_LE(big.charged_bytes(), kOverhead + 200);
  EXPECT_GE(protocol::TakeFrameBuffer().capacity(), 64u * 1024);
  // A frame that fills most of its buffer keeps it, and is charged all of it.
  std::string full;
  full.reserve(8192);
  full.assign(6000, 'f');
  const std::uint64_t capacity = full.capacity();
  EXPECT_TRUE(big.Push(std::move(full)));
  EXPECT_GE(big.charged_bytes(), capacity + kOverhead);
}

TEST(OutboundQueueTest, OneFrameAlwaysFitsIntoAnEmptyQueue) {
  OutboundQueue q(100);  // smaller than any frame's charge
  EXPECT_TRUE(q.Push(std::string(90, 'a')));
  EXPECT_FALSE(q.Push("b"));
  q.BeginWrite(1, [](std::string_view) {});
  q.CompleteWrite();
  EXPECT_TRUE(q.Push("c"));
}

TEST(OutboundQueueTest, OneUnsentCoalescedFrameCarriesTheNewestContents) {
  OutboundQueue q(1 << 20);
  EXPECT_TRUE(q.PushCoalesced("echo-1"));
  EXPECT_TRUE(q.Push("data"));
  EXPECT_TRUE(q.PushCoalesced("echo-2"));  // replaces echo-1 in its place
  EXPECT_EQ(q.frame_count(), 2u);
  EXPECT_EQ(q.charged_bytes(), 2 * kOverhead);
  std::vector<std::string> parts;
  q.BeginWrite(8, [&](std::string_view f) { parts.emplace_back(f); });
  EXPECT_EQ(parts, (std::vector<std::string>{"echo-2", "data"}));
  // In flight: not replaced; the next one is queued behind it.
  EXPECT_TRUE(q.PushCoalesced("echo-3"));
  EXPECT_TRUE(q.PushCoalesced("echo-4"));
  EXPECT_EQ(q.frame_count(), 3u);
  q.CompleteWrite();
  parts.clear();
  q.BeginWrite(8, [&](std::string_view f) { parts.emplace_back(f); });
  EXPECT_EQ(parts, (std::vector<std::string>{"echo-4"}));
  q.CompleteWrite();
  EXPECT_EQ(q.charged_bytes(), 0u);
  EXPECT_EQ(q.pending_bytes(), 0u);
  // Over the limit, a coalesced frame is refused like any other.
  OutboundQueue full(kOverhead);
  EXPECT_TRUE(full.Push("x"));
  EXPECT_FALSE(full.PushCoalesced("echo"));
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
  // The first frame from a block is charged the whole block (it keeps it alive), the next
  // ones from the same block their own part.
  OutboundQueue q(2 * kOverhead + 20 + 10);
  auto block = std::make_shared<engine::RecordBlock>();
  block->bytes = "0123456789abcdefghij";
  std::weak_ptr<const engine::RecordBlock> weak = block;
  const std::string_view tail = std::string_view(block->bytes).substr(5, 10);
  EXPECT_TRUE(q.PushShared("HEAD", block, tail, {}));
  EXPECT_EQ(q.charged_bytes(), kOverhead + 20);
  EXPECT_FALSE(q.PushShared(std::string(90, 'h'), block, tail, {}));  // a 90-byte head
  EXPECT_TRUE(q.PushShared("HEAD", block, tail, {}));
  EXPECT_EQ(q.charged_bytes(), 2 * kOverhead + 20 + 10);
  block.reset();
  EXPECT_FALSE(weak.expired());  // the queue holds it
  EXPECT_EQ(q.pending_bytes(), 28u);
  std::vector<std::string> parts;
  EXPECT_EQ(q.BeginWrite(8, [&](std::string_view f) { parts.emplace_back(f); }), 2u);
  EXPECT_EQ(parts, (std::vector<std::string>{"HEAD", "56789abcde", "HEAD", "56789abcde"}));
  q.CompleteWrite();
  EXPECT_EQ(q.pending_bytes(), 0u);
  EXPECT_EQ(q.charged_bytes(), 0u);
  EXPECT_TRUE(weak.expired());  // released once written
}

}  // namespace
}  // namespace tickwire::delivery
