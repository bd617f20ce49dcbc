// The topic cap and the other engine input limits (PROTOCOL S4, S6, S6b): MAX_TOPICS and
// MAX_TOPICS_PER_USER refuse ticks for new topics with ERROR TOPIC_LIMIT instead of growing past
// them, subscriptions create and pin no topic, since_ms and price/size are bounded.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "auth/password_hash.h"
#include "integration/integration_test.h"
#include "support/sanitizers.h"
#include "support/temp_dir.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

// What the server answered to one PUBLISH.
struct Outcome {
  bool acked = false;
  std::uint32_t accepted = 0;
  std::vector<v1::Error> errors;  // non-fatal ERRORs carrying the request's id
  std::string problem;            // anything unexpected
};

// Sends a PUBLISH and reads its answers: with `ack`, up to the PUBLISH_ACK; without, whatever
// arrives within `quiet`. DATA_BATCH frames are skipped.
Outcome Publish(RawClient& c, std::uint32_t rid, const std::vector<v1::Tick>& ticks, bool ack,
                milliseconds quiet = milliseconds(300)) {
  Outcome out;
  v1::Publish pub;
  pub.set_request_id(rid);
  pub.set_ack(ack);
  for (const auto& t : ticks) *pub.add_ticks() = t;
  if (!c.SendFrame(FrameType::kPublish, pub)) {
    out.problem = "send failed";
    return out;
  }
  const auto deadline = steady_clock::now() + (ack ? milliseconds(10000) : quiet);
  while (steady_clock::now() < deadline) {
    const ReadResult r = c.ReadFrame(Remaining(deadline));
    if (r.status == ReadStatus::kTimeout) break;
    if (!r.ok()) {
      out.problem = std::string(ReadStatusName(r.status)) + " " + r.detail;
      return out;
    }
    if (r.frame.frame_type() == FrameType::kDataBatch) continue;
    if (r.frame.frame_type() == FrameType::kError) {
      v1::Error e;
      e.ParseFromString(r.frame.payload);
      if (e.request_id() != rid || e.fatal()) {
        out.problem = "unexpected " + DescribeFrame(r.frame);
        return out;
      }
      out.errors.push_back(e);
      if (!ack) break;
      continue;
    }
    if (r.frame.frame_type() == FrameType::kPublishAck) {
      v1::PublishAck a;
      a.ParseFromString(r.frame.payload);
      if (!ack || a.request_id() != rid) {
        out.problem = "unexpected " + DescribeFrame(r.frame);
        return out;
      }
      out.acked = true;
      out.accepted = a.accepted();
      return out;
    }
    out.problem = "unexpected " + DescribeFrame(r.frame);
    return out;
  }
  if (ack) out.problem = "no PUBLISH_ACK";
  return out;
}

std::vector<v1::Tick> UniqueTicks(const std::string& prefix, int first, int n,
                                  std::int64_t ts_ns = 0) {
  std::vector<v1::Tick> ticks;
  for (int i = first; i < first + n; ++i) {
    ticks.push_back(MakeTick(prefix + std::to_string(i), 1.0, 1.0, ts_ns));
  }
  return ticks;
}

// The "refused" count out of a TOPIC_LIMIT message ("...; 5 of 10 ticks of this frame ...").
std::uint32_t RefusedIn(const v1::Error& e) {
  const auto of = e.message().find(" of ");
  const auto semi = e.message().rfind("; ", of);
  if (of == std::string::npos || semi == std::string::npos) return 0;
  return static_cast<std::uint32_t>(std::stoul(e.message().substr(semi + 2, of - semi - 2)));
}

class TopicCapTest : public IntegrationTest {
 protected:
  double Rss() { return Get(Scrape(), "process_resident_memory_bytes"); }
  double ActiveTopics() { return Get(Scrape(), "active_topics"); }
};

