// Framing rules: length/type header, MALFORMED_FRAME, FRAME_TOO_LARGE, UNKNOWN_FRAME_TYPE and
// server-only types after AUTH; frames split or coalesced across TCP writes.
#include <ostream>
#include <string>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class FramingTest : public IntegrationTest {};

// The 4-byte length of a frame header, without type or payload.
std::string LengthBytes(std::uint32_t length) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(length >> 24);
  out[1] = static_cast<char>(length >> 16);
  out[2] = static_cast<char>(length >> 8);
  out[3] = static_cast<char>(length);
  return out;
}

TEST_F(FramingTest, ZeroLengthAfterAuthIsFatalMalformedFrame) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendBytes(LengthBytes(0)));
  EXPECT_TRUE(c.ExpectFatal(v1::MALFORMED_FRAME));
}

TEST_F(FramingTest, ZeroLengthAsFirstFrameIsFatalMalformedFrame) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.SendBytes(LengthBytes(0)));
  EXPECT_TRUE(c.ExpectFatal(v1::MALFORMED_FRAME));
}

TEST_F(FramingTest, UnparsableAuthIsFatalMalformedFrame) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  // username: length 5 but only 2 bytes follow.
  ASSERT_TRUE(c.SendRawFrame(0x01, std::string("\x0A\x05"
                                               "ab",
                                               4)));
  EXPECT_TRUE(c.ExpectFatal(v1::MALFORMED_FRAME));
}

struct BadPayload {
  const char* name;
  std::uint8_t type;
  std::string payload;
};

void PrintTo(const BadPayload& p, std::ostream* os) { *os << p.name; }

class FramingBadPayloadTest : public IntegrationTest,
                              public ::testing::WithParamInterface<BadPayload> {};

TEST_P(FramingBadPayloadTest, IsFatalMalformedFrame) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendRawFrame(GetParam().type, GetParam().payload));
  EXPECT_TRUE(c.ExpectFatal(v1::MALFORMED_FRAME));
}

INSTANTIATE_TEST_SUITE_P(
    Payloads, FramingBadPayloadTest,
    ::testing::Values(
        // A tag varint that never ends.
        BadPayload{"SubscribeTruncatedTag", 0x03, std::string("\xFF\xFF\xFF", 3)},
        // request_id: varint with the continuation bit set, then the payload ends.
        BadPayload{"PublishTruncatedVarint", 0x06, std::string("\x08\x80", 2)},
        BadPayload{"HeartbeatTruncatedVarint", 0x09, std::string("\x08\xFF\xFF", 3)},
        // ticks: declared length 16, 2 bytes present.
        BadPayload{"PublishLengthOverrun", 0x06,
                   std::string("\x12\x10"
                               "ab",
                               4)},
        // A tick whose own length overruns inside a well-formed outer field.
        BadPayload{"PublishInnerTickOverrun", 0x06,
                   std::string("\x12\x03\x0A\x09"
                               "x",
                               5)},
        // Field 1 with wire type 7, which does not exist.
        BadPayload{"HeartbeatBadWireType", 0x09, std::string("\x0F", 1)},
        // Field number 0 does not exist.
        BadPayload{"HeartbeatFieldZero", 0x09, std::string("\x00", 1)},
        // A tag with no value after it.
        BadPayload{"UnsubscribeTagWithoutValue", 0x05, std::string("\x08", 1)},
        // topics: a string field whose length runs past the end.
        BadPayload{"SubscribeTopicOverrun", 0x03,
                   std::string("\x08\x01\x10\x03\x1A\x7F"
                               "a",
                               7)}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(FramingTest, DeclaredLengthOverMaxIsFrameTooLargeBeforePayload) {
  ASSERT_TRUE(Start({{"MAX_MSG_SIZE", "1024"}}));
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  // Payload 1025 bytes (length = type byte + payload). Only the header is sent: the server must
  // answer without waiting for the payload.
  ASSERT_TRUE(c.SendBytes(LengthBytes(1026) + "\x06"));
  EXPECT_TRUE(c.ExpectFatal(v1::FRAME_TOO_LARGE));
}

TEST_F(FramingTest, LengthFieldAloneOverMaxIsFrameTooLarge) {
  ASSERT_TRUE(Start({{"MAX_MSG_SIZE", "1024"}}));
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  // Not even the type byte: four length bytes are enough to know.
  ASSERT_TRUE(c.SendBytes(LengthBytes(0xFFFFFFFFu)));
  EXPECT_TRUE(c.ExpectFatal(v1::FRAME_TOO_LARGE));
}

TEST_F(FramingTest, HugeLengthAsFirstFrameIsFrameTooLarge) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.SendBytes(LengthBytes(0x7FFFFFFFu) + "\x01"));
  EXPECT_TRUE(c.ExpectFatal(v1::FRAME_TOO_LARGE));
}

