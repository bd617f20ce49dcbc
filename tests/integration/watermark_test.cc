// PROTOCOL S8d through the real server: completeness watermarks for SECOND subscribers, on a
// quiet server and under traffic from several producers over several workers.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "integration/bars_support.h"
#include "integration/integration_test.h"
#include "support/bar_fold.h"

namespace tickwire::testing {
namespace {

// Every record one connection received, in order, with the wall time its frame arrived.
struct Stream {
  struct Item {
    bool watermark = false;
    v1::Mode interval = v1::MODE_UNSPECIFIED;
    std::string topic;  // bars
    std::int64_t start_ms = 0;
    std::int64_t arrived_ms = 0;
  };
  std::vector<Item> items;
  std::uint64_t next_batch_seq = 1;

  std::vector<std::int64_t> Watermarks(v1::Mode interval) const {
    std::vector<std::int64_t> out;
    for (const auto& i : items) {
      if (i.watermark && i.interval == interval) out.push_back(i.start_ms);
    }
    return out;
  }
  std::size_t Bars() const {
    return static_cast<std::size_t>(
        std::count_if(items.begin(), items.end(), [](const Item& i) { return !i.watermark; }));
  }
};

::testing::AssertionResult Take(const ReadResult& r, Stream& s) {
  if (r.frame.frame_type() != protocol::FrameType::kDataBatch) {
    return ::testing::AssertionFailure() << "unexpected " << DescribeFrame(r.frame);
  }
  v1::DataBatch batch;
  if (!batch.ParseFromString(r.frame.payload)) {
    return ::testing::AssertionFailure() << "DATA_BATCH does not parse";
  }
  if (batch.batch_seq() != s.next_batch_seq++) {
    return ::testing::AssertionFailure() << "batch_seq gap at " << batch.batch_seq();
  }
  const std::int64_t now = NowMs();
  for (const auto& rec : batch.records()) {
    Stream::Item item;
    item.arrived_ms = now;
    if (rec.has_watermark()) {
      item.watermark = true;
      item.interval = rec.watermark().interval();
      item.start_ms = rec.watermark().start_ms();
    } else if (rec.has_bar()) {
      item.interval = rec.bar().interval();
      item.topic = rec.bar().topic();
      item.start_ms = rec.bar().start_ms();
    } else {
      return ::testing::AssertionFailure() << "a record that is neither bar nor watermark";
    }
    s.items.push_back(std::move(item));
  }
  return ::testing::AssertionSuccess();
}

// Reads until `until()` or `timeout`.
template <typename Until>
::testing::AssertionResult ReadStream(RawClient& c, Stream& s, milliseconds timeout, Until until) {
  const auto deadline = steady_clock::now() + timeout;
  while (!until()) {
    const ReadResult r = c.ReadFrame(Remaining(deadline));
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "after " << s.items.size() << " records: " << ReadStatusName(r.status);
    }
    if (auto ok = Take(r, s); !ok) return ok;
  }
  return ::testing::AssertionSuccess();
}

// The first bar that arrived after a watermark covering it: -1 when none.
std::ptrdiff_t BarBehindItsWatermark(const Stream& s, v1::Mode interval) {
  std::int64_t final_through = INT64_MIN;
  for (std::size_t i = 0; i < s.items.size(); ++i) {
    const auto& item = s.items[i];
    if (item.interval != interval) continue;
    if (item.watermark) {
      final_through = std::max(final_through, item.start_ms);
    } else if (item.start_ms <= final_through) {
      return static_cast<std::ptrdiff_t>(i);
    }
  }
  return -1;
}

class WatermarkTest : public IntegrationTest {};

TEST_F(WatermarkTest, QuietSubscriptionGetsOneWatermarkPerSecondAndNoBar) {
  ASSERT_TRUE(Start({{"WORKERS", "3"}, {"BAR_CLOSE_DELAY_MS", "50"}}));
  RawClient sub;
  v1::AuthOk auth;
  ASSERT_TRUE(ConnectAuthed(sub, &auth));
  EXPECT_EQ(auth.bar_close_delay_ms(), 50u);
  EXPECT_EQ(auth.watermark_ms() % 1000, 0);
  EXPECT_LE(auth.watermark_ms(), NowMs() - 1000);
  v1::SubscribeOk ok;
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_SECOND, {Topic("quiet")}, nullptr, &ok));
  EXPECT_EQ(ok.watermark_ms() % 1000, 0);
  EXPECT_EQ(ok.live_from_ms() % 1000, 0);
  EXPECT_GE(ok.watermark_ms(), auth.watermark_ms());
  EXPECT_GT(ok.live_from_ms(), ok.watermark_ms());
  EXPECT_LE(ok.live_from_ms(), NowMs());

  Stream s;
  ASSERT_TRUE(ReadStream(sub, s, milliseconds(6000),
                         [&] { return s.Watermarks(v1::MODE_SECOND).size() >= 3; }));
  EXPECT_EQ(s.Bars(), 0u);
  const auto marks = s.Watermarks(v1::MODE_SECOND);
  EXPECT_GT(marks[0], ok.watermark_ms());
  for (std::size_t i = 1; i < marks.size(); ++i) EXPECT_EQ(marks[i] - marks[i - 1], 1000);
  for (const auto& item : s.items) {
    // Never before its second ended and the close delay passed.
    EXPECT_GE(item.arrived_ms, item.start_ms + 1000 + 50);
  }
  // A TICK subscription on the same connection adds no watermark of its own.
  ASSERT_TRUE(sub.Subscribe(2, v1::MODE_TICK, {Topic("quiet")}));
}

