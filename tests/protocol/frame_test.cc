#include "protocol/frame.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <system_error>

#include "protocol/errors.h"
#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::protocol {
namespace {

TEST(FrameHeader, TypeValuesAreFrozenByTheContract) {
  EXPECT_EQ(static_cast<int>(FrameType::kAuth), 0x01);
  EXPECT_EQ(static_cast<int>(FrameType::kAuthOk), 0x02);
  EXPECT_EQ(static_cast<int>(FrameType::kSubscribe), 0x03);
  EXPECT_EQ(static_cast<int>(FrameType::kSubscribeOk), 0x04);
  EXPECT_EQ(static_cast<int>(FrameType::kUnsubscribe), 0x05);
  EXPECT_EQ(static_cast<int>(FrameType::kPublish), 0x06);
  EXPECT_EQ(static_cast<int>(FrameType::kPublishAck), 0x07);
  EXPECT_EQ(static_cast<int>(FrameType::kDataBatch), 0x08);
  EXPECT_EQ(static_cast<int>(FrameType::kHeartbeat), 0x09);
  EXPECT_EQ(static_cast<int>(FrameType::kError), 0x0A);
  EXPECT_EQ(kHeaderSize, 5U);
  EXPECT_EQ(kLengthSize, 4U);
  EXPECT_EQ(kDefaultMaxMsgSize, 65536U);
}

TEST(FrameHeader, EncodesBigEndianLengthIncludingTypeByte) {
  std::array<std::uint8_t, kHeaderSize> h{};
  EncodeHeader(FrameType::kPublish, 0x01020304 - 1, h.data());
  EXPECT_EQ(h, (std::array<std::uint8_t, kHeaderSize>{0x01, 0x02, 0x03, 0x04, 0x06}));
  EncodeHeader(FrameType::kHeartbeat, 0, h.data());
  EXPECT_EQ(h, (std::array<std::uint8_t, kHeaderSize>{0, 0, 0, 1, 0x09}));
}

TEST(FrameHeader, RoundTripsEveryInterestingSize) {
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{254}, std::size_t{255},
                           std::size_t{256}, std::size_t{65535}, std::size_t{65536},
                           std::size_t{kMaxMaxMsgSize}, std::size_t{0xFFFFFFFE}}) {
    for (std::uint8_t t = 0x01; t <= 0x0A; ++t) {
      std::array<std::uint8_t, kHeaderSize> h{};
      EncodeHeader(static_cast<FrameType>(t), size, h.data());
      EXPECT_EQ(DecodeLength(h.data()), size + 1) << size;
      EXPECT_EQ(h[4], t);
    }
  }
}

TEST(FrameHeader, DecodeLengthReadsAllFourBytes) {
  const std::array<std::uint8_t, 4> b{0xFF, 0x00, 0xAB, 0x01};
  EXPECT_EQ(DecodeLength(b.data()), 0xFF00AB01U);
}

TEST(FrameTypes, KnownAndClientTypes) {
  for (int t = 0; t < 256; ++t) {
    const auto type = static_cast<std::uint8_t>(t);
    EXPECT_EQ(IsKnownFrameType(type), t >= 1 && t <= 10) << t;
    const bool client = t == 0x01 || t == 0x03 || t == 0x05 || t == 0x06 || t == 0x09;
    EXPECT_EQ(IsClientFrameType(type), client) << t;
    if (!IsKnownFrameType(type)) {
      EXPECT_EQ(FrameTypeName(type), "unknown") << t;
    }
  }
  EXPECT_EQ(FrameTypeName(0x01), "auth");
  EXPECT_EQ(FrameTypeName(0x08), "data_batch");
  EXPECT_EQ(FrameTypeName(0x0A), "error");
}

TEST(FrameTypes, NamesAreDistinct) {
  for (std::uint8_t a = 1; a <= 10; ++a) {
    for (std::uint8_t b = static_cast<std::uint8_t>(a + 1); b <= 10; ++b) {
      EXPECT_NE(FrameTypeName(a), FrameTypeName(b));
    }
  }
}

TEST(MakeFrame, HeaderThenPayload) {
  const std::string payload("\x00\x01hello", 7);
  const std::string frame = MakeFrame(FrameType::kError, payload);
  ASSERT_EQ(frame.size(), kHeaderSize + payload.size());
  EXPECT_EQ(DecodeLength(reinterpret_cast<const std::uint8_t*>(frame.data())), 8U);
  EXPECT_EQ(static_cast<std::uint8_t>(frame[4]), 0x0A);
  EXPECT_EQ(frame.substr(kHeaderSize), payload);
  EXPECT_EQ(MakeFrame(FrameType::kHeartbeat, ""), std::string("\x00\x00\x00\x01\x09", 5));
}

TEST(EncodeFrame, MatchesMakeFrameOfProtobufSerialization) {
  v1::Error err;
  err.set_code(v1::FRAME_TOO_LARGE);
  err.set_message("frame of 70000 bytes exceeds MAX_MSG_SIZE 65536");
  err.set_fatal(true);
  EXPECT_EQ(EncodeFrame(FrameType::kError, err),
            MakeFrame(FrameType::kError, err.SerializeAsString()));

  v1::AuthOk ok;
  ok.set_session_id("s-1");
  ok.set_heartbeat_interval_ms(15000);
  ok.set_max_msg_size(65536);
  EXPECT_EQ(EncodeFrame(FrameType::kAuthOk, ok),
            MakeFrame(FrameType::kAuthOk, ok.SerializeAsString()));

  const v1::Heartbeat empty;
  EXPECT_EQ(EncodeFrame(FrameType::kHeartbeat, empty), MakeFrame(FrameType::kHeartbeat, ""));
}

TEST(DecodeErrors, AreErrorCodesWithMessages) {
  const std::error_code ok = DecodeError::kOk;
  EXPECT_FALSE(ok);
  const std::error_code zero = DecodeError::kZeroLength;
  const std::error_code big = DecodeError::kFrameTooLarge;
  EXPECT_TRUE(zero);
  EXPECT_TRUE(big);
  EXPECT_EQ(&zero.category(), &DecodeCategory());
  EXPECT_STREQ(DecodeCategory().name(), "tickwire.decode");
  EXPECT_NE(zero.message(), big.message());
  EXPECT_NE(big.message().find("MAX_MSG_SIZE"), std::string::npos);
  EXPECT_EQ(zero, DecodeError::kZeroLength);
  EXPECT_NE(zero, DecodeError::kFrameTooLarge);
}

}  // namespace
}  // namespace tickwire::protocol
