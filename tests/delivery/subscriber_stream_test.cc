// A connection's subscriber stream without a socket: a fake host stands for the output queue,
// the batch timers and the owner shards; records come from a real Shard.
#include "delivery/subscriber_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "engine/shard.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::delivery {
namespace {

using engine::Mode;

constexpr std::int64_t kT0 = 1'700'000'000'000 * engine::kNsPerMs;

struct SentRequest {
  std::uint64_t catch_up_id;
  CatchUp::SliceRequest request;
  engine::SliceLimits limits;
  std::shared_ptr<const ReplayCancel> cancel;
};

// Queues frames up to `limit` bytes; like a connection, it stops the stream on a breach.
class FakeHost : public StreamHost {
 public:
  SubscriberStream* stream = nullptr;
  std::uint64_t limit = ~std::uint64_t{0};
  std::uint64_t queued = 0;  // bytes not yet "written"
  std::vector<std::string> frames;
  std::vector<FrameTag> tags;
  std::deque<SentRequest> requests;
  int pending_limit_exceeded = 0;
  int end_of_turn_flushes = 0;
  std::uint32_t window_ms = 0;

  bool QueueFrame(std::string frame, FrameTag tag) override {
    if (stream->stopped()) return false;
    if (queued + frame.size() > limit) {
      stream->Stop();
      return false;
    }
    queued += frame.size();
    frames.push_back(std::move(frame));
    tags.push_back(tag);
    return true;
  }
  bool QueueSharedFrame(std::string head, engine::RecordBlockPtr, std::string_view tail,
                        FrameTag tag) override {
    return QueueFrame(head + std::string(tail), tag);
  }
  void StartOutput() override {}
  std::uint64_t QueuedBytes() const override { return queued; }
  void PendingLimitExceeded() override {
    ++pending_limit_exceeded;
    stream->Stop();
  }
  std::uint32_t BatchWindowMs() const override { return window_ms; }
  void FlushAt(TimePoint) override {}
  void FlushAtEndOfTurn() override { ++end_of_turn_flushes; }
  void RequestHistorySlice(std::uint64_t catch_up_id, CatchUp::SliceRequest request,
                           engine::SliceLimits limits,
                           std::shared_ptr<const ReplayCancel> cancel) override {
    requests.push_back({catch_up_id, std::move(request), limits, std::move(cancel)});
  }
};

class SubscriberStreamTest : public ::testing::Test {
 protected:
  SubscriberStreamTest() { shard.SetWildcardInterest(Mode::kTick, 0, true); }

  void Make(StreamParams params = {}) {
    stream = std::make_unique<SubscriberStream>(host, subs, params);
    host.stream = stream.get();
  }
  // A tick of `topic` with price `price` (unique per test: it identifies the record).
  engine::RecordBlockPtr Tick(const std::string& topic, double price) {
    auto block = std::make_shared<engine::RecordBlock>();
    engine::IngestTick t{topic, price, 1, kT0 + static_cast<std::int64_t>(price), kT0};
    EXPECT_EQ(shard.Apply(std::span(&t, 1), *block).applied, 1u);
    return block;
  }
  void Live(const engine::RecordBlockPtr& block) {
    for (const auto& e : block->entries) stream->DeliverRecord(*block, e);
  }
  void Subscribe(std::uint64_t id, delivery::Subscription sub) {
    subs.emplace(id, std::move(sub));
    stream->OnSubscribed(id, subs.at(id));
  }
  void Unsubscribe(std::uint64_t id) {
    stream->OnUnsubscribed(id);
    subs.erase(id);
  }
  // The owner serves the oldest request now and the answer arrives.
  void Serve() {
    ASSERT_FALSE(host.requests.empty());
    SentRequest r = std::move(host.requests.front());
    host.requests.pop_front();
    auto slice = std::make_shared<const engine::HistorySlice>(
        shard.NextHistorySlice(r.request.request, r.request.cursor, r.limits));
    stream->OnHistorySlice(r.catch_up_id, r.request.shard, slice);
  }
  // Prices of every tick written so far, in order (the open frame flushed first).
  std::vector<double> Sent() {
    std::vector<double> out;
    for (const auto& r : SentRecords()) {
      if (r.has_tick()) out.push_back(r.tick().price());
    }
    return out;
  }
  // Every record written so far, history_end markers included.
  std::vector<v1::Record> SentRecords() {
    stream->FlushBatch(std::chrono::steady_clock::now(), true);
    std::vector<v1::Record> out;
    for (const auto& f : host.frames) {
      v1::DataBatch b;
      EXPECT_TRUE(b.ParseFromArray(f.data() + protocol::kHeaderSize,
                                   static_cast<int>(f.size() - protocol::kHeaderSize)));
      for (const auto& r : b.records()) out.push_back(r);
    }
    return out;
  }
  // Ticks as their prices and markers as "E<subscription>", in order.
  std::string Trace() {
    std::string s;
    for (const auto& r : SentRecords()) {
      if (!s.empty()) s += ' ';
      s += r.has_tick() ? std::to_string(static_cast<int>(r.tick().price()))
                        : "E" + std::to_string(r.history_end().subscription_id());
    }
    return s;
  }