TEST_F(TopicCapTest, AFloodOfNewTopicsIsRefusedWithTopicLimitAndMemoryStaysBounded) {
  // 64 topics over 2 workers: 32 per owner shard. Server-stamped ticks keep their MINUTE bar
  // open for the rest of the minute, so nothing can be evicted and the cap must refuse.
  ASSERT_TRUE(Start({{"MAX_TOPICS", "64"}, {"WORKERS", "2"}}));
  RawClient producer;
  ASSERT_TRUE(ConnectAuthed(producer));
  // A topic that exists before the flood keeps flowing through it.
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(Topic("kept"), 1.0, 1.0)}));
  const double rss_before = Rss();

  constexpr int kFrames = 200;
  constexpr int kPerFrame = 500;  // 100,000 unique topics in all
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;
  for (int f = 0; f < kFrames; ++f) {
    const auto rid = static_cast<std::uint32_t>(100 + f);
    auto ticks = UniqueTicks("flood.", f * kPerFrame, kPerFrame);
    ticks.push_back(MakeTick(Topic("kept"), 2.0, 1.0));
    const Outcome o = Publish(producer, rid, ticks, /*ack=*/true);
    ASSERT_TRUE(o.problem.empty()) << "frame " << f << ": " << o.problem;
    ASSERT_TRUE(o.acked);
    accepted += o.accepted;
    if (o.accepted < ticks.size()) {
      // Exactly one TOPIC_LIMIT per frame with refusals, before the ack, with its request_id,
      // naming the first refused tick and how many of the frame's ticks were refused.
      ASSERT_EQ(o.errors.size(), 1u) << "frame " << f;
      const v1::Error& e = o.errors[0];
      EXPECT_EQ(e.code(), v1::TOPIC_LIMIT);
      EXPECT_EQ(RefusedIn(e) + o.accepted, ticks.size()) << e.message();
      EXPECT_EQ(e.message().rfind("ticks[", 0), 0u) << e.message();
      EXPECT_NE(e.message().find("new topic 'flood."), std::string::npos) << e.message();
      EXPECT_NE(e.message().find("of " + std::to_string(ticks.size()) + " ticks"),
                std::string::npos)
          << e.message();
      refused += RefusedIn(e);
      if (f > 0 && o.accepted == 1) {
        // Every new topic refused: the first one is the frame's first tick.
        EXPECT_EQ(
            e.message().rfind(
                "ticks[0]: new topic 'flood." + std::to_string(f * kPerFrame) + "' refused", 0),
            0u)
            << e.message();
      }
    } else {
      EXPECT_TRUE(o.errors.empty());
    }
    if (f % 50 == 49) {
      EXPECT_LE(ActiveTopics(), 64) << "frame " << f;  // never above the cap
    }
  }
  EXPECT_EQ(accepted + refused, std::uint64_t{kFrames} * (kPerFrame + 1));
  // The cap held: 63 new topics fit beside "kept" (128 if a minute boundary passed during the
  // run and freed the first ones), and "kept" was applied in every frame.
  EXPECT_GE(accepted, std::uint64_t{kFrames});
  EXPECT_LE(accepted, std::uint64_t{kFrames} + 128);
  EXPECT_TRUE(Reaches("ticks_refused_total{reason=\"topic_limit\"}", static_cast<double>(refused)));
  EXPECT_EQ(Get(Scrape(), "ticks_refused_total{reason=\"user_topic_limit\"}"), 0);
  EXPECT_EQ(Get(Scrape(), "protocol_errors_total{code=\"TOPIC_LIMIT\"}"),
            static_cast<double>(kFrames));
  // The gauge is refreshed by each worker's sweep; it never exceeds the cap.
  EXPECT_TRUE(WaitUntil([&] { return ActiveTopics() > 0; }, milliseconds(3000)));
  EXPECT_LE(ActiveTopics(), 64);
  // 100,000 topics used to cost about 1 KB each; the cap keeps the growth to noise. (Sanitizer
  // runtimes hold freed memory in quarantine, so only plain builds can tell.)
  if (!kSanitized) {
    EXPECT_LT(Rss() - rss_before, 24.0 * 1024 * 1024) << "RSS before " << rss_before;
  }

  // Without ack the refusal is still reported, with the request's id.
  const Outcome quiet =
      Publish(producer, 9999, UniqueTicks("late.", 0, 3), /*ack=*/false, milliseconds(3000));
  ASSERT_TRUE(quiet.problem.empty()) << quiet.problem;
  ASSERT_EQ(quiet.errors.size(), 1u);
  EXPECT_EQ(quiet.errors[0].code(), v1::TOPIC_LIMIT);
  EXPECT_EQ(quiet.errors[0].request_id(), 9999u);
  EXPECT_EQ(RefusedIn(quiet.errors[0]), 3u);
  EXPECT_TRUE(producer.HeartbeatRoundTrip(1));  // non-fatal: the connection carries on
}

