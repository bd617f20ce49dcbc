#include "protocol/decoder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "protocol/errors.h"
#include "protocol/frame.h"
#include "random_ticks.h"

namespace tickwire::protocol {
namespace {

using testing::Bytes;

struct Decoded {
  std::uint8_t type;
  std::string payload;
  bool operator==(const Decoded&) const = default;
};

// Feeds `stream` in the given chunk sizes (the last chunk takes the rest) and collects frames.
struct FeedResult {
  std::vector<Decoded> frames;
  std::error_code error;
  std::size_t max_buffered = 0;
};

FeedResult FeedInChunks(FrameDecoder& d, std::string_view stream,
                        const std::vector<std::size_t>& sizes) {
  FeedResult run;
  std::size_t pos = 0;
  std::size_t i = 0;
  while (pos < stream.size()) {
    std::size_t n = i < sizes.size() ? sizes[i++] : stream.size() - pos;
    n = std::min(n, stream.size() - pos);
    run.error = d.Feed(Bytes(stream.substr(pos, n)), [&](std::uint8_t type, auto payload) {
      run.frames.push_back({type, std::string(testing::View(payload))});
      return true;
    });
    run.max_buffered = std::max(run.max_buffered, d.buffered());
    pos += n;
    if (run.error) break;
  }
  return run;
}

FeedResult FeedWhole(std::uint32_t max, std::string_view stream) {
  FrameDecoder d(max);
  return FeedInChunks(d, stream, {stream.size()});
}

FeedResult FeedByteByByte(std::uint32_t max, std::string_view stream) {
  FrameDecoder d(max);
  return FeedInChunks(d, stream, std::vector<std::size_t>(stream.size(), 1));
}

std::string LengthPrefix(std::uint32_t length) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(length >> 24);
  s[1] = static_cast<char>(length >> 16);
  s[2] = static_cast<char>(length >> 8);
  s[3] = static_cast<char>(length);
  return s;
}

// A stream of random frames (payload sizes from empty to exactly `max`) and what it holds.
std::pair<std::string, std::vector<Decoded>> RandomStream(std::mt19937_64& rng, std::uint32_t max,
                                                          int frames) {
  std::string stream;
  std::vector<Decoded> expected;
  for (int i = 0; i < frames; ++i) {
    std::size_t size = 0;
    switch (rng() % 5) {
      case 0:
        size = 0;
        break;
      case 1:
        size = max;
        break;
      case 2:
        size = rng() % (max + 1);
        break;
      default:
        size = rng() % 64;
    }
    std::string payload(size, '\0');
    for (char& c : payload) c = static_cast<char>(rng());
    // Any type byte: the decoder frames bytes, the session judges types.
    const auto type = static_cast<std::uint8_t>(rng());
    stream += MakeFrame(static_cast<FrameType>(type), payload);
    expected.push_back({type, std::move(payload)});
  }
  return {stream, expected};
}

TEST(FrameDecoder, WholeBytewiseAndRandomSplitsGiveIdenticalFrames) {
  constexpr std::uint32_t kMax = 1024;
  std::mt19937_64 rng(42);
  for (int round = 0; round < 40; ++round) {
    auto [stream, expected] = RandomStream(rng, kMax, 1 + static_cast<int>(rng() % 20));
    const FeedResult whole = FeedWhole(kMax, stream);
    EXPECT_FALSE(whole.error);
    EXPECT_EQ(whole.frames, expected);
    EXPECT_EQ(whole.max_buffered, 0U);

    const FeedResult bytewise = FeedByteByByte(kMax, stream);
    EXPECT_FALSE(bytewise.error);
    EXPECT_EQ(bytewise.frames, expected);

    for (int split = 0; split < 10; ++split) {
      std::vector<std::size_t> sizes;
      const std::size_t max_chunk = 1 + rng() % (split % 2 == 0 ? 16 : 3000);
      for (std::size_t total = 0; total < stream.size();) {
        sizes.push_back(1 + rng() % max_chunk);
        total += sizes.back();
      }
      FrameDecoder d(kMax);
      const FeedResult chunked = FeedInChunks(d, stream, sizes);
      EXPECT_FALSE(chunked.error);
      EXPECT_EQ(chunked.frames, expected) << "round " << round << " split " << split;
      EXPECT_LE(chunked.max_buffered, kHeaderSize + kMax);
      EXPECT_EQ(d.buffered(), 0U);
    }
  }
}

TEST(FrameDecoder, EmptyPayloadIsAValidFrame) {
  const FeedResult run = FeedByteByByte(1024, MakeFrame(FrameType::kHeartbeat, ""));
  EXPECT_FALSE(run.error);
  ASSERT_EQ(run.frames.size(), 1U);
  EXPECT_EQ(run.frames[0], (Decoded{0x09, ""}));
}

TEST(FrameDecoder, EmptyFeedIsANoOp) {
  FrameDecoder d(1024);
  int calls = 0;
  EXPECT_FALSE(d.Feed({}, [&](std::uint8_t, auto) { return ++calls, true; }));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(d.buffered(), 0U);
}

TEST(FrameDecoder, ZeroLengthIsMalformed) {
  const std::string zero = LengthPrefix(0) + "\x01";
  EXPECT_EQ(FeedWhole(1024, zero).error, DecodeError::kZeroLength);
  EXPECT_EQ(FeedByteByByte(1024, zero).error, DecodeError::kZeroLength);
  // Reported once the 4 length bytes are known, even with nothing after them.
  EXPECT_EQ(FeedWhole(1024, LengthPrefix(0)).error, DecodeError::kZeroLength);

  // After good frames: those are delivered first, then the error.
  const std::string stream = MakeFrame(FrameType::kAuth, "abc") + LengthPrefix(0);
  for (const FeedResult& run : {FeedWhole(1024, stream), FeedByteByByte(1024, stream)}) {
    EXPECT_EQ(run.error, DecodeError::kZeroLength);
    ASSERT_EQ(run.frames.size(), 1U);
    EXPECT_EQ(run.frames[0], (Decoded{0x01, "abc"}));
  }
}

TEST(FrameDecoder, OversizeLengthIsReportedAsSoonAsTheLengthIsKnown) {
  constexpr std::uint32_t kMax = 1024;
  for (std::uint32_t length : {kMax + 2, kMax + 3, 65537U, 0x7FFFFFFFU, 0xFFFFFFFFU}) {
    // Whole: just the 4 length bytes are enough.
    {
      FrameDecoder d(kMax);
      const std::string prefix = LengthPrefix(length);
      EXPECT_EQ(d.Feed(Bytes(prefix), [](std::uint8_t, auto) { return true; }),
                DecodeError::kFrameTooLarge);
      EXPECT_LT(d.buffered(), kHeaderSize);
      EXPECT_LE(d.capacity(), 64U);  // nothing near the declared size was allocated
    }
    // Byte by byte: no error for the first 3 bytes, the error on the 4th; no payload buffered.
    {
      FrameDecoder d(kMax);
      const std::string stream = LengthPrefix(length) + std::string(100, 'x');
      for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_FALSE(d.Feed(Bytes(stream.substr(i, 1)), [](std::uint8_t, auto) { return true; }));
      }
      EXPECT_EQ(d.Feed(Bytes(stream.substr(3, 1)), [](std::uint8_t, auto) { return true; }),
                DecodeError::kFrameTooLarge);
      EXPECT_LT(d.buffered(), kHeaderSize);
      EXPECT_LE(d.capacity(), 64U);
    }
    // Behind a good frame in the same chunk, and with the length split across chunks.
    {
      const std::string stream =
          MakeFrame(FrameType::kPublish, "p") + LengthPrefix(length) + std::string(10, 'y');
      FrameDecoder d(kMax);
      const FeedResult run = FeedInChunks(d, stream, {7, 1, 1});
      EXPECT_EQ(run.error, DecodeError::kFrameTooLarge);
      ASSERT_EQ(run.frames.size(), 1U);
      EXPECT_EQ(run.frames[0], (Decoded{0x06, "p"}));
      // The length completes together with the type byte here: the header may be held, never
      // any payload.
      EXPECT_LE(d.buffered(), kHeaderSize);
      EXPECT_EQ(FeedWhole(kMax, stream).error, DecodeError::kFrameTooLarge);
    }
  }
}

