// The worker core without sockets: several exchanges on one thread, their cross-worker posts
// delayed and reordered by a seeded FakePoster (per source-destination order kept, as Asio
// does), checked against the two invariants of docs/ARCHITECTURE.md and the publish report.
#include "exchange/exchange.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exchange/fake_poster.h"

namespace tickwire::exchange {
namespace {

using testing::FakePoster;
using testing::g_now_ns;

constexpr std::int64_t kMs = engine::kNsPerMs;
constexpr std::int64_t kCloseDelay = 50 * kMs;

// Records the live records one worker receives for its subscribers.
class RecordingHost final : public Host {
 public:
  explicit RecordingHost(unsigned index) : index_(index) {}
  void DeliverRecords(const engine::RecordBlockPtr& block) override {
    for (const auto& e : block->entries) {
      if ((e.workers & engine::WorkerBit(index_)) == 0) continue;
      if (e.mode == engine::Mode::kTick) {
        live.push_back({std::string(block->Topic(e)), e.key});
      } else {
        bars.push_back({e.mode, false, static_cast<std::int64_t>(e.key)});
      }
    }
  }
  void FlushTurn() override { ++turns; }
  void DeliverWatermark(engine::Mode interval, std::int64_t start_ms) override {
    bars.push_back({interval, true, start_ms});
  }

  struct Live {
    std::string topic;
    std::uint64_t key;
  };
  // Bars and watermarks, in the order this worker received them.
  struct BarEvent {
    engine::Mode interval;
    bool watermark;
    std::int64_t start_ms;
  };
  std::vector<Live> live;
  std::vector<BarEvent> bars;
  std::size_t turns = 0;

 private:
  unsigned index_;
};

// A bus that closes bars on the owner's own clock alone, ignoring the other workers' marks: the
// broken rule the marks exist to prevent (shows that the invariant check can fail).
class OwnClockBus final : public Bus {
 public:
  void Publish(Exchange& at, const std::shared_ptr<PublishOrigin>& origin, engine::UserId user,
               std::string_view, std::uint32_t request_id, bool ack,
               std::vector<engine::IngestTick> ticks) override {
    at.IngestLocal(origin, user, request_id, ack, std::move(ticks));
  }
  std::int64_t Watermark(const Exchange& at) const override { return at.WallNow(); }
  std::int64_t ResumeFrom(const Exchange& at) const override { return at.WallNow(); }
  bool Congested() const override { return false; }
  void AppendMetrics(obs::Exposition&) const override {}
};

class Origin final : public PublishOrigin {
 public:
  void OnPublishApplied(std::uint32_t request_id, std::uint32_t accepted,
                        std::uint32_t late) override {
    events.push_back("applied " + std::to_string(request_id) + " " + std::to_string(accepted) +
                     (late > 0 ? " late " + std::to_string(late) : ""));
  }
  void OnPublishRefused(std::uint32_t request_id, const session::PublishRefusal& r) override {
    events.push_back("refused " + std::to_string(request_id) + " " + std::to_string(r.refused) +
                     "/" + std::to_string(r.total) + " first " + std::to_string(r.index));
  }
  void OnPublishFailed(std::uint32_t request_id, std::string_view, std::uint32_t) override {
    events.push_back("failed " + std::to_string(request_id));
  }
  std::vector<std::string> events;
};

class Receiver final : public SliceReceiver {
 public:
  explicit Receiver(const std::vector<RecordingHost::Live>* live) : live_(live) {}
  void OnHistorySlice(std::uint64_t, unsigned,
                      std::shared_ptr<const engine::HistorySlice> s) override {
    slices.push_back(s);
    live_seen_at_slice.push_back(live_->size());
  }
  std::vector<std::shared_ptr<const engine::HistorySlice>> slices;
  std::vector<std::size_t> live_seen_at_slice;  // live records received before each slice

