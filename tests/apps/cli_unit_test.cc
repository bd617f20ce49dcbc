// The CLI's pure pieces: --since and timestamp parsing, number, table and JSON formatting,
// pub's input formats, the topics listing, connection flags, the demo market.

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common.h"
#include "demo_feed.h"
#include "number_format.h"
#include "record_format.h"
#include "tick_input.h"
#include "topic_listing.h"

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

TEST(ParseSinceTest, OffsetsFromUtc) {
  EXPECT_EQ(ParseSince("2024-05-01T14:00:00+02:00", kNow), kNow);
  EXPECT_EQ(ParseSince("2024-05-01T07:00:00-0500", kNow), kNow);
  EXPECT_EQ(ParseSince("2024-05-01T12:30:00+00:30", kNow), kNow);
}

TEST(ParseSinceTest, RelativeToNow) {
  EXPECT_EQ(ParseSince("-5m", kNow), kNow - 300'000);
  EXPECT_EQ(ParseSince("-30s", kNow), kNow - 30'000);
  EXPECT_EQ(ParseSince("-2h", kNow), kNow - 7'200'000);
  EXPECT_EQ(ParseSince("-250ms", kNow), kNow - 250);
}

TEST(ParseSinceTest, RejectsWhatItCannotRead) {
  for (const char* bad :
       {"", "yesterday", "-5", "-5 m", "2024-05-01", "2024-05-01T12:00:00", "2024-13-01T12:00:00Z",
        "2024-05-01T12:00:00.Z", "2024-02-30T12:00:00Z", "2024-05-01T12:00:00+24:00", "12abc"}) {
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

// The column (0-based) of each row's `nth` decimal point, or npos for a row without one there.
std::size_t PointColumn(const std::string& row, std::size_t start) { return row.find('.', start); }

TEST(NumberFormatTest, FixedShortestNeverUsesAnExponent) {
  EXPECT_EQ(FixedShortest(187.25), "187.25");
  EXPECT_EQ(FixedShortest(1e15), "1000000000000000");
  EXPECT_EQ(FixedShortest(-1e15), "-1000000000000000");
  EXPECT_EQ(FixedShortest(1e-7), "0.0000001");
  EXPECT_EQ(FixedShortest(250000), "250000");
  EXPECT_EQ(FixedShortest(-0.0), "0");
  // Every digit that the double needs to read back exactly, and no more.
  EXPECT_EQ(FixedShortest(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FixedShortest(1.08505), "1.08505");
  for (double v : {66947.89, 0.001, 123456789.123, 1e-12, 9.87654321e14}) {
    const std::string s = FixedShortest(v);
    EXPECT_EQ(s.find_first_of("eE"), std::string::npos) << s;
    EXPECT_EQ(std::stod(s), v) << s;
  }
}

TEST(NumberFormatTest, FixedSignificantRoundsDerivedValues) {
  EXPECT_EQ(FixedSignificant(3401.689433333333, 8), "3401.6894");
  EXPECT_EQ(FixedSignificant(0.1 + 0.2, 15), "0.3");
  EXPECT_EQ(FixedSignificant(1.2e15, 10), "1200000000000000");
  EXPECT_EQ(FixedSignificant(1.0850164432, 10), "1.085016443");
  EXPECT_EQ(FixedSignificant(0, 10), "0");
  EXPECT_EQ(TableVolume(12.345000000000001), "12.345");
  EXPECT_EQ(TableVwap(66955.123456789), "66955.12346");
}

TEST(NumberFormatTest, DecimalColumnAlignsOnThePoint) {
  DecimalColumn c(13);
  for (const char* v : {"66947.89", "1.08505", "250000", "-3.5"}) c.Fit(v);
  EXPECT_EQ(c.width(), 13);
  const std::string a = c.Format("66947.89");
  const std::string b = c.Format("1.08505");
  const std::string d = c.Format("250000");
  const std::string e = c.Format("-3.5");
  EXPECT_EQ(a, "  66947.89   ");
  EXPECT_EQ(b, "      1.08505");
  EXPECT_EQ(d, " 250000      ");
  EXPECT_EQ(e, "     -3.5    ");
  // Wider values widen the column; it never shrinks.
  c.Fit("123456789.123456789");
  EXPECT_EQ(c.width(), 9 + 1 + 9);
  EXPECT_EQ(c.Format("1.5"), "        1.5        ");
  c.Fit("1");
  EXPECT_EQ(c.width(), 19);
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
  TableFormatter table(client::Mode::kSecond);
  table.Fit(b);
  std::string row;
  table.AppendRow(row, b);
  EXPECT_EQ(row,
            "2024-05-01 12:00:00  BTC-USD              67012.5      67020.25       67001.1 "
            "      67015.3        12.345      42      67011.23456\n");
  // The numeric columns end where their headings end.
  const auto h = ColumnEnds(table.Header());
  const auto r = ColumnEnds(row);
  ASSERT_EQ(r.size(), 10u);
  ASSERT_EQ(h.size(), r.size());
  for (std::size_t i = 1; i <= 7; ++i) EXPECT_EQ(h[h.size() - i], r[r.size() - i]) << i;
}

TEST(RecordFormatTest, TickRowsAlignOnTheDecimalPointWithoutExponents) {
  TableFormatter table(client::Mode::kTick);
  const std::vector<client::Record> ticks = {
      client::Tick{"EURUSD", 1.08345, 250000, kNow * 1'000'000, 17, 16},
      client::Tick{"BTC-USD", 66947.89, 0.001, kNow * 1'000'000, 5, 4},
      client::Tick{"BIG", 1e15, 1e-7, kNow * 1'000'000, 1, 0}};
  for (const auto& t : ticks) table.Fit(t);
  std::vector<std::string> rows;
  for (const auto& t : ticks) {
    std::string row;
    table.AppendRow(row, t);
    EXPECT_EQ(row.find("e+"), std::string::npos) << row;
    EXPECT_EQ(row.find("e-"), std::string::npos) << row;
    rows.push_back(row);
  }
  EXPECT_NE(rows[2].find(" 1000000000000000 "), std::string::npos) << rows[2];
  EXPECT_NE(rows[2].find(" 0.0000001 "), std::string::npos) << rows[2];
  // The price's point (after the time's) and the size's point line up in every row; an
  // integer's last digit sits just before it.
  const std::size_t time_point = std::string("2024-05-01 12:00:00").size();
  const std::size_t price_point = PointColumn(rows[0], time_point + 1);
  EXPECT_EQ(PointColumn(rows[1], time_point + 1), price_point) << rows[0] << rows[1];
  EXPECT_EQ(rows[2][price_point - 1], '0') << rows[2];
  EXPECT_EQ(rows[2][price_point], ' ') << rows[2];
  const std::size_t size_point = PointColumn(rows[1], price_point + 1);
  EXPECT_EQ(PointColumn(rows[2], price_point + 12), size_point) << rows[1] << rows[2];
  EXPECT_EQ(rows[0][size_point - 1], '0') << rows[0];
  // The header's columns end where the rows' do.
  const auto h = ColumnEnds(table.Header());
  for (const auto& row : rows) {
    const auto r = ColumnEnds(row);
    EXPECT_EQ(h.back(), r.back()) << row;  // seq
  }
}

TEST(RecordFormatTest, JsonLinesKeep64BitValuesExact) {
  client::Bar b;
  b.topic = "A\"B";
  b.interval = client::Mode::kMinute;
  b.start_ms = kNow;
  b.open = b.high = b.low = b.close = b.vwap = 1.5;
  b.volume = 2e15;
  b.count = 3;
  std::string out;
  AppendJsonLine(out, b);
  EXPECT_EQ(out,
            "{\"type\":\"bar\",\"interval\":\"minute\",\"topic\":\"A\\\"B\",\"time\":"
            "\"2024-05-01T12:00:00.000Z\",\"start_ms\":1714564800000,\"open\":1.5,\"high\":1.5,"
            "\"low\":1.5,\"close\":1.5,\"volume\":2000000000000000,\"count\":3,\"vwap\":1.5}\n");
  // A ts_ns of today is above 2^53: as a string by default, ms as a number on request.
  const client::Tick t{"X", 2.25, 1e-7, 1'714'564'800'123'456'789, 9, 8};
  out.clear();
  AppendJsonLine(out, t);
  EXPECT_EQ(out,
            "{\"type\":\"tick\",\"topic\":\"X\",\"time\":\"2024-05-01T12:00:00.123456789Z\","
            "\"price\":2.25,\"size\":0.0000001,\"ts_ns\":\"1714564800123456789\",\"seq\":\"9\","
            "\"prev_seq\":\"8\"}\n");
  out.clear();
  AppendJsonLine(out, t, JsonTs::kMs);
  EXPECT_EQ(
      out,
      "{\"type\":\"tick\",\"topic\":\"X\",\"time\":\"2024-05-01T12:00:00.123456789Z\","
      "\"price\":2.25,\"size\":0.0000001,\"ts_ms\":1714564800123,\"seq\":9,\"prev_seq\":8}\n");
  EXPECT_EQ(ParseJsonTs("string"), JsonTs::kString);
  EXPECT_EQ(ParseJsonTs("ms"), JsonTs::kMs);
  EXPECT_FALSE(ParseJsonTs("ns"));
}

TEST(RecordFormatTest, WatermarksMarkTheEndOfTheirInterval) {
  const client::Watermark second{client::Mode::kSecond, kNow + 1000};
  const client::Watermark minute{client::Mode::kMinute, kNow};
  std::string out;
  AppendJsonLine(out, second);
  AppendJsonLine(out, minute);
  EXPECT_EQ(out,
            "{\"type\":\"watermark\",\"interval\":\"second\",\"time\":"
            "\"2024-05-01T12:00:01.000Z\",\"start_ms\":1714564801000}\n"
            "{\"type\":\"watermark\",\"interval\":\"minute\",\"time\":"
            "\"2024-05-01T12:00:00.000Z\",\"start_ms\":1714564800000}\n");
  TableFormatter table(client::Mode::kSecond);
  table.Fit(second);  // no numbers: the columns stay as they are
  const std::string header = table.Header();
  out.clear();
  table.AppendRow(out, second);
  table.AppendRow(out, minute);
  EXPECT_EQ(out,
            "2024-05-01 12:00:01  -- second final --\n"
            "2024-05-01 12:00     -- minute final --\n");
  EXPECT_EQ(table.Header(), header);
}

TEST(IsoTimeTest, NanosecondsAndOffsets) {
  const std::int64_t now_ns = kNow * 1'000'000;
  EXPECT_EQ(ParseIsoTimeNs("2024-05-01T12:00:00Z"), now_ns);
  EXPECT_EQ(ParseIsoTimeNs("2024-05-01T12:00:00.123456789Z"), now_ns + 123'456'789);
  EXPECT_EQ(ParseIsoTimeNs("2024-05-01 12:00:00.1234567891234Z"), now_ns + 123'456'789);
  EXPECT_EQ(ParseIsoTimeNs("2024-05-01T12:00:00,5Z"), now_ns + 500'000'000);
  EXPECT_EQ(ParseIsoTimeNs("2024-05-01T13:30:00.000001+01:30"), now_ns + 1000);
  EXPECT_EQ(ParseIsoTimeNs("2024-02-29T00:00:00Z"), 1'709'164'800'000'000'000);
  EXPECT_EQ(ParseIsoTimeNs("1969-12-31T23:59:59.5Z"), -500'000'000);
  for (const char* bad : {"2024-05-01T12:00:00", "2023-02-29T00:00:00Z", "2024-05-01T12:00Z",
                          "2024-05-01T12:00:00+2", "2262-04-12T00:00:00Z", "x024-05-01T12:00:00Z",
                          "2024-05-01T12:00:00ZZ", "2024-05-01T12:00:00+01:3"}) {
    EXPECT_FALSE(ParseIsoTimeNs(bad).has_value()) << bad;
  }
}

TEST(TickInputTest, TimestampsInEveryForm) {
  EXPECT_EQ(ParseTimestampNs("", TsUnit::kMs), 0);
  EXPECT_EQ(ParseTimestampNs("1714564800123", TsUnit::kMs), 1'714'564'800'123'000'000);
  EXPECT_EQ(ParseTimestampNs("1714564800123456789", TsUnit::kNs), 1'714'564'800'123'456'789);
  EXPECT_EQ(ParseTimestampNs("1714564800123.000", TsUnit::kMs), 1'714'564'800'123'000'000);
  EXPECT_EQ(ParseTimestampNs("2024-05-01T12:00:00.5Z", TsUnit::kNs),
            kNow * 1'000'000 + 500'000'000);
  for (const char* bad :
       {"-5", "1714564800123.5", "9223372036855", "12abc", "1969-12-31T00:00:00Z", "yesterday"}) {
    EXPECT_FALSE(ParseTimestampNs(bad, TsUnit::kMs).has_value()) << bad;
  }
}

using Status = TickReader::Status;
constexpr std::int64_t kNowNs = kNow * 1'000'000;

struct ReadResult {
  Status status;
  client::Tick tick;
  std::string why;
};
std::vector<ReadResult> ReadAll(TickReader& reader, const std::string& text,
                                std::int64_t now_ns = kNowNs) {
  std::vector<ReadResult> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    ReadResult r;
    r.status = reader.Read(line, now_ns, r.tick, r.why);
    out.push_back(std::move(r));
  }
  return out;
}

TEST(TickInputTest, TextLinesWithAndWithoutTimestamps) {
  TickReader reader(InputFormat::kText, TsUnit::kMs);
  const auto r = ReadAll(reader,
                         "# comment\n\nAAPL 187.25 100\r\nMSFT 402.5 20 1714564800123\n"
                         "X 1 1 2024-05-01T12:00:00.000000001Z\nnot-a-tick\nY 1 1 1 1\n");
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0].status, Status::kSkip);
  EXPECT_EQ(r[1].status, Status::kSkip);
  ASSERT_EQ(r[2].status, Status::kTick) << r[2].why;
  EXPECT_EQ(r[2].tick.topic, "AAPL");
  EXPECT_EQ(r[2].tick.price, 187.25);
  EXPECT_EQ(r[2].tick.size, 100);
  EXPECT_EQ(r[2].tick.ts_ns, 0);  // the server stamps it
  ASSERT_EQ(r[3].status, Status::kTick) << r[3].why;
  EXPECT_EQ(r[3].tick.ts_ns, 1'714'564'800'123'000'000);
  ASSERT_EQ(r[4].status, Status::kTick) << r[4].why;
  EXPECT_EQ(r[4].tick.ts_ns, kNowNs + 1);
  EXPECT_EQ(r[5].status, Status::kBad);
  EXPECT_EQ(r[5].why, "expected 'TOPIC PRICE SIZE [TS]', got 1 field");
  EXPECT_EQ(r[6].status, Status::kBad);
}

TEST(TickInputTest, TicksTheServerWouldRejectAreBadLines) {
  TickReader reader(InputFormat::kText, TsUnit::kNs);
  const auto r = ReadAll(reader,
                         "bad!topic 1 1\nA 1e16 1\nA 1 -1\nA nan 1\nA 1 inf\nA 1 2e15\n"
                         "A 1 1 " +
                             std::to_string(kNowNs + 5'100'000'000) +
                             "\n"
                             "A 1 1 " +
                             std::to_string(kNowNs + 4'900'000'000) + "\n" + std::string(129, 'T') +
                             " 1 1\nA -1e15 0\n");
  ASSERT_EQ(r.size(), 10u);
  for (std::size_t i = 0; i < 7; ++i) EXPECT_EQ(r[i].status, Status::kBad) << i;
  EXPECT_NE(r[0].why.find("bad topic"), std::string::npos) << r[0].why;
  EXPECT_NE(r[6].why.find("5 s"), std::string::npos) << r[6].why;
  EXPECT_EQ(r[7].status, Status::kTick) << r[7].why;  // within the 5 s
  EXPECT_EQ(r[8].status, Status::kBad);
  EXPECT_EQ(r[9].status, Status::kTick) << r[9].why;
}

TEST(TickInputTest, CsvWithoutHeader) {
  TickReader reader(InputFormat::kCsv, TsUnit::kMs);
  const auto r = ReadAll(reader, "AAPL,187.25,100\n\"MSFT\", 402.5 ,20,1714564800123\nA,1\n");
  ASSERT_EQ(r.size(), 3u);
  ASSERT_EQ(r[0].status, Status::kTick) << r[0].why;
  EXPECT_EQ(r[0].tick.ts_ns, 0);
  ASSERT_EQ(r[1].status, Status::kTick) << r[1].why;
  EXPECT_EQ(r[1].tick.topic, "MSFT");
  EXPECT_EQ(r[1].tick.price, 402.5);
  EXPECT_EQ(r[1].tick.ts_ns, 1'714'564'800'123'000'000);
  EXPECT_EQ(r[2].status, Status::kBad);
}

TEST(TickInputTest, CsvHeaderNamesTheColumnsInAnyOrder) {
  TickReader reader(InputFormat::kCsv, TsUnit::kMs);
  const auto r = ReadAll(reader,
                         "Timestamp,Size,Topic,venue,Price\n"
                         "2024-05-01T12:00:00.25Z,3,FX.EURUSD,x,1.08345\n"
                         ",4,FX.GBPUSD,y,1.27\n"
                         "1714564800000,5,FX.EURUSD,x\n");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].status, Status::kSkip);
  ASSERT_EQ(r[1].status, Status::kTick) << r[1].why;
  EXPECT_EQ(r[1].tick.topic, "FX.EURUSD");
  EXPECT_EQ(r[1].tick.price, 1.08345);
  EXPECT_EQ(r[1].tick.size, 3);
  EXPECT_EQ(r[1].tick.ts_ns, kNowNs + 250'000'000);
  ASSERT_EQ(r[2].status, Status::kTick) << r[2].why;
  EXPECT_EQ(r[2].tick.ts_ns, 0);
  EXPECT_EQ(r[3].status, Status::kBad);  // a field short
  EXPECT_EQ(r[3].why, "expected 5 fields as in the header, got 4");

  TickReader ns(InputFormat::kCsv, TsUnit::kMs);
  const auto n = ReadAll(ns, "topic,price,size,ts_ns\nA,1,1,1714564800000000007\n");
  ASSERT_EQ(n[1].status, Status::kTick) << n[1].why;
  EXPECT_EQ(n[1].tick.ts_ns, kNowNs + 7);  // the column's name says ns
}

TEST(TickInputTest, CsvHeaderWithoutANeededColumnIsFatal) {
  for (const char* header :
       {"topic,size,ts", "topic,price,price,size", "topic,price,size,ts,time"}) {
    TickReader reader(InputFormat::kCsv, TsUnit::kMs);
    const auto r = ReadAll(reader, std::string(header) + "\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, Status::kFatal) << header;
    EXPECT_FALSE(r[0].why.empty());
  }
}

TEST(TickInputTest, JsonLines) {
  TickReader reader(InputFormat::kJson, TsUnit::kMs);
  const auto r =
      ReadAll(reader,
              "{\"topic\":\"AAPL\",\"price\":187.25,\"size\":100}\n"
              "{\"topic\":\"AAPL\",\"price\":\"187.3\",\"size\":5,\"ts\":1714564800123}\n"
              "{\"topic\":\"AAPL\",\"price\":1,\"size\":1,\"ts_ns\":1714564800123456789}\n"
              "{\"topic\":\"AAPL\",\"price\":1,\"size\":1,\"ts_ns\":\"1714564800123456789\"}\n"
              "{\"topic\":\"AAPL\",\"price\":1,\"size\":1,\"time\":\"2024-05-01T12:00:00.5Z\"}\n"
              "{\"topic\":\"AAPL\",\"price\":1,\"size\":1,\"ts_ms\":1714564800123,\"time\":\"x\"}\n"
              "{\"type\":\"bar\",\"topic\":\"AAPL\",\"price\":1,\"size\":1}\n"
              "{\"topic\":\"AAPL\",\"price\":1}\n"
              "{\"topic\":7,\"price\":1,\"size\":1}\n"
              "[1,2,3]\n"
              "{\"topic\":\"AAPL\",\"price\":1,\"size\":1\n"
              "{\"topic\":\"AAPL\",\"price\":1,\"size\":1,\"ts\":{}}\n");
  ASSERT_EQ(r.size(), 12u);
  for (std::size_t i = 0; i < 6; ++i) ASSERT_EQ(r[i].status, Status::kTick) << i << r[i].why;
  EXPECT_EQ(r[0].tick.ts_ns, 0);
  EXPECT_EQ(r[1].tick.price, 187.3);
  EXPECT_EQ(r[1].tick.ts_ns, 1'714'564'800'123'000'000);
  EXPECT_EQ(r[2].tick.ts_ns, 1'714'564'800'123'456'789);  // exact: parsed as an integer
  EXPECT_EQ(r[3].tick.ts_ns, 1'714'564'800'123'456'789);
  EXPECT_EQ(r[4].tick.ts_ns, kNowNs + 500'000'000);
  EXPECT_EQ(r[5].tick.ts_ns, 1'714'564'800'123'000'000);  // ts_ms comes before time
  for (std::size_t i = 6; i < r.size(); ++i) EXPECT_EQ(r[i].status, Status::kBad) << i;
}

TEST(TickInputTest, SubJsonOutputReadsBackAsTheSameTick) {
  const client::Tick t{
      "FX.EURUSD", 1.0834500000000001, 0.30000000000000004, 1'714'564'800'123'456'789, 42, 41};
  for (const JsonTs mode : {JsonTs::kString, JsonTs::kMs}) {
    std::string line;
    AppendJsonLine(line, t, mode);
    line.pop_back();
    TickReader reader(InputFormat::kJson, TsUnit::kMs);
    client::Tick back;
    std::string why;
    ASSERT_EQ(reader.Read(line, kNowNs, back, why), Status::kTick) << why;
    EXPECT_EQ(back.topic, t.topic);
    EXPECT_EQ(back.price, t.price);
    EXPECT_EQ(back.size, t.size);
    EXPECT_EQ(back.ts_ns, mode == JsonTs::kString ? t.ts_ns : t.ts_ns / 1'000'000 * 1'000'000);
  }
}

TEST(TopicListingTest, NewestTickOrBarPerTopicSorted) {
  TopicListing l;
  EXPECT_TRUE(l.Add(client::Tick{"MSFT", 402.5, 1, kNowNs + 2, 7, 6}));
  EXPECT_FALSE(l.Add(client::Tick{"MSFT", 402, 1, kNowNs + 1, 6, 5}));  // older: kept out
  client::Bar minute;
  minute.topic = "FX.EURUSD";
  minute.interval = client::Mode::kMinute;
  minute.start_ms = kNow;
  minute.close = 1.08;
  client::Bar second = minute;
  second.interval = client::Mode::kSecond;
  second.start_ms = kNow + 59'000;  // ends with the minute: not newer
  second.close = 1.09;
  EXPECT_TRUE(l.Add(minute));
  EXPECT_FALSE(l.Add(second));
  EXPECT_TRUE(l.Add(client::Tick{"AAPL", 187.25, 100, kNowNs, 12345, 12344}));
  EXPECT_EQ(l.size(), 3u);

  std::string names;
  l.AppendNames(names);
  EXPECT_EQ(names, "AAPL\nFX.EURUSD\nMSFT\n");
  std::string json;
  l.AppendJsonLines(json);
  EXPECT_EQ(json,
            "{\"topic\":\"AAPL\",\"time\":\"2024-05-01T12:00:00.000000000Z\",\"last_ms\":"
            "1714564800000,\"price\":187.25,\"seq\":\"12345\"}\n"
            "{\"topic\":\"FX.EURUSD\",\"time\":\"2024-05-01T12:00:00.000000000Z\",\"last_ms\":"
            "1714564800000,\"price\":1.08}\n"
            "{\"topic\":\"MSFT\",\"time\":\"2024-05-01T12:00:00.000000002Z\",\"last_ms\":"
            "1714564800000,\"price\":402.5,\"seq\":\"7\"}\n");
  std::string table;
  l.AppendTable(table);
  EXPECT_EQ(table,
            "topic      last (UTC)                   price    seq\n"
            "AAPL       2024-05-01 12:00:00.000000  187.25  12345\n"
            "FX.EURUSD  2024-05-01 12:00:00.000000    1.08      -\n"
            "MSFT       2024-05-01 12:00:00.000000  402.5       7\n");
}

TEST(CommonTest, PluralGrammar) {
  EXPECT_EQ(Plural(0, "tick"), "0 ticks");
  EXPECT_EQ(Plural(1, "tick"), "1 tick");
  EXPECT_EQ(Plural(2, "frame"), "2 frames");
  EXPECT_EQ(Plural(1, "input line"), "1 input line");
  EXPECT_EQ(Plural(3, "entry", "entries"), "3 entries");
}

TEST(CommonTest, CredentialsAreRequired) {
  ConnectionFlags f;
  std::string error;
  EXPECT_FALSE(MakeClientOptions(f, "t", error));
  EXPECT_EQ(error, "no credentials: set STREAM_USER and STREAM_PASS, or pass --user and --pass");
  f.user = "u";
  EXPECT_FALSE(MakeClientOptions(f, "t", error));
  EXPECT_EQ(error, "no password for user 'u': set STREAM_PASS or pass --pass");
  f.pass = "p";
  const auto o = MakeClientOptions(f, "t", error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->username, "u");
  EXPECT_EQ(o->password, "p");
  EXPECT_FALSE(o->tls.enabled);
  f.addr = "nonsense";
  EXPECT_FALSE(MakeClientOptions(f, "t", error));
  EXPECT_NE(error.find("--addr"), std::string::npos) << error;
}

TEST(CommonTest, TlsFlags) {
  ConnectionFlags f;
  f.user = "u";
  f.pass = "p";
  std::string error;
  f.tls = true;
  auto o = MakeClientOptions(f, "t", error);
  ASSERT_TRUE(o) << error;
  EXPECT_TRUE(o->tls.enabled);
  EXPECT_TRUE(o->tls.ca_file.empty());  // the system's CAs
  f.tls = false;
  f.ca_file = "ca.pem";
  o = MakeClientOptions(f, "t", error);
  ASSERT_TRUE(o) << error;
  EXPECT_TRUE(o->tls.enabled);  // implied
  EXPECT_EQ(o->tls.ca_file, "ca.pem");
  f.cert_file = "client.pem";
  EXPECT_FALSE(MakeClientOptions(f, "t", error));  // without --key
  EXPECT_NE(error.find("--key"), std::string::npos) << error;
  f.key_file = "client.key";
  f.pass.clear();  // the certificate is the credential (TLS_CLIENT_CN_USER)
  o = MakeClientOptions(f, "t", error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->tls.cert_file, "client.pem");
  EXPECT_EQ(o->tls.key_file, "client.key");
  f.ca_file.clear();
  o = MakeClientOptions(f, "t", error);
  ASSERT_TRUE(o) << error;
  EXPECT_TRUE(o->tls.enabled);  // a client certificate implies TLS too
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