TEST(FrameDecoder, ExactlyMaxPayloadIsAccepted) {
  for (std::uint32_t max : {1024U, 4096U, 65536U}) {
    const std::string payload(max, 'm');
    const std::string stream = MakeFrame(FrameType::kPublish, payload);
    for (const FeedResult& run : {FeedWhole(max, stream), FeedByteByByte(max, stream)}) {
      EXPECT_FALSE(run.error) << run.error.message();
      ASSERT_EQ(run.frames.size(), 1U);
      EXPECT_EQ(run.frames[0].payload, payload);
    }
    // One byte more is refused.
    const std::string over = MakeFrame(FrameType::kPublish, payload + "m");
    EXPECT_EQ(FeedWhole(max, over).error, DecodeError::kFrameTooLarge);
    EXPECT_EQ(FeedByteByByte(max, over).error, DecodeError::kFrameTooLarge);
  }
}

TEST(FrameDecoder, CallbackReturningFalseStopsInsideAChunk) {
  const std::string stream = MakeFrame(FrameType::kAuth, "1") + MakeFrame(FrameType::kAuth, "2") +
                             MakeFrame(FrameType::kAuth, "3");
  FrameDecoder d(1024);
  std::vector<std::string> seen;
  const auto ec = d.Feed(Bytes(stream), [&](std::uint8_t, auto payload) {
    seen.emplace_back(testing::View(payload));
    return seen.size() < 2;
  });
  EXPECT_FALSE(ec);
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "2"}));
}

