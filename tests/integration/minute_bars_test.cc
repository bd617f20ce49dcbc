// PROTOCOL S8a for MINUTE bars through the real server and `tickwire sub --mode minute`. A
// MINUTE bar closes at the next UTC minute + BAR_CLOSE_DELAY_MS, so this waits once for up to
// about a minute: ctest label `slow`, run in the release stage only.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <ctime>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/bars_support.h"
#include "integration/integration_test.h"
#include "support/bar_fold.h"
#include "support/child_process.h"
#include "support/json.h"
#include "support/utc_time.h"

namespace tickwire::testing {
namespace {

// `tickwire sub` arguments that reach this test's server.
std::vector<std::string> SubCommand(std::uint16_t port, std::vector<std::string> args) {
  std::vector<std::string> argv = {TICKWIRE_CLI_BIN, "sub",
                                   "--addr",         "127.0.0.1:" + std::to_string(port),
                                   "--user",         ServerProcess::kUser,
                                   "--pass",         ServerProcess::kPass,
                                   "--no-reconnect"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// "2024-05-01 12:01", the table's time column for a MINUTE bar.
std::string MinuteTime(std::int64_t start_ms) { return UtcTime(start_ms, "%Y-%m-%d %H:%M"); }

// `printed` equals `want` to the 8 significant digits the table prints.
bool Near(double printed, double want) {
  return std::abs(printed - want) <= 1e-7 * std::max(1.0, std::abs(want));
}

class MinuteBarsTest : public IntegrationTest {};

TEST_F(MinuteBarsTest, MinuteBarsMatchTheReferenceFoldTheWireSecondBarsAndTheCli) {
  // The raw clients send no heartbeats: the timeout must outlast the minute's wait.
  ASSERT_TRUE(Start({{"WORKERS", "2"},
                     {"BAR_CLOSE_DELAY_MS", "500"},
                     {"HEARTBEAT_INTERVAL", "30s"},
                     {"HEARTBEAT_TIMEOUT", "180s"}}));
  const std::vector<std::string> topics = {Topic("a"), Topic("b"), Topic("c")};
  RawClient ticks_all, seconds_all, minutes_all;
  ASSERT_TRUE(ConnectAuthed(ticks_all));
  ASSERT_TRUE(ConnectAuthed(seconds_all));
  ASSERT_TRUE(ConnectAuthed(minutes_all));
  ASSERT_TRUE(ticks_all.Subscribe(1, v1::MODE_TICK, {"*"}));
  ASSERT_TRUE(seconds_all.Subscribe(1, v1::MODE_SECOND, {"*"}));
  ASSERT_TRUE(minutes_all.Subscribe(1, v1::MODE_MINUTE, {"*"}));
  const std::int64_t first_minute_ms = NowMs() / 60'000 * 60'000;

  // Several producers, producer-stamped out of order (100 ms behind to 1 s ahead, within the
  // close delay) and some server-stamped, over a few seconds.
  const RandomTickRun run = PublishRandomTicks(server_->port(), topics, 3, milliseconds(2500), 21,
                                               SkewedStamp(100, 1000));
  ASSERT_TRUE(run.ok);
  const std::int64_t last_ts = std::max(run.newest_ts_ns, NowNs());

  Received ticks;
  ASSERT_TRUE(Drain(ticks_all, ticks, milliseconds(500)));
  const auto want_minutes = ReferenceBars(ticks.ticks, v1::MODE_MINUTE);
  const auto want_seconds = ReferenceSecondBars(ticks.ticks);
  ASSERT_GE(want_minutes.size(), topics.size());
  ASSERT_GT(want_seconds.size(), 2 * topics.size());

  // The CLI joins now with since_ms at the first minute: history, then live.
  ChildProcess json_sub(SubCommand(
      server_->port(), {"--mode", "minute", "--json", "--since", std::to_string(first_minute_ms),
                        "--count", std::to_string(want_minutes.size()), "*"}));
  ASSERT_TRUE(json_sub.Start()) << json_sub.error();

  // The one long wait: every bucket has closed by the newest tick's minute end + the delay.
  const std::int64_t last_close_ms = (last_ts / 60'000'000'000 + 1) * 60'000 + 500;
  const auto wait = milliseconds(std::max<std::int64_t>(0, last_close_ms - NowMs()) + 5000);
  Received minutes, seconds;
  ASSERT_TRUE(ReadUntil(minutes_all, minutes, wait,
                        [&] { return minutes.bars.size() >= want_minutes.size(); }));
  ASSERT_TRUE(Drain(minutes_all, minutes, milliseconds(300)));
  ASSERT_TRUE(ReadUntil(seconds_all, seconds, milliseconds(3000),
                        [&] { return seconds.bars.size() >= want_seconds.size(); }));
  ASSERT_TRUE(Drain(seconds_all, seconds, milliseconds(300)));
  EXPECT_TRUE(minutes.ticks.empty());
  EXPECT_TRUE(SameBars(minutes.bars, want_minutes));
  EXPECT_TRUE(SameBars(seconds.bars, want_seconds));
  // Each MINUTE bar is the fold of that minute's SECOND bars as they came over the wire.
  EXPECT_TRUE(SameBars(minutes.bars, MinuteBarsFromSeconds(seconds.bars)));

  // --json: one line per MINUTE bar, the same bars.
  ASSERT_TRUE(WaitUntil([&] { return !json_sub.Running(); }, milliseconds(10000)))
      << json_sub.Output();
  EXPECT_EQ(json_sub.Stop(), 0) << json_sub.Output();
  std::vector<v1::Bar> printed;
  std::istringstream lines(json_sub.Output());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    std::string error;
    const auto v = ParseJson(line, &error);
    ASSERT_TRUE(v && v->is_object()) << line << ": " << error;
    const auto& o = v->as_object();
    EXPECT_EQ(StringField(o, "type"), "bar") << line;
    EXPECT_EQ(StringField(o, "interval"), "minute") << line;
    v1::Bar b;
    b.set_topic(StringField(o, "topic"));
    b.set_interval(v1::MODE_MINUTE);
    b.set_start_ms(o.at("start_ms").to_number<std::int64_t>());
    b.set_open(o.at("open").to_number<double>());
    b.set_high(o.at("high").to_number<double>());
    b.set_low(o.at("low").to_number<double>());
    b.set_close(o.at("close").to_number<double>());
    b.set_volume(o.at("volume").to_number<double>());
    b.set_count(o.at("count").to_number<std::uint64_t>());
    b.set_vwap(o.at("vwap").to_number<double>());
    printed.push_back(b);
  }
  EXPECT_TRUE(SameBars(printed, want_minutes)) << json_sub.Output();

  // The table, from history: --backfill 1 gives each topic's newest MINUTE bar.
  std::map<std::string, v1::Bar> newest;
  for (const auto& [key, bar] : want_minutes) newest[bar.topic()] = bar;
  std::vector<std::string> args = {"--mode", "minute",  "--backfill",
                                   "1",      "--count", std::to_string(topics.size())};
  args.insert(args.end(), topics.begin(), topics.end());
  const CommandResult table =
      RunCommand(SubCommand(server_->port(), args), {}, milliseconds(10000));
  ASSERT_EQ(table.exit_code, 0) << table.output;
  std::istringstream rows(table.output);
  std::string header;
  ASSERT_TRUE(std::getline(rows, header));
  EXPECT_EQ(header.rfind("time (UTC)", 0), 0u) << table.output;
  std::size_t seen = 0;
  for (std::string row; std::getline(rows, row);) {
    std::istringstream cols(row);
    std::string date, time, topic;
    double open = 0, high = 0, low = 0, close = 0, volume = 0, vwap = 0;
    std::uint64_t count = 0;
    ASSERT_TRUE(cols >> date >> time >> topic >> open >> high >> low >> close >> volume >> count >>
                vwap)
        << row;
    ASSERT_EQ(newest.count(topic), 1u) << row;
    const v1::Bar& w = newest[topic];
    EXPECT_EQ(date + " " + time, MinuteTime(w.start_ms())) << row;
    EXPECT_TRUE(Near(open, w.open()) && Near(high, w.high()) && Near(low, w.low()) &&
                Near(close, w.close()) && Near(volume, w.volume()) && Near(vwap, w.vwap()))
        << row << "\n want " << w.ShortDebugString();
    EXPECT_EQ(count, w.count()) << row;
    ++seen;
  }
  EXPECT_EQ(seen, topics.size()) << table.output;
}

// PROTOCOL S8d for MINUTE: a connection with a MINUTE and a SECOND subscription gets the
// minute's watermark after the minute's bar, and the seconds' watermarks after their bars.
TEST_F(MinuteBarsTest, MinuteWatermarkFollowsTheMinutesBar) {
  ASSERT_TRUE(Start({{"WORKERS", "2"},
                     {"BAR_CLOSE_DELAY_MS", "100"},
                     {"HEARTBEAT_INTERVAL", "30s"},
                     {"HEARTBEAT_TIMEOUT", "180s"}}));
  const std::string topic = Topic("m");
  RawClient sub, pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  v1::SubscribeOk minute_ok;
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_MINUTE, {topic, Topic("quiet")}, nullptr, &minute_ok));
  ASSERT_TRUE(sub.Subscribe(2, v1::MODE_SECOND, {topic}));
  EXPECT_EQ(minute_ok.live_from_ms() % 60'000, 0);
  EXPECT_EQ(minute_ok.watermark_ms() % 60'000, 0);
  // Server-stamped ticks: their minute is the minute they are applied in.
  const std::int64_t before_ms = NowMs();
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick(topic, 10, 1), MakeTick(topic, 11, 2)}));
  const std::int64_t after_ms = NowMs();
  const std::int64_t last_minute = after_ms / 60'000 * 60'000;