TEST_F(TopicCapTest, OneUsersFloodLeavesOtherUsersTheirShare) {
  TempDir dir;
  const std::string users = dir.File("users");
  {
    std::ofstream out(users);
    for (const char* u : {"flooder", "other"}) {
      out << u << " " << auth::FormatPasswordHash(auth::HashPassword("pw", auth::kMinIterations))
          << " publish=* subscribe=*\n";
    }
  }
  // Per owner shard: 32 topics in all, 16 per user.
  ASSERT_TRUE(Start({{"USERS_FILE", users},
                     {"MAX_TOPICS", "64"},
                     {"MAX_TOPICS_PER_USER", "32"},
                     {"WORKERS", "2"}}));
  RawClient flooder;
  ASSERT_TRUE(Connect(flooder));
  ASSERT_TRUE(flooder.Authenticate("flooder", "pw"));
  std::uint32_t accepted = 0;
  for (int f = 0; f < 4; ++f) {
    const Outcome o =
        Publish(flooder, static_cast<std::uint32_t>(f + 1), UniqueTicks("f.", f * 250, 250), true);
    ASSERT_TRUE(o.problem.empty()) << o.problem;
    ASSERT_EQ(o.errors.size(), 1u);
    EXPECT_EQ(o.errors[0].code(), v1::TOPIC_LIMIT);
    EXPECT_NE(o.errors[0].message().find("user 'flooder'"), std::string::npos)
        << o.errors[0].message();
    EXPECT_NE(o.errors[0].message().find("MAX_TOPICS_PER_USER"), std::string::npos);
    accepted += o.accepted;
  }
  EXPECT_LE(accepted, 64u);  // 32, or 64 if a minute boundary freed the first ones
  EXPECT_TRUE(Reaches("ticks_refused_total{reason=\"user_topic_limit\"}", 1000.0 - accepted));
  // The other user's new topics all fit (at most 8 on one shard, where 16 remain).
  RawClient other;
  ASSERT_TRUE(Connect(other));
  ASSERT_TRUE(other.Authenticate("other", "pw"));
  const Outcome o = Publish(other, 7, UniqueTicks("o.", 0, 8), true);
  ASSERT_TRUE(o.problem.empty()) << o.problem;
  EXPECT_TRUE(o.errors.empty()) << o.errors[0].message();
  EXPECT_EQ(o.accepted, 8u);
}

TEST_F(TopicCapTest, ASubscribeOnlyClientCannotEvictAProducersTopic) {
  // One shard with room for 4 topics. Ticks stamped 10 minutes back are late: they open no bar,
  // so their topics could be evicted at once if anything pushed them out.
  ASSERT_TRUE(Start({{"MAX_TOPICS", "4"}, {"WORKERS", "1"}}));
  const std::int64_t past = NowNs() - 600LL * 1'000'000'000;
  RawClient producer, watcher, subscriber;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(watcher));
  ASSERT_TRUE(ConnectAuthed(subscriber));
  const std::string kept = Topic("producers");
  // The producer's consumer takes everything ('*'): nobody names its topic exactly.
  ASSERT_TRUE(watcher.Subscribe(1, v1::MODE_TICK, {"*"}));
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(kept, 1.0, 1.0, past)}));
  // A client that only subscribes names far more topics than the cap.
  std::vector<std::string> names;
  for (int i = 0; i < 2000; ++i) names.push_back("nobody.publishes." + std::to_string(i));
  ASSERT_TRUE(subscriber.Subscribe(1, v1::MODE_TICK, names));
  ASSERT_TRUE(subscriber.Subscribe(2, v1::MODE_SECOND, names));
  // Two new topics appear; in the past their creation evicted the producer's topic, because
  // every subscribed name held topic state and counted against the cap.
  ASSERT_TRUE(producer.PublishAcked(
      2, {MakeTick(Topic("new1"), 1.0, 1.0, past), MakeTick(Topic("new2"), 1.0, 1.0, past)}));
  ASSERT_TRUE(producer.PublishAcked(3, {MakeTick(kept, 2.0, 1.0, past)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(watcher, 4, milliseconds(3000), d));
  EXPECT_TRUE(CheckSequence(TicksOf(d.ticks, kept), 1));  // seq 1, 2: its history was not lost
  EXPECT_TRUE(WaitUntil([&] { return ActiveTopics() == 3; }, milliseconds(3000))) << ActiveTopics();
}

TEST_F(TopicCapTest, SinceMsBeyondNanosecondRangeIsRefusedAndFarFutureReplaysNothing) {
  ASSERT_TRUE(Start());
  RawClient producer, consumer;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(consumer));
  const std::string topic = Topic();
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(topic, 1.0, 1.0), MakeTick(topic, 2.0, 1.0)}));
  // 2^62 ms: its nanoseconds overflow 64 bits, which once wrapped to a time before every tick
  // and replayed them all.
  v1::Subscribe s;
  s.set_request_id(5);
  s.set_mode(v1::MODE_TICK);
  s.add_topics(topic);
  s.set_since_ms(std::int64_t{1} << 62);
  ASSERT_TRUE(consumer.SendFrame(FrameType::kSubscribe, s));
  v1::Error err;
  ASSERT_TRUE(consumer.ExpectError(v1::INVALID_REQUEST, false, 5u, &err));
  EXPECT_NE(err.message().find("since_ms"), std::string::npos) << err.message();
  // The year 2200 is representable and in the future: nothing retained is that new, so the
  // first record is the next live tick.
  s.set_request_id(6);
  s.set_since_ms(7'258'118'400'000);
  ASSERT_TRUE(consumer.SendFrame(FrameType::kSubscribe, s));
  v1::SubscribeOk ok;
  ASSERT_TRUE(consumer.ReadMessage(FrameType::kSubscribeOk, &ok));
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick(topic, 3.0, 1.0)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(consumer, 1, milliseconds(3000), d));
  ASSERT_EQ(d.ticks.size(), 1u);
  EXPECT_EQ(d.ticks[0].seq(), 3u);
  EXPECT_TRUE(consumer.ExpectNothing(milliseconds(200)));
}