 private:
  const std::vector<RecordingHost::Live>* live_;
};

// N exchanges wired to a FakePoster, each with its own bar clock.
class Workers {
 public:
  Workers(unsigned n, std::uint64_t seed, Bus& bus, engine::ShardOptions options = {},
          std::int64_t max_delay_ns = 30 * kMs)
      : poster_(n, seed, max_delay_ns) {
    g_now_ns = 1'700'000'000'000 * kMs;  // some wall time, on no boundary in particular
    options.close_delay_ns = kCloseDelay;
    std::vector<Exchange*> raw;
    for (unsigned i = 0; i < n; ++i) {
      hosts_.push_back(std::make_unique<RecordingHost>(i));
      exchanges_.push_back(std::make_unique<Exchange>(i, options, poster_, bus, *hosts_.back(),
                                                      backlog_, &testing::FakeWallNs));
      raw.push_back(exchanges_.back().get());
      next_bar_.push_back(Exchange::NextBarClockNs(g_now_ns, kCloseDelay));
    }
    poster_.Attach(raw);
    for (auto& e : exchanges_) {
      e->Start();
      e->BindThread();
    }
  }

  Exchange& at(unsigned w) { return *exchanges_[w]; }
  RecordingHost& host(unsigned w) { return *hosts_[w]; }
  FakePoster& poster() { return poster_; }
  IngestBacklog& backlog() { return backlog_; }

  // Fires the bar clocks that are due (as each worker's timer would).
  void FireBarClocks() {
    for (unsigned w = 0; w < exchanges_.size(); ++w) {
      if (g_now_ns < next_bar_[w]) continue;
      poster_.RunAs(w, [&] { at(w).OnBarClock(); });
      next_bar_[w] = Exchange::NextBarClockNs(g_now_ns, kCloseDelay);
    }
  }

  // Lets time pass until every bucket up to now is closed everywhere.
  void Settle() {
    poster_.Drain();
    const std::int64_t until = g_now_ns + 3000 * kMs;
    while (g_now_ns < until) {
      g_now_ns += 10 * kMs;
      FireBarClocks();
      poster_.Drain();
    }
  }

  std::uint64_t Late() const {
    std::uint64_t late = 0;
    for (const auto& e : exchanges_) late += e->shard().stats().late_second;
    return late;
  }
  std::uint64_t SecondBars() const {
    std::uint64_t n = 0;
    for (const auto& e : exchanges_) n += e->shard().stats().bars_second;
    return n;
  }

 private:
  FakePoster poster_;
  IngestBacklog backlog_;
  std::vector<std::unique_ptr<RecordingHost>> hosts_;
  std::vector<std::unique_ptr<Exchange>> exchanges_;
  std::vector<std::int64_t> next_bar_;
};

std::vector<engine::IngestTick> Frame(std::mt19937_64& rng, std::size_t n, unsigned topics) {
  std::vector<engine::IngestTick> ticks;
  for (std::size_t i = 0; i < n; ++i) {
    engine::IngestTick t;
    t.topic = "t" + std::to_string(rng() % topics);
    t.price = 100;
    t.size = 1;
    t.ts_ns = g_now_ns;
    t.accepted_ns = g_now_ns;
    t.index = static_cast<std::uint32_t>(i);
    ticks.push_back(std::move(t));
  }
  return ticks;
}

// Random traffic for `steps` steps: frames from random workers, time passing, bar clocks
// firing, posts delivered late and out of order across sources.
std::uint64_t RunTraffic(Workers& w, unsigned n, std::size_t steps) {
  auto& rng = w.poster().rng();
  std::uint64_t published = 0;
  for (std::size_t step = 0; step < steps; ++step) {
    g_now_ns += static_cast<std::int64_t>(rng() % (3 * kMs));
    w.FireBarClocks();
    if (rng() % 3 == 0) {
      const unsigned from = static_cast<unsigned>(rng() % n);
      auto ticks = Frame(rng, 1 + rng() % 4, 12);
      published += ticks.size();
      w.poster().RunAs(from,
                       [&] { w.at(from).Publish(nullptr, 0, "u", 0, false, std::move(ticks)); });
    }
    for (std::uint64_t k = rng() % 4; k > 0; --k) w.poster().RunOne();
  }
  w.Settle();
  return published;
}

// Invariant 1: no tick accepted before a mark is left out of a bar that closes after that mark.
// Whatever the delays and the interleaving across sources, no tick is ever late.
TEST(ExchangeTest, NoTickAcceptedBeforeAMarkIsLeftOutOfABarClosedAfterIt) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    LocalBus bus;
    constexpr unsigned kWorkers = 4;
    Workers w(kWorkers, seed, bus);
    const std::uint64_t published = RunTraffic(w, kWorkers, 6000);
    ASSERT_GT(published, 1000U);
    EXPECT_GT(w.SecondBars(), 10U);  // buckets did close meanwhile
    EXPECT_EQ(w.Late(), 0U);
    std::uint64_t applied = 0;
    for (unsigned i = 0; i < kWorkers; ++i) applied += w.at(i).shard().stats().ticks;
    EXPECT_EQ(applied, published);
    for (unsigned i = 0; i < kWorkers; ++i) EXPECT_EQ(w.backlog().ticks(i), 0);
  }
}

