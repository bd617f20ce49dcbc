#include "protocol/wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "random_ticks.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::protocol {
namespace {

using testing::Bytes;
using testing::OwnedTick;
using testing::SameTick;
using testing::TickGenerator;
using testing::ToProto;

std::string ProtoVarint(std::uint64_t v) {
  v1::Heartbeat hb;  // int64 field 1: tag 0x08 then the varint
  hb.set_ts_ms(static_cast<std::int64_t>(v));
  return hb.SerializeAsString().substr(1);
}

TEST(Varint, MatchesProtobufAtEveryBoundary) {
  std::vector<std::uint64_t> values{0, 1, std::numeric_limits<std::uint64_t>::max()};
  for (int bits = 7; bits < 64; bits += 7) {
    const std::uint64_t edge = std::uint64_t{1} << bits;
    values.insert(values.end(), {edge - 1, edge, edge + 1});
  }
  for (std::uint64_t v : values) {
    if (v == 0) continue;  // proto3 omits a zero field; checked by size below
    std::string ours;
    AppendVarint(ours, v);
    EXPECT_EQ(ours, ProtoVarint(v)) << v;
    EXPECT_EQ(VarintSize(v), ours.size()) << v;
    EXPECT_EQ(VarintSize(v), google::protobuf::io::CodedOutputStream::VarintSize64(v)) << v;
  }
  std::string zero;
  AppendVarint(zero, 0);
  EXPECT_EQ(zero, std::string(1, '\0'));
  EXPECT_EQ(VarintSize(0), 1U);
}

// Reader::Varint has three paths: one byte, the word-at-a-time decode when 10 or more bytes
// remain, and the bounds-checked loop near the end of the input. All three give the same value
// and length for every varint length, and reject an 11-byte varint.
TEST(Varint, ReaderPathsAgreeAtEveryLength) {
  std::vector<std::uint64_t> values{0, 1, std::numeric_limits<std::uint64_t>::max()};
  for (int bits = 7; bits < 64; bits += 7) {
    const std::uint64_t edge = std::uint64_t{1} << bits;
    values.insert(values.end(), {edge - 1, edge, edge + 1, edge | (edge >> 1) | 0x55});
  }
  for (std::uint64_t v : values) {
    std::string encoded;
    AppendVarint(encoded, v);
    for (std::size_t trailing : {0UL, 1UL, 9UL, 10UL, 16UL}) {
      const std::string input = encoded + std::string(trailing, '\x81');
      const auto bytes = Bytes(input);
      wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
      EXPECT_EQ(r.Varint(), v) << v << " trailing " << trailing;
      EXPECT_TRUE(r.ok);
      EXPECT_EQ(static_cast<std::size_t>(r.p - bytes.data()), encoded.size()) << v;
    }
  }
  // A 10th byte keeps only its lowest bit, as protobuf's parser does.
  {
    const std::string input = std::string(9, '\xff') + "\x7f" + std::string(10, '\0');
    const auto bytes = Bytes(input);
    wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
    EXPECT_EQ(r.Varint(), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(r.p - bytes.data(), 10);
  }
  for (std::size_t trailing : {0UL, 10UL}) {
    const std::string input = std::string(10, '\xff') + "\x01" + std::string(trailing, '\0');
    const auto bytes = Bytes(input);
    wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
    r.Varint();
    EXPECT_FALSE(r.ok) << "trailing " << trailing;
  }
  // Truncated: continuation bits up to the end of the input.
  for (std::size_t len = 1; len <= 12; ++len) {
    const std::string input(len, '\x80');
    const auto bytes = Bytes(input);
    wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
    r.Varint();
    EXPECT_FALSE(r.ok) << len;
  }
}

// The entry for one tick is exactly what protobuf writes for a DataBatch holding only that
// record and no batch_seq.
std::string ProtoEntry(const TickFields& t) {
  v1::DataBatch batch;
  ToProto(t, *batch.add_records()->mutable_tick());
  return batch.SerializeAsString();
}

TEST(AppendTickRecordEntry, ByteIdenticalToProtobufForRandomTicks) {
  TickGenerator gen(7);
  for (int i = 0; i < 20000; ++i) {
    const OwnedTick t = gen.Tick();
    std::string ours;
    AppendTickRecordEntry(ours, t.Fields());
    ASSERT_EQ(ours, ProtoEntry(t.Fields())) << "tick " << i << " topic '" << t.topic << "'";
  }
}

TEST(AppendTickRecordEntry, ByteIdenticalForEdgeCases) {
  std::vector<TickFields> cases;
  cases.push_back({});  // every field zero: an empty Tick, still a present Record.tick
  cases.push_back({.topic = "AAPL", .price = -0.0, .size = -0.0});  // -0.0 is written
  cases.push_back({.topic = "a", .price = 0.0, .size = 0.0, .ts_ns = -1});
  cases.push_back({.topic = "BTC-USD",
                   .price = std::numeric_limits<double>::quiet_NaN(),
                   .size = std::numeric_limits<double>::infinity(),
                   .ts_ns = std::numeric_limits<std::int64_t>::min(),
                   .seq = std::numeric_limits<std::uint64_t>::max(),
                   .prev_seq = std::numeric_limits<std::uint64_t>::max() - 1});
  cases.push_back({.topic = "x", .ts_ns = std::numeric_limits<std::int64_t>::max(), .seq = 1});
  const std::string long_topic(128, 'T');
  cases.push_back({.topic = long_topic, .price = 1.5, .size = 2, .ts_ns = 1, .seq = 128});
  for (const TickFields& t : cases) {
    std::string ours;
    AppendTickRecordEntry(ours, t);
    EXPECT_EQ(ours, ProtoEntry(t)) << "topic '" << t.topic << "' seq " << t.seq;
  }
}

TEST(AppendTickRecordEntry, ConcatenatedEntriesAfterBatchSeqAreADataBatch) {
  TickGenerator gen(11);
  for (int round = 0; round < 200; ++round) {
    const std::uint64_t batch_seq =
        1 + gen.AwkwardU64() % std::numeric_limits<std::uint64_t>::max();
    std::string ours;
    ours.push_back(0x08);  // DataBatch.batch_seq, varint
    AppendVarint(ours, batch_seq);
    v1::DataBatch expected;
    expected.set_batch_seq(batch_seq);
    const int n = 1 + static_cast<int>(gen.Below(30));
    std::vector<OwnedTick> ticks;
    for (int i = 0; i < n; ++i) ticks.push_back(gen.Tick());
    for (const OwnedTick& t : ticks) {
      AppendTickRecordEntry(ours, t.Fields());
      ToProto(t.Fields(), *expected.add_records()->mutable_tick());
    }
    EXPECT_EQ(ours, expected.SerializeAsString());
  }
}

// A random DataBatch mixing ticks, bars and empty records, serialized by protobuf.
v1::DataBatch RandomBatch(TickGenerator& gen) {
  v1::DataBatch batch;
  batch.set_batch_seq(gen.AwkwardU64());
  const int n = static_cast<int>(gen.Below(20));
  for (int i = 0; i < n; ++i) {
    v1::Record* r = batch.add_records();
    switch (gen.Below(5)) {
      case 0:
        break;  // neither tick nor bar
      case 1: {
        v1::Bar* b = r->mutable_bar();
        b->set_topic(gen.Topic());
        b->set_interval(gen.Below(2) == 0 ? v1::MODE_SECOND : v1::MODE_MINUTE);
        b->set_start_ms(static_cast<std::int64_t>(gen.AwkwardU64()));
        b->set_open(gen.AwkwardDouble());
        b->set_high(gen.AwkwardDouble());
        b->set_low(gen.AwkwardDouble());
        b->set_close(gen.AwkwardDouble());
        b->set_volume(gen.AwkwardDouble());
        b->set_count(gen.AwkwardU64());
        b->set_vwap(gen.AwkwardDouble());
        break;
      }
      case 2:
        if (gen.Below(2) == 0) {
          v1::Watermark* w = r->mutable_watermark();
          w->set_interval(gen.Below(2) == 0 ? v1::MODE_SECOND : v1::MODE_MINUTE);
          w->set_start_ms(static_cast<std::int64_t>(gen.AwkwardU64()));
          break;
        }
        [[fallthrough]];
      default:
        ToProto(gen.Tick().Fields(), *r->mutable_tick());
    }
  }
  return batch;
}

TEST(ScanDataBatch, AgreesWithProtobufOnValidInput) {
  TickGenerator gen(3);
  for (int round = 0; round < 3000; ++round) {
    const v1::DataBatch batch = RandomBatch(gen);
    const std::string bytes = batch.SerializeAsString();
    int index = 0;
    const auto seq = ScanDataBatch(Bytes(bytes), [&](RecordKind kind, auto inner) {
      ASSERT_LT(index, batch.records_size());
      const v1::Record& r = batch.records(index++);
      switch (r.kind_case()) {
        case v1::Record::kTick: {
          ASSERT_EQ(kind, RecordKind::kTick);
          const auto t = ParseTickFields(inner);
          ASSERT_TRUE(t.has_value());
          EXPECT_TRUE(SameTick(*t, r.tick())) << r.tick().ShortDebugString();
          break;
        }
        case v1::Record::kBar: {
          ASSERT_EQ(kind, RecordKind::kBar);
          v1::Bar bar;
          ASSERT_TRUE(bar.ParseFromArray(inner.data(), static_cast<int>(inner.size())));
          EXPECT_EQ(bar.SerializeAsString(), r.bar().SerializeAsString());
          break;
        }
        case v1::Record::kWatermark: {
          ASSERT_EQ(kind, RecordKind::kWatermark);
          const auto w = ParseWatermarkFields(inner);
          ASSERT_TRUE(w.has_value());
          EXPECT_EQ(w->interval, static_cast<std::uint32_t>(r.watermark().interval()));
          EXPECT_EQ(w->start_ms, r.watermark().start_ms());
          break;
        }
        case v1::Record::kHistoryEnd:
          EXPECT_EQ(kind, RecordKind::kHistoryEnd);
          break;
        case v1::Record::KIND_NOT_SET:
          EXPECT_EQ(kind, RecordKind::kUnknown);
          EXPECT_TRUE(inner.empty());
          break;
      }
    });
    ASSERT_TRUE(seq.has_value()) << round;
    EXPECT_EQ(*seq, batch.batch_seq());
    EXPECT_EQ(index, batch.records_size());
  }
}

TEST(ScanDataBatch, EmptyPayloadIsAnEmptyBatch) {
  int calls = 0;
  const auto seq = ScanDataBatch({}, [&](RecordKind, auto) { ++calls; });
  ASSERT_TRUE(seq.has_value());
  EXPECT_EQ(*seq, 0U);
  EXPECT_EQ(calls, 0);
}

TEST(ScanDataBatch, SkipsUnknownFieldsLikeProtobuf) {
  v1::DataBatch batch;
  batch.set_batch_seq(9);
  ToProto({.topic = "k", .price = 1, .seq = 3}, *batch.add_records()->mutable_tick());
  std::string bytes = batch.SerializeAsString();
  // Unknown fields of every supported wire type: 7 varint, 8 fixed64, 9 bytes, 10 fixed32.
  bytes += std::string("\x38\x96\x01", 3) + std::string("\x41", 1) + std::string(8, '\x01') +
           std::string("\x4a\x02hi", 4) + std::string("\x55", 1) + std::string(4, '\x02');
  v1::DataBatch parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  int records = 0;
  const auto seq = ScanDataBatch(Bytes(bytes), [&](RecordKind kind, auto) {
    EXPECT_EQ(kind, RecordKind::kTick);
    ++records;
  });
  ASSERT_TRUE(seq.has_value());
  EXPECT_EQ(*seq, 9U);
  EXPECT_EQ(records, parsed.records_size());
}

// Offsets at which a prefix of `bytes` is itself a complete DataBatch (between top-level fields).
std::vector<std::size_t> FieldBoundaries(const v1::DataBatch& batch) {
  std::vector<std::size_t> out{0};
  v1::DataBatch partial;
  if (batch.batch_seq() != 0) {
    partial.set_batch_seq(batch.batch_seq());
    out.push_back(partial.ByteSizeLong());
  }
  for (const v1::Record& r : batch.records()) {
    *partial.add_records() = r;
    out.push_back(partial.ByteSizeLong());
  }
  return out;
}

TEST(ScanDataBatch, RejectsTruncatedInputAndAgreesWithProtobufOnEveryPrefix) {
  TickGenerator gen(5);
  for (int round = 0; round < 300; ++round) {
    const v1::DataBatch batch = RandomBatch(gen);
    const std::string bytes = batch.SerializeAsString();
    const auto boundaries = FieldBoundaries(batch);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
      const std::string_view prefix = std::string_view(bytes).substr(0, len);
      std::size_t records = 0;
      const auto seq = ScanDataBatch(Bytes(prefix), [&](RecordKind, auto) { ++records; });
      const bool at_boundary =
          std::find(boundaries.begin(), boundaries.end(), len) != boundaries.end();
      EXPECT_EQ(seq.has_value(), at_boundary) << "round " << round << " len " << len;
      v1::DataBatch parsed;
      const bool proto_ok = parsed.ParseFromArray(prefix.data(), static_cast<int>(len));
      EXPECT_EQ(seq.has_value(), proto_ok) << "round " << round << " len " << len;
      if (seq && proto_ok) {
        EXPECT_EQ(records, static_cast<std::size_t>(parsed.records_size()));
        EXPECT_EQ(*seq, parsed.batch_seq());
      }
    }
  }
}

TEST(ParseTickFields, AgreesWithProtobufOnValidInput) {
  TickGenerator gen(13);
  for (int i = 0; i < 20000; ++i) {
    v1::Tick tick;
    ToProto(gen.Tick().Fields(), tick);
    const std::string bytes = tick.SerializeAsString();
    const auto parsed = ParseTickFields(Bytes(bytes));
    ASSERT_TRUE(parsed.has_value());
    ASSERT_TRUE(SameTick(*parsed, tick)) << tick.ShortDebugString();
  }
}

TEST(ParseTickFields, RejectsTruncatedInputLikeProtobuf) {
  TickGenerator gen(17);
  for (int round = 0; round < 500; ++round) {
    v1::Tick tick;
    ToProto(gen.Tick().Fields(), tick);
    const std::string bytes = tick.SerializeAsString();
    for (std::size_t len = 0; len < bytes.size(); ++len) {
      const std::string_view prefix = std::string_view(bytes).substr(0, len);
      v1::Tick expected;
      const bool proto_ok = expected.ParseFromArray(prefix.data(), static_cast<int>(len));
      const auto parsed = ParseTickFields(Bytes(prefix));
      ASSERT_EQ(parsed.has_value(), proto_ok) << "round " << round << " len " << len;
      if (parsed) {
        EXPECT_TRUE(SameTick(*parsed, expected));
      }
    }
  }
}

TEST(ParseTickFields, RejectsWrongWireTypesAndOverlongVarints) {
  // topic (field 1) sent as a varint.
  EXPECT_FALSE(ParseTickFields(Bytes(std::string("\x08\x01", 2))).has_value());
  // price (field 2) sent as a varint.
  EXPECT_FALSE(ParseTickFields(Bytes(std::string("\x10\x01", 2))).has_value());
  // seq (field 5) with an 11-byte varint.
  EXPECT_FALSE(
      ParseTickFields(Bytes(std::string("\x28") + std::string(10, '\xff') + "\x01")).has_value());
  // Wire types 3/4 (groups), 6 and 7 are not accepted.
  for (char tag : {'\x3b', '\x3c', '\x3e', '\x3f'}) {
    EXPECT_FALSE(ParseTickFields(Bytes(std::string(1, tag))).has_value()) << int{tag};
  }
}

v1::Bar ToProtoBar(const BarFields& b) {
  v1::Bar p;
  p.set_topic(std::string(b.topic));
  p.set_interval(static_cast<v1::Mode>(b.interval));
  p.set_start_ms(b.start_ms);
  p.set_open(b.open);
  p.set_high(b.high);
  p.set_low(b.low);
  p.set_close(b.close);
  p.set_volume(b.volume);
  p.set_count(b.count);
  p.set_vwap(b.vwap);
  return p;
}

std::string ProtoBarEntry(const BarFields& b) {
  v1::DataBatch batch;
  *batch.add_records()->mutable_bar() = ToProtoBar(b);
  return batch.SerializeAsString();
}

TEST(AppendBarRecordEntry, ByteIdenticalToProtobufForRandomBars) {
  TickGenerator gen(23);
  for (int i = 0; i < 20000; ++i) {
    const OwnedTick t = gen.Tick();  // a random topic and awkward numbers
    const BarFields b{.topic = t.topic,
                      .interval = static_cast<std::uint32_t>(1 + gen.Below(2)),
                      .start_ms = t.Fields().ts_ns,
                      .open = t.Fields().price,
                      .high = t.Fields().size,
                      .low = -t.Fields().price,
                      .close = t.Fields().size / 3,
                      .volume = gen.Below(3) == 0 ? 0.0 : t.Fields().size,
                      .count = t.Fields().seq,
                      .vwap = gen.Below(3) == 0 ? 0.0 : t.Fields().price / 7};
    std::string ours;
    const std::size_t topic_offset = AppendBarRecordEntry(ours, b);
    ASSERT_EQ(ours, ProtoBarEntry(b)) << "bar " << i;
    if (!b.topic.empty()) {
      ASSERT_EQ(ours.substr(topic_offset, b.topic.size()), b.topic);
    }
  }
}

// PROTOCOL S8c: the history end marker, byte for byte as protobuf writes it, read back by the
// scanner (as RecordKind::kHistoryEnd) and by ParseHistoryEndFields.
TEST(AppendHistoryEndRecordEntry, ByteIdenticalToProtobufAndScannedBack) {
  TickGenerator gen(31);
  for (int i = 0; i < 5000; ++i) {
    std::vector<OwnedTick> topics;
    std::vector<LostRangeFields> lost;
    const auto n = gen.Below(4);
    for (std::uint64_t k = 0; k < n; ++k) topics.push_back(gen.Tick());
    for (const auto& t : topics) {
      lost.push_back(
          LostRangeFields{t.topic, t.Fields().seq, t.Fields().prev_seq, t.Fields().topic_epoch});
    }
    HistoryEndFields e;
    e.subscription_id = gen.Below(3) == 0 ? 0 : gen.Tick().Fields().seq;
    e.retention = gen.Below(2) == 0;
    e.backfill_limit = gen.Below(2) == 0;
    e.epoch_changed = gen.Below(2) == 0;
    e.truncated = e.retention || e.backfill_limit || e.epoch_changed;
    e.lost = lost;
    e.lost_omitted = static_cast<std::uint32_t>(gen.Below(3));
    std::string ours;
    AppendHistoryEndRecordEntry(ours, e);

    v1::DataBatch batch;
    auto* h = batch.add_records()->mutable_history_end();
    h->set_subscription_id(e.subscription_id);
    h->set_truncated(e.truncated);
    h->set_retention(e.retention);
    h->set_backfill_limit(e.backfill_limit);
    h->set_epoch_changed(e.epoch_changed);
    for (const auto& l : lost) {
      auto* pl = h->add_lost();
      pl->set_topic(std::string(l.topic));
      pl->set_from_seq(l.from_seq);
      pl->set_to_seq(l.to_seq);
      pl->set_topic_epoch(l.topic_epoch);
    }
    h->set_lost_omitted(e.lost_omitted);
    ASSERT_EQ(ours, batch.SerializeAsString()) << "marker " << i;

    std::size_t records = 0;
    std::vector<LostRangeFields> parsed_lost;
    const auto seq = ScanDataBatch(Bytes(ours), [&](RecordKind kind, auto inner) {
      ++records;
      ASSERT_EQ(kind, RecordKind::kHistoryEnd);
      const auto parsed = ParseHistoryEndFields(inner, parsed_lost);
      ASSERT_TRUE(parsed.has_value());
      EXPECT_EQ(parsed->subscription_id, e.subscription_id);
      EXPECT_EQ(parsed->truncated, e.truncated);
      EXPECT_EQ(parsed->epoch_changed, e.epoch_changed);
      EXPECT_EQ(parsed->lost_omitted, e.lost_omitted);
      ASSERT_EQ(parsed->lost.size(), lost.size());
      for (std::size_t k = 0; k < lost.size(); ++k) {
        EXPECT_EQ(parsed->lost[k].topic, lost[k].topic);
        EXPECT_EQ(parsed->lost[k].to_seq, lost[k].to_seq);
      }
    });
    ASSERT_TRUE(seq.has_value());
    ASSERT_EQ(records, 1u);
  }
}

// A MINUTE bar with every field set (low is -0.0: present on the wire, sign kept).
BarFields SampleBar() {
  return BarFields{.topic = "ETH-USD",
                   .interval = 2,
                   .start_ms = 1'700'000'040'000,
                   .open = 1.5,
                   .high = 2.5,
                   .low = -0.0,
                   .close = 2,
                   .volume = 10,
                   .count = 4,
                   .vwap = 1.75};
}

TEST(ParseBarFields, RoundTripsAndRejectsTruncation) {
  const BarFields b = SampleBar();
  const std::string bytes = ToProtoBar(b).SerializeAsString();
  const auto span = Bytes(bytes);
  const auto parsed = ParseBarFields(span);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->topic, b.topic);
  EXPECT_EQ(parsed->interval, b.interval);
  EXPECT_EQ(parsed->start_ms, b.start_ms);
  EXPECT_EQ(parsed->open, b.open);
  EXPECT_EQ(parsed->high, b.high);
  EXPECT_TRUE(std::signbit(parsed->low));
  EXPECT_EQ(parsed->close, b.close);
  EXPECT_EQ(parsed->volume, b.volume);
  EXPECT_EQ(parsed->count, b.count);
  EXPECT_EQ(parsed->vwap, b.vwap);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    v1::Bar check;
    const bool proto_ok = check.ParseFromArray(bytes.data(), static_cast<int>(n));
    EXPECT_EQ(ParseBarFields(span.first(n)).has_value(), proto_ok) << "prefix " << n;
  }
}