  engine::Shard shard{0};
  Subscriptions subs;
  FakeHost host;
  std::unique_ptr<SubscriberStream> stream;
};

Subscription Exact(std::vector<std::string> topics, std::uint32_t backfill) {
  Subscription s{};
  s.mode = Mode::kTick;
  s.topics = std::move(topics);
  s.backfill = backfill;
  return s;
}

TEST_F(SubscriberStreamTest, ReplayAndOverlappingLiveRecordsArriveOnceInOrder) {
  Make();
  for (int p = 1; p <= 5; ++p) Tick("A", p);
  Subscribe(1, Exact({"A"}, 100));
  ASSERT_EQ(host.requests.size(), 1u);
  EXPECT_EQ(stream->catch_ups(), 1u);
  // Produced after the subscription but before the owner reads the slice: live and replayed.
  Live(Tick("A", 6));
  Live(Tick("A", 7));
  EXPECT_GT(stream->held_bytes(), 0u);
  EXPECT_TRUE(host.frames.empty());
  EXPECT_EQ(stream->open_records(), 0u);
  Serve();
  EXPECT_EQ(stream->catch_ups(), 0u);
  EXPECT_EQ(stream->held_bytes(), 0u);
  EXPECT_EQ(stream->slices_in_flight(), 0u);
  Live(Tick("A", 8));  // complete: straight through
  EXPECT_EQ(Sent(), (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}));
}

// PROTOCOL S8c: one history_end per subscription with history, after its replayed and held
// records and before what goes straight through; none for a live-only subscription.
TEST_F(SubscriberStreamTest, HistoryEndFollowsTheReplayOnce) {
  Make();
  for (int p = 1; p <= 3; ++p) Tick("A", p);
  Subscribe(1, Exact({"B"}, 0));  // live only: no marker
  Subscribe(2, Exact({"A"}, 2));
  Live(Tick("A", 4));  // held, and retained when the slice is read: the newest two are 3, 4
  Serve();
  Live(Tick("A", 5));
  EXPECT_EQ(Trace(), "3 4 E2 5");
  EXPECT_EQ(stream->history_ends(), 1u);
  const auto records = SentRecords();
  const auto& end = records[3].history_end();
  EXPECT_FALSE(end.truncated());
  EXPECT_EQ(end.lost_size(), 0);
}