TEST_F(TopicCapTest, PriceAndSizeAreBoundedSoBarsStayFinite) {
  ASSERT_TRUE(Start());
  RawClient producer, consumer;
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(ConnectAuthed(consumer));
  const std::string topic = Topic();
  // Finite, but price * size overflows a double: it once made volume and vwap inf or NaN.
  v1::Publish pub;
  pub.set_request_id(4);
  *pub.add_ticks() = MakeTick(topic, 1.0, 1.0);
  *pub.add_ticks() = MakeTick(topic, 1e300, 1e300);
  ASSERT_TRUE(producer.SendFrame(FrameType::kPublish, pub));
  v1::Error err;
  ASSERT_TRUE(producer.ExpectError(v1::INVALID_REQUEST, false, 4u, &err));
  EXPECT_EQ(err.message().rfind("ticks[1]: |price| is above 1e15", 0), 0u) << err.message();
  // At the bounds, a bar of many ticks stays finite.
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_SECOND, {topic}));
  std::vector<v1::Tick> ticks;
  for (int i = 0; i < 500; ++i) ticks.push_back(MakeTick(topic, i % 2 ? 1e15 : -1e15, 1e15));
  ASSERT_TRUE(producer.PublishAcked(5, ticks));
  // The ticks' second may have ended while they arrived: their bars add up to all of them.
  const auto deadline = steady_clock::now() + milliseconds(5000);
  std::uint64_t count = 0;
  double volume = 0;
  while (count < ticks.size() && steady_clock::now() < deadline) {
    const ReadResult r = consumer.ReadFrame(Remaining(deadline));
    ASSERT_TRUE(r.ok()) << ReadStatusName(r.status);
    ASSERT_EQ(r.frame.frame_type(), FrameType::kDataBatch);
    v1::DataBatch b;
    ASSERT_TRUE(b.ParseFromString(r.frame.payload));
    for (const auto& rec : b.records()) {
      if (rec.has_watermark()) continue;  // the end of a second (PROTOCOL S8d)
      ASSERT_TRUE(rec.has_bar());
      EXPECT_TRUE(std::isfinite(rec.bar().volume()) && std::isfinite(rec.bar().vwap()))
          << rec.bar().volume() << " " << rec.bar().vwap();
      EXPECT_LE(std::fabs(rec.bar().vwap()), 1e15);
      count += rec.bar().count();
      volume += rec.bar().volume();
    }
  }
  EXPECT_EQ(count, ticks.size());
  EXPECT_EQ(volume, 5e17);
}

}  // namespace
}  // namespace tickwire::testing