// The parsers read the layout tickwire writes without a dispatch per field, and anything else
// (a field repeated, fields in another order) through the general loop, with protobuf's rule
// that the last occurrence of a field wins.
TEST(ParseTickFields, OtherLayoutsReadLikeProtobuf) {
  TickGenerator gen(29);
  for (int i = 0; i < 2000; ++i) {
    v1::Tick tick;
    ToProto(gen.Tick().Fields(), tick);
    std::string bytes = tick.SerializeAsString();
    if (i % 2 == 0) {
      bytes += std::string("\x28") + static_cast<char>(i % 100 + 1);  // seq again
    } else {
      bytes = std::string("\x30\x05") + bytes;  // prev_seq first, then the rest
    }
    v1::Tick expected;
    ASSERT_TRUE(expected.ParseFromString(bytes));
    const auto parsed = ParseTickFields(Bytes(bytes));
    ASSERT_TRUE(parsed.has_value());
    ASSERT_TRUE(SameTick(*parsed, expected)) << expected.ShortDebugString();
  }
}

TEST(ParseBarFields, OtherLayoutsReadLikeProtobuf) {
  const std::string canonical = ToProtoBar(SampleBar()).SerializeAsString();
  for (const std::string& bytes :
       {canonical + std::string("\x48\x09"), std::string("\x48\x09") + canonical,
        canonical.substr(0, canonical.size() - 9)}) {
    v1::Bar expected;
    ASSERT_TRUE(expected.ParseFromString(bytes));
    const auto parsed = ParseBarFields(Bytes(bytes));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->topic, expected.topic());
    EXPECT_EQ(parsed->start_ms, expected.start_ms());
    EXPECT_EQ(parsed->close, expected.close());
    EXPECT_EQ(parsed->count, expected.count());
    EXPECT_EQ(parsed->vwap, expected.vwap());
  }
}