// PROTOCOL S8c: ticks resume after a seq, whatever their ts_ns; a position that retention has
// passed is reported as a lost range, and one of another topic epoch as epoch_changed.
TEST_F(SubscriberStreamTest, ResumeAfterSeqReplaysByServerOrderAndReportsLosses) {
  engine::ShardOptions o;
  o.ticks = 4;  // keeps seqs 3..6 of six
  // The fixture's shard, rebuilt with the smaller ring (nothing refers to it yet).
  shard.~Shard();
  new (&shard) engine::Shard(0, o);
  shard.SetWildcardInterest(Mode::kTick, 0, true);
  Make();
  for (int p = 1; p <= 6; ++p) Tick("A", p);
  for (int p = 11; p <= 13; ++p) Tick("B", p);
  const std::uint64_t epoch_a = shard.TopicEpoch("A");
  Subscription s = Exact({"A", "B", "C"}, 0);
  s.resume = {{"A", 1, epoch_a}, {"B", 2, 999}, {"C", 7, 5}};  // C is not held: forgotten
  Subscribe(1, std::move(s));
  while (!host.requests.empty()) Serve();
  // A: 2 was dropped by retention, 3..6 follow. B: another epoch, so all of it. C: nothing.
  EXPECT_EQ(Trace(), "3 4 5 6 11 12 13 E1");
  const auto records = SentRecords();
  const auto& end = records.back().history_end();
  EXPECT_TRUE(end.truncated());
  EXPECT_TRUE(end.retention());
  EXPECT_TRUE(end.epoch_changed());
  EXPECT_FALSE(end.backfill_limit());
  std::vector<std::string> lost;
  for (const auto& l : end.lost()) {
    lost.push_back(l.topic() + " " + std::to_string(l.from_seq()) + ".." +
                   std::to_string(l.to_seq()) + " @" + std::to_string(l.topic_epoch()));
  }
  std::sort(lost.begin(), lost.end());
  EXPECT_EQ(lost, (std::vector<std::string>{"A 2..2 @" + std::to_string(epoch_a), "B 3..0 @999",
                                            "C 8..0 @5"}));
}

// A position read under another stream epoch (S7a): every position is lost, and the topics
// replay everything retained.
TEST_F(SubscriberStreamTest, ResumeFromAGoneStreamReplaysAllAndSaysWhatWasLost) {
  Make();
  for (int p = 1; p <= 3; ++p) Tick("A", p);
  Subscription s = Exact({"A"}, 0);
  s.resume = {{"A", 2, shard.TopicEpoch("A")}};
  s.resume_stale = true;
  Subscribe(1, std::move(s));
  while (!host.requests.empty()) Serve();
  EXPECT_EQ(Trace(), "1 2 3 E1");
  const auto end = SentRecords().back().history_end();
  EXPECT_TRUE(end.epoch_changed());
  ASSERT_EQ(end.lost_size(), 1);
  EXPECT_EQ(end.lost(0).from_seq(), 3u);
  EXPECT_EQ(end.lost(0).to_seq(), 0u);
}

TEST_F(SubscriberStreamTest, TopicsAnotherSubscriptionDeliversGetNoHistory) {
  Make();
  Tick("A", 1);
  Subscribe(1, Exact({"A"}, 0));
  Subscribe(2, Exact({"A"}, 10));
  EXPECT_EQ(stream->catch_ups(), 0u);
  EXPECT_TRUE(host.requests.empty());
  EXPECT_TRUE(stream->Covered("A", Mode::kTick, 2));
  EXPECT_FALSE(stream->Covered("B", Mode::kTick, 0));
  EXPECT_FALSE(stream->Covered("A", Mode::kSecond, 0));
  Live(Tick("A", 2));
  EXPECT_EQ(Sent(), (std::vector<double>{2}));
  EXPECT_EQ(Trace(), "E2 2");  // its history ended at once (another subscription delivers A)
}

TEST_F(SubscriberStreamTest, UnsubscribeMidCatchUpCancelsAndSendsNothingMore) {
  Make();
  for (int p = 1; p <= 3; ++p) Tick("A", p);
  Subscribe(1, Exact({"A"}, 10));
  ASSERT_EQ(host.requests.size(), 1u);
  const auto cancel = host.requests.front().cancel;
  Live(Tick("A", 4));
  EXPECT_GT(stream->held_bytes(), 0u);
  Unsubscribe(1);
  EXPECT_TRUE(cancel->cancelled.load());
  EXPECT_EQ(stream->catch_ups(), 0u);
  EXPECT_EQ(stream->held_bytes(), 0u);
  // The owner answers anyway (read before it saw the cancel), or skips it: nothing goes out.
  Serve();
  EXPECT_EQ(stream->slices_in_flight(), 0u);
  stream->OnHistorySlice(1, 0, nullptr);
  EXPECT_TRUE(host.requests.empty());
  EXPECT_TRUE(Sent().empty());
}