// The same traffic with bars closed on the owner's clock alone does leave ticks out.
TEST(ExchangeTest, ClosingOnTheOwnersClockAloneWouldLoseTicks) {
  std::uint64_t late = 0;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    OwnClockBus bus;
    constexpr unsigned kWorkers = 4;
    Workers w(kWorkers, seed, bus, {}, 200 * kMs);
    RunTraffic(w, kWorkers, 6000);
    late += w.Late();
  }
  EXPECT_GT(late, 0U);
}

// Invariant 2: a history slice is ordered with its owner's live record blocks, so that the
// replay plus what arrives live after it is every record exactly once, in order.
TEST(ExchangeTest, CatchUpHasNoGapAndNoDuplicate) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    LocalBus bus;
    constexpr unsigned kWorkers = 3;
    engine::ShardOptions options;
    options.ticks = 100'000;
    Workers w(kWorkers, seed, bus, options);
    auto& rng = w.poster().rng();
    // A topic worker 0 owns, subscribed to from worker 2.
    std::string topic;
    for (int i = 0; topic.empty(); ++i) {
      const std::string name = "t" + std::to_string(i);
      if (engine::ShardOf(name, kWorkers) == 0) topic = name;
    }
    const unsigned sub = 2;
    auto receiver = std::make_shared<Receiver>(&w.host(sub).live);
    auto publish_some = [&] {
      const unsigned from = static_cast<unsigned>(rng() % kWorkers);
      auto ticks = Frame(rng, 1 + rng() % 3, 1);
      for (auto& t : ticks) t.topic = topic;
      w.poster().RunAs(from,
                       [&] { w.at(from).Publish(nullptr, 0, "u", 0, false, std::move(ticks)); });
    };
    for (int i = 0; i < 300; ++i) {
      publish_some();
      if (rng() % 2 == 0) w.poster().RunOne();
    }
    // Subscribe with a replay of everything, while ticks keep arriving from every worker.
    w.poster().RunAs(sub, [&] {
      w.at(sub).PublishInterest({{topic, false, engine::Mode::kTick, true}});
      HistorySliceRequest r;
      r.request.mode = engine::Mode::kTick;
      r.request.topics =
          std::make_shared<const std::vector<std::string>>(std::vector<std::string>{topic});
      r.request.backfill = 1'000'000;
      r.limits = engine::SliceLimits{1 << 30, 1 << 30};
      r.cancel = std::make_shared<delivery::ReplayCancel>();
      r.receiver = receiver;
      r.catchup_id = 1;
      r.from = sub;
      w.at(sub).RequestHistorySlice(0, std::move(r));
    });
    for (int i = 0; i < 600; ++i) {
      publish_some();
      if (rng() % 2 == 0) w.poster().RunOne();
    }
    w.Settle();

    const std::uint64_t total = w.at(0).shard().stats().ticks;
    ASSERT_EQ(receiver->slices.size(), 1U);
    ASSERT_TRUE(receiver->slices[0]->cursor.finished);
    std::vector<std::uint64_t> replay;
    for (const auto& e : receiver->slices[0]->records.entries) replay.push_back(e.key);
    const auto& live = w.host(sub).live;
    const std::size_t before = receiver->live_seen_at_slice[0];
    // Live records that came before the slice are in it (the subscriber drops them by key).
    for (std::size_t i = 0; i < before; ++i) {
      EXPECT_TRUE(std::binary_search(replay.begin(), replay.end(), live[i].key)) << live[i].key;
    }
    // Replay, then what came live after it: 1 .. total, each once, in order.
    std::vector<std::uint64_t> seen = replay;
    for (std::size_t i = before; i < live.size(); ++i) seen.push_back(live[i].key);
    ASSERT_EQ(seen.size(), total);
    for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i + 1) << "at " << i;
    EXPECT_GT(live.size() - before, 100U);  // the replay did overlap live traffic
  }
}