// A HEARTBEAT padded with an unknown field to exactly `payload_size` bytes.
std::string PaddedHeartbeat(std::size_t payload_size, std::int64_t ts_ms) {
  v1::Heartbeat hb;
  hb.set_ts_ms(ts_ms);
  std::string payload = hb.SerializeAsString();
  // Unknown field 15, wire type 2: tag 0x7A, 2-byte length varint, filler.
  const std::size_t filler = payload_size - payload.size() - 3;
  payload.push_back('\x7A');
  payload.push_back(static_cast<char>(0x80 | (filler & 0x7F)));
  payload.push_back(static_cast<char>(filler >> 7));
  payload.append(filler, 'z');
  return payload;
}

TEST_F(FramingTest, PayloadOfExactlyMaxMsgSizeIsAccepted) {
  ASSERT_TRUE(Start({{"MAX_MSG_SIZE", "1024"}}));
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  const std::string payload = PaddedHeartbeat(1024, 99);
  ASSERT_EQ(payload.size(), 1024u);
  ASSERT_TRUE(c.SendRawFrame(0x09, payload));
  v1::Heartbeat echo;
  ASSERT_TRUE(c.ReadMessage(FrameType::kHeartbeat, &echo));
  EXPECT_EQ(echo.ts_ms(), 99);
}

TEST_F(FramingTest, PayloadOneOverMaxMsgSizeIsFrameTooLarge) {
  ASSERT_TRUE(Start({{"MAX_MSG_SIZE", "1024"}}));
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendRawFrame(0x09, PaddedHeartbeat(1025, 99)));
  EXPECT_TRUE(c.ExpectFatal(v1::FRAME_TOO_LARGE));
}

TEST_F(FramingTest, EmptyPayloadIsAValidEmptyMessage) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendRawFrame(0x09, ""));
  v1::Heartbeat echo;
  ASSERT_TRUE(c.ReadMessage(FrameType::kHeartbeat, &echo));
  EXPECT_EQ(echo.ts_ms(), 0);
}

TEST_F(FramingTest, UnknownFieldsAreIgnored) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendRawFrame(0x09, PaddedHeartbeat(200, 1234)));
  v1::Heartbeat echo;
  ASSERT_TRUE(c.ReadMessage(FrameType::kHeartbeat, &echo));
  EXPECT_EQ(echo.ts_ms(), 1234);
}

class FramingUnknownTypeAfterAuthTest : public IntegrationTest,
                                        public ::testing::WithParamInterface<std::uint8_t> {};

TEST_P(FramingUnknownTypeAfterAuthTest, IsFatalUnknownFrameType) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendRawFrame(GetParam(), ""));
  EXPECT_TRUE(c.ExpectFatal(v1::UNKNOWN_FRAME_TYPE));
}

INSTANTIATE_TEST_SUITE_P(UnknownTypes, FramingUnknownTypeAfterAuthTest,
                         ::testing::Values(0x00, 0x0B, 0x42, 0xFF),
                         [](const auto& p) { return "type" + std::to_string(p.param); });

class FramingServerOnlyTypeAfterAuthTest : public IntegrationTest,
                                           public ::testing::WithParamInterface<std::uint8_t> {};

