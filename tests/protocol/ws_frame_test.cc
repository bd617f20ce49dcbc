// WebSocket framing (protocol/ws_frame.h): client frames read in any chunking, masks, fragments,
// control frames between fragments, the message limit decided from the header, pause/resume,
// and the server's frame headers.
#include "protocol/ws_frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tickwire::protocol::ws {
namespace {

std::string Masked(std::uint8_t first, const std::string& payload, std::uint32_t mask = 0x1234abcd,
                   std::uint64_t declared = ~std::uint64_t{0}) {
  const std::uint64_t len = declared == ~std::uint64_t{0} ? payload.size() : declared;
  std::string f;
  f += static_cast<char>(first);
  if (len < 126) {
    f += static_cast<char>(0x80 | static_cast<unsigned>(len));
  } else if (len <= 0xFFFF) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len & 0xFF);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((len >> (8 * i)) & 0xFF);
  }
  const char m[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
                     static_cast<char>(mask >> 8), static_cast<char>(mask)};
  f.append(m, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ m[i % 4]);
  return f;
}

struct Seen {
  Event::Kind kind;
  std::string payload;
  std::uint16_t code;
};

struct Outcome {
  std::vector<Seen> events;
  ReadError error = ReadError::kNone;
};

// Feeds `bytes` in chunks of `chunk` (0 = at once).
Outcome Read(FrameReader& reader, const std::string& bytes, std::size_t chunk = 0) {
  Outcome run;
  auto on = [&run](const Event& ev) {
    run.events.push_back(
        {ev.kind, std::string(reinterpret_cast<const char*>(ev.payload.data()), ev.payload.size()),
         ev.close_code});
    return true;
  };
  const std::size_t step = chunk == 0 ? bytes.size() : chunk;
  for (std::size_t off = 0; off < bytes.size(); off += step) {
    const std::string_view part = std::string_view(bytes).substr(off, step);
    run.error =
        reader.Feed(std::span(reinterpret_cast<const std::uint8_t*>(part.data()), part.size()), on);
    if (run.error != ReadError::kNone) break;
  }
  return run;
}

