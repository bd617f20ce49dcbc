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
//
// A frame handler may Pause() the decoder (the server does while an AUTH is being checked):
// decoding stops after that frame, and the rest of the chunk is kept, undecoded, until Resume().
// The caller stops reading meanwhile, so what is kept is at most one read's bytes.
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

  // From inside `on_frame`: stop after this frame and keep the rest of the chunk for Resume().
  void Pause() { paused_ = true; }
  bool paused() const { return paused_; }
  // Decodes what Pause() kept, exactly as Feed would have (the handler may pause again).
  template <typename OnFrame>
  std::error_code Resume(OnFrame&& on_frame);

  // Bytes of an incomplete frame currently held, and bytes kept by Pause().
  std::size_t buffered() const { return pending_.size() + held_.size(); }
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
  bool paused_ = false;
  std::vector<std::uint8_t> held_;  // undecoded bytes after the frame that paused
};

template <typename OnFrame>
std::error_code FrameDecoder::Feed(std::span<const std::uint8_t> data, OnFrame&& on_frame) {
  if (paused_) {  // the caller should not read while paused; keep the order all the same
    held_.insert(held_.end(), data.begin(), data.end());
    return {};
  }
  std::size_t pos = 0;
  const std::size_t n = data.size();
  // After a frame: stop here and keep the rest when the handler paused.
  auto hold_rest = [&] {
    if (!paused_) return false;
    held_.assign(data.begin() + static_cast<std::ptrdiff_t>(pos), data.end());
    return true;
  };

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
    if (!go_on || hold_rest()) return {};
  }

  // 2. Decode complete frames straight from the chunk.
  while (n - pos >= kLengthSize) {
    std::size_t payload_size = 0;
    if (auto ec = CheckLength(DecodeLength(data.data() + pos), payload_size)) return ec;
    const std::size_t frame_size = kHeaderSize + payload_size;
    if (n - pos < frame_size) break;
    const bool go_on = on_frame(data[pos + 4], data.subspan(pos + kHeaderSize, payload_size));
    pos += frame_size;
    if (!go_on || hold_rest()) return {};
  }

  // 3. Keep the tail (at most one partial frame, already length-checked when >= 4 bytes).
  if (pos < n) pending_.assign(data.begin() + static_cast<std::ptrdiff_t>(pos), data.end());
  return {};
}

template <typename OnFrame>
std::error_code FrameDecoder::Resume(OnFrame&& on_frame) {
  paused_ = false;
  const std::vector<std::uint8_t> held = std::move(held_);
  held_ = {};
  if (held.empty()) return {};
  return Feed(std::span<const std::uint8_t>(held), std::forward<OnFrame>(on_frame));
}

}  // namespace tickwire::protocol