TEST_P(FramingServerOnlyTypeAfterAuthTest, IsFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.SendRawFrame(GetParam(), ""));
  EXPECT_TRUE(c.ExpectFatal(v1::INVALID_REQUEST));
}

INSTANTIATE_TEST_SUITE_P(ServerOnlyTypes, FramingServerOnlyTypeAfterAuthTest,
                         ::testing::Values(0x02, 0x04, 0x07, 0x08, 0x0A), [](const auto& p) {
                           return std::string(protocol::FrameTypeName(p.param));
                         });

TEST_F(FramingTest, FrameSentOneByteAtATimeIsReassembled) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  const std::string frame = protocol::MakeFrame(FrameType::kAuth, auth.SerializeAsString());
  for (std::size_t i = 0; i < frame.size(); ++i) {
    ASSERT_TRUE(c.SendBytes(std::string_view(frame).substr(i, 1)));
  }
  v1::AuthOk ok;
  ASSERT_TRUE(c.ReadMessage(FrameType::kAuthOk, &ok));
  EXPECT_TRUE(c.HeartbeatRoundTrip(3));
}

TEST_F(FramingTest, SeveralFramesInOneWriteAreAllHandled) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  std::string bytes = protocol::MakeFrame(FrameType::kAuth, auth.SerializeAsString());
  for (std::int64_t ts = 1; ts <= 3; ++ts) {
    v1::Heartbeat hb;
    hb.set_ts_ms(ts);
    bytes += protocol::MakeFrame(FrameType::kHeartbeat, hb.SerializeAsString());
  }
  ASSERT_TRUE(c.SendBytes(bytes));
  ASSERT_TRUE(c.ReadMessage<v1::AuthOk>(FrameType::kAuthOk, nullptr));
  // Echoes of HEARTBEATs that arrive together may be merged into the newest (PROTOCOL S2): in
  // ts_ms order, ending with 3.
  std::int64_t last = 0;
  while (last < 3) {
    v1::Heartbeat echo;
    ASSERT_TRUE(c.ReadMessage(FrameType::kHeartbeat, &echo));
    EXPECT_GT(echo.ts_ms(), last);
    last = echo.ts_ms();
  }
  EXPECT_EQ(last, 3);
  EXPECT_TRUE(c.ExpectNothing(milliseconds(100)));
}

// After a fatal ERROR nothing else is sent, even with data queued for the connection.
TEST_F(FramingTest, NothingFollowsAFatalErrorEvenWithQueuedData) {
  ASSERT_TRUE(Start({{"BATCH_WINDOW_MS", "300"}}));
  RawClient sub;
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(ConnectAuthed(pub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {Topic()}));
  std::vector<v1::Tick> ticks;
  for (int i = 0; i < 50; ++i) ticks.push_back(MakeTick(Topic(), 100 + i, 1));
  ASSERT_TRUE(pub.PublishAcked(1, ticks));
  // The records are now held in the subscriber's 300 ms batch window.
  ASSERT_TRUE(sub.SendRawFrame(0x42, ""));
  while (true) {
    ReadResult r = sub.ReadFrame();
    ASSERT_TRUE(r.ok()) << "no ERROR before " << ReadStatusName(r.status) << " " << r.detail;
    if (r.frame.frame_type() == FrameType::kDataBatch) continue;  // flushed before the error
    ASSERT_EQ(r.frame.frame_type(), FrameType::kError) << DescribeFrame(r.frame);
    break;
  }
  EXPECT_TRUE(sub.ExpectClosed());
}

TEST_F(FramingTest, ClientClosingMidFrameDoesNotDisturbOthers) {
  ASSERT_TRUE(Start());
  RawClient a;
  RawClient b;
  ASSERT_TRUE(ConnectAuthed(a));
  ASSERT_TRUE(ConnectAuthed(b));
  ASSERT_TRUE(a.SendBytes(LengthBytes(100) + "\x06"
                                             "abc"));
  a.Close();
  EXPECT_TRUE(b.HeartbeatRoundTrip(11));
}

}  // namespace
}  // namespace tickwire::testing