// A frame split over every shard: refusals reach the origin once, before the ack, on the
// origin's worker, and the ack counts the accepted ticks once.
TEST(ExchangeTest, PublishReportIsRefusalsThenOneAck) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    LocalBus bus;
    engine::ShardOptions options;
    options.max_topics = 2;  // per shard: later new topics are refused
    Workers w(3, seed, bus, options);
    auto origin = std::make_shared<Origin>();
    std::vector<engine::IngestTick> ticks;
    for (std::uint32_t i = 0; i < 30; ++i) {
      engine::IngestTick t;
      t.topic = "topic" + std::to_string(i % 15);
      t.price = 1;
      t.size = 1;
      t.ts_ns = g_now_ns;
      t.accepted_ns = g_now_ns;
      t.index = i;
      ticks.push_back(std::move(t));
    }
    // Which are refused: per shard, topics beyond the first two it sees, in frame order.
    std::vector<std::set<std::string>> kept(3);
    std::uint32_t refused = 0;
    std::uint32_t first = UINT32_MAX;
    for (const auto& t : ticks) {
      auto& k = kept[engine::ShardOf(t.topic, 3)];
      if (k.count(t.topic) == 0 && k.size() < 2) k.insert(t.topic);
      if (k.count(t.topic) == 0) {
        ++refused;
        first = std::min(first, t.index);
      }
    }
    ASSERT_GT(refused, 0U);
    w.poster().RunAs(1, [&] { w.at(1).Publish(origin, 7, "u", 42, true, std::move(ticks)); });
    w.poster().Drain();
    ASSERT_EQ(origin->events.size(), 2U);
    EXPECT_EQ(origin->events[0],
              "refused 42 " + std::to_string(refused) + "/30 first " + std::to_string(first));
    EXPECT_EQ(origin->events[1], "applied 42 " + std::to_string(30 - refused));
  }
}

// A frame split over every shard with back-dated ticks: each owner decides lateness for its
// part, and the one ack sums them (PUBLISH_ACK `late`, PROTOCOL S8a).
TEST(ExchangeTest, AckCountsLateTicksOfEveryShard) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    LocalBus bus;
    Workers w(3, seed, bus);
    auto origin = std::make_shared<Origin>();
    std::vector<engine::IngestTick> ticks;
    std::uint32_t late = 0;
    for (std::uint32_t i = 0; i < 24; ++i) {
      engine::IngestTick t;
      t.topic = "topic" + std::to_string(i % 12);
      t.price = 1;
      t.size = 1;
      // Every third tick is stamped 5 s back: its SECOND bucket ended long before it arrived.
      const bool back = i % 3 == 0;
      t.ts_ns = back ? g_now_ns - 5000 * kMs : g_now_ns;
      t.accepted_ns = g_now_ns;
      t.index = i;
      late += back ? 1 : 0;
      ticks.push_back(std::move(t));
    }
    std::set<unsigned> owners;
    for (const auto& t : ticks) owners.insert(engine::ShardOf(t.topic, 3));
    ASSERT_EQ(owners.size(), 3U);  // the late ticks are counted on more than one shard
    w.poster().RunAs(2, [&] { w.at(2).Publish(origin, 7, "u", 5, true, std::move(ticks)); });
    w.poster().Drain();
    ASSERT_EQ(origin->events.size(), 1U);
    EXPECT_EQ(origin->events[0], "applied 5 24 late " + std::to_string(late));
    EXPECT_EQ(w.Late(), late);
  }
}

TEST(ExchangeTest, FrameWithoutAckOrRefusalSaysNothing) {
  LocalBus bus;
  Workers w(3, 5, bus);
  auto origin = std::make_shared<Origin>();
  auto& rng = w.poster().rng();
  auto ticks = Frame(rng, 20, 9);
  w.poster().RunAs(0, [&] { w.at(0).Publish(origin, 1, "u", 9, false, std::move(ticks)); });
  w.poster().Drain();
  EXPECT_TRUE(origin->events.empty());
  std::uint64_t applied = 0;
  for (unsigned i = 0; i < 3; ++i) applied += w.at(i).shard().stats().ticks;
  EXPECT_EQ(applied, 20U);
}

