#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tickwire::protocol {

// Every frame starts with a 4-byte big-endian length (type byte + payload) and a type byte.
inline constexpr std::size_t kLengthSize = 4;
inline constexpr std::size_t kHeaderSize = 5;
// Default and hard limits for MAX_MSG_SIZE (payload bytes, excluding the type byte).
inline constexpr std::uint32_t kDefaultMaxMsgSize = 65536;
inline constexpr std::uint32_t kMinMaxMsgSize = 1024;
inline constexpr std::uint32_t kMaxMaxMsgSize = 16 * 1024 * 1024;
inline constexpr std::uint32_t kProtocolVersion = 1;
// Longest Auth.client_name the server accepts, in bytes (the length of a topic name).
inline constexpr std::size_t kMaxClientNameBytes = 128;

// Frame type byte, as numbered by PROTOCOL.md section 1. Values are frozen.
enum class FrameType : std::uint8_t {
  kAuth = 0x01,
  kAuthOk = 0x02,
  kSubscribe = 0x03,
  kSubscribeOk = 0x04,
  kUnsubscribe = 0x05,
  kPublish = 0x06,
  kPublishAck = 0x07,
  kDataBatch = 0x08,
  kHeartbeat = 0x09,
  kError = 0x0A,
};

// True for every type the contract defines.
bool IsKnownFrameType(std::uint8_t type);
// True for the types a client may send (AUTH, SUBSCRIBE, UNSUBSCRIBE, PUBLISH, HEARTBEAT).
bool IsClientFrameType(std::uint8_t type);
// Stable lower-case name for logs and metric labels ("auth", "data_batch", "unknown").
std::string_view FrameTypeName(std::uint8_t type);

// Writes the 5-byte header for a payload of `payload_size` bytes into `out`.
void EncodeHeader(FrameType type, std::size_t payload_size, std::uint8_t* out);

// Reads the big-endian length field from the first 4 bytes of `in`.
std::uint32_t DecodeLength(const std::uint8_t* in);

// Builds a whole frame (header + payload) as a byte string.
std::string MakeFrame(FrameType type, std::string_view payload);

}  // namespace tickwire::protocol
