#include "protocol/batch_builder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/wire.h"
#include "random_ticks.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::protocol {
namespace {

using testing::Bytes;
using testing::OwnedTick;
using testing::SameTick;
using testing::TickGenerator;

struct ParsedFrame {
  v1::DataBatch batch;
  std::size_t payload_size = 0;
};

// Checks the header and parses the payload with protobuf.
ParsedFrame ParseFrame(const std::string& frame) {
  ParsedFrame out;
  EXPECT_GE(frame.size(), kHeaderSize);
  if (frame.size() < kHeaderSize) return out;
  const auto* p = reinterpret_cast<const std::uint8_t*>(frame.data());
  EXPECT_EQ(DecodeLength(p), frame.size() - kLengthSize);
  EXPECT_EQ(p[4], static_cast<std::uint8_t>(FrameType::kDataBatch));
  out.payload_size = frame.size() - kHeaderSize;
  EXPECT_TRUE(
      out.batch.ParseFromArray(frame.data() + kHeaderSize, static_cast<int>(out.payload_size)));
  return out;
}

std::string Entry(const TickFields& t) {
  std::string e;
  AppendTickRecordEntry(e, t);
  return e;
}

// A valid tick entry of exactly `size` bytes (size >= 4), by choosing the topic length and an
// optional seq field.
std::string EntryOfSize(std::size_t size, std::string& topic_storage) {
  for (std::uint64_t seq : {0ULL, 1ULL, 128ULL, 16384ULL}) {
    for (std::size_t k = 0; k <= size; ++k) {
      topic_storage.assign(k, 'E');
      std::string e = Entry({.topic = topic_storage, .seq = seq});
      if (e.size() == size) return e;
      if (e.size() > size) break;
    }
  }
  ADD_FAILURE() << "no entry of size " << size;
  return {};
}

TEST(BatchBuilder, FramesParseAsDataBatchesAndNeverExceedMax) {
  TickGenerator gen(21);
  for (std::uint32_t max : {1024U, 1500U, 4096U, 65536U}) {
    BatchBuilder builder(max);
    std::vector<OwnedTick> ticks;
    for (int i = 0; i < 5000; ++i) ticks.push_back(gen.Tick());

    std::vector<std::string> frames;
    std::uint64_t next_seq = 1;
    for (const OwnedTick& t : ticks) {
      const std::string e = Entry(t.Fields());
      if (!builder.Fits(e.size())) {
        ASSERT_FALSE(builder.empty()) << "a single tick entry must fit an empty frame";
        frames.push_back(builder.Finish());
        ++next_seq;
      }
      ASSERT_TRUE(builder.Fits(e.size()));
      builder.Append(e, next_seq);
      ASSERT_LE(builder.payload_size(), max);
    }
    frames.push_back(builder.Finish());

    std::size_t index = 0;
    for (std::size_t f = 0; f < frames.size(); ++f) {
      const ParsedFrame parsed = ParseFrame(frames[f]);
      EXPECT_LE(parsed.payload_size, max);
      EXPECT_EQ(parsed.batch.batch_seq(), f + 1);
      EXPECT_GT(parsed.batch.records_size(), 0);
      for (const v1::Record& r : parsed.batch.records()) {
        ASSERT_LT(index, ticks.size());
        ASSERT_EQ(r.kind_case(), v1::Record::kTick);
        EXPECT_TRUE(SameTick(ticks[index].Fields(), r.tick())) << "record " << index;
        ++index;
      }
    }
    EXPECT_EQ(index, ticks.size()) << "every record delivered exactly once, in order";
    // With small frames the size cut must actually have happened.
    if (max <= 4096) {
      EXPECT_GT(frames.size(), 1U);
    }
  }
}

TEST(BatchBuilder, FitsIsExactForAnOpenFrame) {
  for (std::uint32_t max : {1024U, 4096U}) {
    for (std::uint64_t batch_seq : {1ULL, 300ULL, 0xFFFFFFFFFFFFULL}) {
      BatchBuilder builder(max);
      const std::string first = Entry({.topic = "first", .price = 1});
      builder.Append(first, batch_seq);
      const std::size_t room = max - builder.payload_size();
      EXPECT_TRUE(builder.Fits(room));
      EXPECT_FALSE(builder.Fits(room + 1));
      std::string topic;
      const std::string last = EntryOfSize(room, topic);
      ASSERT_EQ(last.size(), room);
      builder.Append(last, batch_seq);
      EXPECT_EQ(builder.payload_size(), max);
      EXPECT_FALSE(builder.Fits(1));
      EXPECT_TRUE(builder.Fits(0));
      const ParsedFrame parsed = ParseFrame(builder.Finish());
      EXPECT_EQ(parsed.payload_size, max);
      EXPECT_EQ(parsed.batch.batch_seq(), batch_seq);
      ASSERT_EQ(parsed.batch.records_size(), 2);
      EXPECT_EQ(parsed.batch.records(1).tick().topic(), topic);
    }
  }
}

TEST(BatchBuilder, FitsOnAnEmptyBuilderReservesTheLargestBatchSeqField) {
  constexpr std::uint32_t kMax = 1024;
  BatchBuilder builder(kMax);
  // 11 bytes = tag + 10-byte varint: whatever batch_seq comes, an entry that fits stays in max.
  EXPECT_TRUE(builder.Fits(kMax - 11));
  EXPECT_FALSE(builder.Fits(kMax - 10));
  std::string topic;
  const std::string e = EntryOfSize(kMax - 11, topic);
  builder.Append(e, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(builder.payload_size(), kMax);
  const ParsedFrame parsed = ParseFrame(builder.Finish());
  EXPECT_EQ(parsed.batch.batch_seq(), std::numeric_limits<std::uint64_t>::max());
}

TEST(BatchBuilder, FinishResetsAndCountsRecords) {
  BatchBuilder builder(kDefaultMaxMsgSize);
  EXPECT_TRUE(builder.empty());
  EXPECT_EQ(builder.records(), 0U);
  EXPECT_EQ(builder.payload_size(), 0U);
  const std::string e = Entry({.topic = "t", .price = 2.5, .size = 1, .ts_ns = 5, .seq = 1});
  builder.Append(e, 1);
  builder.Append(e, 1);
  EXPECT_FALSE(builder.empty());
  EXPECT_EQ(builder.records(), 2U);
  EXPECT_EQ(builder.payload_size(), 2 + 2 * e.size());  // batch_seq field is 2 bytes
  const std::string frame = builder.Finish();
  EXPECT_TRUE(builder.empty());
  EXPECT_EQ(builder.records(), 0U);
  EXPECT_EQ(builder.payload_size(), 0U);
  EXPECT_EQ(ParseFrame(frame).batch.records_size(), 2);

  // The next frame is independent of the first.
  builder.Append(e, 2);
  const ParsedFrame second = ParseFrame(builder.Finish());
  EXPECT_EQ(second.batch.batch_seq(), 2U);
  EXPECT_EQ(second.batch.records_size(), 1);
}

TEST(BatchBuilder, ZeroBatchSeqOmitsTheFieldAndScansBack) {
  BatchBuilder builder(kDefaultMaxMsgSize);
  const std::string e = Entry({.topic = "z", .seq = 7});
  builder.Append(e, 0);
  const std::string frame = builder.Finish();
  EXPECT_EQ(frame.substr(kHeaderSize), e);
  int n = 0;
  const auto seq = ScanDataBatch(Bytes(std::string_view(frame).substr(kHeaderSize)),
                                 [&](RecordKind kind, auto inner) {
                                   EXPECT_EQ(kind, RecordKind::kTick);
                                   const auto t = ParseTickFields(inner);
                                   ASSERT_TRUE(t.has_value());
                                   EXPECT_EQ(t->topic, "z");
                                   EXPECT_EQ(t->seq, 7U);
                                   ++n;
                                 });
  ASSERT_TRUE(seq.has_value());
  EXPECT_EQ(*seq, 0U);
  EXPECT_EQ(n, 1);
}

TEST(BatchBuilder, SetMaxMsgSizeAppliesToFits) {
  BatchBuilder builder(kDefaultMaxMsgSize);
  EXPECT_TRUE(builder.Fits(2000));
  builder.set_max_msg_size(1024);
  EXPECT_FALSE(builder.Fits(2000));
  EXPECT_TRUE(builder.Fits(1000));
}

}  // namespace
}  // namespace tickwire::protocol