TEST(WsFrameReader, MessagesOfEveryLengthFormInAnyChunking) {
  const std::string small(10, 'a');
  const std::string medium(300, 'b');
  const std::string large(70'000, 'c');
  const std::string stream =
      Masked(0x82, small) + Masked(0x82, medium) + Masked(0x82, large) + Masked(0x82, "");
  for (std::size_t chunk : {0u, 1u, 3u, 7u, 1000u}) {
    FrameReader reader(100'000);
    const Outcome run = Read(reader, stream, chunk);
    ASSERT_EQ(run.error, ReadError::kNone);
    ASSERT_EQ(run.events.size(), 4u) << chunk;
    EXPECT_EQ(run.events[0].payload, small);
    EXPECT_EQ(run.events[1].payload, medium);
    EXPECT_EQ(run.events[2].payload, large);
    EXPECT_EQ(run.events[3].payload, "");
    EXPECT_EQ(run.events[2].kind, Event::Kind::kBinary);
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(WsFrameReader, FragmentsJoinAndControlFramesMayComeBetweenThem) {
  const std::string stream = Masked(0x02, "one ") + Masked(0x89, "ping!") + Masked(0x00, "two ") +
                             Masked(0x80, "three") + Masked(0x81, "text") + Masked(0x8A, "") +
                             Masked(0x88, std::string("\x03\xe8"
                                                      "bye",
                                                      5));
  FrameReader reader(1000);
  const Outcome run = Read(reader, stream, 2);
  ASSERT_EQ(run.error, ReadError::kNone);
  ASSERT_EQ(run.events.size(), 5u);
  EXPECT_EQ(run.events[0].kind, Event::Kind::kPing);
  EXPECT_EQ(run.events[0].payload, "ping!");
  EXPECT_EQ(run.events[1].kind, Event::Kind::kBinary);
  EXPECT_EQ(run.events[1].payload, "one two three");
  EXPECT_EQ(run.events[2].kind, Event::Kind::kText);
  EXPECT_EQ(run.events[3].kind, Event::Kind::kPong);
  EXPECT_EQ(run.events[4].kind, Event::Kind::kClose);
  EXPECT_EQ(run.events[4].code, 1000);
  EXPECT_EQ(run.events[4].payload, "bye");
}

TEST(WsFrameReader, ProtocolViolationsAreErrors) {
  const auto error_of = [](const std::string& bytes) {
    FrameReader reader(1000);
    return Read(reader, bytes).error;
  };
  std::string unmasked = Masked(0x82, "x");
  unmasked[1] = static_cast<char>(unmasked[1] & 0x7F);
  EXPECT_EQ(error_of(unmasked), ReadError::kUnmasked);
  EXPECT_EQ(error_of(Masked(0xC2, "x")), ReadError::kReservedBits);
  EXPECT_EQ(error_of(Masked(0x83, "x")), ReadError::kBadOpcode);
  EXPECT_EQ(error_of(Masked(0x8B, "x")), ReadError::kBadOpcode);
  EXPECT_EQ(error_of(Masked(0x09, "x")), ReadError::kBadControl);  // fragmented ping
  EXPECT_EQ(error_of(Masked(0x89, std::string(126, 'p'))), ReadError::kBadControl);
  EXPECT_EQ(error_of(Masked(0x80, "x")), ReadError::kBadContinuation);
  EXPECT_EQ(error_of(Masked(0x02, "x") + Masked(0x82, "y")), ReadError::kBadContinuation);
  EXPECT_EQ(error_of(Masked(0x88, "x")), ReadError::kBadClosePayload);
}

TEST(WsFrameReader, TheLimitIsDecidedFromTheHeaderBeforeAnyPayload) {
  FrameReader reader(1005);
  EXPECT_EQ(Read(reader, Masked(0x82, std::string(1005, 'x'))).error, ReadError::kNone);
  // A header alone declaring 2^40 bytes: refused with nothing buffered.
  FrameReader hostile(1005);
  const Outcome run = Read(hostile, Masked(0x82, "", 0, std::uint64_t{1} << 40));
  EXPECT_EQ(run.error, ReadError::kMessageTooBig);
  EXPECT_EQ(hostile.buffered(), 0u);
  // Fragments count together.
  FrameReader frag(1005);
  EXPECT_EQ(
      Read(frag, Masked(0x02, std::string(600, 'x')) + Masked(0x80, std::string(600, 'y'))).error,
      ReadError::kMessageTooBig);
  // And a failed reader stays failed.
  EXPECT_EQ(Read(hostile, Masked(0x82, "ok")).error, ReadError::kMessageTooBig);
}

TEST(WsFrameReader, PauseKeepsTheRestUntilResume) {
  FrameReader reader(1000);
  const std::string stream = Masked(0x82, "first") + Masked(0x82, "second") + Masked(0x82, "third");
  std::vector<std::string> got;
  auto on = [&](const Event& ev) {
    got.emplace_back(reinterpret_cast<const char*>(ev.payload.data()), ev.payload.size());
    if (got.size() == 1) reader.Pause();
    return true;
  };
  ASSERT_EQ(
      reader.Feed(
          std::span(reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size() - 3), on),
      ReadError::kNone);
  EXPECT_TRUE(reader.paused());
  ASSERT_EQ(got.size(), 1u);
  // Bytes fed while paused are kept behind the held ones.
  ASSERT_EQ(
      reader.Feed(
          std::span(reinterpret_cast<const std::uint8_t*>(stream.data()) + stream.size() - 3, 3),
          on),
      ReadError::kNone);
  ASSERT_EQ(reader.Resume(on), ReadError::kNone);
  EXPECT_EQ(got, (std::vector<std::string>{"first", "second", "third"}));
}

TEST(WsFrameReader, StoppingEndsReading) {
  FrameReader reader(1000);
  int calls = 0;
  const std::string stream = Masked(0x82, "a") + Masked(0x82, "b");
  auto stop = [&](const Event&) {
    ++calls;
    return false;
  };
  reader.Feed(std::span(reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size()), stop);
  reader.Feed(std::span(reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size()), stop);
  EXPECT_EQ(calls, 1);
}

TEST(WsFrameWriter, HeadersUseTheShortestLengthForm) {
  std::array<std::uint8_t, kMaxServerHeader> h{};
  EXPECT_EQ(EncodeHeader(Opcode::kBinary, 125, h), 2u);
  EXPECT_EQ(h[0], 0x82);
  EXPECT_EQ(h[1], 125);
  EXPECT_EQ(EncodeHeader(Opcode::kBinary, 126, h), 4u);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ((h[2] << 8) | h[3], 126);
  EXPECT_EQ(EncodeHeader(Opcode::kBinary, 65'536, h), 10u);
  EXPECT_EQ(h[1], 127);
  EXPECT_EQ(h[7], 1);
  EXPECT_EQ(h[9], 0);
  const std::string close = EncodeClose(1001, std::string(200, 'r'));
  EXPECT_EQ(close.size(), 2u + 125u);
  EXPECT_EQ(static_cast<std::uint8_t>(close[0]), 0x88);
  EXPECT_EQ(static_cast<std::uint8_t>(close[2]), 0x03);
  EXPECT_EQ(static_cast<std::uint8_t>(close[3]), 0xE9);
  // A reason is never cut inside a UTF-8 sequence.
  const std::string utf8 = EncodeClose(1000, std::string(122, 'x') + "\xc3\xa9");
  EXPECT_EQ(utf8.size(), 2u + 2u + 122u);
}

}  // namespace
}  // namespace tickwire::protocol::ws
