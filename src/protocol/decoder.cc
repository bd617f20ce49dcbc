#include "protocol/decoder.h"

namespace tickwire::protocol {

std::error_code FrameDecoder::CheckLength(std::uint32_t length, std::size_t& payload_size) const {
  if (length == 0) return DecodeError::kZeroLength;
  payload_size = length - 1;
  if (payload_size > max_msg_size_) return DecodeError::kFrameTooLarge;
  return {};
}

void FrameDecoder::ReleaseIfLarge() {
  // Idle connections should not keep a frame-sized buffer alive.
  if (pending_.capacity() > keep_bytes_) std::vector<std::uint8_t>().swap(pending_);
}

}  // namespace tickwire::protocol