// The first place where `events` break the watermark rule for `interval`: a bar at or before a
// watermark already given, or a watermark that does not move forward. -1: none.
std::ptrdiff_t WatermarkViolation(const std::vector<RecordingHost::BarEvent>& events,
                                  engine::Mode interval) {
  std::int64_t final_through = INT64_MIN;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (e.interval != interval) continue;
    if (e.start_ms <= final_through) return static_cast<std::ptrdiff_t>(i);
    if (e.watermark) final_through = e.start_ms;
  }
  return -1;
}

std::vector<std::int64_t> WatermarksOf(const RecordingHost& host, engine::Mode interval) {
  std::vector<std::int64_t> out;
  for (const auto& e : host.bars) {
    if (e.watermark && e.interval == interval) out.push_back(e.start_ms);
  }
  return out;
}

TEST(ExchangeWatermarkTest, TheCheckFindsABarBehindItsWatermark) {
  using E = RecordingHost::BarEvent;
  constexpr auto kS = engine::Mode::kSecond;
  EXPECT_EQ(WatermarkViolation({{kS, false, 1000}, {kS, true, 1000}, {kS, false, 2000}}, kS), -1);
  EXPECT_EQ(WatermarkViolation({E{kS, true, 1000}, E{kS, false, 1000}}, kS), 1);
  EXPECT_EQ(WatermarkViolation({E{kS, true, 2000}, E{kS, true, 1000}}, kS), 1);
}

// Every worker subscribes to every topic's SECOND and MINUTE bars ("*"); random traffic from
// every worker over more than two minutes, posts delayed and reordered across sources. On every
// worker, each watermark comes after every bar of the intervals it covers, they move forward
// one interval at a time while the clocks run, and every bar a shard closed reached every worker.
TEST(ExchangeWatermarkTest, WatermarkFollowsEveryBarOfItsIntervalOnEveryWorker) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    LocalBus bus;
    constexpr unsigned kWorkers = 4;
    Workers w(kWorkers, seed, bus);
    for (unsigned i = 0; i < kWorkers; ++i) {
      w.poster().RunAs(i, [&] {
        w.at(i).PublishInterest(
            {{"", true, engine::Mode::kSecond, true}, {"", true, engine::Mode::kMinute, true}});
      });
    }
    w.poster().Drain();
    auto& rng = w.poster().rng();
    const std::int64_t start_ns = g_now_ns;
    for (int step = 0; step < 9000; ++step) {
      g_now_ns += static_cast<std::int64_t>(rng() % (30 * kMs));
      w.FireBarClocks();
      if (rng() % 2 == 0) {
        const unsigned from = static_cast<unsigned>(rng() % kWorkers);
        auto ticks = Frame(rng, 1 + rng() % 4, 12);
        w.poster().RunAs(from,
                         [&] { w.at(from).Publish(nullptr, 0, "u", 0, false, std::move(ticks)); });
      }
      // More than the traffic makes on average, so that the queues stay short.
      for (std::uint64_t k = rng() % 16; k > 0; --k) w.poster().RunOne();
    }
    w.Settle();
    const std::int64_t seconds = (g_now_ns - start_ns) / (1000 * kMs);
    ASSERT_GT(seconds, 120);
    std::uint64_t second_bars = 0;
    std::uint64_t minute_bars = 0;
    for (unsigned i = 0; i < kWorkers; ++i) {
      second_bars += w.at(i).shard().stats().bars_second;
      minute_bars += w.at(i).shard().stats().bars_minute;
    }
    ASSERT_GT(second_bars, 1000U);
    ASSERT_GT(minute_bars, 20U);
    for (unsigned i = 0; i < kWorkers; ++i) {
      SCOPED_TRACE("worker " + std::to_string(i));
      const auto& events = w.host(i).bars;
      EXPECT_EQ(WatermarkViolation(events, engine::Mode::kSecond), -1);
      EXPECT_EQ(WatermarkViolation(events, engine::Mode::kMinute), -1);
      std::uint64_t seconds_here = 0;
      std::uint64_t minutes_here = 0;
      for (const auto& e : events) {
        if (e.watermark) continue;
        ++(e.interval == engine::Mode::kSecond ? seconds_here : minutes_here);
      }
      EXPECT_EQ(seconds_here, second_bars);  // "*" everywhere: every bar reaches every worker
      EXPECT_EQ(minutes_here, minute_bars);
      const auto marks = WatermarksOf(w.host(i), engine::Mode::kSecond);
      ASSERT_GE(marks.size(), static_cast<std::size_t>(seconds - 3));
      for (std::size_t k = 0; k < marks.size(); ++k) EXPECT_EQ(marks[k] % 1000, 0);
      // Bar clocks every second: each watermark is one second after the previous one (the
      // random delays stay far below a second).
      for (std::size_t k = 1; k < marks.size(); ++k) EXPECT_EQ(marks[k] - marks[k - 1], 1000);
      const auto minute_marks = WatermarksOf(w.host(i), engine::Mode::kMinute);
      ASSERT_GE(minute_marks.size(), 2U);
      for (std::size_t k = 1; k < minute_marks.size(); ++k) {
        EXPECT_EQ(minute_marks[k] - minute_marks[k - 1], 60'000);
      }
      // The last ones cover everything that closed: the newest second before now - delay.
      EXPECT_EQ(w.at(i).WatermarkMs(engine::Mode::kSecond), marks.back());
      EXPECT_EQ(w.at(i).WatermarkMs(engine::Mode::kMinute), minute_marks.back());
      const std::int64_t open_second = engine::FloorDiv(g_now_ns - kCloseDelay, 1000 * kMs) * 1000;
      EXPECT_LE(marks.back(), open_second - 1000);
      EXPECT_GE(marks.back(), open_second - 2000);
    }
  }
}

