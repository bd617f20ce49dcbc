#include "client/codec.h"

#include <gtest/gtest.h>

#include "protocol/batch_builder.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::client::codec {
namespace {

std::span<const std::uint8_t> Payload(const std::string& frame) {
  return {reinterpret_cast<const std::uint8_t*>(frame.data()) + protocol::kHeaderSize,
          frame.size() - protocol::kHeaderSize};
}

TEST(CodecTest, BatchBuilderOutputDecodes) {
  protocol::BatchBuilder builder(65536);
  std::string entry;
  protocol::AppendTickRecordEntry(entry, {"AAPL", 187.5, 3, 1'700'000'000'000'000'000, 9, 8});
  builder.Append(entry, 300);
  const std::string frame = builder.Finish();
  EXPECT_EQ(PeekBatchSeq(Payload(frame)), 300u);
  Batch batch;
  ASSERT_TRUE(DecodeBatch(Payload(frame), batch));
  EXPECT_EQ(batch.batch_seq, 300u);
  ASSERT_EQ(batch.records.size(), 1u);
  const auto& t = std::get<Tick>(batch.records[0]);
  EXPECT_EQ(t.topic, "AAPL");
  EXPECT_EQ(t.price, 187.5);
  EXPECT_EQ(t.size, 3);
  EXPECT_EQ(t.ts_ns, 1'700'000'000'000'000'000);
  EXPECT_EQ(t.seq, 9u);
  EXPECT_EQ(t.prev_seq, 8u);
}

TEST(CodecTest, WatermarksDecodeBetweenBars) {
  protocol::BatchBuilder builder(65536);
  std::string entry;
  protocol::AppendBarRecordEntry(entry, {"AAPL", 1, 1'700'000'000'000, 1, 2, 0.5, 1.5, 3, 2, 1});
  builder.Append(entry, 7);
  entry.clear();
  protocol::AppendWatermarkRecordEntry(entry, {1, 1'700'000'000'000});
  builder.Append(entry, 7);
  const std::string frame = builder.Finish();
  Batch batch;
  ASSERT_TRUE(DecodeBatch(Payload(frame), batch));
  ASSERT_EQ(batch.records.size(), 2u);
  EXPECT_EQ(std::get<Bar>(batch.records[0]).topic, "AAPL");
  const auto& w = std::get<Watermark>(batch.records[1]);
  EXPECT_EQ(w.interval, Mode::kSecond);
  EXPECT_EQ(w.start_ms, 1'700'000'000'000);
}

TEST(CodecTest, PeekBatchSeqScansWhenFieldIsNotFirst) {
  // Records first, then batch_seq: legal protobuf, so the slow path must find it.
  std::string payload;
  protocol::AppendTickRecordEntry(payload, {"X", 1, 1, 1, 1, 0});
  payload.push_back(0x08);
  protocol::AppendVarint(payload, 1234);
  std::span<const std::uint8_t> p(reinterpret_cast<const std::uint8_t*>(payload.data()),
                                  payload.size());
  EXPECT_EQ(PeekBatchSeq(p), 1234u);
  EXPECT_EQ(PeekBatchSeq({}), 0u);  // empty DataBatch: batch_seq 0
  const std::uint8_t bad[] = {0x08, 0xff};
  EXPECT_FALSE(PeekBatchSeq(bad).has_value());
}

TEST(CodecTest, DecodeErrorFields) {
  tickwire::v1::Error e;
  e.set_code(tickwire::v1::FORBIDDEN);
  e.set_message("no");
  e.set_request_id(5);
  e.set_fatal(false);
  e.set_retry_after_ms(9);
  const std::string bytes = e.SerializeAsString();
  auto d = DecodeError({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, ErrorKind::kServer);
  EXPECT_EQ(d->code, ErrorCode::kForbidden);
  EXPECT_EQ(d->message, "no");
  EXPECT_EQ(d->request_id, 5u);
  EXPECT_EQ(d->retry_after_ms, 9u);
  EXPECT_EQ(d->ToString(), "server error FORBIDDEN: no (request 5) (retry after 9 ms)");
}

TEST(CodecTest, EncodePublishRoundTrips) {
  std::vector<Tick> ticks = {{"A", 1.25, 2, 77, 5, 4}};
  const std::string frame = EncodePublish(9, ticks, true);
  EXPECT_EQ(frame[4], static_cast<char>(protocol::FrameType::kPublish));
  tickwire::v1::Publish p;
  ASSERT_TRUE(p.ParseFromArray(frame.data() + protocol::kHeaderSize,
                               static_cast<int>(frame.size() - protocol::kHeaderSize)));
  EXPECT_EQ(p.request_id(), 9u);
  EXPECT_TRUE(p.ack());
  ASSERT_EQ(p.ticks_size(), 1);
  EXPECT_EQ(p.ticks(0).ts_ns(), 77);
  EXPECT_EQ(p.ticks(0).seq(), 0u);  // the server sets seq; the client never sends it
}

}  // namespace
}  // namespace tickwire::client::codec
