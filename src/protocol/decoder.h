#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

#include "protocol/errors.h"
#include "protocol/frame.h"

namespace tickwire::protocol {

// Incremental frame decoder. Bytes arrive in arbitrary chunks; every complete frame is handed
// to a callback as (type byte, payload view). The declared length is checked against
// MAX_MSG_SIZE as soon as the 4 length bytes are known, before any payload is buffered, so a
// hostile length never causes an allocation. At most one partial frame is kept between calls
// (bounded by kHeaderSize + max_msg_size); complete frames inside a chunk are decoded in place.
class FrameDecoder {
 public:
  // `keep_bytes`: partial-frame storage up to this size is kept for the next frame rather than
  // returned to the allocator. The server keeps little (an idle connection should hold no
  // frame-sized buffer); a client reading a busy stream, where most reads end inside a frame,
  // keeps a whole frame's worth and so allocates nothing per read.
  explicit FrameDecoder(std::uint32_t max_msg_size, std::size_t keep_bytes = 4096)
      : max_msg_size_(max_msg_size), keep_bytes_(keep_bytes) {}

  // Decodes all complete frames in `data`. `on_frame(std::uint8_t type,
  // std::span<const std::uint8_t> payload) -> bool` is called for each; the payload view is
  // valid only during the call. Returning false stops decoding (the caller is closing) and
  // the rest of `data` is dropped. Returns a DecodeError on a bad header; the decoder must
  // not be fed again after an error.
  template <typename OnFrame>
  std::error_code Feed(std::span<const std::uint8_t> data, OnFrame&& on_frame);

  // Bytes of an incomplete frame currently held.
  std::size_t buffered() const { return pending_.size(); }
  // Heap bytes held for partial frames (for memory accounting).
  std::size_t capacity() const { return pending_.capacity(); }
  std::uint32_t max_msg_size() const { return max_msg_size_; }

 private:
  // Validates a length field; returns the payload size through `payload_size`.
  std::error_code CheckLength(std::uint32_t length, std::size_t& payload_size) const;
  // Returns pending_ memory to the allocator when it grew for a large frame.
  void ReleaseIfLarge();

  std::uint32_t max_msg_size_;
  std::size_t keep_bytes_;
  std::vector<std::uint8_t> pending_;  // one incomplete frame, header included
};

template <typename OnFrame>
std::error_code FrameDecoder::Feed(std::span<const std::uint8_t> data, OnFrame&& on_frame) {
  std::size_t pos = 0;
  const std::size_t n = data.size();

  // 1. Finish the frame left over from an earlier chunk.
  if (!pending_.empty()) {
    if (pending_.size() < kHeaderSize) {
      const std::size_t take = std::min(kHeaderSize - pending_.size(), n);
      pending_.insert(pending_.end(), data.begin(),
                      data.begin() + static_cast<std::ptrdiff_t>(take));
      pos += take;
      if (pending_.size() >= kLengthSize) {
        std::size_t payload_size = 0;
        if (auto ec = CheckLength(DecodeLength(pending_.data()), payload_size)) return ec;
      }
      if (pending_.size() < kHeaderSize) return {};
    }
    std::size_t payload_size = 0;
    if (auto ec = CheckLength(DecodeLength(pending_.data()), payload_size)) return ec;
    const std::size_t frame_size = kHeaderSize + payload_size;
    const std::size_t take = std::min(frame_size - pending_.size(), n - pos);
    pending_.insert(pending_.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
                    data.begin() + static_cast<std::ptrdiff_t>(pos + take));
    pos += take;
    if (pending_.size() < frame_size) return {};
    const bool go_on = on_frame(
        pending_[4], std::span<const std::uint8_t>(pending_.data() + kHeaderSize, payload_size));
    pending_.clear();
    ReleaseIfLarge();
    if (!go_on) return {};
  }

  // 2. Decode complete frames straight from the chunk.
  while (n - pos >= kLengthSize) {
    std::size_t payload_size = 0;
    if (auto ec = CheckLength(DecodeLength(data.data() + pos), payload_size)) return ec;
    const std::size_t frame_size = kHeaderSize + payload_size;
    if (n - pos < frame_size) break;
    const bool go_on = on_frame(data[pos + 4], data.subspan(pos + kHeaderSize, payload_size));
    pos += frame_size;
    if (!go_on) return {};
  }

  // 3. Keep the tail (at most one partial frame, already length-checked when >= 4 bytes).
  if (pos < n) pending_.assign(data.begin() + static_cast<std::ptrdiff_t>(pos), data.end());
  return {};
}

}  // namespace tickwire::protocol