// Four workers, topics spread over every shard, three producers: on two consumers (one "*",
// one with an exact list), every bar arrives before the watermark of its second, and each
// watermark's second is complete: the bars before it are the reference fold of every tick
// published in it.
TEST_F(WatermarkTest, EveryBarOfASecondPrecedesItsWatermark) {
  ASSERT_TRUE(Start({{"WORKERS", "4"}, {"BAR_CLOSE_DELAY_MS", "50"}}));
  std::vector<std::string> topics;
  for (int i = 0; i < 12; ++i) topics.push_back(Topic("t" + std::to_string(i)));
  RawClient ticks_sub, all_sub, list_sub;
  ASSERT_TRUE(ConnectAuthed(ticks_sub));
  ASSERT_TRUE(ConnectAuthed(all_sub));
  ASSERT_TRUE(ConnectAuthed(list_sub));
  ASSERT_TRUE(ticks_sub.Subscribe(1, v1::MODE_TICK, {"*"}));
  v1::SubscribeOk all_ok;
  ASSERT_TRUE(all_sub.Subscribe(1, v1::MODE_SECOND, {"*"}, nullptr, &all_ok));
  ASSERT_TRUE(list_sub.Subscribe(1, v1::MODE_SECOND, topics));

  // Server-stamped: no tick is late, so the fold of the ticks is exactly the bars.
  const RandomTickRun run = PublishRandomTicks(server_->port(), topics, 3, milliseconds(2500), 7,
                                               [](std::mt19937_64&) { return std::int64_t{0}; });
  ASSERT_TRUE(run.ok);
  Received ticks;
  ASSERT_TRUE(Drain(ticks_sub, ticks, milliseconds(300)));
  ASSERT_GT(ticks.ticks.size(), 100u);
  std::int64_t last_second = 0;
  for (const auto& t : ticks.ticks) last_second = std::max(last_second, t.ts_ns() / 1'000'000'000);
  const auto want = ReferenceSecondBars(ticks.ticks);

  for (RawClient* c : {&all_sub, &list_sub}) {
    SCOPED_TRACE(c == &all_sub ? "*" : "list");
    Stream s;
    // Until the watermark covers the last second a tick was published in.
    ASSERT_TRUE(ReadStream(*c, s, milliseconds(5000), [&] {
      const auto m = s.Watermarks(v1::MODE_SECOND);
      return !m.empty() && m.back() >= last_second * 1000;
    }));
    EXPECT_EQ(BarBehindItsWatermark(s, v1::MODE_SECOND), -1);
    const auto marks = s.Watermarks(v1::MODE_SECOND);
    ASSERT_GE(marks.size(), 3u);
    for (std::size_t i = 1; i < marks.size(); ++i) EXPECT_EQ(marks[i] - marks[i - 1], 1000);
    // Bars before each watermark: exactly the reference bars of the seconds since the
    // subscription's live start, through that watermark's second.
    std::set<BarKey> got;
    std::size_t checked = 0;
    for (const auto& item : s.items) {
      if (!item.watermark) {
        EXPECT_TRUE(got.emplace(item.topic, item.start_ms).second) << "twice: " << item.topic;
        continue;
      }
      std::set<BarKey> expected;
      for (const auto& [key, bar] : want) {
        const std::int64_t start = std::get<1>(key);
        if (start >= all_ok.live_from_ms() && start <= item.start_ms) expected.insert(key);
      }
      std::set<BarKey> have;
      for (const auto& key : got) {
        if (std::get<1>(key) >= all_ok.live_from_ms()) have.insert(key);
      }
      EXPECT_EQ(have, expected) << "at the watermark of " << item.start_ms;
      checked += expected.size();
    }
    EXPECT_GT(checked, topics.size());
  }
}

}  // namespace
}  // namespace tickwire::testing
