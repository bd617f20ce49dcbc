// The CLI's pure pieces: --since parsing, table and JSON formatting, the demo market.

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "demo_feed.h"
#include "record_format.h"

namespace tickwire::cli {
namespace {

constexpr std::int64_t kNow = 1'714'564'800'000;  // 2024-05-01T12:00:00Z

TEST(ParseSinceTest, EpochMilliseconds) {
  EXPECT_EQ(ParseSince("1714564800123", kNow), 1'714'564'800'123);
}

TEST(ParseSinceTest, Rfc3339Utc) {
  EXPECT_EQ(ParseSince("2024-05-01T12:00:00Z", kNow), kNow);
  EXPECT_EQ(ParseSince("2024-05-01T12:00:00.5Z", kNow), kNow + 500);
  EXPECT_EQ(ParseSince("2024-05-01T12:00:00.123456789Z", kNow), kNow + 123);
  EXPECT_EQ(ParseSince("2024-05-01 12:00:01+00:00", kNow), kNow + 1000);
  EXPECT_EQ(ParseSince("1970-01-01T00:00:00Z", kNow), 0);
}

TEST(ParseSinceTest, RelativeToNow) {
  EXPECT_EQ(ParseSince("-5m", kNow), kNow - 300'000);
  EXPECT_EQ(ParseSince("-30s", kNow), kNow - 30'000);
  EXPECT_EQ(ParseSince("-2h", kNow), kNow - 7'200'000);
  EXPECT_EQ(ParseSince("-250ms", kNow), kNow - 250);
}

TEST(ParseSinceTest, RejectsWhatItCannotRead) {
  for (const char* bad :
       {"", "yesterday", "-5", "-5 m", "2024-05-01", "2024-05-01T12:00:00",
        "2024-05-01T12:00:00+02:00", "2024-13-01T12:00:00Z", "2024-05-01T12:00:00.Z", "12abc"}) {
    EXPECT_FALSE(ParseSince(bad, kNow).has_value()) << bad;
  }
}

TEST(RecordFormatTest, BarTimesAreUtc) {
  EXPECT_EQ(FormatBarTime(kNow + 1000, client::Mode::kSecond), "2024-05-01 12:00:01");
  EXPECT_EQ(FormatBarTime(kNow + 60'000, client::Mode::kMinute), "2024-05-01 12:01");
  EXPECT_EQ(FormatTickTime(kNow * 1'000'000 + 1'234'567), "2024-05-01 12:00:00.001234");
}

// Column ends of a line: positions where a non-space is followed by a space or the end.
std::vector<std::size_t> ColumnEnds(const std::string& line) {
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] != ' ' && line[i] != '\n' &&
        (i + 1 == line.size() || line[i + 1] == ' ' || line[i + 1] == '\n')) {
      ends.push_back(i);
    }
  }
  return ends;
}

TEST(RecordFormatTest, BarRowsLineUpWithTheHeader) {
  client::Bar b;
  b.topic = "BTC-USD";
  b.interval = client::Mode::kSecond;
  b.start_ms = kNow;
  b.open = 67012.5;
  b.high = 67020.25;
  b.low = 67001.1;
  b.close = 67015.3;
  b.volume = 12.345;
  b.count = 42;
  b.vwap = 67011.23456;
  std::string row;
  AppendTableRow(row, b);
  EXPECT_EQ(row,
            "2024-05-01 12:00:00  BTC-USD              67012.5      67020.25       67001.1"
            "       67015.3        12.345      42     67011.235\n");
  const std::string header = TableHeader(client::Mode::kSecond);
  // The numeric columns are right-aligned under their headings.
  const auto h = ColumnEnds(header);
  const auto r = ColumnEnds(row);
  ASSERT_EQ(r.size(), 10u);
  for (std::size_t i = 1; i <= 7; ++i) EXPECT_EQ(h[h.size() - i], r[r.size() - i]) << i;
}

TEST(RecordFormatTest, TickRowsLineUpWithTheHeader) {
  client::Tick t{"EURUSD", 1.08345, 250000, kNow * 1'000'000, 17, 16};
  std::string row;
  AppendTableRow(row, t);
  EXPECT_EQ(row,
            "2024-05-01 12:00:00.000000  EURUSD               1.08345        250000         17\n");
  const auto h = ColumnEnds(TableHeader(client::Mode::kTick));
  const auto r = ColumnEnds(row);
  for (std::size_t i = 1; i <= 3; ++i) EXPECT_EQ(h[h.size() - i], r[r.size() - i]) << i;
}

TEST(RecordFormatTest, JsonLines) {
  client::Bar b;
  b.topic = "A\"B";
  b.interval = client::Mode::kMinute;
  b.start_ms = kNow;
  b.open = b.high = b.low = b.close = b.vwap = 1.5;
  b.volume = 2;
  b.count = 3;
  std::string out;
  AppendJsonLine(out, b);
  EXPECT_EQ(out,
            "{\"type\":\"bar\",\"interval\":\"minute\",\"topic\":\"A\\\"B\",\"time\":"
            "\"2024-05-01T12:00:00.000Z\",\"start_ms\":1714564800000,\"open\":1.5,\"high\":1.5,"
            "\"low\":1.5,\"close\":1.5,\"volume\":2,\"count\":3,\"vwap\":1.5}\n");
  out.clear();
  AppendJsonLine(out, client::Tick{"X", 2.25, 1, 5, 9, 8});
  EXPECT_EQ(out,
            "{\"type\":\"tick\",\"topic\":\"X\",\"time\":\"1970-01-01T00:00:00.000000005Z\","
            "\"price\":2.25,\"size\":1,\"ts_ns\":5,\"seq\":9,\"prev_seq\":8}\n");
}

TEST(DemoMarketTest, SymbolsTakeTurnsAndPricesWalk) {
  DemoMarket m({"AAPL", "EURUSD", "NEW-1"}, 42);
  std::map<std::string, std::vector<double>> prices;
  for (int i = 0; i < 3000; ++i) {
    const auto t = m.Next();
    EXPECT_EQ(t.ts_ns, 0);  // the server stamps it
    EXPECT_GT(t.price, 0);
    EXPECT_GT(t.size, 0);
    EXPECT_TRUE(std::isfinite(t.price));
    prices[t.topic].push_back(t.price);
  }
  ASSERT_EQ(prices.size(), 3u);
  for (const auto& [topic, p] : prices) {
    EXPECT_EQ(p.size(), 1000u) << topic;  // an equal share each
    std::set<double> distinct(p.begin(), p.end());
    EXPECT_GT(distinct.size(), 10u) << topic;  // it moves
  }
  // Prices sit on the instrument's increment, printed without binary noise.
  for (double p : prices["AAPL"]) EXPECT_EQ(std::round(p * 100) / 100, p);
  for (double p : prices["EURUSD"]) EXPECT_EQ(std::round(p * 100000) / 100000, p);
  // A random walk, not a jump: one step moves an FX rate by well under 1%.
  const auto& fx = prices["EURUSD"];
  for (std::size_t i = 1; i < fx.size(); ++i) EXPECT_LT(std::abs(fx[i] / fx[i - 1] - 1), 0.01);
}

TEST(DemoMarketTest, SameSeedSameFeed) {
  DemoMarket a(DefaultDemoSymbols(), 7);
  DemoMarket b(DefaultDemoSymbols(), 7);
  DemoMarket c(DefaultDemoSymbols(), 8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto ta = a.Next();
    const auto tb = b.Next();
    const auto tc = c.Next();
    EXPECT_EQ(ta.topic, tb.topic);
    EXPECT_EQ(ta.price, tb.price);
    EXPECT_EQ(ta.size, tb.size);
    differs = differs || ta.price != tc.price;
  }
  EXPECT_TRUE(differs);
  EXPECT_GE(DefaultDemoSymbols().size(), 5u);
}

}  // namespace
}  // namespace tickwire::cli