// Watermark records (PROTOCOL S8d): the hand-written entry is what protobuf writes for the same
// Record, the scanner reports its kind, and ParseWatermarkFields reads it back.
TEST(AppendWatermarkRecordEntry, ByteIdenticalToProtobufAndScannedBack) {
  const std::int64_t starts[] = {
      0, 1, 1000, 1'700'000'040'000, -60'000, std::numeric_limits<std::int64_t>::max()};
  for (const std::uint32_t interval : {0u, 1u, 2u, 3u}) {
    for (const std::int64_t start : starts) {
      const WatermarkFields w{interval, start};
      std::string ours;
      AppendWatermarkRecordEntry(ours, w);
      v1::DataBatch want;
      auto* m = want.add_records()->mutable_watermark();
      m->set_interval(static_cast<v1::Mode>(interval));
      m->set_start_ms(start);
      ASSERT_EQ(ours, want.SerializeAsString()) << interval << " " << start;
      std::vector<RecordKind> kinds;
      std::optional<WatermarkFields> parsed;
      const auto seq = ScanDataBatch(Bytes(ours), [&](RecordKind kind, auto inner) {
        kinds.push_back(kind);
        parsed = ParseWatermarkFields(inner);
      });
      ASSERT_TRUE(seq.has_value());
      ASSERT_EQ(kinds, std::vector<RecordKind>{RecordKind::kWatermark});
      ASSERT_TRUE(parsed.has_value());
      EXPECT_EQ(parsed->interval, interval);
      EXPECT_EQ(parsed->start_ms, start);
    }
  }
}

TEST(ParseWatermarkFields, RejectsTruncationAndWrongWireTypesLikeProtobuf) {
  v1::Watermark m;
  m.set_interval(v1::MODE_MINUTE);
  m.set_start_ms(1'700'000'040'000);
  const std::string bytes = m.SerializeAsString();
  const auto span = Bytes(bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    v1::Watermark check;
    const bool proto_ok = check.ParseFromArray(bytes.data(), static_cast<int>(n));
    EXPECT_EQ(ParseWatermarkFields(span.first(n)).has_value(), proto_ok) << "prefix " << n;
  }
  const std::string fixed = "\x11" + std::string(8, '\0');  // start_ms as fixed64
  EXPECT_FALSE(ParseWatermarkFields(Bytes(fixed)).has_value());
  // An unknown field is skipped, as protobuf does.
  const std::string extra = bytes + "\x18\x05";
  const auto parsed = ParseWatermarkFields(Bytes(extra));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->start_ms, 1'700'000'040'000);
}

}  // namespace
}  // namespace tickwire::protocol