TEST(FrameDecoder, CallbackReturningFalseStopsAfterAPartialFrame) {
  const std::string stream =
      MakeFrame(FrameType::kAuth, "first") + MakeFrame(FrameType::kAuth, "second");
  FrameDecoder d(1024);
  std::vector<std::string> seen;
  auto stop = [&](std::uint8_t, auto payload) {
    seen.emplace_back(testing::View(payload));
    return false;
  };
  // The first frame completes from pending bytes; the second, whole in the same chunk, is not
  // delivered.
  EXPECT_FALSE(d.Feed(Bytes(std::string_view(stream).substr(0, 3)), stop));
  EXPECT_FALSE(d.Feed(Bytes(std::string_view(stream).substr(3)), stop));
  EXPECT_EQ(seen, (std::vector<std::string>{"first"}));
}

TEST(FrameDecoder, KeepsAtMostOnePartialFrameAndReleasesLargeBuffers) {
  constexpr std::uint32_t kMax = 65536;
  const std::string big = MakeFrame(FrameType::kPublish, std::string(60000, 'b'));
  FrameDecoder d(kMax);
  int frames = 0;
  auto count = [&](std::uint8_t, auto) { return ++frames, true; };
  EXPECT_FALSE(d.Feed(Bytes(std::string_view(big).substr(0, 30000)), count));
  EXPECT_EQ(d.buffered(), 30000U);
  EXPECT_FALSE(d.Feed(Bytes(std::string_view(big).substr(30000)), count));
  EXPECT_EQ(frames, 1);
  EXPECT_EQ(d.buffered(), 0U);
  EXPECT_LE(d.capacity(), 4096U);  // an idle connection does not keep a frame-sized buffer
}

// The server pauses the decoder after an AUTH whose check runs elsewhere; the frames behind it
// (pipelined in the same read, or split across reads) come out in order once it resumes.
TEST(FrameDecoder, PauseKeepsTheRestOfTheChunkAndResumeDecodesItInOrder) {
  std::mt19937_64 rng(13);
  for (int round = 0; round < 200; ++round) {
    auto [stream, expected] = RandomStream(rng, 300, 6);
    const std::size_t pause_at = rng() % expected.size();  // pause after this frame
    const std::size_t split = rng() % (stream.size() + 1);
    FrameDecoder d(300);
    std::vector<Decoded> seen;
    auto on_frame = [&](std::uint8_t type, auto payload) {
      seen.push_back({type, std::string(testing::View(payload))});
      if (seen.size() == pause_at + 1) d.Pause();
      return true;
    };
    std::size_t fed = 0;
    for (const std::size_t end : {split, stream.size()}) {
      if (d.paused()) break;  // a paused reader stops reading
      ASSERT_FALSE(d.Feed(Bytes(std::string_view(stream).substr(fed, end - fed)), on_frame));
      fed = end;
    }
    ASSERT_TRUE(d.paused());
    ASSERT_EQ(seen.size(), pause_at + 1) << "nothing is decoded past the pause";
    EXPECT_LE(d.buffered(), stream.size());
    ASSERT_FALSE(d.Resume(on_frame));
    if (fed < stream.size()) {
      ASSERT_FALSE(d.Feed(Bytes(std::string_view(stream).substr(fed)), on_frame));
    }
    EXPECT_FALSE(d.paused());
    EXPECT_EQ(seen, expected) << "round " << round;
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameDecoder, ResumeReportsAHeaderErrorInTheKeptBytes) {
  const std::string stream = MakeFrame(FrameType::kAuth, "a") + LengthPrefix(0) + "x";
  FrameDecoder d(1024);
  const auto ec = d.Feed(Bytes(stream), [&](std::uint8_t, auto) {
    d.Pause();
    return true;
  });
  EXPECT_FALSE(ec);
  EXPECT_EQ(d.Resume([](std::uint8_t, auto) { return true; }), DecodeError::kZeroLength);
}

}  // namespace
}  // namespace tickwire::protocol
