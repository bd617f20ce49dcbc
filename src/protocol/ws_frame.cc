#include "protocol/ws_frame.h"

namespace tickwire::protocol::ws {
namespace {

// message_ storage above this is returned to the allocator after the message: an idle
// connection should not keep a frame-sized buffer.
constexpr std::size_t kKeepMessageBytes = 4096;

bool KnownOpcode(std::uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

}  // namespace

std::string_view ReadErrorText(ReadError e) {
  switch (e) {
    case ReadError::kNone:
      return "no error";
    case ReadError::kUnmasked:
      return "WebSocket frame from the client without a mask";
    case ReadError::kReservedBits:
      return "WebSocket frame with reserved bits set";
    case ReadError::kBadOpcode:
      return "WebSocket frame with a reserved opcode";
    case ReadError::kBadControl:
      return "WebSocket control frame fragmented or over 125 bytes";
    case ReadError::kBadContinuation:
      return "WebSocket continuation frame out of order";
    case ReadError::kBadClosePayload:
      return "WebSocket close frame with a one-byte payload";
    case ReadError::kMessageTooBig:
      return "WebSocket message larger than MAX_MSG_SIZE + 5";
  }
  return "unknown";
}

bool FrameReader::ParseHeader() {
  const std::uint8_t b0 = header_[0];
  const std::uint8_t b1 = header_[1];
  if (header_need_ == 2) {
    // First pass: the two fixed bytes tell how long the rest of the header is.
    if ((b0 & 0x70) != 0) {
      error_ = ReadError::kReservedBits;
      return false;
    }
    const std::uint8_t op = b0 & 0x0F;
    if (!KnownOpcode(op)) {
      error_ = ReadError::kBadOpcode;
      return false;
    }
    if ((b1 & 0x80) == 0) {
      error_ = ReadError::kUnmasked;
      return false;
    }
    const std::uint8_t len7 = b1 & 0x7F;
    const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    header_need_ = 2 + ext + 4;
    return true;  // in_payload_ stays false: read the rest of the header
  }
  fin_ = (b0 & 0x80) != 0;
  opcode_ = static_cast<Opcode>(b0 & 0x0F);
  const std::uint8_t len7 = b1 & 0x7F;
  std::uint64_t len = len7;
  std::size_t at = 2;
  if (len7 == 126) {
    len = (std::uint64_t{header_[2]} << 8) | header_[3];
    at = 4;
  } else if (len7 == 127) {
    len = 0;
    for (std::size_t i = 0; i < 8; ++i) len = (len << 8) | header_[2 + i];
    at = 10;
  }
  std::copy_n(header_.begin() + static_cast<std::ptrdiff_t>(at), 4, mask_.begin());
  const bool control = static_cast<std::uint8_t>(opcode_) >= 0x8;
  if (control) {
    if (!fin_ || len > kMaxControlPayload) {
      error_ = ReadError::kBadControl;
      return false;
    }
  } else if (opcode_ == Opcode::kContinuation) {
    if (message_opcode_ == Opcode::kContinuation) {
      error_ = ReadError::kBadContinuation;
      return false;
    }
  } else {
    if (message_opcode_ != Opcode::kContinuation) {
      error_ = ReadError::kBadContinuation;
      return false;
    }
    message_opcode_ = opcode_;
  }
  // Refused from the header, before a byte of it is buffered (the sum cannot overflow: the
  // message so far is within the limit, which is far below 2^63).
  if (!control && (len > max_message_ || message_.size() + len > max_message_)) {
    error_ = ReadError::kMessageTooBig;
    return false;
  }
  payload_left_ = len;
  payload_pos_ = 0;
  control_have_ = 0;
  in_payload_ = true;
  if (!control) message_.reserve(message_.size() + static_cast<std::size_t>(len));
  return true;
}

void FrameReader::ReleaseIfLarge() {
  if (message_.capacity() > kKeepMessageBytes) std::vector<std::uint8_t>().swap(message_);
}

std::size_t EncodeHeader(Opcode opcode, std::uint64_t payload_size,
                         std::array<std::uint8_t, kMaxServerHeader>& out) {
  out[0] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(opcode));
  if (payload_size < 126) {
    out[1] = static_cast<std::uint8_t>(payload_size);
    return 2;
  }
  if (payload_size <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<std::uint8_t>(payload_size >> 8);
    out[3] = static_cast<std::uint8_t>(payload_size);
    return 4;
  }
  out[1] = 127;
  for (std::size_t i = 0; i < 8; ++i) {
    out[2 + i] = static_cast<std::uint8_t>(payload_size >> (56 - 8 * i));
  }
  return 10;
}

std::string EncodeFrame(Opcode opcode, std::span<const std::uint8_t> payload) {
  std::array<std::uint8_t, kMaxServerHeader> header{};
  const std::size_t h = EncodeHeader(opcode, payload.size(), header);
  std::string out;
  out.reserve(h + payload.size());
  out.append(reinterpret_cast<const char*>(header.data()), h);
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return out;
}

std::string EncodeClose(std::uint16_t code, std::string_view reason) {
  std::size_t keep = std::min<std::size_t>(reason.size(), kMaxControlPayload - 2);
  // Not inside a UTF-8 sequence: back up over continuation bytes.
  while (keep > 0 && keep < reason.size() &&
         (static_cast<std::uint8_t>(reason[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason.substr(0, keep));
  return EncodeFrame(Opcode::kClose,
                     std::span<const std::uint8_t>(
                         reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
}

}  // namespace tickwire::protocol::ws