  // Bars and watermarks in arrival order, until the minute watermark covers the ticks' minute.
  struct Item {
    bool watermark;
    v1::Mode interval;
    std::int64_t start_ms;
  };
  std::vector<Item> items;
  std::int64_t minute_mark = 0;
  const auto deadline =
      steady_clock::now() + milliseconds(last_minute + 60'000 + 100 - NowMs() + 10'000);
  std::uint64_t next_batch_seq = 1;
  while (minute_mark < last_minute) {
    const ReadResult r = sub.ReadFrame(Remaining(deadline));
    ASSERT_TRUE(r.ok()) << ReadStatusName(r.status) << " after " << items.size() << " records";
    ASSERT_EQ(r.frame.frame_type(), protocol::FrameType::kDataBatch) << DescribeFrame(r.frame);
    v1::DataBatch batch;
    ASSERT_TRUE(batch.ParseFromString(r.frame.payload));
    ASSERT_EQ(batch.batch_seq(), next_batch_seq++);
    for (const auto& rec : batch.records()) {
      if (rec.has_watermark()) {
        items.push_back({true, rec.watermark().interval(), rec.watermark().start_ms()});
        if (rec.watermark().interval() == v1::MODE_MINUTE) {
          EXPECT_GT(rec.watermark().start_ms(), minute_mark);
          minute_mark = rec.watermark().start_ms();
        }
      } else {
        ASSERT_TRUE(rec.has_bar()) << rec.ShortDebugString();
        items.push_back({false, rec.bar().interval(), rec.bar().start_ms()});
      }
    }
  }
  // Every bar before the watermark of its interval; the ticks' minute and second bars came.
  std::size_t minute_bars = 0;
  std::size_t second_bars = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].watermark) continue;
    ++(items[i].interval == v1::MODE_MINUTE ? minute_bars : second_bars);
    for (std::size_t j = 0; j < i; ++j) {
      if (items[j].watermark && items[j].interval == items[i].interval) {
        EXPECT_LT(items[j].start_ms, items[i].start_ms) << "a bar after its watermark";
      }
    }
  }
  EXPECT_GE(minute_bars, 1u);
  EXPECT_LE(minute_bars, 2u);  // the ticks may straddle a minute boundary
  EXPECT_GE(second_bars, 1u);
  EXPECT_GE(last_minute, before_ms / 60'000 * 60'000);
}

}  // namespace
}  // namespace tickwire::testing
