// Drives FrameDecoder with arbitrary bytes split into arbitrary chunks.
//
// Input layout: byte 0 picks the largest chunk size (0 = the whole stream at once), byte 1
// seeds the chunk-size sequence, byte 2 picks after how many frames the callback returns false
// (0 = never); the rest is the byte stream.
//
// Oracles:
//  - every delivered payload is <= max_msg_size; buffered() never exceeds kHeaderSize + max;
//  - after a length error nothing that large was buffered (buffered() <= kHeaderSize);
//  - chunked decoding delivers exactly the frames (and the error) of a single whole-buffer feed;
//  - the delivered frames, re-encoded, are a prefix of the input stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "protocol/decoder.h"
#include "protocol/frame.h"

namespace {

using tickwire::protocol::FrameDecoder;
using tickwire::protocol::FrameType;
using tickwire::protocol::kHeaderSize;

constexpr std::uint32_t kMaxMsgSize = 4096;

struct Outcome {
  std::vector<std::string> frames;  // re-encoded frames, in order
  std::error_code error;
};

void Check(bool ok) {
  if (!ok) std::abort();
}

Outcome Decode(std::span<const std::uint8_t> stream, std::size_t max_chunk, std::uint32_t seed,
               std::size_t stop_after) {
  FrameDecoder decoder(kMaxMsgSize);
  Outcome out;
  bool stopped = false;
  auto on_frame = [&](std::uint8_t type, std::span<const std::uint8_t> payload) {
    Check(payload.size() <= kMaxMsgSize);
    Check(!stopped);
    out.frames.push_back(tickwire::protocol::MakeFrame(
        static_cast<FrameType>(type),
        std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size())));
    if (stop_after != 0 && out.frames.size() >= stop_after) {
      stopped = true;
      return false;
    }
    return true;
  };
  std::size_t pos = 0;
  std::uint32_t state = seed * 2654435761U + 1;
  while (pos < stream.size() && !stopped) {
    std::size_t n = stream.size() - pos;
    if (max_chunk != 0) {
      state = state * 1103515245U + 12345U;
      n = std::min<std::size_t>(n, 1 + (state >> 16) % max_chunk);
    }
    out.error = decoder.Feed(stream.subspan(pos, n), on_frame);
    Check(decoder.buffered() <= kHeaderSize + kMaxMsgSize);
    pos += n;
    if (out.error) {
      Check(decoder.buffered() <= kHeaderSize);
      break;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::size_t max_chunk = data[0];
  const std::uint32_t seed = data[1];
  const std::size_t stop_after = data[2] % 8;
  const std::span<const std::uint8_t> stream(data + 3, size - 3);

  const Outcome whole = Decode(stream, 0, seed, stop_after);
  const Outcome chunked = Decode(stream, max_chunk, seed, stop_after);
  Check(whole.frames == chunked.frames);
  Check(whole.error == chunked.error);

  std::string joined;
  for (const std::string& f : whole.frames) joined += f;
  Check(joined.size() <= stream.size());
  Check(std::string_view(reinterpret_cast<const char*>(stream.data()), joined.size()) == joined);
  return 0;
}