TEST_F(SubscriberStreamTest, HeldRecordsOfATopicAnotherSubscriptionDeliversGoOutOnUnsubscribe) {
  Make();
  Tick("A", 1);
  Subscribe(1, Exact({"A", "B"}, 10));
  Subscribe(2, Exact({"A"}, 0));  // A is live through it from now on
  Live(Tick("A", 2));             // held by the catch-up (it covers A)
  Unsubscribe(1);
  Live(Tick("A", 3));
  EXPECT_EQ(Sent(), (std::vector<double>{2, 3}));
}

TEST_F(SubscriberStreamTest, SliceRequestsStayWithinTheInFlightBoundAndTheThreshold) {
  StreamParams params;
  params.shards = 16;
  Make(params);
  Subscription all{};  // "*": every shard
  all.mode = Mode::kTick;
  all.wildcard = true;
  all.backfill = 10;
  Subscribe(1, all);
  EXPECT_EQ(host.requests.size(), std::size_t{SubscriberStream::kMaxSlicesInFlight});
  EXPECT_EQ(stream->slices_in_flight(), SubscriberStream::kMaxSlicesInFlight);
  for (const auto& r : host.requests) {
    EXPECT_EQ(r.limits.max_bytes, stream->SliceBytes());
    EXPECT_EQ(r.limits.max_steps, SubscriberStream::kSliceSteps);
  }
  // The output is full: answers free slots, but nothing more is asked for.
  host.queued = stream->CatchUpThreshold();
  while (!host.requests.empty()) Serve();
  EXPECT_EQ(stream->slices_in_flight(), 0u);
  EXPECT_TRUE(host.requests.empty());
  // The client reads: the replay goes on, again within the bound.
  host.queued = 0;
  stream->OnOutputWritten();
  EXPECT_EQ(host.requests.size(), std::size_t{SubscriberStream::kMaxSlicesInFlight});
  for (int guard = 0; guard < 100 && !host.requests.empty(); ++guard) {
    Serve();
    EXPECT_LE(stream->slices_in_flight(), SubscriberStream::kMaxSlicesInFlight);
  }
  EXPECT_TRUE(host.requests.empty());
  EXPECT_EQ(stream->catch_ups(), 0u);
}

TEST_F(SubscriberStreamTest, HeldRecordsOverMaxPendingBytesDropTheSubscriber) {
  StreamParams params;
  params.max_pending_bytes = 2048;
  Make(params);
  Subscribe(1, Exact({"A"}, 10));
  for (int p = 1; p <= 100 && !stream->stopped(); ++p) Live(Tick("A", p));
  EXPECT_EQ(host.pending_limit_exceeded, 1);
  EXPECT_TRUE(stream->stopped());
  EXPECT_LE(stream->held_bytes(), params.max_pending_bytes + 256);
  // Stopped: nothing more is delivered or requested.
  Live(Tick("A", 1000));
  Serve();
  EXPECT_TRUE(host.requests.empty());
  EXPECT_TRUE(Sent().empty());
  stream->CancelCatchUps();
  EXPECT_EQ(stream->held_bytes(), 0u);
}

TEST_F(SubscriberStreamTest, AZeroWindowFlushesAtTheEndOfTheTurnWithTheRecordsReadyTime) {
  Make();
  const auto before = std::chrono::steady_clock::now();
  Subscribe(1, Exact({"A"}, 0));
  Live(Tick("A", 1));
  Live(Tick("A", 2));
  EXPECT_EQ(host.end_of_turn_flushes, 1);  // once per frame, not per record
  stream->FlushBatch(std::chrono::steady_clock::now(), true);
  ASSERT_EQ(host.frames.size(), 1u);
  EXPECT_EQ(host.tags[0].records, 2u);
  EXPECT_GE(host.tags[0].ready, before);  // when the frame opened, not the clock's epoch
  Live(Tick("A", 3));
  EXPECT_EQ(host.end_of_turn_flushes, 2);
}

