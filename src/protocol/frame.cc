#include "protocol/frame.h"

namespace tickwire::protocol {

bool IsKnownFrameType(std::uint8_t type) { return type >= 0x01 && type <= 0x0A; }

bool IsClientFrameType(std::uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kAuth:
    case FrameType::kSubscribe:
    case FrameType::kUnsubscribe:
    case FrameType::kPublish:
    case FrameType::kHeartbeat:
      return true;
    default:
      return false;
  }
}

std::string_view FrameTypeName(std::uint8_t type) {
  switch (type) {
    case 0x01:
      return "auth";
    case 0x02:
      return "auth_ok";
    case 0x03:
      return "subscribe";
    case 0x04:
      return "subscribe_ok";
    case 0x05:
      return "unsubscribe";
    case 0x06:
      return "publish";
    case 0x07:
      return "publish_ack";
    case 0x08:
      return "data_batch";
    case 0x09:
      return "heartbeat";
    case 0x0A:
      return "error";
    default:
      return "unknown";
  }
}

void EncodeHeader(FrameType type, std::size_t payload_size, std::uint8_t* out) {
  const auto length = static_cast<std::uint32_t>(payload_size + 1);
  out[0] = static_cast<std::uint8_t>(length >> 24);
  out[1] = static_cast<std::uint8_t>(length >> 16);
  out[2] = static_cast<std::uint8_t>(length >> 8);
  out[3] = static_cast<std::uint8_t>(length);
  out[4] = static_cast<std::uint8_t>(type);
}

std::uint32_t DecodeLength(const std::uint8_t* in) {
  return (std::uint32_t{in[0]} << 24) | (std::uint32_t{in[1]} << 16) | (std::uint32_t{in[2]} << 8) |
         std::uint32_t{in[3]};
}

std::string MakeFrame(FrameType type, std::string_view payload) {
  std::string out(kHeaderSize + payload.size(), '\0');
  EncodeHeader(type, payload.size(), reinterpret_cast<std::uint8_t*>(out.data()));
  out.replace(kHeaderSize, payload.size(), payload);
  return out;
}

}  // namespace tickwire::protocol