// No traffic at all: the bar clocks alone move every worker's watermark, once a second.
TEST(ExchangeWatermarkTest, QuietServerStillSendsAWatermarkEverySecond) {
  LocalBus bus;
  constexpr unsigned kWorkers = 3;
  Workers w(kWorkers, 11, bus);
  for (int step = 0; step < 1000; ++step) {  // 10 s
    g_now_ns += 10 * kMs;
    w.FireBarClocks();
    w.poster().Drain();
  }
  for (unsigned i = 0; i < kWorkers; ++i) {
    const auto marks = WatermarksOf(w.host(i), engine::Mode::kSecond);
    ASSERT_GE(marks.size(), 9U);
    for (std::size_t k = 1; k < marks.size(); ++k) EXPECT_EQ(marks[k] - marks[k - 1], 1000);
    // Within the post delays of the bar clock: no later than one interval behind.
    EXPECT_GE(marks.back(), engine::FloorDiv(g_now_ns - kCloseDelay, 1000 * kMs) * 1000 - 2000);
  }
}

// Off (WATERMARKS=false): no watermark, and the bar clocks add no post of their own beyond the
// marks they always sent.
TEST(ExchangeWatermarkTest, OffSendsNone) {
  LocalBus bus;
  Workers w(2, 3, bus);
  for (unsigned i = 0; i < 2; ++i) w.at(i).set_watermarks(false);
  for (int step = 0; step < 300; ++step) {
    g_now_ns += 10 * kMs;
    w.FireBarClocks();
    w.poster().Drain();
  }
  for (unsigned i = 0; i < 2; ++i) {
    EXPECT_TRUE(w.host(i).bars.empty());
    EXPECT_EQ(w.at(i).WatermarkMs(engine::Mode::kSecond), 0);
  }
}

#ifdef TICKWIRE_THREAD_CHECKS
// Checked builds (debug, asan, tsan): an exchange touched from another thread aborts.
TEST(ExchangeDeathTest, TouchedOffItsWorkersThreadAborts) {
  LocalBus bus;
  Workers w(2, 1, bus);  // bound to this thread
  EXPECT_DEATH(std::thread([&] { w.at(0).ScheduleEndOfTurn(); }).join(), "off its worker");
}
#endif

}  // namespace
}  // namespace tickwire::exchange