TEST_F(SubscriberStreamTest, ALongRunGoesOutAsSharedFramesInOrder) {
  Make();
  Subscribe(1, Exact({"A"}, 0));
  Live(Tick("A", 1));  // open frame first
  auto block = std::make_shared<engine::RecordBlock>();
  std::vector<engine::IngestTick> ticks;
  for (int p = 2; p <= 400; ++p) ticks.push_back({"A", double(p), 1, kT0 + p, kT0});
  ASSERT_EQ(shard.Apply(ticks, *block).applied, ticks.size());
  stream->DeliverRun(block, block->entries);
  std::vector<double> want;
  for (int p = 1; p <= 400; ++p) want.push_back(p);
  EXPECT_EQ(Sent(), want);
  EXPECT_GE(host.frames.size(), 2u);
}

// Bars and watermarks written so far, in order: "bar <start>" / "watermark <start>".
std::vector<std::string> SentBars(FakeHost& host, SubscriberStream& s) {
  s.FlushBatch(std::chrono::steady_clock::now(), true);
  std::vector<std::string> out;
  for (const auto& f : host.frames) {
    v1::DataBatch b;
    EXPECT_TRUE(b.ParseFromArray(f.data() + protocol::kHeaderSize,
                                 static_cast<int>(f.size() - protocol::kHeaderSize)));
    for (const auto& r : b.records()) {
      if (r.has_watermark()) {
        out.push_back("watermark " + std::to_string(r.watermark().start_ms()));
      } else if (r.has_history_end()) {
        out.push_back("history_end " + std::to_string(r.history_end().subscription_id()));
      } else {
        out.push_back("bar " + std::to_string(r.bar().start_ms()));
      }
    }
  }
  return out;
}

std::string WatermarkEntry(std::int64_t start_ms) {
  std::string entry;
  protocol::AppendWatermarkRecordEntry(
      entry, protocol::WatermarkFields{static_cast<std::uint32_t>(Mode::kSecond), start_ms});
  return entry;
}

// A watermark that arrives while a SECOND catch-up holds live bars waits for the catch-up (and
// its end-of-history marker): it must not overtake the bars of the seconds it declares final.
TEST_F(SubscriberStreamTest, WatermarkWaitsForTheCatchUpOfItsInterval) {
  shard.SetWildcardInterest(Mode::kSecond, 0, true);
  Make();
  constexpr std::int64_t kSecond = 1000 * engine::kNsPerMs;
  const std::int64_t s0 = kT0 / engine::kNsPerMs;
  auto bar_block = [&](std::int64_t at_ns) {
    auto ticks = std::make_shared<engine::RecordBlock>();
    engine::IngestTick t{"A", 1, 1, at_ns, at_ns};
    EXPECT_EQ(shard.Apply(std::span(&t, 1), *ticks).applied, 1u);
    auto bars = std::make_shared<engine::RecordBlock>();
    shard.AdvanceWatermark(at_ns + kSecond + shard.options().close_delay_ns, *bars);
    return bars;
  };
  bar_block(kT0);  // second s0: closed and retained before the subscription
  Subscription sub{};
  sub.mode = Mode::kSecond;
  sub.topics = {"A"};
  sub.backfill = 10;
  Subscribe(1, sub);
  ASSERT_EQ(host.requests.size(), 1u);
  Live(bar_block(kT0 + kSecond));  // second s0 + 1 closes live: held by the catch-up
  stream->DeliverWatermark(Mode::kSecond, WatermarkEntry(s0 + 1000));
  EXPECT_TRUE(SentBars(host, *stream).empty());
  Serve();
  EXPECT_EQ(stream->catch_ups(), 0u);
  EXPECT_EQ(
      SentBars(host, *stream),
      (std::vector<std::string>{"bar " + std::to_string(s0), "bar " + std::to_string(s0 + 1000),
                                "history_end 1", "watermark " + std::to_string(s0 + 1000)}));
  // Live from now on: the next one goes straight out.
  host.frames.clear();
  stream->DeliverWatermark(Mode::kSecond, WatermarkEntry(s0 + 2000));
  EXPECT_EQ(SentBars(host, *stream),
            (std::vector<std::string>{"watermark " + std::to_string(s0 + 2000)}));
}

}  // namespace
}  // namespace tickwire::delivery
